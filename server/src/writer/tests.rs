//! The writer, driven directly: groups, savepoints, write-behind, failures.
use std::sync::Arc;
use std::time::Duration;

use pm_shared::proto::{self, Payload, WebSocketMessage};
use prost::Message as _;
use tokio::sync::mpsc;

use crate::access::Actor;
use crate::commands::{execute, Command};
use crate::error::{AppError, AppResult};
use crate::hub::{CutOff, Outbound, Subscriber};
use crate::store::queries;
use crate::writer::Committed;
use crate::SharedState;
use crate::{AppState, Config};

const USER: &str = "aaaaaaaa-0000-4000-8000-00000000000a";

async fn server(configure: impl FnOnce(&mut Config)) -> (tempfile::TempDir, SharedState) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::for_data_dir(dir.path());
    configure(&mut config);
    let state = AppState::open(config).await.unwrap();
    (dir, state)
}

fn actor() -> Actor {
    Actor {
        user_id: USER.into(),
    }
}

fn create_item(project_id: &str, title: &str) -> Command {
    Command::CreateWorkItem(proto::CreateWorkItemRequest {
        item_type: proto::WorkItemType::Task as i32,
        title: title.into(),
        project_id: project_id.into(),
        ..Default::default()
    })
}

fn retitle(item: &proto::WorkItem, version: i32, title: &str) -> Command {
    Command::UpdateWorkItem(proto::UpdateWorkItemRequest {
        work_item_id: item.id.clone(),
        expected_version: version,
        title: Some(title.into()),
        ..Default::default()
    })
}

async fn setup(state: &SharedState) -> (String, proto::WorkItem) {
    let project = new_project(state, "Group", "GC").await;
    let item = new_item(state, &project, "base").await;
    (project, item)
}

async fn new_project(state: &SharedState, title: &str, key: &str) -> String {
    let request = proto::CreateProjectRequest {
        title: title.into(),
        key: key.into(),
        description: None,
    };
    let created = execute(
        &state.writer,
        &actor(),
        None,
        Command::CreateProject(request),
    )
    .await
    .unwrap();
    let Payload::ProjectCreated(p) = created.event else {
        panic!("{created:?}")
    };
    p.project.unwrap().id
}

async fn new_item(state: &SharedState, project: &str, title: &str) -> proto::WorkItem {
    let done = execute(&state.writer, &actor(), None, create_item(project, title))
        .await
        .unwrap();
    let Payload::WorkItemCreated(c) = done.event else {
        panic!("{done:?}")
    };
    c.work_item.unwrap()
}

/// A hub subscriber that records what reaches it.
fn listen(state: &SharedState, stream: &str) -> mpsc::Receiver<Outbound> {
    let (tx, rx) = mpsc::channel(1024);
    let id = state.hub.register(Subscriber {
        user_id: USER.into(),
        queue: tx,
        queued_bytes: Default::default(),
        max_bytes: usize::MAX / 2,
        cut_off: Arc::new(CutOff::default()),
        socket: None,
    });
    assert!(state.hub.subscribe(id, stream, Vec::new()));
    rx
}

/// Submits `command` from a task of its own (callers wait for the queue to grow before
/// submitting the next, which fixes the order).
async fn enqueue(
    state: &SharedState,
    request_id: Option<&str>,
    command: Command,
) -> tokio::task::JoinHandle<AppResult<Committed>> {
    enqueue_as(state, USER, request_id, command).await
}

async fn enqueue_as(
    state: &SharedState,
    user: &str,
    request_id: Option<&str>,
    command: Command,
) -> tokio::task::JoinHandle<AppResult<Committed>> {
    let (state, id) = (state.clone(), request_id.map(str::to_string));
    let actor = Actor {
        user_id: user.into(),
    };
    tokio::spawn(async move { execute(&state.writer, &actor, id.as_deref(), command).await })
}

async fn user_rows(state: &SharedState, user: &str) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE id = ?")
        .bind(user)
        .fetch_one(state.store.read.sqlite().expect("a SQLite store"))
        .await
        .unwrap()
}

