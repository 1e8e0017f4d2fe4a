//! Issue 21's bugs, each with the test that failed before its fix: quick presses, concurrent
//! edits, pastes, text fields, widths, names, dialogs, vanished projects, reordering.
use super::*;

#[tokio::test]
async fn quick_presses_queue_behind_my_own_writes_instead_of_conflicting() {
    use pm_shared::domain::Priority;
    let mut app = app();
    app.outbox = Some(Vec::new());
    // PM-4 (Backlog, low, version 1) is selected; p p p p before any answer arrives.
    assert_eq!(app.selected().map(|w| w.item_number), Some(4));
    let mut want = Priority::Low;
    for _ in 0..4 {
        key(&mut app, KeyCode::Char('p'));
        want = want.cycle();
        // The card shows what I asked for at once.
        assert_eq!(
            app.selected().map(|w| w.priority.clone()),
            Some(want.to_string())
        );
    }
    let mut seq = 0;
    let mut versions = Vec::new();
    let mut last = None;
    // Answer each write as the server would; the next one goes out only then, on the version
    // the answer left.
    loop {
        let out = sent(&mut app);
        assert!(out.len() <= 1, "one write in flight per card: {out:?}");
        let Some((id, payload)) = out.into_iter().next() else {
            break;
        };
        let req = update_req(&payload).clone();
        versions.push(req.expected_version);
        seq += 1;
        last = Some(accept(&mut app, seq, &id, &req));
    }
    assert!(versions.len() >= 2, "{versions:?}");
    assert!(versions.windows(2).all(|w| w[1] > w[0]), "{versions:?}");
    assert_eq!(versions[0], 1);
    assert_eq!(last.map(|c| c.priority), Some(want.to_string()));
    assert_eq!(app.notice, None, "no false conflict");

    // L L L: three moves, each from where the previous one will have left the card.
    key(&mut app, KeyCode::Char('L'));
    key(&mut app, KeyCode::Char('L'));
    key(&mut app, KeyCode::Char('L'));
    assert_eq!(
        app.selected().map(|w| w.status.clone()),
        Some("review".into())
    );
    let mut statuses = Vec::new();
    loop {
        let out = sent(&mut app);
        let Some((id, payload)) = out.into_iter().next() else {
            break;
        };
        let req = update_req(&payload).clone();
        statuses.push(req.status.clone().unwrap_or_default());
        seq += 1;
        accept(&mut app, seq, &id, &req);
    }
    assert_eq!(
        statuses.last().map(String::as_str),
        Some("review"),
        "{statuses:?}"
    );
    assert_eq!(app.replica.store.work_items[&id(4)].status, "review");
    assert_eq!(
        app.selected().map(|w| w.item_number),
        Some(4),
        "the selection follows"
    );
    assert_eq!(app.notice, None);
}

