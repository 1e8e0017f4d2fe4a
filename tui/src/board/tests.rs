//! Snapshot tests of the board: the real App driven by synthetic key and server events, drawn
//! on ratatui's TestBackend at 80×24.
use std::time::Duration;

use pm_shared::proto::{self, Payload, WebSocketMessage};
use pm_shared::sdk::{self, NetEvent, SessionConfig};
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
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).expect("terminal");
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
    app.update(AppEvent::Resize);
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
