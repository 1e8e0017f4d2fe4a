//! Snapshot tests of the board: the real App driven by synthetic key and server events, drawn
//! on ratatui's TestBackend at 80×24.
use std::time::Duration;

use pm_client::sdk::{self, NetEvent, SessionConfig};
use pm_shared::proto::{self, Payload, WebSocketMessage};
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;

use super::app::{App, AppEvent, Link, Popup};
use super::ui;

const ME: &str = "11111111-1111-1111-1111-111111111111";
const BOB: &str = "22222222-2222-2222-2222-222222222222";
const PID: &str = "aaaaaaaa-0000-0000-0000-000000000001";
const EPOCH: &str = "e1";

/// An app whose session can never connect (port 1), with a project loaded at seq 0.
fn app() -> App {
    let handle = sdk::spawn(SessionConfig::new("ws://127.0.0.1:1/ws", ME), |_| {});
    let mut app = App::new(handle.clone(), ME.into(), "alice".into(), None);
    app.link = Link::Connected;
    let project = proto::Project {
        id: PID.into(),
        key: "PM".into(),
        title: "Platform".into(),
        version: 1,
        ..Default::default()
    };
    app.replica
        .store
        .load_projects(vec![project.clone()], 0, EPOCH);
    app.replica.follow(&handle, Some(PID.into()));
    let items = vec![
        item(1, "epic", "Checkout revamp", "todo", "high", None, Some(8)),
        item(
            2,
            "story",
            "Pay with saved card",
            "in_progress",
            "medium",
            Some(ME),
            Some(5),
        ),
        item(
            3,
            "task",
            "Card vault API",
            "in_progress",
            "critical",
            Some(BOB),
            Some(3),
        ),
        item(
            4,
            "task",
            "Write release notes",
            "backlog",
            "low",
            None,
            None,
        ),
        item(
            5,
            "task",
            "Fix flaky login test",
            "review",
            "high",
            Some(BOB),
            Some(1),
        ),
        item(6, "task", "Ship 2.0", "done", "medium", Some(ME), Some(2)),
    ];
    let comments = vec![proto::Comment {
        id: "c1".into(),
        work_item_id: id(3),
        content: "Vault keys rotate weekly.".into(),
        created_by: BOB.into(),
        ..Default::default()
    }];
    let users = vec![
        proto::User {
            id: BOB.into(),
            name: "bob".into(),
        },
        proto::User {
            id: ME.into(),
            name: "alice".into(),
        },
    ];
    let snapshot = proto::ProjectSnapshot {
        project: Some(project),
        work_items: items,
        sprints: vec![],
        comments,
        users,
        dependencies: vec![],
        time_entries: vec![],
    };
    app.replica.store.load_project(snapshot, 0, EPOCH);
    app.update(AppEvent::Tick);
    app
}

fn id(n: i32) -> String {
    format!("00000000-0000-0000-0000-{n:012}")
}

fn item(
    n: i32,
    kind: &str,
    title: &str,
    status: &str,
    priority: &str,
    assignee: Option<&str>,
    points: Option<i32>,
) -> proto::WorkItem {
    let item_type = match kind {
        "epic" => proto::WorkItemType::Epic,
        "story" => proto::WorkItemType::Story,
        _ => proto::WorkItemType::Task,
    };
    proto::WorkItem {
        id: id(n),
        item_type: item_type as i32,
        project_id: PID.into(),
        position: n,
        title: title.into(),
        status: status.into(),
        priority: priority.into(),
        assignee_id: assignee.map(str::to_string),
        story_points: points,
        item_number: n,
        version: 1,
        ..Default::default()
    }
}

fn render(app: &App) -> String {
    render_at(app, 80, 24)
}

fn render_at(app: &App, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("terminal");
    terminal.draw(|f| ui::draw(f, app)).expect("draw");
    terminal.backend().to_string()
}

fn key(app: &mut App, code: KeyCode) {
    app.update(AppEvent::Key(KeyEvent::new(code, KeyModifiers::NONE)));
}

