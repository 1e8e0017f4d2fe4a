//! What the board draws: lanes, cards, the list and hierarchy, the detail pane, popups, help,
//! palette and activity feed, at 80×24 and 120×40 (the gallery), colours and the mouse.
use super::*;

#[tokio::test]
async fn board_shows_five_lanes_with_cards() {
    let app = app();
    insta::assert_snapshot!(render(&app));
}

#[tokio::test]
async fn a_remote_change_moves_the_card_and_names_who_did_it() {
    let mut app = app();
    let mut moved = item(
        4,
        "task",
        "Write release notes",
        "review",
        "low",
        None,
        None,
    );
    moved.version = 2;
    let changes = vec![proto::FieldChange {
        field_name: "status".into(),
        old_value: Some("backlog".into()),
        new_value: Some("review".into()),
    }];
    event(
        &mut app,
        1,
        Payload::WorkItemUpdated(proto::WorkItemUpdated {
            work_item: Some(moved),
            changes,
            user_id: BOB.into(),
        }),
    );
    let screen = render(&app);
    assert!(
        screen.contains("✎ bob"),
        "highlight names the user:\n{screen}"
    );
    assert!(
        screen.contains("bob moved PM-4 to Review"),
        "activity strip:\n{screen}"
    );
    insta::assert_snapshot!(screen);
    // The highlight fades.
    app.now += Duration::from_secs(10);
    app.update(AppEvent::Resize(80, 24));
    app.highlights
        .retain(|_, (at, _)| app.now.duration_since(*at) < crate::board::app::HIGHLIGHT_FOR);
    assert!(!render(&app).contains("✎ bob"));
}

#[tokio::test]
async fn keys_move_the_selection_and_open_the_detail_pane() {
    let mut app = app();
    key(&mut app, KeyCode::Right);
    key(&mut app, KeyCode::Right);
    key(&mut app, KeyCode::Down);
    assert_eq!(app.selected().map(|w| w.item_number), Some(3));
    key(&mut app, KeyCode::Enter);
    assert!(matches!(app.popup, Popup::Detail { .. }));
    key(&mut app, KeyCode::Char('c'));
    for c in "Looks good".chars() {
        key(&mut app, KeyCode::Char(c));
    }
    insta::assert_snapshot!(render(&app));
    key(&mut app, KeyCode::Esc);
    key(&mut app, KeyCode::Esc);
    assert_eq!(app.popup, Popup::None);
}

#[tokio::test]
async fn help_screen() {
    let mut app = app();
    key(&mut app, KeyCode::Char('?'));
    insta::assert_snapshot!(render(&app));
}

#[tokio::test]
async fn reconnecting_state_is_shown() {
    let mut app = app();
    app.update(AppEvent::Net(NetEvent::Disconnected {
        reason: "server closed the connection".into(),
        retry_in: Duration::from_millis(500),
    }));
    app.update(AppEvent::Net(NetEvent::Connecting { attempt: 3 }));
    let screen = render(&app);
    assert!(screen.contains("reconnecting"), "{screen}");
    insta::assert_snapshot!(screen);
}

#[tokio::test]
async fn filter_and_delete_confirmation() {
    let mut app = app();
    key(&mut app, KeyCode::Char('/'));
    for c in "card".chars() {
        key(&mut app, KeyCode::Char(c));
    }
    key(&mut app, KeyCode::Enter);
    let lanes = app.lanes();
    let shown: usize = lanes.iter().map(Vec::len).sum();
    assert_eq!(shown, 2, "only titles containing 'card'");
    drop(lanes);
    key(&mut app, KeyCode::Right);
    key(&mut app, KeyCode::Right);
    key(&mut app, KeyCode::Char('d'));
    insta::assert_snapshot!(render(&app));
    key(&mut app, KeyCode::Char('n'));
    assert_eq!(app.popup, Popup::None, "any key but y keeps the card");
}

#[tokio::test]
async fn remote_delete_and_gap_handling() {
    let mut app = app();
    event(
        &mut app,
        1,
        Payload::WorkItemDeleted(proto::WorkItemDeleted {
            work_item_id: id(6),
            user_id: BOB.into(),
        }),
    );
    assert!(!app.replica.store.work_items.contains_key(&id(6)));
    assert!(
        app.activity
            .front()
            .is_some_and(|(who, what)| who == BOB && what == "deleted PM-6"),
        "{:?}",
        app.activity
    );
    // A duplicate changes nothing; a gap asks for a resync (and forgets the cursor).
    event(
        &mut app,
        1,
        Payload::WorkItemDeleted(proto::WorkItemDeleted {
            work_item_id: id(5),
            user_id: BOB.into(),
        }),
    );
    assert!(app.replica.store.work_items.contains_key(&id(5)));
    event(
        &mut app,
        5,
        Payload::WorkItemDeleted(proto::WorkItemDeleted {
            work_item_id: id(5),
            user_id: BOB.into(),
        }),
    );
    assert!(app.replica.store.cursor(PID).is_none());
    assert!(app.replica.store.work_items.contains_key(&id(5)));
}