#[tokio::test]
async fn a_title_edit_carries_its_starting_version_and_a_conflict_shows_both_texts() {
    let mut app = app();
    app.outbox = Some(Vec::new());
    // alice starts editing PM-4 (version 1)…
    key(&mut app, KeyCode::Char('e'));
    for c in " for 2.0".chars() {
        key(&mut app, KeyCode::Char(c));
    }
    // …bob renames it meanwhile…
    let mut theirs = item(
        4,
        "task",
        "Release notes (bob)",
        "backlog",
        "low",
        None,
        None,
    );
    theirs.version = 2;
    event(
        &mut app,
        1,
        Payload::WorkItemUpdated(proto::WorkItemUpdated {
            work_item: Some(theirs),
            changes: vec![],
            user_id: BOB.into(),
        }),
    );
    // …alice saves: on the version her edit started from, so the server can refuse it.
    key(&mut app, KeyCode::Enter);
    let out = sent(&mut app);
    assert_eq!(out.len(), 1, "{out:?}");
    let req = update_req(&out[0].1).clone();
    assert_eq!(req.expected_version, 1, "{req:?}");
    assert_eq!(req.title.as_deref(), Some("Write release notes for 2.0"));
    respond(
        &mut app,
        &out[0].0,
        Payload::Error(proto::Error {
            code: "CONFLICT".into(),
            message: "Conflict: resource was modified (current version: 2)".into(),
            field: None,
        }),
    );
    assert_eq!(
        app.popup,
        Popup::Conflict {
            item_id: id(4),
            field: crate::board::app::TextField::Title,
            mine: "Write release notes for 2.0".into(),
            theirs: "Release notes (bob)".into(),
        }
    );
    let screen = render(&app);
    assert!(screen.contains("Release notes (bob)"), "{screen}");
    assert!(screen.contains("Write release notes for 2.0"), "{screen}");
    insta::assert_snapshot!(screen);

    // e: edit again, with my text, now based on bob's version; Esc there and e again.
    key(&mut app, KeyCode::Char('e'));
    assert!(
        matches!(&app.popup, Popup::EditTitle { title, base: 2, .. } if title.text() == "Write release notes for 2.0"),
        "{:?}",
        app.popup
    );
    key(&mut app, KeyCode::Enter);
    let out = sent(&mut app);
    let req = update_req(&out[0].1).clone();
    assert_eq!(
        (req.expected_version, req.title.as_deref()),
        (2, Some("Write release notes for 2.0"))
    );
    accept(&mut app, 2, &out[0].0, &req);
    assert_eq!(
        app.replica.store.work_items[&id(4)].title,
        "Write release notes for 2.0"
    );
    assert_eq!(app.notice, None);
}

#[tokio::test]
async fn keep_mine_resends_on_the_current_version_and_a_conflict_elsewhere_is_none() {
    let mut app = app();
    app.outbox = Some(Vec::new());
    key(&mut app, KeyCode::Char('e'));
    key(&mut app, KeyCode::Char('!'));
    // bob changes the priority only: my title edit goes again by itself on his version.
    let mut theirs = item(
        4,
        "task",
        "Write release notes",
        "backlog",
        "high",
        None,
        None,
    );
    theirs.version = 2;
    event(
        &mut app,
        1,
        Payload::WorkItemUpdated(proto::WorkItemUpdated {
            work_item: Some(theirs.clone()),
            changes: vec![],
            user_id: BOB.into(),
        }),
    );
    key(&mut app, KeyCode::Enter);
    let out = sent(&mut app);
    assert_eq!(update_req(&out[0].1).expected_version, 1);
    let conflict = Payload::Error(proto::Error {
        code: "CONFLICT".into(),
        message: "Conflict".into(),
        field: None,
    });
    respond(&mut app, &out[0].0, conflict.clone());
    assert_eq!(app.popup, Popup::None);
    let out = sent(&mut app);
    let req = update_req(&out[0].1).clone();
    assert_eq!(
        (req.expected_version, req.title.as_deref()),
        (2, Some("Write release notes!"))
    );
    let now = accept(&mut app, 2, &out[0].0, &req);
    assert_eq!(now.priority, "high", "bob's change stays");

    // Now bob renames it while I edit: conflict; m keeps mine on bob's version.
    key(&mut app, KeyCode::Char('e'));
    key(&mut app, KeyCode::Char('?'));
    let mut renamed = now.clone();
    renamed.title = "Notes".into();
    renamed.version = 4;
    event(
        &mut app,
        3,
        Payload::WorkItemUpdated(proto::WorkItemUpdated {
            work_item: Some(renamed),
            changes: vec![],
            user_id: BOB.into(),
        }),
    );
    key(&mut app, KeyCode::Enter);
    let out = sent(&mut app);
    respond(&mut app, &out[0].0, conflict);
    assert!(
        matches!(app.popup, Popup::Conflict { .. }),
        "{:?}",
        app.popup
    );
    key(&mut app, KeyCode::Char('m'));
    let out = sent(&mut app);
    let req = update_req(&out[0].1).clone();
    assert_eq!(
        (req.expected_version, req.title.as_deref()),
        (4, Some("Write release notes!?"))
    );
    assert_eq!(app.popup, Popup::None);
}