fn event(app: &mut App, seq: u64, payload: Payload) {
    let msg = WebSocketMessage {
        message_id: format!("ev{seq}"),
        payload: Some(payload),
        seq,
        epoch: EPOCH.into(),
        stream: PID.into(),
        ..Default::default()
    };
    app.update(AppEvent::Net(NetEvent::Message(Box::new(msg))));
}

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
        .retain(|_, (at, _)| app.now.duration_since(*at) < super::app::HIGHLIGHT_FOR);
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

const CLOCK: i64 = 1_795_327_200; // 2026-11-22 06:00 UTC

fn dependency(n: i32, blocking: i32, blocked: i32, kind: proto::DependencyType) -> Payload {
    Payload::DependencyCreated(proto::DependencyCreated {
        dependency: Some(proto::Dependency {
            id: format!("dddddddd-0000-0000-0000-{n:012}"),
            blocking_item_id: id(blocking),
            blocked_item_id: id(blocked),
            dependency_type: kind as i32,
            created_at: CLOCK - 3600 + i64::from(n),
            created_by: BOB.into(),
            deleted_at: None,
        }),
        user_id: BOB.into(),
    })
}

fn time_entry(
    n: i32,
    item: i32,
    user: &str,
    started_at: i64,
    ended_at: Option<i64>,
) -> proto::TimeEntry {
    proto::TimeEntry {
        id: format!("eeeeeeee-0000-0000-0000-{n:012}"),
        work_item_id: id(item),
        user_id: user.into(),
        started_at,
        ended_at,
        duration_seconds: ended_at.map(|e| (e - started_at) as i32),
        created_at: started_at,
        updated_at: ended_at.unwrap_or(started_at),
        ..Default::default()
    }
}

/// The demo board plus links and time: PM-1 (to do) blocks PM-3, PM-6 (done) blocks PM-3 and
/// PM-5, PM-3 blocks PM-5 and relates to PM-4; bob logged an hour on PM-3; my timer runs on
/// PM-3 since 12 minutes.
fn app_with_links_and_time() -> App {
    use proto::DependencyType::{Blocks, RelatesTo};
    let mut app = app();
    app.clock = CLOCK;
    let links = [
        (1, 1, 3, Blocks),
        (2, 6, 3, Blocks),
        (3, 6, 5, Blocks),
        (4, 3, 5, Blocks),
        (5, 3, 4, RelatesTo),
    ];
    let mut seq = 0;
    for (n, blocking, blocked, kind) in links {
        seq += 1;
        event(&mut app, seq, dependency(n, blocking, blocked, kind));
    }
    seq += 1;
    event(
        &mut app,
        seq,
        Payload::TimeEntryCreated(proto::TimeEntryCreated {
            time_entry: Some(time_entry(1, 3, BOB, CLOCK - 7200, Some(CLOCK - 3600))),
            user_id: BOB.into(),
        }),
    );
    seq += 1;
    event(
        &mut app,
        seq,
        Payload::TimerStarted(proto::TimerStarted {
            time_entry: Some(time_entry(2, 3, ME, CLOCK - 12 * 60, None)),
            user_id: ME.into(),
            stopped_entry: None,
        }),
    );
    app.highlights.clear();
    app
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
    let mut history = super::app::History::new(&id(3));
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

/// Feeds the session's events to the app until `done` holds (10 s at most).
async fn pump(
    app: &mut App,
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<NetEvent>,
    what: &str,
    done: &dyn Fn(&App) -> bool,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !done(app) {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(e)) => app.update(AppEvent::Net(e)),
            Ok(None) => panic!("the session ended while waiting for {what}"),
            Err(_) => panic!("timed out waiting for {what}"),
        }
    }
}