#[tokio::test]
async fn project_picker_when_no_project_is_given() {
    let handle = sdk::spawn(SessionConfig::new("ws://127.0.0.1:1/ws", ME), |_| {});
    let mut app = App::new(handle, ME.into(), "alice".into(), None);
    app.link = Link::Connected;
    let p = |id: &str, key: &str, title: &str| proto::Project {
        id: id.into(),
        key: key.into(),
        title: title.into(),
        version: 1,
        ..Default::default()
    };
    app.replica.store.load_projects(
        vec![p("p1", "PM", "Platform"), p("p2", "WEB", "Website")],
        3,
        EPOCH,
    );
    key(&mut app, KeyCode::Down);
    insta::assert_snapshot!(render(&app));
}

#[tokio::test]
async fn blocked_cards_and_my_running_timer_are_marked() {
    let app = app_with_links_and_time();
    assert_eq!(
        app.replica.store.blockers_of(&id(3)).len(),
        1,
        "PM-6 is done"
    );
    assert!(
        app.replica.store.blockers_of(&id(5)).len() == 1,
        "PM-3 is open"
    );
    assert!(
        app.replica.store.blockers_of(&id(4)).is_empty(),
        "relates_to never blocks"
    );
    let screen = render(&app);
    // The first line of a card: from its key to the lane's border.
    let card = |needle: &str| -> String {
        let line = screen
            .lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no {needle}:\n{screen}"));
        let start = line.find(needle).unwrap_or(0);
        line[start..].chars().take(13).collect()
    };
    assert!(card("PM-3 !!").contains('⛔'), "{screen}");
    assert!(card("PM-5 ↑").contains('⛔'), "{screen}");
    assert!(!card("PM-4 ↓").contains('⛔'), "{screen}");
    assert!(!card("PM-2 =").contains('⛔'), "{screen}");
    assert!(
        screen.contains("TASK @bob    ⏱"),
        "my timer on PM-3:\n{screen}"
    );
    assert!(
        app.activity
            .iter()
            .any(|(who, what)| who == BOB && what == "linked PM-1 blocks PM-3"),
        "{:?}",
        app.activity
    );
    assert!(screen.contains("alice started a timer on PM-3"), "{screen}");
    insta::assert_snapshot!(screen);
}

#[tokio::test]
async fn detail_pane_shows_links_time_and_history() {
    let mut app = app_with_links_and_time();
    key(&mut app, KeyCode::Right);
    key(&mut app, KeyCode::Right);
    key(&mut app, KeyCode::Down);
    assert_eq!(app.selected().map(|w| w.item_number), Some(3));
    key(&mut app, KeyCode::Enter);
    // The history was asked for (the test session never connects, so it stays loading).
    assert!(render_at(&app, 120, 40).contains("loading…"));
    let mut history = crate::board::app::History::new(&id(3));
    let entry = |n: i32, user: &str, action: &str, changes: Vec<proto::FieldChange>| {
        proto::ActivityLogEntry {
            id: format!("a{n}"),
            entity_type: "work_item".into(),
            entity_id: id(3),
            action: action.into(),
            user_id: user.into(),
            timestamp: CLOCK - 600 * i64::from(n),
            changes,
            ..Default::default()
        }
    };
    let change = |field: &str, old: Option<&str>, new: Option<&str>| proto::FieldChange {
        field_name: field.into(),
        old_value: old.map(str::to_string),
        new_value: new.map(str::to_string),
    };
    history.entries = vec![
        entry(
            1,
            BOB,
            "updated",
            vec![change("assignee_id", None, Some(BOB))],
        ),
        entry(
            2,
            ME,
            "updated",
            vec![
                change("status", Some("todo"), Some("in_progress")),
                change("priority", Some("high"), Some("critical")),
            ],
        ),
        entry(
            3,
            ME,
            "created",
            vec![change("title", None, Some("Card vault API"))],
        ),
    ];
    history.total = 3;
    history.loaded = true;
    app.history = Some(history);
    let screen = render(&app);
    for expected in [
        "⛔ blocked by PM-1 Checkout revamp",
        "✓ was blocked by PM-6 Ship 2.0",
        "blocks PM-5 Fix flaky login test",
        "relates to PM-4 Write release notes",
        "1h12m logged · ⏱ alice 12m",
    ] {
        assert!(screen.contains(expected), "{expected}:\n{screen}");
    }
    insta::assert_snapshot!("detail_pane_top", screen);

    // ↓ scrolls the pane down to the history, ↑ back up.
    for _ in 0..8 {
        key(&mut app, KeyCode::Down);
    }
    let screen = render(&app);
    assert!(!screen.contains("PM-3  Card vault API"), "{screen}");
    for expected in [
        "bob assignee — → bob",
        "alice status To Do → In Progress; priority High → Critical",
        "alice created",
    ] {
        assert!(screen.contains(expected), "{expected}:\n{screen}");
    }
    insta::assert_snapshot!("detail_pane_history", screen);
    for _ in 0..8 {
        key(&mut app, KeyCode::Up);
    }
    assert!(render(&app).contains("PM-3  Card vault API"));
    // t on a card my timer runs on stops it (the test session is offline, so the request is
    // refused with a notice that names the action).
    key(&mut app, KeyCode::Char('t'));
    assert!(app
        .notice
        .as_ref()
        .is_some_and(|(n, _)| n.starts_with("Stop timer")));
    key(&mut app, KeyCode::Esc);
    assert_eq!(app.popup, Popup::None);
    assert_eq!(app.history, None);
    key(&mut app, KeyCode::Left);
    key(&mut app, KeyCode::Char('t'));
    assert!(app
        .notice
        .as_ref()
        .is_some_and(|(n, _)| n.starts_with("Start timer")));
}

