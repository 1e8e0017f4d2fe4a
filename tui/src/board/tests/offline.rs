//! Working offline: changes made while disconnected are shown at once and marked pending,
//! replayed once reconnected, and those the server refuses wait in the inbox (`I`).
use super::*;
use pm_client::offline::OfflineQueue;

fn disconnect(app: &mut App) {
    app.update(AppEvent::Net(NetEvent::Disconnected {
        reason: "connect failed: IO error: Connection refused (os error 111)".into(),
        retry_in: Duration::from_secs(3),
    }));
}

fn reconnect(app: &mut App) {
    app.update(AppEvent::Net(NetEvent::Connected));
}

/// Bob renamed card `n` (version 2) while I was offline.
fn bob_renames(app: &mut App, seq: u64, n: i32, title: &str) {
    let mut card = app.replica.store.work_items[&id(n)].clone();
    card.title = title.into();
    card.version += 1;
    card.updated_by = BOB.into();
    card.updated_at = CLOCK;
    event(
        app,
        seq,
        Payload::WorkItemUpdated(proto::WorkItemUpdated {
            work_item: Some(card),
            changes: vec![],
            user_id: BOB.into(),
        }),
    );
}

fn refuse(app: &mut App, id: &str, code: &str, message: &str) {
    respond(
        app,
        id,
        Payload::Error(proto::Error {
            code: code.into(),
            message: message.into(),
            field: None,
        }),
    );
}

/// Offline: a move and a title edit are applied on the board at once, the cards say they are
/// pending and the status bar counts them; nothing is sent until the link is back, then they
/// go one at a time, in order, under their idempotency keys.
#[tokio::test]
async fn offline_changes_show_at_once_marked_pending_and_replay_in_order() {
    let mut app = app();
    app.outbox = Some(Vec::new());
    disconnect(&mut app);
    // PM-4 "Write release notes" in Backlog: to To Do, then renamed.
    key(&mut app, KeyCode::Char('L'));
    key(&mut app, KeyCode::Char('e'));
    type_text(&mut app, " v2");
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.offline.pending_len(), 2);
    assert!(sent(&mut app).is_empty(), "nothing sent while offline");
    let card = app.card(&id(4)).unwrap();
    assert_eq!(
        (card.status.as_str(), card.title.as_str()),
        ("todo", "Write release notes v2")
    );
    insta::assert_snapshot!(render(&app));

    reconnect(&mut app);
    let first = sent(&mut app);
    assert_eq!(first.len(), 1, "one at a time");
    let (key1, payload) = &first[0];
    let req = update_req(payload);
    assert_eq!(key1, &app.offline.pending().next().unwrap().key);
    assert!(req.idempotent);
    assert_eq!(
        (req.status.as_deref(), req.expected_version),
        (Some("todo"), 1)
    );
    accept(&mut app, 1, key1, req);
    let second = sent(&mut app);
    let (key2, payload) = &second[0];
    let req = update_req(payload);
    // Made on version 1, re-based on version 2: the title was not changed by anyone else.
    assert_eq!(
        (req.title.as_deref(), req.expected_version),
        (Some("Write release notes v2"), 2)
    );
    accept(&mut app, 2, key2, req);
    assert_eq!(app.offline.pending_len(), 0);
    assert!(!render(&app).contains("pending"));
}

