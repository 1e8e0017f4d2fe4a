//! Changing cards from the board: pickers, find, description and comments in $EDITOR, points,
//! sprints, links, undo and redo.
use super::*;

#[tokio::test]
async fn a_opens_a_picker_of_people_and_enter_assigns_the_one_chosen() {
    let mut app = app();
    app.outbox = Some(Vec::new());
    // PM-3 (In Progress, bob's): a no longer takes it over silently.
    key(&mut app, KeyCode::Right);
    key(&mut app, KeyCode::Right);
    key(&mut app, KeyCode::Down);
    assert_eq!(app.selected().map(|w| w.item_number), Some(3));
    key(&mut app, KeyCode::Char('a'));
    assert!(sent(&mut app).is_empty(), "nothing is sent by a alone");
    let screen = render(&app);
    for who in ["nobody", "alice (me)", "bob"] {
        assert!(screen.contains(who), "{who}:\n{screen}");
    }
    insta::assert_snapshot!(screen);
    // The current assignee is selected; ↑ goes to me; Enter assigns.
    key(&mut app, KeyCode::Up);
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.popup, Popup::None);
    let requests = sent(&mut app);
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(update_req(&requests[0].1).assignee_id.as_deref(), Some(ME));
    assert_eq!(
        app.selected()
            .and_then(|w| w.assignee_id.clone())
            .as_deref(),
        Some(ME),
        "the card shows it at once"
    );
    let req = update_req(&requests[0].1).clone();
    accept(&mut app, 1, &requests[0].0, &req);

    // Typing filters by name; "nobody" unassigns.
    key(&mut app, KeyCode::Char('a'));
    type_text(&mut app, "nob");
    let screen = render(&app);
    assert!(!screen.contains("alice (me)"), "{screen}");
    key(&mut app, KeyCode::Enter);
    let requests = sent(&mut app);
    assert_eq!(update_req(&requests[0].1).assignee_id.as_deref(), Some(""));
    let req = update_req(&requests[0].1).clone();
    accept(&mut app, 2, &requests[0].0, &req);

    // Esc changes nothing; choosing the current assignee sends nothing.
    key(&mut app, KeyCode::Char('a'));
    key(&mut app, KeyCode::Esc);
    key(&mut app, KeyCode::Char('a'));
    key(&mut app, KeyCode::Enter);
    assert!(sent(&mut app).is_empty());
}

#[tokio::test]
async fn slash_finds_by_key_title_description_and_assignee_with_filters() {
    let mut app = app();
    let mut described = item(7, "task", "Rotate keys", "todo", "low", None, None);
    described.description = Some("The vault's keys rotate weekly".into());
    event(
        &mut app,
        1,
        Payload::WorkItemCreated(proto::WorkItemCreated {
            work_item: Some(described),
            user_id: BOB.into(),
            ..Default::default()
        }),
    );
    let find = |app: &mut App, text: &str| {
        key(app, KeyCode::Char('/'));
        ctrl_key(app, 'u');
        type_text(app, text);
        key(app, KeyCode::Enter);
        shown(app)
    };
    assert_eq!(find(&mut app, "weekly"), [7], "the description");
    assert_eq!(find(&mut app, "vault"), [7, 3], "description and title");
    assert_eq!(find(&mut app, "bob"), [3, 5], "the assignee's name");
    assert_eq!(find(&mut app, "pm-6"), [6], "the key");
    assert_eq!(find(&mut app, "@me"), [2, 6]);
    assert_eq!(find(&mut app, "@me -done"), [2]);
    assert_eq!(find(&mut app, "type:task prio:high"), [5]);
    assert_eq!(find(&mut app, "@none"), [4, 1, 7]);
    let screen = render(&app);
    assert!(screen.contains("find: @none"), "{screen}");
    key(&mut app, KeyCode::Esc);
    assert_eq!(shown(&app).len(), 7, "Esc clears it");
}

