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