/// A title I edited offline that bob renamed meanwhile: refused on replay, it waits in the
/// inbox with both titles and who made theirs; keep mine sends it again on bob's version.
#[tokio::test]
async fn a_refused_offline_edit_waits_in_the_inbox_until_i_decide() {
    let mut app = app();
    app.outbox = Some(Vec::new());
    disconnect(&mut app);
    key(&mut app, KeyCode::Char('e'));
    type_text(&mut app, " (mine)");
    key(&mut app, KeyCode::Enter);
    bob_renames(&mut app, 1, 4, "Release notes for 2.0");
    reconnect(&mut app);
    let out = sent(&mut app);
    let (key1, payload) = &out[0];
    // Bob changed the title: sent on the version the edit was made on, so it is refused.
    assert_eq!(update_req(payload).expected_version, 1);
    refuse(&mut app, key1, "CONFLICT", "Version conflict");
    assert_eq!(app.offline.pending_len(), 0);
    assert_eq!(app.offline.inbox().len(), 1);
    assert_eq!(app.card(&id(4)).unwrap().title, "Release notes for 2.0");
    let board = render(&app);
    assert!(board.contains("1 conflict (I)"), "{board}");
    insta::assert_snapshot!("inbox_count_on_the_board", board);

    key(&mut app, KeyCode::Char('I'));
    assert!(matches!(app.popup, Popup::Inbox { row: 0 }));
    insta::assert_snapshot!("inbox_popup", render(&app));
    // Nothing leaves the inbox without my say: closing keeps it.
    key(&mut app, KeyCode::Esc);
    assert_eq!(app.offline.inbox().len(), 1);

    key(&mut app, KeyCode::Char('I'));
    key(&mut app, KeyCode::Char('m'));
    assert_eq!(app.popup, Popup::None);
    assert!(app.offline.inbox().is_empty());
    let out = sent(&mut app);
    let (key2, payload) = &out[0];
    assert_ne!(key2, key1, "a new write, with a new key");
    let req = update_req(payload);
    assert_eq!(
        (req.title.as_deref(), req.expected_version),
        (Some("Write release notes (mine)"), 2)
    );
    accept(&mut app, 2, key2, req);
    assert_eq!(
        app.card(&id(4)).unwrap().title,
        "Write release notes (mine)"
    );
}

/// Keep theirs drops my change; edit opens the title dialog with my text, and the entry leaves
/// the inbox once that edit is saved (Esc in the dialog keeps it).
#[tokio::test]
async fn keep_theirs_and_edit() {
    let mut app = app();
    app.outbox = Some(Vec::new());
    disconnect(&mut app);
    key(&mut app, KeyCode::Char('e'));
    type_text(&mut app, " A");
    key(&mut app, KeyCode::Enter);
    key(&mut app, KeyCode::Char('l'));
    key(&mut app, KeyCode::Char('e'));
    type_text(&mut app, " B");
    key(&mut app, KeyCode::Enter);
    bob_renames(&mut app, 1, 4, "Theirs 4");
    bob_renames(&mut app, 2, 1, "Theirs 1");
    reconnect(&mut app);
    for _ in 0..2 {
        let out = sent(&mut app);
        refuse(&mut app, &out[0].0, "CONFLICT", "Version conflict");
    }
    assert_eq!(app.offline.inbox().len(), 2);
    key(&mut app, KeyCode::Char('I'));
    key(&mut app, KeyCode::Char('t'));
    assert_eq!(app.offline.inbox().len(), 1);
    assert_eq!(app.card(&id(4)).unwrap().title, "Theirs 4");
    // Edit: my text in the dialog, on bob's version.
    key(&mut app, KeyCode::Char('e'));
    let Popup::EditTitle { title, base, .. } = &app.popup else {
        panic!("{:?}", app.popup)
    };
    assert_eq!((title.text(), *base), ("Checkout revamp B", 2));
    key(&mut app, KeyCode::Esc);
    assert_eq!(app.offline.inbox().len(), 1, "Esc keeps it");
    key(&mut app, KeyCode::Char('I'));
    key(&mut app, KeyCode::Char('e'));
    type_text(&mut app, "!");
    key(&mut app, KeyCode::Enter);
    assert!(app.offline.inbox().is_empty());
    let out = sent(&mut app);
    let req = update_req(&out[0].1);
    assert_eq!(
        (req.title.as_deref(), req.expected_version),
        (Some("Checkout revamp B!"), 2)
    );
}