#[tokio::test]
async fn capital_e_edits_the_description_in_the_editor_on_the_version_it_started_from() {
    use crate::board::app::{EditorRequest, EditorTarget, TextField};
    let mut app = app();
    app.outbox = Some(Vec::new());
    key(&mut app, KeyCode::Right);
    key(&mut app, KeyCode::Right);
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Char('E'));
    let request = app.editor.take().expect("the editor is asked for");
    assert_eq!(
        request,
        EditorRequest {
            item_id: id(3),
            text: String::new(),
            target: EditorTarget::Description {
                base: 1,
                started: String::new(),
            },
        }
    );
    // The editor saves two lines (and the usual final line break).
    app.update(AppEvent::Edited {
        request: request.clone(),
        result: Ok("Rotate the keys.\n\nSee the runbook.\n".into()),
    });
    let out = sent(&mut app);
    let req = update_req(&out[0].1).clone();
    assert_eq!(
        req.description.as_deref(),
        Some("Rotate the keys.\n\nSee the runbook.")
    );
    assert_eq!(req.expected_version, 1);
    let mut card = app.replica.store.work_items[&id(3)].clone();
    card.description = req.description.clone();
    card.version = 2;
    let updated = Payload::WorkItemUpdated(proto::WorkItemUpdated {
        work_item: Some(card),
        changes: vec![],
        user_id: ME.into(),
    });
    event(&mut app, 1, updated.clone());
    respond(&mut app, &out[0].0, updated);
    // The detail pane shows it line by line.
    key(&mut app, KeyCode::Enter);
    let screen = render(&app);
    assert!(screen.contains("Rotate the keys."), "{screen}");
    assert!(screen.contains("See the runbook."), "{screen}");
    assert!(screen.contains("E description"), "{screen}");

    // E from the detail pane; bob changes the description while my editor is open.
    key(&mut app, KeyCode::Char('E'));
    let request = app.editor.take().expect("the editor again");
    assert_eq!(
        request.target,
        EditorTarget::Description {
            base: 2,
            started: "Rotate the keys.\n\nSee the runbook.".into()
        }
    );
    let mut theirs = app.replica.store.work_items[&id(3)].clone();
    theirs.description = Some("Bob's version".into());
    theirs.version = 3;
    event(
        &mut app,
        2,
        Payload::WorkItemUpdated(proto::WorkItemUpdated {
            work_item: Some(theirs),
            changes: vec![],
            user_id: BOB.into(),
        }),
    );
    app.update(AppEvent::Edited {
        request,
        result: Ok("My version".into()),
    });
    let out = sent(&mut app);
    assert_eq!(
        update_req(&out[0].1).expected_version,
        2,
        "based on where I started"
    );
    respond(
        &mut app,
        &out[0].0,
        Payload::Error(proto::Error {
            code: "CONFLICT".into(),
            message: "Conflict: resource was modified (current version: 3)".into(),
            field: None,
        }),
    );
    key(&mut app, KeyCode::Esc); // close the detail pane: the conflict waits behind it
    assert_eq!(
        app.popup,
        Popup::Conflict {
            item_id: id(3),
            field: TextField::Description,
            mine: "My version".into(),
            theirs: "Bob's version".into(),
        }
    );
    let screen = render(&app);
    assert!(
        screen.contains("description was changed while you edited it"),
        "{screen}"
    );
    insta::assert_snapshot!(screen);
    // m: mine, on the current version.
    key(&mut app, KeyCode::Char('m'));
    let out = sent(&mut app);
    let req = update_req(&out[0].1);
    assert_eq!(
        (req.description.as_deref(), req.expected_version),
        (Some("My version"), 3)
    );
}

#[tokio::test]
async fn a_description_that_cannot_be_saved_is_kept_until_let_go() {
    let mut app = app();
    app.outbox = Some(Vec::new());
    key(&mut app, KeyCode::Char('E'));
    let request = app.editor.take().expect("the editor");
    // Unchanged: nothing to send.
    app.update(AppEvent::Edited {
        request: request.clone(),
        result: Ok("\n".into()),
    });
    assert!(sent(&mut app).is_empty());
    // An editor that failed: said, nothing sent.
    app.update(AppEvent::Edited {
        request: request.clone(),
        result: Err("vi exited with exit status: 1; nothing saved".into()),
    });
    assert!(sent(&mut app).is_empty());
    assert!(render(&app).contains("Editor failed"), "{}", render(&app));
    // Too long: kept, e opens the editor on it again, Esc lets it go.
    let long = "x".repeat(10_001);
    app.update(AppEvent::Edited {
        request,
        result: Ok(long.clone()),
    });
    assert!(sent(&mut app).is_empty());
    assert!(
        matches!(app.popup, Popup::Unsaved { .. }),
        "{:?}",
        app.popup
    );
    let screen = render(&app);
    assert!(screen.contains("too long (10001/10000"), "{screen}");
    key(&mut app, KeyCode::Char('e'));
    assert_eq!(app.editor.take().map(|r| r.text), Some(long));
    assert_eq!(app.popup, Popup::None);
}