#[tokio::test]
async fn esc_or_q_in_the_picker_opened_with_o_goes_back_to_the_board() {
    let mut app = app();
    for back in [KeyCode::Esc, KeyCode::Char('q')] {
        key(&mut app, KeyCode::Char('o'));
        let screen = render(&app);
        assert!(screen.contains("Projects"), "{screen}");
        assert!(screen.contains("Esc back to the board"), "{screen}");
        key(&mut app, back);
        assert!(
            !app.quit,
            "{back:?} in the picker opened with o must not quit"
        );
        assert_eq!(app.replica.project(), Some(PID));
        let screen = render(&app);
        assert!(
            screen.contains("Backlog 1"),
            "the board is back at once:\n{screen}"
        );
    }
    // Enter on the project already open goes back to it too.
    key(&mut app, KeyCode::Char('o'));
    key(&mut app, KeyCode::Enter);
    assert!(!app.quit);
    assert!(render(&app).contains("Backlog 1"));
    // The picker shown at start-up, with no project, still quits.
    let handle = sdk::spawn(SessionConfig::new("ws://127.0.0.1:1/ws", ME), |_| {});
    let mut fresh = App::new(handle, ME.into(), "alice".into(), None);
    key(&mut fresh, KeyCode::Esc);
    assert!(fresh.quit);
}

#[tokio::test]
async fn text_fields_edit_at_the_cursor_and_scroll_to_keep_it_visible() {
    let mut app = app();
    app.outbox = Some(Vec::new());
    // New card: type, go Home, type before it, fix a typo with ← Delete, drop a word with Ctrl-W.
    key(&mut app, KeyCode::Char('n'));
    type_text(&mut app, "wrold");
    key(&mut app, KeyCode::Home);
    type_text(&mut app, "hello ");
    key(&mut app, KeyCode::End);
    for _ in 0..4 {
        key(&mut app, KeyCode::Left);
    }
    key(&mut app, KeyCode::Delete);
    key(&mut app, KeyCode::Right);
    key(&mut app, KeyCode::Char('r'));
    key(&mut app, KeyCode::End);
    type_text(&mut app, " oops");
    ctrl_key(&mut app, 'w');
    key(&mut app, KeyCode::Backspace);
    key(&mut app, KeyCode::Enter);
    let out = sent(&mut app);
    match &out[..] {
        [(_, Payload::CreateWorkItemRequest(r))] => assert_eq!(r.title, "hello world"),
        other => panic!("{other:?}"),
    }

    // A title longer than the box: the end, with the cursor, is visible; Home shows the start.
    key(&mut app, KeyCode::Char('e'));
    let long: String = (0..15).map(|i| format!("word{i:02} ")).collect();
    type_text(&mut app, &format!(" {long}END"));
    let screen = render(&app);
    assert!(
        screen.contains("word14 END▏"),
        "the cursor's end is shown:\n{screen}"
    );
    assert!(!screen.contains("Write release notes word"), "{screen}");
    insta::assert_snapshot!("long_title_scrolled_to_the_cursor", screen);
    key(&mut app, KeyCode::Home);
    let screen = render(&app);
    assert!(screen.contains("Write release notes word00"), "{screen}");
    assert!(!screen.contains("END"), "{screen}");
}