#[tokio::test]
async fn remote_links_and_timers_update_the_board() {
    let mut app = app_with_links_and_time();
    // Bob deletes the link that blocked PM-3, and my timer stops elsewhere.
    event(
        &mut app,
        8,
        Payload::DependencyDeleted(proto::DependencyDeleted {
            dependency_id: "dddddddd-0000-0000-0000-000000000001".into(),
            blocking_item_id: id(1),
            blocked_item_id: id(3),
            user_id: BOB.into(),
        }),
    );
    assert!(app.replica.store.blockers_of(&id(3)).is_empty());
    assert!(app
        .activity
        .front()
        .is_some_and(|(_, what)| what == "unlinked PM-1 and PM-3"));
    let stopped = time_entry(2, 3, ME, CLOCK - 12 * 60, Some(CLOCK));
    event(
        &mut app,
        9,
        Payload::TimerStarted(proto::TimerStarted {
            time_entry: Some(time_entry(3, 4, ME, CLOCK, None)),
            user_id: ME.into(),
            stopped_entry: Some(stopped),
        }),
    );
    let timer = app.replica.store.running_timer(ME).expect("running");
    assert_eq!(timer.work_item_id, id(4));
    let screen = render(&app);
    assert!(screen.contains("⏱ 0s"), "{screen}");
    assert!(!screen.contains("⏱ 12m"), "{screen}");
    assert!(screen.contains("started a timer on PM-4"), "{screen}");
}

#[tokio::test]
async fn escape_sequences_and_bidi_overrides_in_server_text_never_reach_the_terminal() {
    let mut app = app();
    let evil = "\x1b[31mred\0\u{202E}gnp.exe\x1b]0;x\x07";
    let mut card = item(4, "task", evil, "backlog", "low", Some(BOB), None);
    card.version = 2;
    card.description = Some(format!("line one {evil}\nline\u{2066}two"));
    event(
        &mut app,
        1,
        Payload::WorkItemUpdated(proto::WorkItemUpdated {
            work_item: Some(card),
            changes: vec![],
            user_id: BOB.into(),
        }),
    );
    event(
        &mut app,
        2,
        Payload::CommentCreated(proto::CommentCreated {
            comment: Some(proto::Comment {
                id: "c2".into(),
                work_item_id: id(4),
                content: format!("see {evil}"),
                created_by: BOB.into(),
                ..Default::default()
            }),
            user_id: BOB.into(),
        }),
    );
    // A key the server never allows, from a hostile server: caught by the last check of the frame.
    if let Some(p) = app.replica.store.projects.get_mut(PID) {
        p.key = "P\u{202E}M\x1b".into();
    }
    // The first cell (index, symbol) holding something unsafe.
    let unsafe_cell = |cells: Vec<String>| {
        cells
            .into_iter()
            .enumerate()
            .find(|(_, c)| c.chars().any(pm_shared::terminal::is_unsafe_for_terminal))
    };
    assert_eq!(unsafe_cell(cells(&app)), None);
    let screen = render(&app);
    assert!(
        screen.contains("�[31mred��gn"),
        "the card shows what was there:\n{screen}"
    );

    // The detail pane: title, description, comment.
    app.popup = Popup::Detail {
        item_id: id(4),
        comment: None,
    };
    assert_eq!(unsafe_cell(cells(&app)), None);
    let screen = render(&app);
    assert!(screen.contains("line one �[31mred"), "{screen}");
    assert!(screen.contains("line�two"), "{screen}");
    assert!(screen.contains("see �[31mred"), "{screen}");

    // The delete confirmation quotes the title.
    app.popup = Popup::ConfirmDelete { item_id: id(4) };
    assert_eq!(unsafe_cell(cells(&app)), None);
}

#[tokio::test]
async fn g_g_home_end_and_page_keys_jump_through_a_lane() {
    let mut app = app_with_a_long_backlog();
    app.update(AppEvent::Resize(80, 24));
    let number = |app: &App| app.selected().map(|w| w.item_number);
    assert_eq!(number(&app), Some(4), "Backlog: PM-4, then PM-101…");
    key(&mut app, KeyCode::Char('G'));
    assert_eq!(number(&app), Some(120));
    assert!(render(&app).contains("PM-120"), "the lane scrolls to it");
    key(&mut app, KeyCode::Char('g'));
    assert_eq!(number(&app), Some(4));
    // 24 rows: 20 for the lanes, 18 inside the borders, 6 cards of 3 rows.
    key(&mut app, KeyCode::PageDown);
    assert_eq!(app.row, 6);
    key(&mut app, KeyCode::PageDown);
    assert_eq!(app.row, 12);
    key(&mut app, KeyCode::PageUp);
    assert_eq!(app.row, 6);
    key(&mut app, KeyCode::End);
    assert_eq!(number(&app), Some(120));
    key(&mut app, KeyCode::PageDown);
    assert_eq!(number(&app), Some(120), "stays on the last card");
    key(&mut app, KeyCode::Home);
    assert_eq!(app.row, 0);
    // A taller terminal pages further: 34 rows inside the lane, 11 cards.
    app.update(AppEvent::Resize(120, 40));
    key(&mut app, KeyCode::PageDown);
    assert_eq!(app.row, 11);
}