#[tokio::test]
async fn capital_s_and_p_pick_the_sprint_and_a_parent_that_fits_the_hierarchy() {
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
                start_date: CLOCK,
                end_date: CLOCK + 14 * 86_400,
                status: proto::SprintStatus::Planned as i32,
                version: 1,
                ..Default::default()
            }),
            user_id: BOB.into(),
        }),
    );
    // PM-3, a task.
    key(&mut app, KeyCode::Right);
    key(&mut app, KeyCode::Right);
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Char('S'));
    let screen = render(&app);
    assert!(screen.contains("— no sprint"), "{screen}");
    assert!(screen.contains("Sprint 1 (Planned)"), "{screen}");
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Enter);
    let out = sent(&mut app);
    let req = update_req(&out[0].1).clone();
    assert_eq!(req.sprint_id.as_deref(), Some("s1"));
    accept(&mut app, 2, &out[0].0, &req);

    // A task's parent is a story: PM-2 is offered, the epic PM-1 is not.
    key(&mut app, KeyCode::Char('P'));
    let screen = render(&app);
    assert!(screen.contains("PM-2 Pay with saved card"), "{screen}");
    assert!(!screen.contains("PM-1 Checkout"), "{screen}");
    insta::assert_snapshot!(screen);
    type_text(&mut app, "saved");
    key(&mut app, KeyCode::Enter);
    let out = sent(&mut app);
    let req = update_req(&out[0].1);
    assert_eq!(
        (req.parent_id.as_deref(), req.update_parent),
        (Some(id(2).as_str()), true)
    );
    assert_eq!(
        app.card(&id(3)).and_then(|w| w.parent_id.clone()),
        Some(id(2)),
        "shown at once"
    );

    // An epic has no parent: no picker, a word why.
    key(&mut app, KeyCode::Left);
    assert_eq!(app.selected().map(|w| w.item_number), Some(1));
    key(&mut app, KeyCode::Char('P'));
    assert_eq!(app.popup, Popup::None);
    assert!(render(&app).contains("An epic has no parent"));
}

#[tokio::test]
async fn capital_t_changes_the_type_and_an_empty_hash_clears_the_points_both_undoable() {
    let mut app = app();
    app.outbox = Some(Vec::new());
    // PM-3, a task with 3 points.
    key(&mut app, KeyCode::Right);
    key(&mut app, KeyCode::Right);
    key(&mut app, KeyCode::Down);
    assert_eq!(app.selected().map(|w| w.item_number), Some(3));
    key(&mut app, KeyCode::Char('T'));
    let screen = render(&app);
    for label in ["Epic", "Story", "Task"] {
        assert!(screen.contains(label), "{screen}");
    }
    // On the current type: Enter changes nothing.
    key(&mut app, KeyCode::Enter);
    assert!(sent(&mut app).is_empty());
    key(&mut app, KeyCode::Char('T'));
    key(&mut app, KeyCode::Up);
    key(&mut app, KeyCode::Enter);
    let out = sent(&mut app);
    let req = update_req(&out[0].1).clone();
    assert_eq!(req.item_type.as_deref(), Some("story"));
    assert_eq!(
        app.card(&id(3)).map(|w| w.item_type),
        Some(proto::WorkItemType::Story as i32),
        "shown at once"
    );
    accept(&mut app, 1, &out[0].0, &req);

    // `#` with nothing typed: no points.
    key(&mut app, KeyCode::Char('#'));
    ctrl_key(&mut app, 'u');
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.popup, Popup::None);
    let out = sent(&mut app);
    let req = update_req(&out[0].1).clone();
    assert!(
        req.clear_story_points && req.story_points.is_none(),
        "{req:?}"
    );
    assert_eq!(app.card(&id(3)).and_then(|w| w.story_points), None);
    accept(&mut app, 2, &out[0].0, &req);
    // Again on a card without points: nothing to send.
    key(&mut app, KeyCode::Char('#'));
    key(&mut app, KeyCode::Enter);
    assert!(sent(&mut app).is_empty());

    // Undo brings the points back, then the type.
    key(&mut app, KeyCode::Char('u'));
    let out = sent(&mut app);
    let req = update_req(&out[0].1).clone();
    assert_eq!((req.story_points, req.clear_story_points), (Some(3), false));
    accept(&mut app, 3, &out[0].0, &req);
    key(&mut app, KeyCode::Char('u'));
    let out = sent(&mut app);
    assert_eq!(update_req(&out[0].1).item_type.as_deref(), Some("task"));
}