/// The board against a real server: `t` starts and stops my timer, and the detail pane loads
/// the card's history.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t_starts_and_stops_my_timer_through_the_server() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = pm_server::testing::TestServer::start(dir, |_| {})
        .await
        .expect("start the server");
    let url = server.url();
    let rest = pm_client::rest_client::RestClient::new(&url, ME).expect("client");
    rest.create_project(&serde_json::json!({"title": "Timers", "key": "TM"}))
        .await
        .expect("project");
    rest.create_work_item(
        &serde_json::json!({"project_id": "TM", "item_type": "task", "title": "Track me"}),
    )
    .await
    .expect("item");

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let handle = sdk::spawn(SessionConfig::new(url.clone(), ME), move |e| {
        let _ = tx.send(e);
    });
    let mut app = App::new(handle.clone(), ME.into(), "alice".into(), Some("TM".into()));
    pump(&mut app, &mut rx, "the board", &|a| a.selected().is_some()).await;
    let item = app.selected().map(|w| w.id.clone()).expect("card");
    key(&mut app, KeyCode::Char('t'));
    pump(&mut app, &mut rx, "my timer", &|a| {
        a.replica
            .store
            .running_timer(ME)
            .is_some_and(|t| t.work_item_id == item)
    })
    .await;
    app.update(AppEvent::Tick);
    assert!(render(&app).contains("⏱ "), "{}", render(&app));
    key(&mut app, KeyCode::Char('t'));
    pump(&mut app, &mut rx, "the stop", &|a| {
        a.replica.store.running_timer(ME).is_none()
    })
    .await;
    assert_eq!(app.replica.store.time_entries_of(&item).len(), 1);

    key(&mut app, KeyCode::Enter);
    pump(&mut app, &mut rx, "the history", &|a| {
        a.history.as_ref().is_some_and(|h| h.loaded)
    })
    .await;
    let screen = render(&app);
    assert!(
        screen.contains("History") && screen.contains("created"),
        "{screen}"
    );
    // A change to the open card reloads its history.
    key(&mut app, KeyCode::Esc);
    key(&mut app, KeyCode::Char('p'));
    key(&mut app, KeyCode::Enter);
    pump(&mut app, &mut rx, "the new history", &|a| {
        a.history.as_ref().is_some_and(|h| h.entries.len() == 2)
    })
    .await;
    assert!(
        render(&app).contains("priority Medium → High"),
        "{}",
        render(&app)
    );

    handle.close();
    server.stop().await.expect("a graceful stop");
}

/// Every cell the board would send to the terminal, for checking what it holds.
fn cells(app: &App) -> Vec<String> {
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).expect("terminal");
    terminal.draw(|f| ui::draw(f, app)).expect("draw");
    terminal
        .backend()
        .buffer()
        .content
        .iter()
        .map(|c| c.symbol().to_string())
        .collect()
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

/// Takes what the app sent since the last call (the app must have an outbox).
fn sent(app: &mut App) -> Vec<(String, Payload)> {
    std::mem::take(app.outbox.as_mut().expect("outbox"))
}

/// The update request in a sent message.
fn update_req(payload: &Payload) -> &proto::UpdateWorkItemRequest {
    match payload {
        Payload::UpdateWorkItemRequest(r) => r,
        other => panic!("not an update: {other:?}"),
    }
}

/// What the server does with an update of mine: the event (as to every subscriber), then the
/// response carrying the request's message id. Returns the card as it now is.
fn accept(
    app: &mut App,
    seq: u64,
    id: &str,
    req: &proto::UpdateWorkItemRequest,
) -> proto::WorkItem {
    let mut card = app.replica.store.work_items[&req.work_item_id].clone();
    assert_eq!(
        card.version, req.expected_version,
        "the server would refuse {req:?}"
    );
    if let Some(p) = &req.priority {
        card.priority = p.clone();
    }
    if let Some(s) = &req.status {
        card.status = s.clone();
    }
    if let Some(t) = &req.title {
        card.title = t.clone();
    }
    if let Some(s) = &req.sprint_id {
        card.sprint_id = (!s.is_empty()).then(|| s.clone());
    }
    if let Some(a) = &req.assignee_id {
        card.assignee_id = (!a.is_empty()).then(|| a.clone());
    }
    card.version += 1;
    let updated = Payload::WorkItemUpdated(proto::WorkItemUpdated {
        work_item: Some(card.clone()),
        changes: vec![],
        user_id: ME.into(),
    });
    event(app, seq, updated.clone());
    respond(app, id, updated);
    card
}