#[tokio::test]
async fn the_help_lists_the_live_keymap_and_the_legend_and_scrolls() {
    let mut app = app();
    key(&mut app, KeyCode::Char('?'));
    let screen = render_at(&app, 120, 60);
    for (keys, what) in app.keymap.help_lines() {
        assert!(screen.contains(&keys), "{keys}:\n{screen}");
        assert!(screen.contains(what), "{what}:\n{screen}");
    }
    for (mark, what) in crate::board::keymap::LEGEND {
        assert!(
            screen.contains(mark) && screen.contains(what),
            "{mark}:\n{screen}"
        );
    }
    // At 80×24 the legend is below the fold: ↓ scrolls to it.
    assert!(!render(&app).contains("blocked by a card"));
    for _ in 0..40 {
        key(&mut app, KeyCode::Down);
    }
    let screen = render(&app);
    assert!(
        screen.contains("blocked by a card that is not done"),
        "{screen}"
    );
    key(&mut app, KeyCode::Esc);
    assert_eq!(app.popup, Popup::None);
}

/// Every view and popup of the board, drawn at 80×24 and 120×40 (`gallery__<view>__<size>`
/// snapshots). The clock is injected (`CLOCK`), so timers and dates never change.
#[tokio::test]
async fn every_view_and_popup_at_80x24_and_120x40() {
    let board = || {
        let mut app = app_with_links_and_time();
        app.clock = CLOCK;
        app
    };
    let with_keys = |keys: &[KeyCode], text: &str| {
        let mut app = board();
        for k in keys {
            key(&mut app, *k);
        }
        type_text(&mut app, text);
        app
    };
    let mut views: Vec<(&str, App)> = vec![
        ("board", board()),
        ("help", with_keys(&[KeyCode::Char('?')], "")),
        (
            "detail",
            with_keys(
                &[
                    KeyCode::Right,
                    KeyCode::Right,
                    KeyCode::Down,
                    KeyCode::Enter,
                ],
                "",
            ),
        ),
        (
            "detail_comment",
            with_keys(
                &[
                    KeyCode::Right,
                    KeyCode::Right,
                    KeyCode::Down,
                    KeyCode::Enter,
                    KeyCode::Char('c'),
                ],
                "Looks good to me",
            ),
        ),
        (
            "new_card",
            with_keys(&[KeyCode::Char('n'), KeyCode::Tab], "Export to CSV"),
        ),
        ("edit_title", with_keys(&[KeyCode::Char('e')], " for 2.0")),
        ("filter", with_keys(&[KeyCode::Char('/')], "card")),
        ("delete", with_keys(&[KeyCode::Char('d')], "")),
        (
            "assign",
            with_keys(
                &[
                    KeyCode::Right,
                    KeyCode::Right,
                    KeyCode::Down,
                    KeyCode::Char('a'),
                ],
                "",
            ),
        ),
        ("picker_over_board", with_keys(&[KeyCode::Char('o')], "")),
    ];
    views.push((
        "parent",
        with_keys(
            &[
                KeyCode::Right,
                KeyCode::Right,
                KeyCode::Down,
                KeyCode::Char('P'),
            ],
            "",
        ),
    ));
    views.push(("item_type", with_keys(&[KeyCode::Char('T')], "")));
    views.push(("sprint", with_keys(&[KeyCode::Char('S')], "")));
    views.push(("points", with_keys(&[KeyCode::Char('#')], "13")));
    views.push(("list", with_keys(&[KeyCode::Char('v')], "")));
    views.push(("tree", with_keys(&[KeyCode::Char('V')], "")));
    views.push(("activity", with_keys(&[KeyCode::Char('A')], "")));
    views.push(("palette", with_keys(&[KeyCode::Char(':')], "pri")));
    views.push(("sprints", with_keys(&[KeyCode::Char('i')], "")));
    views.push(("find", with_keys(&[KeyCode::Char('/')], "@bob -done")));
    let mut unsaved = board();
    unsaved.popup = Popup::Unsaved {
        request: crate::board::app::EditorRequest {
            item_id: id(3),
            text: "x".repeat(10_001),
            target: crate::board::app::EditorTarget::Description {
                base: 1,
                started: String::new(),
            },
        },
        reason: "it is too long (10001/10000 characters)".into(),
    };
    views.push(("description_not_saved", unsaved));
    let mut description_conflict = board();
    description_conflict.popup = Popup::Conflict {
        item_id: id(3),
        field: crate::board::app::TextField::Description,
        mine: "Rotate weekly.\nKeys live in the vault.".into(),
        theirs: "Rotate monthly.\n\nSee the runbook.\nAsk bob.\nOr alice.\nOr carol.".into(),
    };
    views.push(("description_conflict", description_conflict));
    let mut conflict = board();
    conflict.popup = Popup::Conflict {
        item_id: id(4),
        field: crate::board::app::TextField::Title,
        mine: "Write release notes for 2.0".into(),
        theirs: "Release notes (bob)".into(),
    };
    views.push(("conflict", conflict));
    let mut too_long = board();
    key(&mut too_long, KeyCode::Char('n'));
    too_long.update(AppEvent::Paste("x".repeat(250)));
    key(&mut too_long, KeyCode::Enter);
    views.push(("title_too_long", too_long));
    let mut reconnecting = board();
    reconnecting.server_url = "http://127.0.0.1:4000/".into();
    reconnecting.update(AppEvent::Net(NetEvent::Disconnected {
        reason: "connect failed: IO error: Connection refused (os error 111)".into(),
        retry_in: Duration::from_millis(500),
    }));
    views.push(("reconnecting", reconnecting));
    let handle = sdk::spawn(SessionConfig::new("ws://127.0.0.1:1/ws", ME), |_| {});
    let mut picker = App::new(handle, ME.into(), "alice".into(), None);
    picker.link = Link::Connected;
    let project = |id: &str, key: &str, title: &str| proto::Project {
        id: id.into(),
        key: key.into(),
        title: title.into(),
        version: 1,
        ..Default::default()
    };
    picker.replica.store.load_projects(
        vec![
            project("p1", "PM", "Platform"),
            project("p2", "WEB", "Website"),
        ],
        3,
        EPOCH,
    );
    views.push(("picker_at_start", picker));
    for (name, app) in &views {
        for (w, h) in [(80, 24), (120, 40)] {
            insta::assert_snapshot!(format!("gallery__{name}__{w}x{h}"), render_at(app, w, h));
        }
    }
}