#[tokio::test]
async fn typing_past_the_title_limit_is_flagged_and_enter_keeps_the_dialog_and_the_text() {
    let mut app = app();
    app.outbox = Some(Vec::new());
    key(&mut app, KeyCode::Char('n'));
    type_text(&mut app, &"x".repeat(187));
    assert!(render(&app).contains("187/200"), "{}", render(&app));
    type_text(&mut app, &format!(" {}", "y".repeat(62)));
    key(&mut app, KeyCode::Enter);
    assert!(
        matches!(&app.popup, Popup::NewCard { title, .. } if title.text().len() == 250),
        "the dialog stays open with every character: {:?}",
        app.popup
    );
    assert!(sent(&mut app).is_empty(), "nothing is sent");
    let screen = render(&app);
    assert!(screen.contains("250/200: 50 too many"), "{screen}");
    // Cutting it down (Ctrl-W takes the y's) makes it savable.
    ctrl_key(&mut app, 'w');
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.popup, Popup::None);
    assert_eq!(sent(&mut app).len(), 1);
}

#[tokio::test]
async fn a_large_paste_is_one_edit_of_one_line_and_a_refused_create_gives_the_text_back() {
    let mut app = app();
    app.outbox = Some(Vec::new());
    // Pasted on the board itself: ignored, never read as commands (d, q…).
    app.update(AppEvent::Paste("dqqq\n".into()));
    assert!(!app.quit);
    assert_eq!(app.popup, Popup::None);
    assert!(sent(&mut app).is_empty());

    key(&mut app, KeyCode::Char('n'));
    let paste = "lorem ipsum\n".repeat(417); // 5,004 characters, 417 line breaks
    app.update(AppEvent::Paste(paste));
    let Popup::NewCard { title, .. } = &app.popup else {
        panic!("the dialog stays open: {:?}", app.popup)
    };
    assert!(!title.text().contains('\n'));
    assert_eq!(title.text().chars().count(), 5004);
    let screen = render(&app);
    assert!(screen.contains("5003/200: 4803 too many"), "{screen}");
    insta::assert_snapshot!("a_paste_over_the_limit", screen);
    key(&mut app, KeyCode::Enter);
    assert!(matches!(app.popup, Popup::NewCard { .. }));
    assert!(sent(&mut app).is_empty());
    assert!(app
        .notice
        .as_ref()
        .is_some_and(|(n, _)| n.contains("Title too long (5003/200)")));

    // Cleared and pasted again: a line break becomes a space.
    ctrl_key(&mut app, 'u');
    app.update(AppEvent::Paste("Short\ntitle".into()));
    key(&mut app, KeyCode::Enter);
    let out = sent(&mut app);
    match &out[..] {
        [(_, Payload::CreateWorkItemRequest(r))] => assert_eq!(r.title, "Short title"),
        other => panic!("{other:?}"),
    }
    // The server refuses it: the dialog opens again with the text.
    respond(
        &mut app,
        &out[0].0,
        Payload::Error(proto::Error {
            code: "VALIDATION_ERROR".into(),
            message: "title: too long".into(),
            field: Some("title".into()),
        }),
    );
    assert!(
        matches!(&app.popup, Popup::NewCard { title, .. } if title.text() == "Short title"),
        "{:?}",
        app.popup
    );
}

