//! The board against a real pm-server on a loopback port.
use super::*;

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
            field: crate::board::app::TextField::Title,
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

    rest.create_comment("UN-1", "Keep this too")
        .await
        .expect("comment");
    pump(&mut app, &mut rx, "the comment", &|a| {
        a.selected()
            .is_some_and(|w| a.replica.store.comments_of(&w.id).len() == 1)
    })
    .await;
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
    // The same card: its key, and the comment it had before the delete.
    assert!(
        render(&app).contains("Undo: UN-1 is back"),
        "{}",
        render(&app)
    );
    assert_eq!(app.selected().map(|w| w.item_number), Some(1));
    let id = app.selected().map(|w| w.id.clone()).unwrap_or_default();
    assert_eq!(app.replica.store.comments_of(&id).len(), 1);
    let stored = rest.get_work_item("UN-1").await.expect("UN-1 again");
    assert_eq!(stored["work_item"]["id"], id.as_str());
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

/// A project bigger than a preview: the board's first screen comes from the preview (the first
/// 100 cards of each lane) with the lane's real count, and is the screen the whole snapshot
/// gives once it is loaded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_big_project_is_drawn_from_its_preview_first_then_loaded_whole() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = pm_server::testing::TestServer::start(dir, |_| {})
        .await
        .expect("start the server");
    let url = server.url();
    let rest = pm_client::rest_client::RestClient::new(&url, ME).expect("client");
    rest.create_project(&serde_json::json!({"title": "Big", "key": "BIG"}))
        .await
        .expect("project");
    for i in 0..120 {
        rest.create_work_item(
            &serde_json::json!({"project_id": "BIG", "item_type": "task", "title": format!("card {i}")}),
        )
        .await
        .expect("item");
    }

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let handle = sdk::spawn(SessionConfig::new(url.clone(), ME), move |e| {
        let _ = tx.send(e);
    });
    let mut app = App::new(
        handle.clone(),
        ME.into(),
        "alice".into(),
        Some("BIG".into()),
    );
    pump(&mut app, &mut rx, "the preview", &|a| {
        a.replica.preview_totals().is_some()
    })
    .await;
    let loaded = |a: &App| {
        a.replica
            .project()
            .map_or(0, |p| a.replica.store.items_of(p).count())
    };
    assert_eq!(loaded(&app), 100, "a preview holds 100 cards a lane");
    let lanes_of = |screen: String| -> Vec<String> {
        // The header and the lanes, not the status bar (which says it is still loading).
        screen.lines().take(21).map(str::to_string).collect()
    };
    let preview = lanes_of(render(&app));
    assert!(preview.join("\n").contains("Backlog 120"), "{preview:#?}");
    assert!(preview.join("\n").contains("↓ 114 more"), "{preview:#?}");

    pump(&mut app, &mut rx, "the whole project", &|a| {
        a.replica.is_synced() && a.replica.preview_totals().is_none()
    })
    .await;
    assert_eq!(loaded(&app), 120);
    assert_eq!(lanes_of(render(&app)), preview, "the same first screen");

    handle.close();
    server.stop().await.expect("a graceful stop");
}