#[tokio::test]
async fn the_type_picker_says_which_types_would_break_the_hierarchy() {
    let mut app = app();
    // PM-3, a task, goes under the story PM-2.
    let mut under = app.card(&id(3)).cloned().expect("PM-3");
    under.parent_id = Some(id(2));
    under.version = 2;
    event(
        &mut app,
        1,
        Payload::WorkItemUpdated(proto::WorkItemUpdated {
            work_item: Some(under),
            changes: vec![],
            user_id: BOB.into(),
        }),
    );
    key(&mut app, KeyCode::Right);
    key(&mut app, KeyCode::Right);
    key(&mut app, KeyCode::Down);
    assert_eq!(app.selected().map(|w| w.item_number), Some(3));
    key(&mut app, KeyCode::Char('T'));
    let screen = render(&app);
    assert!(
        screen.contains("Epic  (not under its parent PM-2)"),
        "{screen}"
    );
    assert!(
        screen.contains("Story  (not under its parent PM-2)"),
        "{screen}"
    );
    assert!(
        screen.contains("✓ Task   "),
        "the type it has fits: {screen}"
    );
    key(&mut app, KeyCode::Esc);
    // PM-2, the story over it: as an epic or a task, PM-3 could not be under it.
    key(&mut app, KeyCode::Up);
    key(&mut app, KeyCode::Char('T'));
    let screen = render(&app);
    assert!(
        screen.contains("Epic  (PM-3 could not be under it)"),
        "{screen}"
    );
    assert!(
        screen.contains("Task  (PM-3 could not be under it)"),
        "{screen}"
    );
    assert!(screen.contains("✓ Story   "), "{screen}");
}

#[tokio::test]
async fn hash_sets_story_points_and_refuses_what_is_not_a_number_of_points() {
    let mut app = app();
    app.outbox = Some(Vec::new());
    // PM-4 has no points yet.
    key(&mut app, KeyCode::Char('#'));
    assert!(render(&app).contains("Story points"), "{}", render(&app));
    type_text(&mut app, "lots");
    key(&mut app, KeyCode::Enter);
    assert!(matches!(app.popup, Popup::Points { .. }), "kept open");
    assert!(
        render(&app).contains("whole number from 0 to 100"),
        "{}",
        render(&app)
    );
    ctrl_key(&mut app, 'u');
    type_text(&mut app, "101");
    key(&mut app, KeyCode::Enter);
    assert!(sent(&mut app).is_empty());
    ctrl_key(&mut app, 'u');
    type_text(&mut app, " 8 ");
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.popup, Popup::None);
    let out = sent(&mut app);
    assert_eq!(update_req(&out[0].1).story_points, Some(8));
    assert!(render(&app).contains("PM-4 ↓      8p"), "{}", render(&app));
}