#[tokio::test]
async fn a_card_created_under_a_sprint_filter_goes_into_that_sprint_and_stays_in_view() {
    let mut app = app();
    app.outbox = Some(Vec::new());
    event(
        &mut app,
        1,
        Payload::SprintCreated(proto::SprintCreated {
            sprint: Some(proto::Sprint {
                id: "s1".into(),
                project_id: PID.into(),
                name: "Sprint 1".into(),
                version: 1,
                ..Default::default()
            }),
            user_id: BOB.into(),
        }),
    );
    key(&mut app, KeyCode::Char('s'));
    assert_eq!(app.sprint.as_deref(), Some("s1"));
    key(&mut app, KeyCode::Char('n'));
    type_text(&mut app, "Sprint work");
    key(&mut app, KeyCode::Enter);
    let out = sent(&mut app);
    let [(create_id, Payload::CreateWorkItemRequest(_))] = &out[..] else {
        panic!("{out:?}")
    };
    // The server creates it (no sprint: creation cannot name one), event then response.
    let created = proto::WorkItem {
        sprint_id: None,
        ..item(7, "task", "Sprint work", "backlog", "medium", None, None)
    };
    let payload = Payload::WorkItemCreated(proto::WorkItemCreated {
        work_item: Some(created),
        user_id: ME.into(),
        ..Default::default()
    });
    event(&mut app, 2, payload.clone());
    respond(&mut app, create_id, payload);
    // It shows at once (where it is going), selected, and the board puts it in the sprint.
    assert_eq!(app.selected().map(|w| w.item_number), Some(7));
    let out = sent(&mut app);
    assert_eq!(out.len(), 1, "{out:?}");
    let req = update_req(&out[0].1).clone();
    assert_eq!(
        (req.sprint_id.as_deref(), req.expected_version),
        (Some("s1"), 1)
    );
    accept(&mut app, 3, &out[0].0, &req);
    assert_eq!(
        app.replica.store.work_items[&id(7)].sprint_id.as_deref(),
        Some("s1")
    );
    assert_eq!(app.selected().map(|w| w.item_number), Some(7));
    assert!(render(&app).contains("PM-7"), "{}", render(&app));
    assert_eq!(app.notice, None);
}

#[tokio::test]
async fn an_unreachable_server_is_named_with_the_reason_and_r_retries_at_once() {
    let handle = sdk::spawn(SessionConfig::new("ws://127.0.0.1:1/ws", ME), |_| {});
    let mut app = App::new(handle, ME.into(), "alice".into(), None);
    app.server_url = "http://127.0.0.1:1".into();
    let refused = "connect failed: IO error: Connection refused (os error 111)";
    app.update(AppEvent::Net(NetEvent::Disconnected {
        reason: refused.into(),
        retry_in: Duration::from_secs(10),
    }));
    app.update(AppEvent::Net(NetEvent::Connecting { attempt: 7 }));
    app.update(AppEvent::Net(NetEvent::Disconnected {
        reason: refused.into(),
        retry_in: Duration::from_secs(10),
    }));
    let screen = render(&app);
    let status = screen.lines().last().unwrap_or_default().to_string();
    for expected in [
        "reconnecting (try 7)",
        "127.0.0.1:1: Connection refused",
        "r: retry now",
    ] {
        assert!(status.contains(expected), "{expected}:\n{screen}");
    }
    assert!(
        screen.contains("Cannot reach the server at http://127.0.0.1:1: Connection refused"),
        "{screen}"
    );
    insta::assert_snapshot!(screen);
    key(&mut app, KeyCode::Char('r'));
    assert_eq!(app.link, Link::Connecting, "r starts a new attempt now");
    assert!(
        render(&app).contains("◌ connecting to 127.0.0.1:1"),
        "{}",
        render(&app)
    );
    assert!(!app.quit);
    // r is in the help.
    key(&mut app, KeyCode::Char('?'));
    let help = render_at(&app, 120, 40);
    assert!(help.contains("reconnect now"), "{help}");
}