#[tokio::test]
async fn no_color_draws_every_cell_in_the_terminals_colours() {
    use ratatui::style::{Color, Modifier};
    let draw = |app: &App| {
        let mut terminal = Terminal::new(TestBackend::new(80, 24)).expect("terminal");
        terminal.draw(|f| ui::draw(f, app)).expect("draw");
        terminal.backend().buffer().clone()
    };
    let mut app = app_with_links_and_time();
    let coloured = draw(&app);
    assert!(coloured.content.iter().any(|c| c.fg != Color::Reset));
    app.no_color = true;
    let plain = draw(&app);
    assert!(plain
        .content
        .iter()
        .all(|c| c.fg == Color::Reset && c.bg == Color::Reset));
    // The selection still shows (reversed), and the text is the same.
    assert!(plain
        .content
        .iter()
        .any(|c| c.modifier.contains(Modifier::REVERSED)));
    assert_eq!(render(&app), {
        app.no_color = false;
        render(&app)
    });
}

#[tokio::test]
async fn the_detail_pane_shows_the_parent_chain_and_who_changed_the_card_when() {
    let mut app = app();
    app.clock = CLOCK;
    // PM-3 (task) under PM-2 (story) under PM-1 (epic); bob changed PM-3 last, at version 4.
    let mut story = app.replica.store.work_items[&id(2)].clone();
    story.parent_id = Some(id(1));
    story.version = 2;
    let mut task = app.replica.store.work_items[&id(3)].clone();
    task.parent_id = Some(id(2));
    task.version = 4;
    task.created_at = CLOCK - 86_400;
    task.created_by = ME.into();
    task.updated_at = CLOCK - 600;
    task.updated_by = BOB.into();
    for (seq, w) in [(1, story), (2, task)] {
        event(
            &mut app,
            seq,
            Payload::WorkItemUpdated(proto::WorkItemUpdated {
                work_item: Some(w),
                changes: vec![],
                user_id: BOB.into(),
            }),
        );
    }
    key(&mut app, KeyCode::Right);
    key(&mut app, KeyCode::Right);
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Enter);
    let screen = render_at(&app, 120, 40);
    assert!(
        screen.contains("Parent    PM-1 Checkout revamp › PM-2 Pay with saved card"),
        "{screen}"
    );
    assert!(
        screen.contains("Changed   11-22 05:50 by bob · version 4 · created 11-21 06:00 by alice"),
        "{screen}"
    );
}