/// The response to request `id`.
fn respond(app: &mut App, id: &str, payload: Payload) {
    let msg = WebSocketMessage {
        message_id: id.into(),
        payload: Some(payload),
        ..Default::default()
    };
    app.update(AppEvent::Net(NetEvent::Message(Box::new(msg))));
}

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
            field: super::app::TextField::Title,
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

fn ctrl_key(app: &mut App, c: char) {
    app.update(AppEvent::Key(KeyEvent::new(
        KeyCode::Char(c),
        KeyModifiers::CONTROL,
    )));
}

fn type_text(app: &mut App, text: &str) {
    for c in text.chars() {
        key(app, KeyCode::Char(c));
    }
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

/// Two boards against a real server: quick presses of one user never conflict with each other,
/// and two users renaming the same card end in a conflict popup instead of a lost title.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quick_presses_and_concurrent_edits_against_a_real_server() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = pm_server::testing::TestServer::start(dir, |_| {})
        .await
        .expect("start the server");
    let url = server.url();
    let rest = pm_client::rest_client::RestClient::new(&url, ME).expect("client");
    rest.create_project(&serde_json::json!({"title": "Races", "key": "RC"}))
        .await
        .expect("project");
    rest.create_work_item(
        &serde_json::json!({"project_id": "RC", "item_type": "task", "title": "Race me"}),
    )
    .await
    .expect("item");

    let board = |user: &'static str, name: &str| {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let handle = sdk::spawn(SessionConfig::new(url.clone(), user), move |e| {
            let _ = tx.send(e);
        });
        let app = App::new(handle.clone(), user.into(), name.into(), Some("RC".into()));
        (app, rx, handle)
    };
    let (mut alice, mut alice_rx, alice_handle) = board(ME, "alice");
    let (mut bob, mut bob_rx, bob_handle) = board(BOB, "bob");
    pump(&mut alice, &mut alice_rx, "alice's board", &|a| {
        a.selected().is_some()
    })
    .await;
    pump(&mut bob, &mut bob_rx, "bob's board", &|a| {
        a.selected().is_some()
    })
    .await;

    // p p p and L L L, all before any answer.
    for _ in 0..3 {
        key(&mut alice, KeyCode::Char('p'));
    }
    for _ in 0..3 {
        key(&mut alice, KeyCode::Char('L'));
    }
    assert_eq!(
        alice
            .selected()
            .map(|w| (w.priority.clone(), w.status.clone())),
        Some(("low".into(), "review".into())),
        "shown at once"
    );
    pump(&mut alice, &mut alice_rx, "alice's writes", &|a| !a.busy()).await;
    let card = alice.selected().cloned().expect("card");
    assert_eq!(
        (card.priority.as_str(), card.status.as_str()),
        ("low", "review")
    );
    assert_eq!(alice.notice, None, "no false conflict");

    // Both edit the title; alice saves first, then bob.
    pump(&mut bob, &mut bob_rx, "bob sees it", &|b| {
        b.replica.store.work_items[&card.id].version == card.version
    })
    .await;
    bob.lane = 3;
    bob.update(AppEvent::Tick);
    key(&mut alice, KeyCode::Char('e'));
    key(&mut bob, KeyCode::Char('e'));
    type_text(&mut alice, " (alice)");
    type_text(&mut bob, " (bob)");
    key(&mut alice, KeyCode::Enter);
    pump(&mut alice, &mut alice_rx, "alice's edit", &|a| !a.busy()).await;
    pump(&mut bob, &mut bob_rx, "alice's edit at bob's", &|b| {
        b.replica.store.work_items[&card.id].title == "Race me (alice)"
    })
    .await;
    key(&mut bob, KeyCode::Enter);
    pump(&mut bob, &mut bob_rx, "bob's conflict", &|b| {
        matches!(b.popup, Popup::Conflict { .. })
    })
    .await;
    assert_eq!(
        bob.popup,
        Popup::Conflict {
            item_id: card.id.clone(),
            field: super::app::TextField::Title,
            mine: "Race me (bob)".into(),
            theirs: "Race me (alice)".into(),
        }
    );
    // Keep mine: saved on the current version.
    key(&mut bob, KeyCode::Char('m'));
    pump(&mut bob, &mut bob_rx, "bob's title", &|b| {
        !b.busy() && b.replica.store.work_items[&card.id].title == "Race me (bob)"
    })
    .await;
    assert_eq!(bob.notice, None);

    alice_handle.close();
    bob_handle.close();
    server.stop().await.expect("a graceful stop");
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
    key(&mut app, KeyCode::Char('e'));
    type_text(&mut app, "!");
    key(&mut app, KeyCode::Enter);
    assert!(
        matches!(&app.popup, Popup::EditTitle { title, .. } if title.text() == "Write release notes!"),
        "{:?}",
        app.popup
    );
}