#[tokio::test]
async fn a_conflict_on_fields_my_change_does_not_touch_sends_it_again_on_the_current_version() {
    let mut app = app();
    app.outbox = Some(Vec::new());
    let conflict = Payload::Error(proto::Error {
        code: "CONFLICT".into(),
        message: "Conflict: resource was modified (current version: 2)".into(),
        field: None,
    });
    let bob_sets = |app: &mut App, seq: u64, version: i32, f: &dyn Fn(&mut proto::WorkItem)| {
        let mut card = app.replica.store.work_items[&id(4)].clone();
        f(&mut card);
        card.version = version;
        event(
            app,
            seq,
            Payload::WorkItemUpdated(proto::WorkItemUpdated {
                work_item: Some(card),
                changes: vec![],
                user_id: BOB.into(),
            }),
        );
    };
    // p, and bob assigns the card to himself before my write reaches the server.
    key(&mut app, KeyCode::Char('p'));
    let out = sent(&mut app);
    assert_eq!(update_req(&out[0].1).expected_version, 1);
    bob_sets(&mut app, 1, 2, &|c| c.assignee_id = Some(BOB.into()));
    respond(&mut app, &out[0].0, conflict.clone());
    let out = sent(&mut app);
    assert_eq!(out.len(), 1, "sent again: {out:?}");
    let req = update_req(&out[0].1).clone();
    assert_eq!(
        (req.expected_version, req.priority.as_deref()),
        (2, Some("medium"))
    );
    let now = accept(&mut app, 2, &out[0].0, &req);
    assert_eq!(now.assignee_id.as_deref(), Some(BOB), "bob's change stays");
    assert_eq!(app.notice, None);

    // p again, but bob changes the priority itself: that is a real conflict, and I am told.
    key(&mut app, KeyCode::Char('p'));
    let out = sent(&mut app);
    bob_sets(&mut app, 3, 4, &|c| c.priority = "critical".into());
    respond(&mut app, &out[0].0, conflict);
    assert!(sent(&mut app).is_empty());
    assert!(app
        .notice
        .as_ref()
        .is_some_and(|(n, _)| n.starts_with("Priority failed: Conflict")));
    assert_eq!(
        app.selected().map(|w| w.priority.clone()),
        Some("critical".into())
    );
}

#[tokio::test]
async fn enter_while_offline_keeps_the_dialog_and_the_text() {
    // The test session never connects.
    let mut app = app();
    key(&mut app, KeyCode::Char('n'));
    type_text(&mut app, "Offline idea");
    key(&mut app, KeyCode::Enter);
    assert!(
        matches!(&app.popup, Popup::NewCard { title, .. } if title.text() == "Offline idea"),
        "{:?}",
        app.popup
    );
    assert!(app
        .notice
        .as_ref()
        .is_some_and(|(n, _)| n.starts_with("Not connected")));
    key(&mut app, KeyCode::Esc);
    // A change to a card is not lost: it is queued to be sent once connected, and shown.
    key(&mut app, KeyCode::Char('e'));
    type_text(&mut app, "!");
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.popup, Popup::None);
    assert_eq!(app.offline.pending_len(), 1);
    assert_eq!(
        app.selected().map(|w| w.title.as_str()),
        Some("Write release notes!")
    );
}

#[tokio::test]
async fn a_running_timer_shows_beside_the_assignee_and_others_timers_show_too() {
    let mut app = app();
    app.clock = CLOCK;
    // Bob's timer on PM-3 (assigned to bob), mine on PM-2 (assigned to me).
    for (seq, (n, item, user)) in [(1, 3, BOB), (2, 2, ME)].into_iter().enumerate() {
        event(
            &mut app,
            seq as u64 + 1,
            Payload::TimerStarted(proto::TimerStarted {
                time_entry: Some(time_entry(n, item, user, CLOCK - 5 * 60, None)),
                user_id: user.into(),
                stopped_entry: None,
            }),
        );
    }
    app.highlights.clear();
    let screen = render(&app);
    assert!(
        screen.contains("TASK @bob ⏱ 5m"),
        "bob's timer on PM-3:\n{screen}"
    );
    // No room for the time beside my name at 80 columns: the mark.
    assert!(
        card_line(&screen, "STORY @alice").ends_with('⏱'),
        "my timer on PM-2:\n{screen}"
    );
    let wide = render_at(&app, 120, 40);
    assert!(card_line(&wide, "STORY @alice").contains("⏱ 5m"), "{wide}");
}