#[tokio::test]
async fn v_shows_a_list_with_full_titles_sorted_by_key_priority_or_last_change() {
    let mut app = app();
    app.outbox = Some(Vec::new());
    let mut long = item(
        7,
        "story",
        "Customers can pay with a saved card from the checkout page",
        "todo",
        "low",
        Some(BOB),
        Some(3),
    );
    long.updated_at = CLOCK;
    event(
        &mut app,
        1,
        Payload::WorkItemCreated(proto::WorkItemCreated {
            work_item: Some(long),
            user_id: BOB.into(),
            ..Default::default()
        }),
    );
    app.highlights.clear();
    key(&mut app, KeyCode::Char('v'));
    let numbers = |app: &App| -> Vec<i32> {
        app.list_cards()
            .iter()
            .map(|c| c.item.item_number)
            .collect()
    };
    assert_eq!(numbers(&app), [1, 2, 3, 4, 5, 6, 7]);
    let row = |screen: &str| -> String {
        screen
            .lines()
            .find(|l| l.starts_with("\"│PM-7"))
            .unwrap_or_default()
            .to_string()
    };
    let wide = render_at(&app, 140, 40);
    assert!(
        row(&wide).contains("Customers can pay with a saved card from the checkout page"),
        "the full title:\n{wide}"
    );
    let screen = render_at(&app, 120, 40);
    assert!(
        row(&screen).ends_with("from th…│\""),
        "cut to fit:\n{screen}"
    );
    let narrow = render(&app);
    assert!(row(&narrow).contains("Customers can pay"), "{narrow}");
    assert!(!narrow.contains("CHANGED"), "fewer columns:\n{narrow}");
    insta::assert_snapshot!(screen);
    // The same card stays selected: PM-4 (the board's first card).
    assert_eq!(app.selected().map(|w| w.item_number), Some(4));
    key(&mut app, KeyCode::Char('O'));
    assert_eq!(numbers(&app), [3, 1, 5, 2, 6, 4, 7], "critical first");
    assert!(render(&app).contains("sorted by priority"));
    key(&mut app, KeyCode::Char('O'));
    assert_eq!(numbers(&app)[0], 7, "the latest change first");
    // j/k and G move through the list; commands act on its selection.
    key(&mut app, KeyCode::Char('g'));
    assert_eq!(app.selected().map(|w| w.item_number), Some(7));
    key(&mut app, KeyCode::Char('j'));
    let second = app.selected().map(|w| w.item_number);
    key(&mut app, KeyCode::Char('p'));
    let out = sent(&mut app);
    assert_eq!(update_req(&out[0].1).work_item_id, id(second.unwrap_or(0)));
    key(&mut app, KeyCode::Char('K'));
    assert!(render(&app).contains("reordered in their lane"));
    // Find works in the list too; v goes back to the board on the same card.
    key(&mut app, KeyCode::Char('/'));
    type_text(&mut app, "checkout");
    key(&mut app, KeyCode::Enter);
    assert_eq!(numbers(&app), [7, 1]);
    key(&mut app, KeyCode::Char('G'));
    key(&mut app, KeyCode::Char('v'));
    assert_eq!(app.view, crate::board::app::View::Board);
    assert_eq!(app.selected().map(|w| w.item_number), Some(1));
}

#[tokio::test]
async fn capital_v_shows_the_hierarchy_with_each_parents_progress() {
    let mut app = app();
    // PM-2 (story) under PM-1 (epic); PM-3 and PM-6 (tasks, PM-6 done) under PM-2.
    for (seq, (n, parent)) in [(2, 1), (3, 2), (6, 2)].into_iter().enumerate() {
        let mut card = app.replica.store.work_items[&id(n)].clone();
        card.parent_id = Some(id(parent));
        card.version += 1;
        event(
            &mut app,
            seq as u64 + 1,
            Payload::WorkItemUpdated(proto::WorkItemUpdated {
                work_item: Some(card),
                changes: vec![],
                user_id: BOB.into(),
            }),
        );
    }
    app.highlights.clear();
    key(&mut app, KeyCode::Char('V'));
    let order: Vec<i32> = app
        .list_cards()
        .iter()
        .map(|c| c.item.item_number)
        .collect();
    assert_eq!(
        order,
        [1, 2, 3, 6, 4, 5],
        "epic, its story, the story's tasks, then the rest"
    );
    let screen = render_at(&app, 120, 40);
    let row = |n: &str| -> String {
        screen
            .lines()
            .find(|l| l.starts_with(&format!("\"│{n} ")))
            .unwrap_or_default()
            .to_string()
    };
    assert!(
        row("PM-1").contains("1/3"),
        "the epic: 1 of 3 below it done\n{screen}"
    );
    assert!(
        row("PM-2").contains("1/2") && row("PM-2").contains("└ Pay with"),
        "{screen}"
    );
    assert!(
        row("PM-3").contains("  └ Card vault API"),
        "two levels down:\n{screen}"
    );
    insta::assert_snapshot!(screen);
    insta::assert_snapshot!("hierarchy_at_100_columns", render_at(&app, 100, 16));
    // v: the list; V: the board again.
    key(&mut app, KeyCode::Char('v'));
    assert_eq!(
        app.view,
        crate::board::app::View::List(crate::board::app::Sort::Key)
    );
    key(&mut app, KeyCode::Char('V'));
    key(&mut app, KeyCode::Char('V'));
    assert_eq!(app.view, crate::board::app::View::Board);
}

