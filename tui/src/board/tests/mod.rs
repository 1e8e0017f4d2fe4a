//! Tests of the board: the real App driven by key, paste, mouse and server events (and, in
//! real_server, by a real pm-server), drawn on ratatui's TestBackend at 80×24 and 120×40. These are
//! the fixtures and helpers; the tests are in the modules at the end.
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
        ..Default::default()
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
    if let Some(p) = req.story_points {
        card.story_points = Some(p);
    }
    if req.clear_story_points {
        card.story_points = None;
    }
    if let Some(t) = &req.item_type {
        card.item_type = match t.as_str() {
            "epic" => proto::WorkItemType::Epic,
            "story" => proto::WorkItemType::Story,
            _ => proto::WorkItemType::Task,
        } as i32;
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

/// Display column where `needle` starts on the first line holding it.
fn column_of(screen: &str, needle: &str) -> usize {
    let line = screen
        .lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no {needle}:\n{screen}"));
    crate::width::width(&line[..line.find(needle).unwrap_or(0)])
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
                ..Default::default()
            }),
        );
    }
    app.highlights.clear();
    app
}

/// Item numbers shown on the board, lane by lane.
fn shown(app: &App) -> Vec<i32> {
    app.lanes()
        .iter()
        .flat_map(|lane| lane.iter().map(|c| c.item.item_number))
        .collect()
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

fn mouse(app: &mut App, kind: ratatui::crossterm::event::MouseEventKind, column: u16, row: u16) {
    app.update(AppEvent::Mouse(ratatui::crossterm::event::MouseEvent {
        kind,
        column,
        row,
        modifiers: KeyModifiers::NONE,
    }));
}

mod editing;
mod fixes;
mod offline;
mod presence;
mod real_server;
mod views;