/// The line of the screen holding `needle`, from it to the lane's right border.
fn card_line(screen: &str, needle: &str) -> String {
    let line = screen
        .lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no {needle}:\n{screen}"));
    let start = line.find(needle).unwrap_or(0);
    line[start..]
        .chars()
        .take_while(|c| !"│┃".contains(*c))
        .collect()
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
        }),
    );
    let mut emoji = item(
        8,
        "task",
        "🚀🚀🚀🚀🚀🚀🚀🚀🚀🚀 launch",
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
        }),
    );
    let screen = render(&app);
    for start in ["┃日本語", "┃🚀🚀"] {
        let line = screen
            .lines()
            .find(|l| l.contains(start))
            .and_then(|l| l.split(" Hidden by").next())
            .unwrap_or_else(|| panic!("no {start}:\n{screen}"));
        assert!(line.contains('…'), "cut with an ellipsis:\n{screen}");
        assert_eq!(
            crate::width::width(line),
            82,
            "80 columns and the quotes: the lanes stay in place:\n{screen}"
        );
    }
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
        }),
    );
    assert_eq!(app.selected().map(|w| w.item_number), Some(7));
    key(&mut app, KeyCode::Char('d'));
    let screen = render(&app);
    assert!(screen.contains("y: delete"), "{screen}");
    assert!(screen.contains("any other key: keep"), "{screen}");
    insta::assert_snapshot!(screen);
}

/// Display column where `needle` starts on the first line holding it.
fn column_of(screen: &str, needle: &str) -> usize {
    let line = screen
        .lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no {needle}:\n{screen}"));
    crate::width::width(&line[..line.find(needle).unwrap_or(0)])
}

#[tokio::test]
async fn the_detail_pane_lines_up_its_columns_and_names_values_for_people() {
    let mut app = app();
    key(&mut app, KeyCode::Right);
    key(&mut app, KeyCode::Right);
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Enter);
    let mut history = super::app::History::new(&id(3));
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