#[tokio::test]
async fn the_palette_runs_any_command_and_jumps_to_any_card_by_key() {
    let mut app = app();
    key(&mut app, KeyCode::Char(':'));
    let screen = render(&app);
    assert!(screen.contains("Palette"), "{screen}");
    assert!(screen.contains("edit the title  (e)"), "{screen}");
    // A card by its key: PM-5 is in Review.
    type_text(&mut app, "pm-5");
    assert!(matches!(
        app.palette("pm-5").first(),
        Some(crate::board::app::PaletteEntry::Card(id5, _)) if *id5 == id(5)
    ));
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.popup, Popup::None);
    assert_eq!(app.selected().map(|w| w.item_number), Some(5));
    assert_eq!(app.lane, 3);
    // A command by its words, opening its own popup.
    ctrl_key(&mut app, 'p');
    type_text(&mut app, "assign");
    insta::assert_snapshot!(render(&app));
    key(&mut app, KeyCode::Enter);
    assert!(
        matches!(&app.popup, Popup::Pick { item_id, .. } if *item_id == id(5)),
        "{:?}",
        app.popup
    );
    key(&mut app, KeyCode::Esc);
    // Nothing matches: Enter keeps the palette.
    key(&mut app, KeyCode::Char(':'));
    type_text(&mut app, "zzzz");
    assert!(render(&app).contains("no command or card matches"));
    key(&mut app, KeyCode::Enter);
    assert!(matches!(app.popup, Popup::Palette { .. }));
}

#[tokio::test]
async fn capital_a_shows_every_change_seen_newest_first_and_scrolls() {
    let mut app = app();
    for n in 1..=30u64 {
        let mut card = app.replica.store.work_items[&id(4)].clone();
        card.priority = if n % 2 == 0 { "high" } else { "low" }.into();
        card.version = i32::try_from(n).unwrap_or(0) + 1;
        event(
            &mut app,
            n,
            Payload::WorkItemUpdated(proto::WorkItemUpdated {
                work_item: Some(card),
                changes: vec![proto::FieldChange {
                    field_name: "title".into(),
                    old_value: None,
                    new_value: Some(format!("Change {n}")),
                }],
                user_id: BOB.into(),
            }),
        );
    }
    key(&mut app, KeyCode::Char('A'));
    let screen = render(&app);
    assert!(screen.contains("30 changes, newest first"), "{screen}");
    assert!(
        screen.contains("bob renamed PM-4 to \"Change 30\""),
        "{screen}"
    );
    assert!(
        !screen.contains("\"Change 1\""),
        "below the fold:\n{screen}"
    );
    key(&mut app, KeyCode::PageDown);
    key(&mut app, KeyCode::PageDown);
    let screen = render(&app);
    assert!(
        screen.contains("bob renamed PM-4 to \"Change 1\""),
        "{screen}"
    );
    key(&mut app, KeyCode::Esc);
    assert_eq!(app.popup, Popup::None);
}

#[tokio::test]
async fn remapped_keys_drive_the_board_and_its_help() {
    let mut app = app();
    app.keymap = crate::board::keymap::Keymap::with_remaps(&[
        ("undo".to_string(), vec!["ctrl-z".to_string()]),
        (
            "priority".to_string(),
            vec!["P".to_string(), "!".to_string()],
        ),
        ("pick_parent".to_string(), vec!["ctrl-t".to_string()]),
    ])
    .expect("remapped");
    app.outbox = Some(Vec::new());
    key(&mut app, KeyCode::Char('!'));
    assert_eq!(sent(&mut app).len(), 1, "priority on !");
    key(&mut app, KeyCode::Char('u'));
    assert!(!render(&app).contains("Nothing to undo"));
    ctrl_key(&mut app, 'z');
    assert!(render(&app).contains("Nothing to undo"), "{}", render(&app));
    key(&mut app, KeyCode::Char('?'));
    let help = render_at(&app, 120, 60);
    assert!(help.contains("Ctrl-Z, Ctrl-R"), "{help}");
    assert!(help.contains("P !"), "{help}");
    key(&mut app, KeyCode::Esc);
    key(&mut app, KeyCode::Char(':'));
    assert!(
        render(&app).contains("cycle priority  (P !)"),
        "{}",
        render(&app)
    );
}

#[tokio::test]
async fn the_detail_pane_renders_the_descriptions_markdown() {
    let mut app = app();
    let mut card = app.replica.store.work_items[&id(3)].clone();
    card.description = Some(
        "## Why\nKeys **must** rotate.\n- weekly\n- on `leak`\n> from the audit\n```\nvault rotate\n```"
            .into(),
    );
    card.version = 2;
    card.created_at = CLOCK - 3 * 86_400;
    card.created_by = ME.into();
    card.updated_at = CLOCK - 600;
    card.updated_by = BOB.into();
    event(
        &mut app,
        1,
        Payload::WorkItemUpdated(proto::WorkItemUpdated {
            work_item: Some(card),
            changes: vec![],
            user_id: BOB.into(),
        }),
    );
    key(&mut app, KeyCode::Right);
    key(&mut app, KeyCode::Right);
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Enter);
    let screen = render_at(&app, 120, 40);
    for shown in [
        "│Why ",
        "Keys must rotate.",
        "• weekly",
        "• on leak",
        "│ from the audit",
        "  vault rotate",
    ] {
        assert!(screen.contains(shown), "{shown}:\n{screen}");
    }
    assert!(
        !screen.contains("##") && !screen.contains("```"),
        "{screen}"
    );
    insta::assert_snapshot!(screen);
}