async fn wait_for_queue(state: &SharedState, n: usize) {
    for _ in 0..500 {
        if state.writer.waiting() == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    panic!("queue never reached {n} (at {})", state.writer.waiting());
}

/// Runs `commands` as one group (the writer is held while they queue up, in order) and
/// returns their outcomes in that order.
async fn run_as_one_group(
    state: &SharedState,
    commands: Vec<Command>,
) -> Vec<AppResult<Committed>> {
    let writer = state.writer.pause().await;
    let mut tasks = Vec::new();
    for (n, command) in commands.into_iter().enumerate() {
        tasks.push(enqueue(state, None, command).await);
        wait_for_queue(state, n + 1).await;
    }
    drop(writer);
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    results
}

fn frames(item: Outbound) -> Vec<WebSocketMessage> {
    crate::frames::payloads(item.bytes())
        .iter()
        .map(|b| WebSocketMessage::decode(b.as_ref()).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_commits_together_and_each_command_fails_alone() {
    let (_dir, state) = server(|_| {}).await;
    let (project, item) = setup(&state).await;
    let mut live = listen(&state, &project);
    let (groups_before, _) = state.writer.totals();

    // Hold the writer so that everything below queues up and runs as one group.
    let writer = state.writer.pause().await;
    let mut tasks = Vec::new();
    let commands = vec![
        create_item(&project, "one"),               // ok
        retitle(&item, 7, "wrong version"),         // CONFLICT
        create_item(&project, "two"),               // ok
        retitle(&item, 1, "base"),                  // unchanged: no event
        create_item(&crate::ids::random_id(), "x"), // NOT_FOUND
        retitle(&item, 1, "renamed"),               // ok
        create_item(&project, ""),                  // invalid title
    ];
    // Two users the database has not seen: one whose command fails (its user row goes
    // with the rest of its savepoint) and one whose command succeeds.
    let (failing_user, new_user) = (
        "bbbbbbbb-0000-4000-8000-00000000000b",
        "cccccccc-0000-4000-8000-00000000000c",
    );
    for (n, command) in commands.into_iter().enumerate() {
        let user = match n {
            4 => failing_user,
            2 => new_user,
            _ => USER,
        };
        tasks.push(enqueue_as(&state, user, None, command).await);
        wait_for_queue(&state, n + 1).await;
    }
    drop(writer);
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }

    // The project's stream: creating "base" was its first event.
    let base = 2;
    let seqs: Vec<Option<u64>> = results
        .iter()
        .map(|r| r.as_ref().ok().map(|c| c.seq))
        .collect();
    assert_eq!(
        seqs,
        [
            Some(base),
            None,
            Some(base + 1),
            Some(0),
            None,
            Some(base + 2),
            None
        ],
        "{results:?}"
    );
    assert!(matches!(results[1], Err(AppError::VersionConflict { .. })));
    assert!(matches!(results[4], Err(AppError::NotFound(_))));
    assert!(results[6].is_err());
    assert_eq!(
        state.writer.totals().0,
        groups_before + 1,
        "one transaction"
    );

    // The group's three events reached the subscriber as ONE item, in seq order, each
    // after its ActivityLogCreated.
    let item_frames = frames(live.try_recv().expect("the group's frames"));
    assert!(live.try_recv().is_err(), "one hub item for the whole group");
    let kinds: Vec<(u64, bool)> = item_frames
        .iter()
        .map(|m| {
            (
                m.seq,
                matches!(m.payload, Some(Payload::ActivityLogCreated(_))),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            (0, true),
            (base, false),
            (0, true),
            (base + 1, false),
            (0, true),
            (base + 2, false)
        ]
    );

    // The database holds exactly the kept writes.
    let snap = crate::reads::work_items(&state.store, &crate::access::Viewer::system(), &project)
        .await
        .unwrap();
    assert_eq!(snap.seq, base + 2);
    let mut titles: Vec<&str> = snap.items.iter().map(|i| i.title.as_str()).collect();
    titles.sort_unstable();
    assert_eq!(titles, ["one", "renamed", "two"]);
    let renamed = snap.items.iter().find(|i| i.id == item.id).unwrap();
    assert_eq!(renamed.version, 2, "the failed update left no trace");
    assert_eq!(user_rows(&state, failing_user).await, 0, "rolled back");
    assert_eq!(user_rows(&state, new_user).await, 1);
    assert!(knows(&state, new_user).await);
    assert!(!knows(&state, failing_user).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_create_in_the_same_group_is_answered_once() {
    let (_dir, state) = server(|_| {}).await;
    let (project, _) = setup(&state).await;
    let writer = state.writer.pause().await;
    let first = enqueue(&state, Some("m-1"), create_item(&project, "once")).await;
    wait_for_queue(&state, 1).await;
    let again = enqueue(&state, Some("m-1"), create_item(&project, "once")).await;
    wait_for_queue(&state, 2).await;
    drop(writer);
    let (a, b) = (first.await.unwrap().unwrap(), again.await.unwrap().unwrap());
    assert_eq!(a.seq, b.seq);
    let snap = crate::reads::work_items(&state.store, &crate::access::Viewer::system(), &project)
        .await
        .unwrap();
    assert_eq!(snap.items.iter().filter(|i| i.title == "once").count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_that_times_out_waiting_never_runs() {
    let (_dir, state) = server(|c| c.request_timeout_secs = 1).await;
    let (project, _) = setup(&state).await;
    let writer = state.writer.pause().await;
    let late = enqueue(&state, None, create_item(&project, "late")).await;
    let outcome = late.await.unwrap();
    assert!(matches!(outcome, Err(AppError::Timeout)), "{outcome:?}");
    assert_eq!(state.writer.waiting(), 0, "withdrawn");
    drop(writer);
    // The queue still works, and the late command was not applied.
    execute(
        &state.writer,
        &actor(),
        None,
        create_item(&project, "after"),
    )
    .await
    .unwrap();
    let snap = crate::reads::work_items(&state.store, &crate::access::Viewer::system(), &project)
        .await
        .unwrap();
    assert!(snap.items.iter().all(|i| i.title != "late"));
    assert!(snap.items.iter().any(|i| i.title == "after"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_get_gap_free_seqs() {
    let (_dir, state) = server(|_| {}).await;
    let (project, _) = setup(&state).await;
    let mut live = listen(&state, &project);
    let mut tasks = Vec::new();
    for w in 0..8 {
        let (state, project) = (state.clone(), project.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..25 {
                execute(
                    &state.writer,
                    &actor(),
                    None,
                    create_item(&project, &format!("{w}-{i}")),
                )
                .await
                .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut seqs = Vec::new();
    while let Ok(item) = live.try_recv() {
        seqs.extend(frames(item).iter().map(|m| m.seq).filter(|&s| s > 0));
    }
    let expected: Vec<u64> = (2..2 + 200).collect();
    assert_eq!(seqs, expected);
}

/// Updates whose writes wait for one shared round trip (see `write_behind`) read each
/// other's results, a command of another kind sees them in the database, a later failure
/// cannot undo them, and every one is logged and announced with its own changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_updates_read_each_others_writes_and_survive_later_failures() {
    let (_dir, state) = server(|_| {}).await;
    let (project, item) = setup(&state).await;
    let mut live = listen(&state, &project);
    let (groups_before, _) = state.writer.totals();
    let assignee = "dddddddd-0000-4000-8000-00000000000d";
    let update = |version: i32, f: &dyn Fn(&mut proto::UpdateWorkItemRequest)| {
        let mut r = proto::UpdateWorkItemRequest {
            work_item_id: item.id.clone(),
            expected_version: version,
            ..Default::default()
        };
        f(&mut r);
        Command::UpdateWorkItem(r)
    };
    let commands = vec![
        retitle(&item, 1, "a"),     // waits; v2
        retitle(&item, 2, "b"),     // reads v2 from the waiting writes; v3
        retitle(&item, 2, "stale"), // CONFLICT: the item is at v3
        update(3, &|r| {
            r.status = Some("in_progress".into());
            r.assignee_id = Some(assignee.into()); // a user the database has not seen
        }), // v4
        create_item(&project, ""),  // another kind, fails: must not undo the waiting writes
        update(4, &|r| {
            r.title = Some("c".into());
            r.update_parent = true; // runs now, so the database must be at v4
        }), // v5
        retitle(&item, 5, "d"),     // reads the database again; v6
    ];
    let results = run_as_one_group(&state, commands).await;
    let versions: Vec<Option<i32>> = results
        .iter()
        .map(|r| match r {
            Ok(Committed {
                event: Payload::WorkItemUpdated(u),
                ..
            }) => u.work_item.as_ref().map(|i| i.version),
            _ => None,
        })
        .collect();
    assert_eq!(
        versions,
        [Some(2), Some(3), None, Some(4), None, Some(5), Some(6)],
        "{results:?}"
    );
    assert!(matches!(
        results[2],
        Err(AppError::VersionConflict { current_version: 3 })
    ));
    assert!(
        matches!(results[4], Err(AppError::InvalidMessage(_))),
        "{:?}",
        results[4]
    );
    let seqs: Vec<u64> = results.iter().flatten().map(|c| c.seq).collect();
    // "base" was the project stream's first event.
    assert_eq!(seqs, [2, 3, 4, 5, 6]);
    assert_eq!(
        state.writer.totals().0,
        groups_before + 1,
        "one transaction"
    );

    // What was committed: the last state, the assignee's row, one activity row per update
    // with its own changes.
    let stored: (String, String, Option<String>, i64) = sqlx::query_as(
        "SELECT title, status, assignee_id, version FROM pm_work_items WHERE id = ?",
    )
    .bind(&item.id)
    .fetch_one(state.store.read.sqlite().expect("a SQLite store"))
    .await
    .unwrap();
    assert_eq!(
        stored,
        ("d".into(), "in_progress".into(), Some(assignee.into()), 6)
    );
    assert_eq!(user_rows(&state, assignee).await, 1);
    let logged: Vec<String> = sqlx::query_scalar(
        "SELECT changes FROM pm_activity_log WHERE entity_id = ? AND action = 'updated' \
         ORDER BY rowid",
    )
    .bind(&item.id)
    .fetch_all(state.store.read.sqlite().expect("a SQLite store"))
    .await
    .unwrap();
    assert_eq!(logged.len(), 5, "{logged:?}");
    let expected = [
        r#""old_value":"base","new_value":"a""#,
        r#""old_value":"a","new_value":"b""#,
        r#""new_value":"in_progress""#,
        r#""old_value":"b","new_value":"c""#,
        r#""old_value":"c","new_value":"d""#,
    ];
    for (row, change) in logged.iter().zip(expected) {
        assert!(row.contains(change), "{logged:?}");
    }
    let events: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM pm_events WHERE stream = ? AND seq >= 2")
            .bind(&project)
            .fetch_one(state.store.read.sqlite().expect("a SQLite store"))
            .await
            .unwrap();
    assert_eq!(events, 5);

    // The subscriber got the five events, in seq order, with the versions above.
    let mut seen = Vec::new();
    while let Ok(item) = live.try_recv() {
        for m in frames(item) {
            if let Some(Payload::WorkItemUpdated(u)) = m.payload {
                seen.push((m.seq, u.work_item.map(|i| i.version)));
            }
        }
    }
    assert_eq!(
        seen,
        [
            (2, Some(2)),
            (3, Some(3)),
            (4, Some(4)),
            (5, Some(5)),
            (6, Some(6))
        ]
    );
}

/// More waiting updates than one round trip takes, on two projects' streams: every chunk
/// lands, each stream's seqs stay consecutive, and its last seq is stored, so the next
/// write after the group continues from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_waiting_updates_on_two_streams_keep_each_streams_seqs() {
    let (_dir, state) = server(|_| {}).await;
    let (first, a) = setup(&state).await;
    let second = new_project(&state, "Other", "OT").await;
    let b = new_item(&state, &second, "b").await;
    let (groups_before, _) = state.writer.totals();

    // 100: chunks of 64, 32 and 4.
    let commands = (0..100)
        .map(|n| {
            let item = if n % 2 == 0 { &a } else { &b };
            retitle(item, 1 + n / 2, &format!("t{n}"))
        })
        .collect();
    let mut seqs = (Vec::new(), Vec::new());
    for result in run_as_one_group(&state, commands).await {
        let c = result.unwrap();
        if c.stream == first {
            seqs.0.push(c.seq);
        } else {
            assert_eq!(c.stream, second);
            seqs.1.push(c.seq);
        }
    }
    assert_eq!(
        state.writer.totals().0,
        groups_before + 1,
        "one transaction"
    );
    // Each project's stream had one event (its item's creation) before.
    let expected: Vec<u64> = (2..52).collect();
    assert_eq!(seqs.0, expected);
    assert_eq!(seqs.1, expected);
    for project in [&first, &second] {
        let (last, events): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT last_seq FROM pm_streams WHERE stream = ?1), \
                    (SELECT COUNT(*) FROM pm_events WHERE stream = ?1)",
        )
        .bind(project)
        .fetch_one(state.store.read.sqlite().expect("a SQLite store"))
        .await
        .unwrap();
        assert_eq!((last, events), (51, 51), "{project}");
    }
    // The counter is forgotten and re-read from the database: the next write continues.
    state.writer.with_books(|b| b.seqs.forget()).await;
    let next = execute(&state.writer, &actor(), None, retitle(&a, 51, "after"))
        .await
        .unwrap();
    assert_eq!((next.stream.as_str(), next.seq), (first.as_str(), 52));
    let stored: (String, i64) =
        sqlx::query_as("SELECT title, version FROM pm_work_items WHERE id = ?")
            .bind(&b.id)
            .fetch_one(state.store.read.sqlite().expect("a SQLite store"))
            .await
            .unwrap();
    assert_eq!(stored, ("t99".into(), 51));
}

/// The group's one read of its updates' items: each live item with its lists, nothing for
/// an item that is gone (whose walks would still find its ancestors) or never was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_reads_its_items_in_one_query() {
    let (_dir, state) = server(|_| {}).await;
    let (project, gone) = setup(&state).await;
    let create = |item_type: proto::WorkItemType, title: &str, parent: Option<&str>| {
        Command::CreateWorkItem(proto::CreateWorkItemRequest {
            item_type: item_type as i32,
            title: title.into(),
            project_id: project.clone(),
            parent_id: parent.map(str::to_string),
            ..Default::default()
        })
    };
    let mut ids = Vec::new();
    let mut parent: Option<String> = None;
    for (kind, title) in [
        (proto::WorkItemType::Epic, "epic"),
        (proto::WorkItemType::Story, "story"),
        (proto::WorkItemType::Task, "task"),
    ] {
        let done = execute(
            &state.writer,
            &actor(),
            None,
            create(kind, title, parent.as_deref()),
        )
        .await
        .unwrap();
        let Payload::WorkItemCreated(c) = done.event else {
            panic!("{done:?}")
        };
        let id = c.work_item.unwrap().id;
        parent = Some(id.clone());
        ids.push(id);
    }
    let (epic, story, task) = (&ids[0], &ids[1], &ids[2]);
    // `gone` is deleted under the story, so its walk up still finds story and epic.
    execute(
        &state.writer,
        &actor(),
        None,
        Command::UpdateWorkItem(proto::UpdateWorkItemRequest {
            work_item_id: gone.id.clone(),
            expected_version: 1,
            update_parent: true,
            parent_id: Some(story.clone()),
            ..Default::default()
        }),
    )
    .await
    .unwrap();
    execute(
        &state.writer,
        &actor(),
        None,
        Command::DeleteWorkItem(proto::DeleteWorkItemRequest {
            work_item_id: gone.id.clone(),
        }),
    )
    .await
    .unwrap();

    let mut writer = state.store.read.sqlite().unwrap().acquire().await.unwrap();
    let missing = crate::ids::random_id();
    let read = queries::work_items_with_lists(
        &mut crate::store::Conn::Sqlite(&mut writer),
        &[
            task.as_str(),
            gone.id.as_str(),
            missing.as_str(),
            epic.as_str(),
        ],
    )
    .await
    .unwrap();
    let summary: Vec<(String, Vec<(i64, String)>)> = read
        .into_iter()
        .map(|(row, lists)| {
            (
                row.title,
                lists.into_iter().map(|(side, id, _)| (side, id)).collect(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                "task".to_string(),
                vec![(0, story.clone()), (0, epic.clone())]
            ),
            (
                "epic".to_string(),
                vec![(1, story.clone()), (1, task.clone())]
            ),
        ]
    );
}

/// An assignee who never connected gets their user row inside the chunk of waiting writes,
/// wherever in the chunk the assigning update sits (here last of four).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_assignee_row_is_written_from_anywhere_in_a_chunk() {
    let (_dir, state) = server(|_| {}).await;
    let (_project, item) = setup(&state).await;
    let assignee = "eeeeeeee-0000-4000-8000-00000000000e";
    let assign = Command::UpdateWorkItem(proto::UpdateWorkItemRequest {
        work_item_id: item.id.clone(),
        expected_version: 4,
        assignee_id: Some(assignee.into()),
        ..Default::default()
    });
    let commands = vec![
        retitle(&item, 1, "one"),
        retitle(&item, 2, "two"),
        retitle(&item, 3, "three"),
        assign,
    ];
    for result in run_as_one_group(&state, commands).await {
        result.unwrap();
    }
    let stored: (String, Option<String>, String) = sqlx::query_as(
        "SELECT w.title, w.assignee_id, u.email FROM pm_work_items w \
         JOIN users u ON u.id = w.assignee_id WHERE w.id = ?",
    )
    .bind(&item.id)
    .fetch_one(state.store.read.sqlite().expect("a SQLite store"))
    .await
    .unwrap();
    assert_eq!(
        stored,
        (
            "three".into(),
            Some(assignee.into()),
            "user-eeeeeeee@localhost".into()
        )
    );
}

/// Whether the writer remembers `user`'s row as committed.
async fn knows(state: &SharedState, user: &str) -> bool {
    let user = user.to_string();
    state
        .writer
        .with_books(move |b| b.known_users.contains(&user))
        .await
}

/// Were clients ever told of an event the database does not hold (a commit reported good
/// that did not last), a reset gives the history a new epoch, stored, so every client
/// resyncs instead of trusting a seq that will be given again.
#[tokio::test]
async fn a_reset_renews_the_epoch_when_published_events_are_missing() {
    let dir = tempfile::tempdir().unwrap();
    let (store, conn) = crate::store::Store::open(&dir.path().join("t.db"))
        .await
        .unwrap();
    let store = Arc::new(store);
    let hub = Arc::new(crate::hub::EventHub::default());
    let mut task = super::task::WriterTask {
        conn,
        books: Default::default(),
        store: store.clone(),
        hub: hub.clone(),
        auth: crate::config::AuthMode::Desktop,
        limits: Default::default(),
        counters: Default::default(),
        publisher: super::publish::PublishTask::spawn(hub.clone(), None),
    };
    let before = store.epoch();

    // Nothing published beyond the database: a reset keeps the epoch.
    task.books.fail(&store, &"test");
    assert!(task.books.reset_due);
    task.reset().await.unwrap();
    assert!(!task.books.reset_due);
    assert_eq!(store.epoch(), before);
    assert!(
        store.write_failure().is_some(),
        "failing until a commit succeeds"
    );
    store.note_write_success();
    assert!(store.write_failure().is_none());

    // Seq 5 of stream "s" was published, but the database holds none of it.
    task.books.fail(&store, &"test");
    hub.reset_published(vec![("s".into(), 5)]);
    task.reset().await.unwrap();
    let renewed = store.epoch();
    assert_ne!(renewed, before);
    let stored: String = sqlx::query_scalar("SELECT value FROM pm_meta WHERE key = 'epoch'")
        .fetch_one(task.conn.get().sqlite().expect("SQLite"))
        .await
        .unwrap();
    assert_eq!(stored, renewed, "the new epoch outlives a restart");
    assert_eq!(
        hub.published(),
        Vec::<(String, u64)>::new(),
        "the hub's numbers start over from the database"
    );
}

/// A command of the test's own: the writer knows commands only through `WriteCommand`.
enum Probe {
    /// Panics inside the group's transaction.
    Panic,
    /// Changes nothing and answers with an empty project.
    Nothing,
}

impl crate::writer::WriteCommand for Probe {
    fn idempotency_name(&self) -> Option<&'static str> {
        None
    }

    fn waits_behind(&self) -> Option<&str> {
        None
    }

    fn scope(&self, _actor: &crate::access::Actor) -> crate::writer::Scope {
        Default::default()
    }

    async fn describe<'a, 'c: 'a>(
        self,
        _conn: &'a mut crate::store::Conn<'c>,
        _context: crate::writer::Context<'a>,
    ) -> AppResult<crate::writer::Effect> {
        match self {
            Probe::Panic => panic!("a command panicked"),
            Probe::Nothing => Ok(crate::writer::Effect::Unchanged {
                project_id: String::new(),
                current: Payload::ProjectCreated(Default::default()),
            }),
        }
    }
}

/// A command that panics fails only its own caller: the writer replaces its connection and
/// serves the next command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_command_fails_alone_and_the_writer_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let (store, conn) = crate::store::Store::open(&dir.path().join("t.db"))
        .await
        .unwrap();
    let store = Arc::new(store);
    let writer = crate::writer::Writer::spawn(
        conn,
        store.clone(),
        Arc::new(crate::hub::EventHub::default()),
        crate::writer::Settings {
            auth: crate::config::AuthMode::Desktop,
            request_timeout: Duration::from_secs(10),
            limits: Default::default(),
        },
    );
    let outcome = writer.execute(&actor(), None, Probe::Panic).await;
    assert!(
        matches!(&outcome, Err(AppError::Internal(_))),
        "{outcome:?}"
    );
    for _ in 0..3 {
        let answer = writer.execute(&actor(), None, Probe::Nothing).await;
        assert!(answer.is_ok(), "{answer:?}");
    }
    // Served after the panic was handled; nothing has committed since.
    assert!(store.write_failure().is_some(), "reported until a commit");
    assert_eq!(writer.totals().1, 4, "every command was run");
}