/// The demo board plus 20 more cards in Backlog (PM-101 … PM-120).
fn app_with_a_long_backlog() -> App {
    let mut app = app();
    for n in 101..=120 {
        event(
            &mut app,
            u64::try_from(n - 100).unwrap_or(0),
            Payload::WorkItemCreated(proto::WorkItemCreated {
                work_item: Some(item(
                    n,
                    "task",
                    &format!("Card {n}"),
                    "backlog",
                    "low",
                    None,
                    None,
                )),
                user_id: BOB.into(),
            }),
        );
    }
    app.highlights.clear();
    app
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
    for (mark, what) in super::keymap::LEGEND {
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
        request: super::app::EditorRequest {
            item_id: id(3),
            text: "x".repeat(10_001),
            target: super::app::EditorTarget::Description {
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
        field: super::app::TextField::Description,
        mine: "Rotate weekly.\nKeys live in the vault.".into(),
        theirs: "Rotate monthly.\n\nSee the runbook.\nAsk bob.\nOr alice.\nOr carol.".into(),
    };
    views.push(("description_conflict", description_conflict));
    let mut conflict = board();
    conflict.popup = Popup::Conflict {
        item_id: id(4),
        field: super::app::TextField::Title,
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

/// Item numbers shown on the board, lane by lane.
fn shown(app: &App) -> Vec<i32> {
    app.lanes()
        .iter()
        .flat_map(|lane| lane.iter().map(|c| c.item.item_number))
        .collect()
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
    use super::app::{EditorRequest, EditorTarget, TextField};
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

/// `accept` for a position change.
fn accept_position(app: &mut App, seq: u64, id: &str, req: &proto::UpdateWorkItemRequest) {
    let mut card = app.replica.store.work_items[&req.work_item_id].clone();
    if let Some(p) = req.position {
        card.position = p;
    }
    card.version += 1;
    let updated = Payload::WorkItemUpdated(proto::WorkItemUpdated {
        work_item: Some(card),
        changes: vec![],
        user_id: ME.into(),
    });
    event(app, seq, updated.clone());
    respond(app, id, updated);
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
    key(&mut app, KeyCode::Char('i'));
    key(&mut app, KeyCode::Up);
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.sprint, None);
    assert_eq!(shown(&app).len(), 6);
}

/// Planning a sprint without the CLI, against a real server: create it, put a card in it,
/// start it, filter by it, complete it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sprint_is_planned_started_and_completed_from_the_board() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = pm_server::testing::TestServer::start(dir, |_| {})
        .await
        .expect("start the server");
    let url = server.url();
    let rest = pm_client::rest_client::RestClient::new(&url, ME).expect("client");
    rest.create_project(&serde_json::json!({"title": "Sprints", "key": "SP"}))
        .await
        .expect("project");
    rest.create_work_item(
        &serde_json::json!({"project_id": "SP", "item_type": "task", "title": "Plan me"}),
    )
    .await
    .expect("item");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let handle = sdk::spawn(SessionConfig::new(url.clone(), ME), move |e| {
        let _ = tx.send(e);
    });
    let mut app = App::new(handle.clone(), ME.into(), "alice".into(), Some("SP".into()));
    pump(&mut app, &mut rx, "the board", &|a| a.selected().is_some()).await;
    let status = |a: &App| a.sprints().first().map(|s| s.status).unwrap_or_default();

    key(&mut app, KeyCode::Char('i'));
    key(&mut app, KeyCode::Char('n'));
    type_text(&mut app, "Sprint 1");
    key(&mut app, KeyCode::Enter);
    pump(&mut app, &mut rx, "the sprint", &|a| a.sprints().len() == 1).await;
    assert_eq!(status(&app), proto::SprintStatus::Planned as i32);
    key(&mut app, KeyCode::Esc);
    // The card into it.
    key(&mut app, KeyCode::Char('S'));
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Enter);
    pump(&mut app, &mut rx, "the card in the sprint", &|a| {
        a.selected().is_some_and(|w| w.sprint_id.is_some()) && !a.busy()
    })
    .await;
    // Start it, filter by it, complete it.
    key(&mut app, KeyCode::Char('i'));
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Char('s'));
    pump(&mut app, &mut rx, "the start", &|a| {
        status(a) == proto::SprintStatus::Active as i32
    })
    .await;
    assert!(render(&app).contains("Active"), "{}", render(&app));
    key(&mut app, KeyCode::Char('c'));
    pump(&mut app, &mut rx, "the completion", &|a| {
        status(a) == proto::SprintStatus::Completed as i32
    })
    .await;
    key(&mut app, KeyCode::Enter);
    assert_eq!(shown(&app), [1]);
    assert!(
        render(&app).contains("sprint: Sprint 1"),
        "{}",
        render(&app)
    );
    let sprints = rest.list_sprints("SP").await.expect("sprints");
    assert_eq!(sprints["sprints"][0]["status"], "completed", "{sprints}");
    handle.close();
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
    use super::app::{EditorRequest, EditorTarget};
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
async fn u_brings_a_card_i_deleted_back_with_its_fields() {
    let mut app = app();
    app.outbox = Some(Vec::new());
    // PM-2: a story of mine with 5 points, in progress.
    key(&mut app, KeyCode::Right);
    key(&mut app, KeyCode::Right);
    assert_eq!(app.selected().map(|w| w.item_number), Some(2));
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
    let [(create_id, Payload::CreateWorkItemRequest(req))] = &out[..] else {
        panic!("{out:?}")
    };
    assert_eq!(req.title, "Pay with saved card");
    assert_eq!(req.item_type, proto::WorkItemType::Story as i32);
    assert_eq!(req.status.as_deref(), Some("in_progress"));
    // Created again as PM-7; the assignee and points follow on its version.
    let again = item(
        7,
        "story",
        "Pay with saved card",
        "in_progress",
        "medium",
        None,
        None,
    );
    let created = Payload::WorkItemCreated(proto::WorkItemCreated {
        work_item: Some(again),
        user_id: ME.into(),
    });
    event(&mut app, 2, created.clone());
    respond(&mut app, create_id, created);
    let out = sent(&mut app);
    let req = update_req(&out[0].1);
    assert_eq!(
        (
            req.work_item_id.as_str(),
            req.assignee_id.as_deref(),
            req.story_points
        ),
        (id(7).as_str(), Some(ME), Some(5))
    );
    assert_eq!(req.expected_version, 1);
    assert!(
        render(&app).contains("PM-2 is back as PM-7"),
        "{}",
        render(&app)
    );
    assert_eq!(app.selected().map(|w| w.item_number), Some(7));
}

/// Undo and redo through a real server: a priority change, then a delete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undo_and_redo_against_a_real_server() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = pm_server::testing::TestServer::start(dir, |_| {})
        .await
        .expect("start the server");
    let url = server.url();
    let rest = pm_client::rest_client::RestClient::new(&url, ME).expect("client");
    rest.create_project(&serde_json::json!({"title": "Undo", "key": "UN"}))
        .await
        .expect("project");
    rest.create_work_item(&serde_json::json!({
        "project_id": "UN", "item_type": "task", "title": "Keep me", "priority": "low"
    }))
    .await
    .expect("item");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let handle = sdk::spawn(SessionConfig::new(url.clone(), ME), move |e| {
        let _ = tx.send(e);
    });
    let mut app = App::new(handle.clone(), ME.into(), "alice".into(), Some("UN".into()));
    pump(&mut app, &mut rx, "the board", &|a| a.selected().is_some()).await;
    let priority = |a: &App| a.selected().map(|w| w.priority.clone()).unwrap_or_default();
    key(&mut app, KeyCode::Char('p'));
    key(&mut app, KeyCode::Char('p'));
    pump(&mut app, &mut rx, "high", &|a| {
        !a.busy() && priority(a) == "high"
    })
    .await;
    // Each press is undone on its own, and redone.
    for (keys, want) in [
        ("u", "medium"),
        ("u", "low"),
        ("r", "medium"),
        ("r", "high"),
    ] {
        match keys {
            "u" => key(&mut app, KeyCode::Char('u')),
            _ => ctrl_key(&mut app, 'r'),
        }
        pump(&mut app, &mut rx, want, &|a| {
            !a.busy() && priority(a) == want
        })
        .await;
    }
    let stored = rest.get_work_item("UN-1").await.expect("UN-1");
    assert_eq!(stored["work_item"]["priority"], "high");

    key(&mut app, KeyCode::Char('d'));
    key(&mut app, KeyCode::Char('y'));
    pump(&mut app, &mut rx, "the delete", &|a| {
        a.selected().is_none() && !a.busy()
    })
    .await;
    key(&mut app, KeyCode::Char('u'));
    pump(&mut app, &mut rx, "the card back", &|a| {
        a.selected()
            .is_some_and(|w| w.title == "Keep me" && w.priority == "high")
            && !a.busy()
    })
    .await;
    assert!(
        render(&app).contains("UN-1 is back as UN-2"),
        "{}",
        render(&app)
    );
    handle.close();
}

/// A first project from the picker, against a real server: n, a title (the key follows its
/// initials), Enter; the board opens it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n_in_the_picker_creates_a_project_and_opens_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = pm_server::testing::TestServer::start(dir, |_| {})
        .await
        .expect("start the server");
    let url = server.url();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let handle = sdk::spawn(SessionConfig::new(url.clone(), ME), move |e| {
        let _ = tx.send(e);
    });
    let mut app = App::new(handle.clone(), ME.into(), "alice".into(), None);
    pump(&mut app, &mut rx, "the project list", &|a| {
        a.replica.store.cursor("").is_some() && a.link == Link::Connected
    })
    .await;
    assert!(render(&app).contains("n creates one"), "{}", render(&app));
    key(&mut app, KeyCode::Char('n'));
    type_text(&mut app, "Mobile banking app");
    let screen = render(&app);
    assert!(
        screen.contains("Key   › MBA"),
        "the key follows the title:\n{screen}"
    );
    insta::assert_snapshot!(screen);
    // A bad key is refused here, with the rule.
    key(&mut app, KeyCode::Tab);
    ctrl_key(&mut app, 'u');
    type_text(&mut app, "M");
    key(&mut app, KeyCode::Enter);
    assert!(matches!(app.popup, Popup::NewProject { .. }));
    assert!(
        render(&app).contains("key must be 2-20 characters"),
        "{}",
        render(&app)
    );
    type_text(&mut app, "OB");
    key(&mut app, KeyCode::Enter);
    pump(&mut app, &mut rx, "the new project open", &|a| {
        a.project().is_some_and(|p| p.key == "MOB")
    })
    .await;
    assert!(
        render(&app).contains("MOB  Mobile banking app"),
        "{}",
        render(&app)
    );
    handle.close();
}