#[tokio::test]
async fn i_lists_the_sprints_with_progress_and_creates_starts_completes_and_filters() {
    let mut app = app();
    app.outbox = Some(Vec::new());
    app.clock = CLOCK;
    let sprint = proto::Sprint {
        id: "s1".into(),
        project_id: PID.into(),
        name: "Sprint 1".into(),
        start_date: CLOCK,
        end_date: CLOCK + 14 * 86_400,
        status: proto::SprintStatus::Planned as i32,
        version: 3,
        ..Default::default()
    };
    event(
        &mut app,
        1,
        Payload::SprintCreated(proto::SprintCreated {
            sprint: Some(sprint),
            user_id: BOB.into(),
        }),
    );
    // PM-2 (5 points, in progress) and PM-6 (2 points, done) are in it.
    for (seq, n) in [(2, 2), (3, 6)] {
        let mut card = app.replica.store.work_items[&id(n)].clone();
        card.sprint_id = Some("s1".into());
        card.version += 1;
        event(
            &mut app,
            seq,
            Payload::WorkItemUpdated(proto::WorkItemUpdated {
                work_item: Some(card),
                changes: vec![],
                user_id: BOB.into(),
            }),
        );
    }
    key(&mut app, KeyCode::Char('i'));
    let screen = render(&app);
    assert!(screen.contains("all cards"), "{screen}");
    assert!(screen.contains("Sprint 1"), "{screen}");
    assert!(screen.contains("Planned"), "{screen}");
    assert!(screen.contains("11-22 → 12-06"), "{screen}");
    assert!(screen.contains("1/2 cards · 2/7 points"), "{screen}");
    insta::assert_snapshot!(screen);

    // c on a planned sprint: refused here, with the reason.
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Char('c'));
    assert!(sent(&mut app).is_empty());
    assert!(render(&app).contains("cannot become"), "{}", render(&app));
    // s starts it, on the version the board knows.
    key(&mut app, KeyCode::Char('s'));
    let out = sent(&mut app);
    let [(_, Payload::UpdateSprintRequest(req))] = &out[..] else {
        panic!("{out:?}")
    };
    assert_eq!(req.sprint_id, "s1");
    assert_eq!(req.expected_version, 3);
    assert_eq!(req.status, Some(proto::SprintStatus::Active as i32));

    // n: a new sprint from today for two weeks.
    key(&mut app, KeyCode::Char('n'));
    type_text(&mut app, "Sprint 2");
    key(&mut app, KeyCode::Enter);
    let out = sent(&mut app);
    let [(_, Payload::CreateSprintRequest(req))] = &out[..] else {
        panic!("{out:?}")
    };
    assert_eq!(req.name, "Sprint 2");
    let midnight = CLOCK - CLOCK % 86_400;
    assert_eq!(
        (req.start_date, req.end_date),
        (midnight, midnight + 14 * 86_400)
    );

    // Enter filters the board by the highlighted sprint; the first row shows all again.
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.sprint.as_deref(), Some("s1"));
    assert_eq!(shown(&app), [2, 6]);
    // The header is the sprint's view: state, end and progress.
    let header = render_at(&app, 120, 40);
    assert!(
        header.contains("sprint: Sprint 1 (Planned, ends 12-06) · 1/2 cards · 2/7 points"),
        "{header}"
    );
    key(&mut app, KeyCode::Char('i'));
    key(&mut app, KeyCode::Up);
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.sprint, None);
    assert_eq!(shown(&app).len(), 6);
}