#[tokio::test]
async fn wide_titles_are_cut_with_an_ellipsis_inside_the_lane() {
    let mut app = app();
    let mut cjk = item(
        7,
        "task",
        "日本語のタイトルはとても長いです",
        "backlog",
        "low",
        None,
        None,
    );
    cjk.version = 1;
    event(
        &mut app,
        1,
        Payload::WorkItemCreated(proto::WorkItemCreated {
            work_item: Some(cjk),
            user_id: BOB.into(),
            ..Default::default()
        }),
    );
    let mut emoji = item(
        8,
        "task",
        "🚀🚀🚀🚀🚀🚀🚀🚀🚀🚀 launch day",
        "backlog",
        "low",
        None,
        None,
    );
    emoji.version = 1;
    event(
        &mut app,
        2,
        Payload::WorkItemCreated(proto::WorkItemCreated {
            work_item: Some(emoji),
            user_id: BOB.into(),
            ..Default::default()
        }),
    );
    let screen = render(&app);
    let lines: Vec<&str> = screen.lines().collect();
    for start in ["┃日本語", "┃🚀🚀"] {
        let first = lines
            .iter()
            .position(|l| l.contains(start))
            .unwrap_or_else(|| panic!("no {start}:\n{screen}"));
        // The narrow lane wraps the title onto a second line, which is cut with `…`.
        let title: Vec<&str> = lines[first..=first + 1]
            .iter()
            .map(|l| l.split(" Hidden by").next().unwrap_or(l))
            .collect();
        assert!(
            !title[0].contains('…'),
            "the first line is whole:\n{screen}"
        );
        assert!(title[1].contains('…'), "cut with an ellipsis:\n{screen}");
        for line in title {
            assert_eq!(
                crate::width::width(line),
                82,
                "80 columns and the quotes: the lanes stay in place:\n{screen}"
            );
        }
    }
    assert!(
        screen.contains("┃Write release ┃") && screen.contains("┃notes         ┃"),
        "a title wider than the lane wraps at a word:\n{screen}"
    );
}

#[tokio::test]
async fn a_new_users_first_change_is_named_once_the_name_arrives() {
    const CAROL: &str = "33333333-3333-3333-3333-333333333333";
    let mut app = app();
    let mut moved = item(4, "task", "Write release notes", "todo", "low", None, None);
    moved.version = 2;
    event(
        &mut app,
        1,
        Payload::WorkItemUpdated(proto::WorkItemUpdated {
            work_item: Some(moved),
            changes: vec![],
            user_id: CAROL.into(),
        }),
    );
    // The board asks for the user list; its answer arrives after the change.
    let users = WebSocketMessage {
        message_id: "users".into(),
        payload: Some(Payload::UserList(proto::UserList {
            users: vec![proto::User {
                id: CAROL.into(),
                name: "carol".into(),
            }],
        })),
        ..Default::default()
    };
    app.update(AppEvent::Net(NetEvent::Message(Box::new(users))));
    let screen = render(&app);
    assert!(screen.contains("✎ carol"), "{screen}");
    assert!(!screen.contains("33333333"), "{screen}");
}

#[tokio::test]
async fn the_delete_dialog_shows_its_instructions_whatever_the_title() {
    let mut app = app();
    let long = "A very long title that goes on and on about what the card is for ".repeat(3);
    let mut card = item(7, "task", long.trim(), "backlog", "low", None, None);
    card.position = 0;
    event(
        &mut app,
        1,
        Payload::WorkItemCreated(proto::WorkItemCreated {
            work_item: Some(card),
            user_id: BOB.into(),
            ..Default::default()
        }),
    );
    assert_eq!(app.selected().map(|w| w.item_number), Some(7));
    key(&mut app, KeyCode::Char('d'));
    let screen = render(&app);
    assert!(screen.contains("y: delete"), "{screen}");
    assert!(screen.contains("any other key: keep"), "{screen}");
    insta::assert_snapshot!(screen);
}

