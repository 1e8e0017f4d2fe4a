//! Presence on the board: who else is here (the header), on which card (initials on the card
//! and its lane), editing what (a note in the title editor and the detail pane); and what the
//! board tells the server of where its user is.
use super::*;

const CAROL: &str = "33333333-3333-3333-3333-333333333333";

fn session(id: &str, user: &str, item: Option<String>, field: Option<&str>) -> proto::Presence {
    proto::Presence {
        session_id: id.into(),
        user_id: user.into(),
        work_item_id: item,
        field: field.map(Into::into),
        since: 10,
    }
}

fn presence(app: &mut App, payload: Payload) {
    let msg = WebSocketMessage::with_payload("presence frame", payload);
    app.update(AppEvent::Net(NetEvent::Message(Box::new(msg))));
}

/// Bob edits PM-4's title (alice's selected card, in Backlog); carol has PM-3 open (In
/// Progress); alice herself is in the list too, as the server sends everyone.
fn with_others() -> App {
    let mut app = app();
    app.replica.store.users.insert(CAROL.into(), "carol".into());
    presence(
        &mut app,
        Payload::PresenceSnapshot(proto::PresenceSnapshot {
            project_id: PID.into(),
            sessions: vec![
                session("s-1", ME, Some(id(4)), None),
                session("s-2", BOB, Some(id(4)), Some("title")),
                session("s-3", CAROL, Some(id(3)), None),
            ],
        }),
    );
    app
}

#[tokio::test]
async fn the_others_show_in_the_header_and_their_initials_on_their_cards_and_lanes() {
    let app = with_others();
    let screen = render(&app);
    insta::assert_snapshot!("others_on_the_board", screen);
    assert!(screen.contains("here: bob, carol"), "{screen}");
    assert!(!screen.contains("here: alice"), "not myself");
    assert!(screen.contains("Backlog 1 B"), "bob's lane: {screen}");
    // At 80 columns "In Progress 2" fills its lane's title; wider, carol's initial shows.
    let wide = render_at(&app, 120, 40);
    assert!(wide.contains("In Progress 2 C"), "carol's lane: {wide}");
    assert!(wide.contains("PM-3 !! C"), "carol's card: {wide}");
}

#[tokio::test]
async fn the_title_editor_and_the_detail_pane_say_who_else_edits_the_card() {
    let mut app = with_others();
    key(&mut app, KeyCode::Char('e'));
    let screen = render(&app);
    insta::assert_snapshot!("bob_edits_this_title", screen);
    assert!(screen.contains("bob is editing this title"), "{screen}");
    key(&mut app, KeyCode::Esc);
    key(&mut app, KeyCode::Enter);
    assert!(matches!(app.popup, Popup::Detail { .. }));
    let screen = render(&app);
    insta::assert_snapshot!("bob_in_the_detail_pane", screen);
    assert!(screen.contains("Also here: bob"), "{screen}");
    assert!(screen.contains("bob is editing the title"), "{screen}");

    // Bob stops editing and carol leaves: the notes and markers go.
    presence(
        &mut app,
        Payload::PresenceChanged(proto::PresenceChanged {
            project_id: PID.into(),
            updated: vec![session("s-2", BOB, Some(id(4)), None)],
            gone: vec!["s-3".into()],
        }),
    );
    let screen = render(&app);
    assert!(!screen.contains("is editing"), "{screen}");
    key(&mut app, KeyCode::Esc);
    let screen = render(&app);
    assert!(screen.contains("here: bob"), "{screen}");
    assert!(!screen.contains("carol"), "{screen}");
    assert!(!render_at(&app, 120, 40).contains("In Progress 2 C"));
}

#[tokio::test]
async fn a_lost_connection_forgets_who_was_here() {
    let mut app = with_others();
    app.update(AppEvent::Net(NetEvent::Disconnected {
        reason: "reset".into(),
        retry_in: Duration::from_secs(1),
    }));
    assert!(app.here().is_empty());
    assert!(!render(&app).contains("here:"));
}