#[tokio::test]
async fn links_are_added_and_removed_from_the_detail_pane() {
    let mut app = app_with_links_and_time();
    app.outbox = Some(Vec::new());
    // PM-3: blocked by PM-1 and PM-6, blocks PM-5, relates to PM-4.
    key(&mut app, KeyCode::Right);
    key(&mut app, KeyCode::Right);
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Enter);
    // b: PM-3 blocks… PM-5 already is, so it is not offered.
    key(&mut app, KeyCode::Char('b'));
    let screen = render(&app);
    assert!(screen.contains("PM-3 blocks ›"), "{screen}");
    assert!(screen.contains("PM-2 Pay with saved card"), "{screen}");
    assert!(!screen.contains("PM-5 Fix flaky"), "{screen}");
    assert!(!screen.contains("PM-3 Card vault"), "not itself:\n{screen}");
    type_text(&mut app, "pay");
    key(&mut app, KeyCode::Enter);
    let out = sent(&mut app);
    let [(_, Payload::CreateDependencyRequest(req))] = &out[..] else {
        panic!("{out:?}")
    };
    assert_eq!(
        (req.blocking_item_id.as_str(), req.blocked_item_id.as_str()),
        (id(3).as_str(), id(2).as_str())
    );
    assert_eq!(req.dependency_type, proto::DependencyType::Blocks as i32);
    assert!(
        matches!(&app.popup, Popup::Detail { item_id, .. } if *item_id == id(3)),
        "back in the detail pane: {:?}",
        app.popup
    );
    // B: blocked by…; R: relates to….
    key(&mut app, KeyCode::Char('B'));
    type_text(&mut app, "PM-2");
    key(&mut app, KeyCode::Enter);
    let out = sent(&mut app);
    let [(_, Payload::CreateDependencyRequest(req))] = &out[..] else {
        panic!("{out:?}")
    };
    assert_eq!(
        (req.blocking_item_id.as_str(), req.blocked_item_id.as_str()),
        (id(2).as_str(), id(3).as_str())
    );
    key(&mut app, KeyCode::Char('R'));
    type_text(&mut app, "pay");
    key(&mut app, KeyCode::Enter);
    let out = sent(&mut app);
    let [(_, Payload::CreateDependencyRequest(req))] = &out[..] else {
        panic!("{out:?}")
    };
    assert_eq!(req.dependency_type, proto::DependencyType::RelatesTo as i32);
    // x: the card's links, one goes.
    key(&mut app, KeyCode::Char('x'));
    let screen = render(&app);
    for link in [
        "is blocked by PM-1 Checkout revamp",
        "blocks PM-5 Fix flaky login test",
        "relates to PM-4 Write release notes",
    ] {
        assert!(screen.contains(link), "{link}:\n{screen}");
    }
    insta::assert_snapshot!(screen);
    type_text(&mut app, "relates");
    key(&mut app, KeyCode::Enter);
    let out = sent(&mut app);
    let [(_, Payload::DeleteDependencyRequest(req))] = &out[..] else {
        panic!("{out:?}")
    };
    assert_eq!(req.dependency_id, "dddddddd-0000-0000-0000-000000000005");
    // Esc in a picker goes back to the pane too; a card with no links says so.
    key(&mut app, KeyCode::Char('x'));
    key(&mut app, KeyCode::Esc);
    assert!(matches!(app.popup, Popup::Detail { .. }));
    key(&mut app, KeyCode::Esc);
    key(&mut app, KeyCode::Up);
    assert_eq!(app.selected().map(|w| w.item_number), Some(2));
    key(&mut app, KeyCode::Enter);
    key(&mut app, KeyCode::Char('x'));
    assert!(matches!(app.popup, Popup::Detail { .. }));
    assert!(
        render(&app).contains("This card has no links"),
        "{}",
        render(&app)
    );
}