#[tokio::test]
async fn the_detail_pane_lines_up_its_columns_and_names_values_for_people() {
    let mut app = app();
    key(&mut app, KeyCode::Right);
    key(&mut app, KeyCode::Right);
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Enter);
    let mut history = crate::board::app::History::new(&id(3));
    history.entries = vec![proto::ActivityLogEntry {
        id: "a1".into(),
        entity_type: "work_item".into(),
        entity_id: id(3),
        action: "updated".into(),
        user_id: BOB.into(),
        timestamp: CLOCK,
        changes: vec![
            proto::FieldChange {
                field_name: "position".into(),
                old_value: Some("6".into()),
                new_value: Some("3".into()),
            },
            proto::FieldChange {
                field_name: "priority".into(),
                old_value: Some("high".into()),
                new_value: Some("critical".into()),
            },
        ],
        ..Default::default()
    }];
    history.total = 1;
    history.loaded = true;
    app.history = Some(history);
    let screen = render_at(&app, 120, 40);
    assert_eq!(
        column_of(&screen, "Status"),
        column_of(&screen, "Points"),
        "{screen}"
    );
    assert!(screen.contains("Priority  Critical"), "{screen}");
    assert!(
        screen.contains("bob reordered; priority High → Critical"),
        "{screen}"
    );
    assert!(!screen.contains("position"), "{screen}");
}

#[tokio::test]
async fn a_terminal_too_small_says_so() {
    let app = app();
    let screen = render_at(&app, 30, 8);
    assert!(screen.contains("too small"), "{screen}");
    assert!(screen.contains("30×8"), "{screen}");
    // Just big enough: the board.
    assert!(render_at(&app, 60, 12).contains("PM-1"));
}

#[tokio::test]
async fn a_board_whose_project_is_deleted_says_so_in_the_picker() {
    let mut app = app();
    event(
        &mut app,
        1,
        Payload::ProjectDeleted(proto::ProjectDeleted {
            project_id: PID.into(),
            user_id: BOB.into(),
        }),
    );
    let screen = render(&app);
    assert!(screen.contains("pick a project"), "{screen}");
    assert!(screen.contains("Project PM was deleted by bob"), "{screen}");
}

#[tokio::test]
async fn moving_a_card_up_or_down_writes_only_that_card_when_there_is_room() {
    let mut app = app();
    app.outbox = Some(Vec::new());
    // Backlog: PM-4 (position 4), PM-7 (position 10), PM-8 (position 11).
    for (seq, (n, position)) in [(7, 10), (8, 11)].into_iter().enumerate() {
        let mut card = item(
            n,
            "task",
            &format!("Card {n}"),
            "backlog",
            "low",
            None,
            None,
        );
        card.position = position;
        event(
            &mut app,
            seq as u64 + 1,
            Payload::WorkItemCreated(proto::WorkItemCreated {
                work_item: Some(card),
                user_id: BOB.into(),
                ..Default::default()
            }),
        );
    }
    key(&mut app, KeyCode::Down);
    assert_eq!(app.selected().map(|w| w.item_number), Some(7));
    // K: PM-7 goes before PM-4 by itself (position 3); PM-4 is not touched.
    key(&mut app, KeyCode::Char('K'));
    let out = sent(&mut app);
    assert_eq!(out.len(), 1, "{out:?}");
    let req = update_req(&out[0].1).clone();
    assert_eq!(
        (req.work_item_id.as_str(), req.position),
        (id(7).as_str(), Some(3))
    );
    assert_eq!(shown(&app)[..3], [7, 4, 8]);
    accept_position(&mut app, 3, &out[0].0, &req);
    // J on PM-7 (now first): after PM-4, by itself again (position 5).
    key(&mut app, KeyCode::Char('J'));
    let out = sent(&mut app);
    assert_eq!(out.len(), 1, "{out:?}");
    let req = update_req(&out[0].1).clone();
    assert_eq!(req.position, Some(5));
    accept_position(&mut app, 4, &out[0].0, &req);
    // PM-7 (5) and PM-8 (11)… J again: position 12.
    key(&mut app, KeyCode::Char('J'));
    let out = sent(&mut app);
    assert_eq!(update_req(&out[0].1).position, Some(12));
    assert_eq!(out.len(), 1, "{out:?}");
}