#[tokio::test]
async fn the_board_tells_where_its_user_is_and_whether_they_are_invisible() {
    let mut app = app();
    let told = |app: &App| app.presence_told.clone().expect("on a board");
    let here = told(&app);
    assert_eq!(here.project_id, PID);
    assert_eq!(here.work_item_id, Some(id(4)), "the selected card");
    assert_eq!(here.field, None);
    assert!(!here.invisible);

    key(&mut app, KeyCode::Right);
    key(&mut app, KeyCode::Char('e'));
    let editing = told(&app);
    assert_eq!(editing.work_item_id, Some(id(1)));
    assert_eq!(editing.field.as_deref(), Some("title"));
    key(&mut app, KeyCode::Esc);
    assert_eq!(told(&app).field, None, "no longer editing");

    app.invisible = true;
    app.update(AppEvent::Tick);
    assert!(told(&app).invisible);

    // Back to the project picker: on no board.
    key(&mut app, KeyCode::Char('o'));
    assert!(app.picking);
    assert_eq!(app.presence_told, None);
}

/// A board opened by `user` (named `name`) on project `key` of a real server, with its events.
async fn board_on(
    url: &str,
    user: &str,
    name: &str,
    key: &str,
) -> (
    App,
    sdk::SessionHandle,
    tokio::sync::mpsc::UnboundedReceiver<NetEvent>,
) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut config = SessionConfig::new(url.to_string(), user);
    config.name = Some(name.into());
    let handle = sdk::spawn(config, move |e| {
        let _ = tx.send(e);
    });
    let mut app = App::new(handle.clone(), user.into(), name.into(), Some(key.into()));
    pump(&mut app, &mut rx, "the board", &|a| a.selected().is_some()).await;
    (app, handle, rx)
}

/// Two boards on a real server: each sees the other arrive, bob's title edit shows in alice's
/// title editor on the same card, and bob's closed board leaves hers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_boards_see_each_other_through_a_real_server() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = pm_server::testing::TestServer::start(dir, |c| c.presence_flush_ms = 50)
        .await
        .expect("start the server");
    let url = server.url();
    let rest = pm_client::rest_client::RestClient::new(&url, ME).expect("client");
    rest.create_project(&serde_json::json!({"title": "Here", "key": "HR"}))
        .await
        .expect("project");
    rest.create_work_item(
        &serde_json::json!({"project_id": "HR", "item_type": "task", "title": "Shared card"}),
    )
    .await
    .expect("item");

    let (mut alice, alice_session, mut alice_rx) = board_on(&url, ME, "alice", "HR").await;
    let (mut bob, bob_session, mut bob_rx) = board_on(&url, BOB, "bob", "HR").await;
    pump(&mut alice, &mut alice_rx, "bob on alice's board", &|a| {
        a.here() == vec!["bob".to_string()]
    })
    .await;
    let card = alice.selected().map(|c| c.id.clone()).expect("a card");
    pump(&mut bob, &mut bob_rx, "alice on bob's board", &|b| {
        b.here() == vec!["alice".to_string()]
    })
    .await;
    key(&mut bob, KeyCode::Char('e'));
    key(&mut alice, KeyCode::Char('e'));
    pump(&mut alice, &mut alice_rx, "bob editing the title", &|a| {
        !a.editing_notes(&card, Some("title")).is_empty()
    })
    .await;
    let screen = render(&alice);
    assert!(screen.contains("bob is editing this title"), "{screen}");

    // Bob quits: his session closes, and he is gone from alice's board at once.
    bob_session.close();
    pump(&mut alice, &mut alice_rx, "bob gone", &|a| {
        a.here().is_empty()
    })
    .await;
    assert!(!render(&alice).contains("is editing"));
    alice_session.close();
    server.stop().await.expect("a graceful stop");
}