#[tokio::test]
async fn comments_are_written_in_the_editor_and_my_own_are_edited_and_deleted() {
    use crate::board::app::{EditorRequest, EditorTarget};
    let mut app = app();
    app.outbox = Some(Vec::new());
    // PM-3 has bob's comment; mine comes next.
    let mine = proto::Comment {
        id: "c2".into(),
        work_item_id: id(3),
        content: "First line\nsecond line".into(),
        created_by: ME.into(),
        created_at: CLOCK,
        updated_at: CLOCK + 60,
        ..Default::default()
    };
    event(
        &mut app,
        1,
        Payload::CommentCreated(proto::CommentCreated {
            comment: Some(mine),
            user_id: ME.into(),
        }),
    );
    key(&mut app, KeyCode::Right);
    key(&mut app, KeyCode::Right);
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Enter);
    let screen = render(&app);
    assert!(screen.contains("alice: First line (edited)"), "{screen}");
    assert!(screen.contains("  second line"), "lines kept:\n{screen}");

    // C: a new comment in the editor, several lines.
    key(&mut app, KeyCode::Char('C'));
    let request = app.editor.take().expect("the editor");
    assert_eq!(request.target, EditorTarget::NewComment);
    app.update(AppEvent::Edited {
        request,
        result: Ok("Looks good.\n\n- one\n- two\n".into()),
    });
    let out = sent(&mut app);
    let [(_, Payload::CreateCommentRequest(req))] = &out[..] else {
        panic!("{out:?}")
    };
    assert_eq!(req.content, "Looks good.\n\n- one\n- two");

    // M: only my comments are offered; Enter opens the editor on it.
    key(&mut app, KeyCode::Char('M'));
    let screen = render(&app);
    assert!(screen.contains("First line"), "{screen}");
    assert!(
        !screen.contains("  Vault keys rotate"),
        "not bob's:\n{screen}"
    );
    key(&mut app, KeyCode::Enter);
    let request = app.editor.take().expect("the editor on my comment");
    assert_eq!(
        request,
        EditorRequest {
            item_id: id(3),
            text: "First line\nsecond line".into(),
            target: EditorTarget::Comment {
                comment_id: "c2".into(),
                started: "First line\nsecond line".into(),
            },
        }
    );
    app.update(AppEvent::Edited {
        request,
        result: Ok("First line, fixed\n".into()),
    });
    let out = sent(&mut app);
    let [(_, Payload::UpdateCommentRequest(req))] = &out[..] else {
        panic!("{out:?}")
    };
    assert_eq!(
        (req.comment_id.as_str(), req.content.as_str()),
        ("c2", "First line, fixed")
    );

    // D: delete one of mine.
    key(&mut app, KeyCode::Char('D'));
    assert!(render(&app).contains("Delete comment"), "{}", render(&app));
    key(&mut app, KeyCode::Enter);
    let out = sent(&mut app);
    let [(_, Payload::DeleteCommentRequest(req))] = &out[..] else {
        panic!("{out:?}")
    };
    assert_eq!(req.comment_id, "c2");

    // A comment too long for the server is kept, and e brings the editor back on it.
    key(&mut app, KeyCode::Char('C'));
    let request = app.editor.take().expect("the editor");
    app.update(AppEvent::Edited {
        request,
        result: Ok("y".repeat(5_001)),
    });
    assert!(sent(&mut app).is_empty());
    key(&mut app, KeyCode::Esc); // the detail pane; the popup waits behind it
    assert!(
        render(&app).contains("Your comment on PM-3 was not saved"),
        "{}",
        render(&app)
    );
    key(&mut app, KeyCode::Char('e'));
    let again = app.editor.take().expect("the editor again");
    assert_eq!(
        (again.text.len(), again.target),
        (5_001, EditorTarget::NewComment)
    );

    // On a card without comments of mine, M says so.
    key(&mut app, KeyCode::Left);
    key(&mut app, KeyCode::Enter);
    key(&mut app, KeyCode::Char('M'));
    assert!(matches!(app.popup, Popup::Detail { .. }));
    assert!(
        render(&app).contains("You have no comments on this card"),
        "{}",
        render(&app)
    );
}

#[tokio::test]
async fn u_undoes_my_last_change_on_the_current_version_and_ctrl_r_redoes_it() {
    let mut app = app();
    app.outbox = Some(Vec::new());
    // PM-4: low → medium.
    key(&mut app, KeyCode::Char('p'));
    let out = sent(&mut app);
    let req = update_req(&out[0].1).clone();
    accept(&mut app, 1, &out[0].0, &req);
    // bob moves it meanwhile (another field): the undo still applies, on version 3.
    let mut moved = app.replica.store.work_items[&id(4)].clone();
    moved.status = "todo".into();
    moved.version = 3;
    event(
        &mut app,
        2,
        Payload::WorkItemUpdated(proto::WorkItemUpdated {
            work_item: Some(moved),
            changes: vec![],
            user_id: BOB.into(),
        }),
    );
    key(&mut app, KeyCode::Char('u'));
    let out = sent(&mut app);
    assert_eq!(out.len(), 1, "{out:?}");
    let req = update_req(&out[0].1).clone();
    assert_eq!(
        (
            req.priority.as_deref(),
            req.status.as_deref(),
            req.expected_version
        ),
        (Some("low"), None, 3)
    );
    accept(&mut app, 3, &out[0].0, &req);
    assert_eq!(
        app.card(&id(4)).map(|w| w.priority.clone()).as_deref(),
        Some("low")
    );
    // Ctrl-R: medium again.
    ctrl_key(&mut app, 'r');
    let out = sent(&mut app);
    let req = update_req(&out[0].1).clone();
    assert_eq!(req.priority.as_deref(), Some("medium"));
    accept(&mut app, 4, &out[0].0, &req);
    // Nothing left to redo.
    ctrl_key(&mut app, 'r');
    assert!(sent(&mut app).is_empty());
    assert!(render(&app).contains("Nothing to redo"), "{}", render(&app));
}