#[tokio::test]
async fn a_click_selects_a_card_a_lane_title_takes_it_there_and_the_wheel_scrolls() {
    use ratatui::crossterm::event::{MouseButton, MouseEventKind};
    let mut app = app();
    app.outbox = Some(Vec::new());
    app.update(AppEvent::Resize(80, 24));
    let click = MouseEventKind::Down(MouseButton::Left);
    // In Progress (columns 32-47): PM-2 on rows 2-5 (its title on two), PM-3 on rows 6-8.
    mouse(&mut app, click, 36, 6);
    assert_eq!(app.selected().map(|w| w.item_number), Some(3));
    // The wheel: up to PM-2, and down again.
    mouse(&mut app, MouseEventKind::ScrollUp, 36, 6);
    assert_eq!(app.selected().map(|w| w.item_number), Some(2));
    mouse(&mut app, MouseEventKind::ScrollDown, 36, 6);
    assert_eq!(app.selected().map(|w| w.item_number), Some(3));
    // A click under the last card selects nothing new.
    mouse(&mut app, click, 36, 12);
    assert_eq!(app.selected().map(|w| w.item_number), Some(3));
    // The Done lane's title: PM-3 goes there in one move.
    mouse(&mut app, click, 70, 1);
    let out = sent(&mut app);
    let req = update_req(&out[0].1);
    assert_eq!(
        (req.work_item_id.as_str(), req.status.as_deref()),
        (id(3).as_str(), Some("done"))
    );
    assert_eq!(app.lane, 4, "the selection follows the card");
    // With a popup open, clicks do nothing; the wheel scrolls the detail pane.
    key(&mut app, KeyCode::Enter);
    mouse(&mut app, click, 5, 3);
    assert!(matches!(app.popup, Popup::Detail { .. }));
    mouse(&mut app, MouseEventKind::ScrollDown, 40, 10);
    assert_eq!(app.detail_scroll, 1);
}

#[tokio::test]
async fn in_the_list_a_click_selects_a_row_and_a_header_sorts() {
    use crate::board::app::{Sort, View};
    use ratatui::crossterm::event::{MouseButton, MouseEventKind};
    let mut app = app();
    app.outbox = Some(Vec::new());
    app.update(AppEvent::Resize(80, 24));
    let click = MouseEventKind::Down(MouseButton::Left);
    key(&mut app, KeyCode::Char('v'));
    assert_eq!(app.view, View::List(Sort::Key));
    // The header is on row 2, the rows from row 3 on, in key order: PM-4 is the 4th.
    mouse(&mut app, click, 20, 6);
    assert_eq!(app.selected().map(|w| w.item_number), Some(4));
    // PRIO sorts by priority: the critical PM-3 first; the selection stays on PM-4.
    mouse(&mut app, click, 30, 2);
    assert_eq!(app.view, View::List(Sort::Priority));
    render(&app);
    assert_eq!(app.selected().map(|w| w.item_number), Some(4));
    mouse(&mut app, click, 20, 3);
    assert_eq!(app.selected().map(|w| w.item_number), Some(3));
    // KEY sorts by key again; a click on a header that does not sort, or below the rows,
    // changes nothing.
    mouse(&mut app, click, 3, 2);
    assert_eq!(app.view, View::List(Sort::Key));
    mouse(&mut app, click, 12, 2);
    mouse(&mut app, click, 20, 15);
    assert_eq!(app.view, View::List(Sort::Key));
    assert_eq!(app.selected().map(|w| w.item_number), Some(3));
    assert!(
        sent(&mut app).is_empty(),
        "a click in the list writes nothing"
    );
    // The tree keeps its order and says so.
    key(&mut app, KeyCode::Char('V'));
    mouse(&mut app, click, 30, 2);
    assert_eq!(app.view, View::Tree);
    assert!(render(&app).contains("hierarchy order"), "{}", render(&app));
}

#[tokio::test]
async fn a_light_theme_swaps_the_colours_that_would_not_read_on_white() {
    use ratatui::style::Color;
    let draw = |app: &App| {
        let mut terminal = Terminal::new(TestBackend::new(80, 24)).expect("terminal");
        terminal.draw(|f| ui::draw(f, app)).expect("draw");
        terminal.backend().buffer().clone()
    };
    let mut app = app_with_links_and_time();
    let dark = draw(&app);
    assert!(dark.content.iter().any(|c| c.fg == Color::Gray));
    app.theme = crate::board::app::Theme::Light;
    let light = draw(&app);
    assert!(light
        .content
        .iter()
        .all(|c| !matches!(c.fg, Color::Gray | Color::Yellow | Color::Cyan)));
    assert!(
        light.content.iter().any(|c| c.fg == Color::Blue),
        "cyan became blue"
    );
    assert_eq!(render(&app), {
        app.theme = crate::board::app::Theme::Dark;
        render(&app)
    });
}