/// A queued change to a card deleted meanwhile: in the inbox as deleted; keep mine cannot
/// apply it (it stays), keep theirs drops it.
#[tokio::test]
async fn a_queued_change_to_a_card_deleted_meanwhile() {
    let mut app = app();
    app.outbox = Some(Vec::new());
    disconnect(&mut app);
    key(&mut app, KeyCode::Char('p'));
    event(
        &mut app,
        1,
        Payload::WorkItemDeleted(proto::WorkItemDeleted {
            work_item_id: id(4),
            user_id: BOB.into(),
        }),
    );
    reconnect(&mut app);
    let out = sent(&mut app);
    assert_eq!(update_req(&out[0].1).expected_version, 1);
    refuse(&mut app, &out[0].0, "NOT_FOUND", "Work item not found");
    assert_eq!(app.offline.inbox().len(), 1);
    key(&mut app, KeyCode::Char('I'));
    let popup = render(&app);
    assert!(popup.contains("The card was deleted"), "{popup}");
    assert!(popup.contains("(deleted)"), "{popup}");
    key(&mut app, KeyCode::Char('m'));
    assert_eq!(app.offline.inbox().len(), 1, "nothing to keep it on");
    assert!(app
        .notice
        .as_ref()
        .is_some_and(|(n, _)| n.starts_with("Cannot keep yours")));
    key(&mut app, KeyCode::Char('t'));
    assert!(app.offline.inbox().is_empty());
    assert_eq!(app.popup, Popup::None);
}

/// The queue survives quitting: a board opened on the same file shows the pending change; a
/// damaged file is set aside with a message and the board starts with an empty queue.
#[tokio::test]
async fn the_queue_outlives_the_board_and_a_damaged_file_is_set_aside() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("offline-test.json");
    let mut first = app();
    first.set_offline(OfflineQueue::open(&path).0);
    disconnect(&mut first);
    key(&mut first, KeyCode::Char('p'));
    drop(first);
    let mut again = app();
    let (queue, problem) = OfflineQueue::open(&path);
    assert_eq!(problem, None);
    again.set_offline(queue);
    assert_ne!(again.card(&id(4)).unwrap().priority, "low");
    assert!(render(&again).contains("1 pending"));

    std::fs::write(&path, "{\"format\": 1, \"pending\": [{\"key\": 3").unwrap();
    let mut third = app();
    super::super::load_offline_queue(&mut third, &path);
    assert_eq!(third.offline.pending_len(), 0);
    let notice = third.notice.clone().map(|(n, _)| n).unwrap_or_default();
    assert!(notice.contains("could not be read"), "{notice}");
    assert!(notice.contains("kept as"), "{notice}");
    let aside: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1);
}

/// A description written in `$EDITOR` while offline is queued like any other change (a comment
/// still needs the server and is kept in the "unsaved" dialog).
#[tokio::test]
async fn a_description_written_offline_is_queued() {
    use super::super::app::{EditorRequest, EditorTarget};
    let mut app = app();
    disconnect(&mut app);
    let request = EditorRequest {
        item_id: id(4),
        text: String::new(),
        target: EditorTarget::Description {
            base: 1,
            started: String::new(),
        },
    };
    app.update(AppEvent::Edited {
        request,
        result: Ok("Written offline\n".into()),
    });
    assert_eq!(app.popup, Popup::None);
    assert_eq!(app.offline.pending_len(), 1);
    assert_eq!(
        app.card(&id(4)).unwrap().description.as_deref(),
        Some("Written offline")
    );
    let comment = EditorRequest {
        item_id: id(4),
        text: String::new(),
        target: EditorTarget::NewComment,
    };
    app.update(AppEvent::Edited {
        request: comment,
        result: Ok("A comment".into()),
    });
    assert!(
        matches!(app.popup, Popup::Unsaved { .. }),
        "{:?}",
        app.popup
    );
    assert_eq!(app.offline.pending_len(), 1);
}