#[tokio::test]
async fn an_undo_that_would_overwrite_someone_elses_change_is_refused() {
    let mut app = app();
    app.outbox = Some(Vec::new());
    key(&mut app, KeyCode::Char('p'));
    let out = sent(&mut app);
    let req = update_req(&out[0].1).clone();
    accept(&mut app, 1, &out[0].0, &req);
    // bob sets the priority after me.
    let mut theirs = app.replica.store.work_items[&id(4)].clone();
    theirs.priority = "critical".into();
    theirs.version = 3;
    event(
        &mut app,
        2,
        Payload::WorkItemUpdated(proto::WorkItemUpdated {
            work_item: Some(theirs),
            changes: vec![],
            user_id: BOB.into(),
        }),
    );
    key(&mut app, KeyCode::Char('u'));
    assert!(sent(&mut app).is_empty());
    let screen = render(&app);
    assert!(
        screen.contains("Cannot undo: PM-4 was changed by someone else since"),
        "{screen}"
    );
    assert_eq!(
        app.card(&id(4)).map(|w| w.priority.clone()).as_deref(),
        Some("critical")
    );
}

#[tokio::test]
async fn u_brings_a_card_i_deleted_back_as_the_same_card() {
    let mut app = app();
    app.outbox = Some(Vec::new());
    // PM-2: a story of mine with 5 points, in progress.
    key(&mut app, KeyCode::Right);
    key(&mut app, KeyCode::Right);
    assert_eq!(app.selected().map(|w| w.item_number), Some(2));
    let before = app.card(&id(2)).cloned().expect("PM-2");
    key(&mut app, KeyCode::Char('d'));
    key(&mut app, KeyCode::Char('y'));
    let out = sent(&mut app);
    let deleted = Payload::WorkItemDeleted(proto::WorkItemDeleted {
        work_item_id: id(2),
        user_id: ME.into(),
    });
    event(&mut app, 1, deleted.clone());
    respond(&mut app, &out[0].0, deleted);
    assert!(!app.replica.store.work_items.contains_key(&id(2)));
    key(&mut app, KeyCode::Char('u'));
    let out = sent(&mut app);
    let [(restore_id, Payload::RestoreWorkItemRequest(req))] = &out[..] else {
        panic!("{out:?}")
    };
    assert_eq!(req.work_item_id, id(2), "the same card, not a new one");
    // The server's answer: the card as it was, one version on, with a comment it had.
    let comment = proto::Comment {
        id: "c1".into(),
        work_item_id: id(2),
        content: "Still here".into(),
        created_by: BOB.into(),
        ..Default::default()
    };
    let restored = Payload::WorkItemCreated(proto::WorkItemCreated {
        work_item: Some(proto::WorkItem {
            version: before.version + 1,
            ..before.clone()
        }),
        user_id: ME.into(),
        restored: Some(Box::new(proto::Restored {
            comments: vec![comment],
            ..Default::default()
        })),
    });
    event(&mut app, 2, restored.clone());
    respond(&mut app, restore_id, restored);
    assert!(sent(&mut app).is_empty(), "nothing left to set");
    let back = app.card(&id(2)).expect("PM-2 is back");
    assert_eq!(
        (
            back.item_number,
            back.story_points,
            back.assignee_id.as_deref()
        ),
        (2, Some(5), Some(ME))
    );
    assert_eq!(
        app.replica.store.comments_of(&id(2)).len(),
        1,
        "its comment too"
    );
    assert!(
        render(&app).contains("Undo: PM-2 is back"),
        "{}",
        render(&app)
    );
    assert!(
        render(&app).contains("restored PM-2 \"Pay with saved card\""),
        "the activity strip: {}",
        render(&app)
    );
    assert_eq!(app.selected().map(|w| w.item_number), Some(2));
}

#[test]
fn a_suggested_key_is_the_titles_initials() {
    use crate::board::app::suggested_key;
    assert_eq!(suggested_key("Mobile banking app"), "MBA");
    assert_eq!(suggested_key("Platform"), "PLAT");
    assert_eq!(suggested_key("  "), "");
    assert_eq!(suggested_key("Q3 — roadmap & ops"), "QRO");
}