#[test]
fn a_suggested_key_is_the_titles_initials() {
    use super::app::suggested_key;
    assert_eq!(suggested_key("Mobile banking app"), "MBA");
    assert_eq!(suggested_key("Platform"), "PLAT");
    assert_eq!(suggested_key("  "), "");
    assert_eq!(suggested_key("Q3 — roadmap & ops"), "QRO");
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
    assert_eq!(app.view, super::app::View::Board);
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
    assert_eq!(app.view, super::app::View::List(super::app::Sort::Key));
    key(&mut app, KeyCode::Char('V'));
    key(&mut app, KeyCode::Char('V'));
    assert_eq!(app.view, super::app::View::Board);
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
        Some(super::app::PaletteEntry::Card(id5, _)) if *id5 == id(5)
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
    app.keymap = super::keymap::Keymap::with_remaps(&[
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

fn mouse(app: &mut App, kind: ratatui::crossterm::event::MouseEventKind, column: u16, row: u16) {
    app.update(AppEvent::Mouse(ratatui::crossterm::event::MouseEvent {
        kind,
        column,
        row,
        modifiers: KeyModifiers::NONE,
    }));
}

#[tokio::test]
async fn a_click_selects_a_card_a_lane_title_takes_it_there_and_the_wheel_scrolls() {
    use ratatui::crossterm::event::{MouseButton, MouseEventKind};
    let mut app = app();
    app.outbox = Some(Vec::new());
    app.update(AppEvent::Resize(80, 24));
    let click = MouseEventKind::Down(MouseButton::Left);
    // In Progress (columns 32-47): PM-2 on rows 2-4, PM-3 on rows 5-7.
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
    app.theme = super::app::Theme::Light;
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
        app.theme = super::app::Theme::Dark;
        render(&app)
    });
}
