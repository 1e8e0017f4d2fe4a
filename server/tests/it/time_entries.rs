//! Time tracking over real sockets: timers and manual entries made by alice reach bob (subscribed)
//! as TimerStarted/TimerStopped/TimeEntryCreated/Updated/Deleted with the next seq; starting a
//! timer stops the running one in the same transaction; only an entry's owner may change it; the
//! reference's validation rules; every field of an update is persisted.

use crate::common::fixture::*;
use crate::common::*;
use pm_shared::proto::{self, Payload};
use serde_json::json;

fn stop_req(id: &str) -> Payload {
    Payload::StopTimerRequest(proto::StopTimerRequest {
        time_entry_id: id.to_string(),
    })
}

fn manual_req(item: &str, started_at: i64, ended_at: i64, description: Option<&str>) -> Payload {
    Payload::CreateTimeEntryRequest(proto::CreateTimeEntryRequest {
        work_item_id: item.to_string(),
        started_at,
        ended_at,
        description: description.map(str::to_string),
    })
}

fn update_req(id: &str) -> proto::UpdateTimeEntryRequest {
    proto::UpdateTimeEntryRequest {
        time_entry_id: id.to_string(),
        ..Default::default()
    }
}

fn delete_req(id: &str) -> Payload {
    Payload::DeleteTimeEntryRequest(proto::DeleteTimeEntryRequest {
        time_entry_id: id.to_string(),
    })
}

fn list_req(item: &str, limit: Option<i32>, offset: Option<i32>) -> Payload {
    Payload::GetTimeEntriesRequest(proto::GetTimeEntriesRequest {
        work_item_id: item.to_string(),
        limit,
        offset,
    })
}

fn running_req() -> Payload {
    Payload::GetRunningTimerRequest(proto::GetRunningTimerRequest {})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timer_starts_and_stops_live() {
    let mut f = Fixture::new(1).await;
    let t1 = f.id(0);
    let before = pm_shared::now_secs();
    let reply = f.act(start_req(&t1, Some("Pairing"))).await;
    let started = expect_payload!(reply, TimerStarted);
    let entry = started.time_entry.clone().expect("time_entry");
    assert_eq!(
        (entry.work_item_id.as_str(), entry.user_id.as_str()),
        (t1.as_str(), USER_A)
    );
    assert_eq!(entry.description.as_deref(), Some("Pairing"));
    assert!(entry.started_at >= before && entry.ended_at.is_none());
    assert_eq!(entry.duration_seconds, None);
    assert_eq!(started.stopped_entry, None);

    let (activity, event) = f.received().await;
    assert_eq!(
        (activity.entity_type.as_str(), activity.action.as_str()),
        ("time_entry", "created")
    );
    assert_eq!(activity.entity_id, entry.id);
    assert_eq!(event.seq, reply.seq);
    assert_eq!(expect_payload!(event, TimerStarted), started);

    let running = expect_payload!(f.act(running_req()).await, RunningTimerResponse);
    assert_eq!(running.time_entry, Some(entry.clone()));
    // Bob has no timer of his own.
    let theirs = expect_payload!(f.bob.request(running_req()).await, RunningTimerResponse);
    assert_eq!(theirs.time_entry, None);

    let reply = f.act(stop_req(&entry.id)).await;
    let stopped = expect_payload!(reply, TimerStopped);
    let done = stopped.time_entry.clone().expect("time_entry");
    let ended = done.ended_at.expect("ended_at");
    assert_eq!(
        done.duration_seconds,
        Some((ended - entry.started_at) as i32)
    );
    let (activity, event) = f.received().await;
    assert_eq!(activity.action, "updated");
    assert_eq!(
        activity
            .changes
            .iter()
            .map(|c| c.field_name.as_str())
            .collect::<Vec<_>>(),
        ["ended_at", "duration_seconds"]
    );
    assert_eq!(expect_payload!(event, TimerStopped), stopped);
    let running = expect_payload!(f.act(running_req()).await, RunningTimerResponse);
    assert_eq!(running.time_entry, None);
    // A timer stopped within its first second still takes a new description.
    let described = expect_payload!(
        f.act(Payload::UpdateTimeEntryRequest(
            proto::UpdateTimeEntryRequest {
                description: Some("Pairing with bob".into()),
                ..update_req(&entry.id)
            }
        ))
        .await,
        TimeEntryUpdated
    );
    assert_eq!(
        described.time_entry.and_then(|t| t.duration_seconds),
        done.duration_seconds
    );
    f.received().await;

    // Stopping twice is the reference's validation error.
    let err = expect_error(&f.act(stop_req(&entry.id)).await, "VALIDATION_ERROR");
    assert_eq!(err.field.as_deref(), Some("time_entry_id"));
    assert_eq!(err.message, "Validation failed: Timer is not running");
    f.nothing_received().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starting_a_timer_stops_the_running_one_in_one_event() {
    let mut f = Fixture::new(2).await;
    let (t1, t2) = (f.id(0), f.id(1));
    let first = expect_payload!(f.act(start_req(&t1, None)).await, TimerStarted)
        .time_entry
        .expect("time_entry");
    f.received().await;

    let reply = f.act(start_req(&t2, None)).await;
    let started = expect_payload!(reply, TimerStarted);
    let second = started.time_entry.clone().expect("time_entry");
    let stopped = started.stopped_entry.clone().expect("stopped_entry");
    assert_eq!(stopped.id, first.id);
    assert!(stopped.ended_at.is_some() && stopped.duration_seconds.is_some());
    assert!(second.ended_at.is_none());

    // One mutation reaches bob: TimerStarted, carrying the stopped timer.
    let (activity, event) = f.received().await;
    assert_eq!(activity.entity_id, second.id);
    assert_eq!(expect_payload!(event, TimerStarted), started);
    f.nothing_received().await;

    // Both are in the database, and the stop has its own history entry.
    let running = expect_payload!(f.act(running_req()).await, RunningTimerResponse);
    assert_eq!(running.time_entry, Some(second));
    let list = expect_payload!(f.act(list_req(&t1, None, None)).await, TimeEntriesList);
    assert_eq!(list.time_entries, vec![stopped]);
    let history = expect_payload!(
        f.act(history_req("time_entry", &first.id)).await,
        ActivityLogList
    );
    let actions: Vec<&str> = history.entries.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["updated", "created"]);
    assert_eq!(history.entries[0].changes[0].field_name, "ended_at");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timer_stopped_in_another_project_is_announced_there() {
    let mut f = Fixture::new(1).await;
    let t1 = f.id(0);
    let other = f.alice.create_project("Elsewhere", "ELS").await;
    let (x, created) = {
        let reply = f
            .alice
            .request(create_item_req(
                &other.id,
                proto::WorkItemType::Task,
                "X",
                None,
            ))
            .await;
        let seq = reply.seq;
        (
            expect_payload!(reply, WorkItemCreated)
                .work_item
                .expect("work_item"),
            seq,
        )
    };
    let mut carol = f.server.connect(USER_C).await;
    carol.subscribe(&[&other.id]).await;
    let mut carol_seqs = SeqTracker::starting_at(&other.id, created);

    let on_x = expect_payload!(f.act(start_req(&x.id, None)).await, TimerStarted)
        .time_entry
        .expect("time_entry");
    recv_mutation(&mut carol, &mut carol_seqs, &f.epoch).await;

    let reply = f.act(start_req(&t1, None)).await;
    assert_eq!(reply.stream, f.project.id);
    let started = expect_payload!(reply, TimerStarted);
    assert_eq!(
        started.stopped_entry.as_ref().map(|t| t.id.as_str()),
        Some(on_x.id.as_str())
    );
    // Bob (this project) gets TimerStarted; carol (the other one) gets TimerStopped.
    let (_, event) = f.received().await;
    assert_eq!(event.seq, reply.seq);
    assert_eq!(expect_payload!(event, TimerStarted), started);
    let (activity, event) = recv_mutation(&mut carol, &mut carol_seqs, &f.epoch).await;
    assert_eq!(
        (activity.entity_id.as_str(), activity.action.as_str()),
        (on_x.id.as_str(), "updated")
    );
    let stopped = expect_payload!(event, TimerStopped);
    assert_eq!(stopped.time_entry, started.stopped_entry);
    f.nothing_received().await;
    carol.expect_no_event().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_owner_changes_an_entry() {
    let mut f = Fixture::new(1).await;
    let t1 = f.id(0);
    let entry = expect_payload!(f.act(start_req(&t1, None)).await, TimerStarted)
        .time_entry
        .expect("time_entry");
    f.received().await;
    let reply = f.bob.request(stop_req(&entry.id)).await;
    assert_eq!(
        expect_error(&reply, "UNAUTHORIZED").message,
        "Unauthorized: Cannot stop another user's timer"
    );
    let reply = f
        .bob
        .request(Payload::UpdateTimeEntryRequest(
            proto::UpdateTimeEntryRequest {
                description: Some("mine now".into()),
                ..update_req(&entry.id)
            },
        ))
        .await;
    assert_eq!(
        expect_error(&reply, "UNAUTHORIZED").message,
        "Unauthorized: Cannot update another user's time entry"
    );
    let reply = f.bob.request(delete_req(&entry.id)).await;
    assert_eq!(
        expect_error(&reply, "UNAUTHORIZED").message,
        "Unauthorized: Cannot delete another user's time entry"
    );
    let ghost = uuid::Uuid::new_v4().to_string();
    let reply = f.act(stop_req(&ghost)).await;
    assert_eq!(
        expect_error(&reply, "NOT_FOUND").message,
        format!("Resource not found: Time entry {ghost} not found")
    );
    f.nothing_received().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_entries_follow_the_reference_rules() {
    let mut f = Fixture::new(1).await;
    let t1 = f.id(0);
    let now = pm_shared::now_secs();

    let reply = f
        .act(manual_req(&t1, now - 5400, now - 1800, Some("Review")))
        .await;
    let created = expect_payload!(reply, TimeEntryCreated);
    let entry = created.time_entry.clone().expect("time_entry");
    assert_eq!(
        (entry.started_at, entry.ended_at, entry.duration_seconds),
        (now - 5400, Some(now - 1800), Some(3600))
    );
    let (activity, event) = f.received().await;
    assert_eq!(activity.action, "created");
    assert!(activity
        .changes
        .contains(&field_change("duration_seconds", None, Some("3600"))));
    assert_eq!(expect_payload!(event, TimeEntryCreated), created);

    let cases: Vec<(i64, i64, &str, &str)> = vec![
        (
            now + 120,
            now + 180,
            "started_at",
            "started_at cannot be in the future",
        ),
        (
            now - 60,
            now + 120,
            "ended_at",
            "ended_at cannot be in the future",
        ),
        (
            now - 60,
            now - 60,
            "started_at",
            "started_at must be before ended_at",
        ),
        (
            now - 30,
            now - 60,
            "started_at",
            "started_at must be before ended_at",
        ),
        (
            now - 90_000,
            now - 3000,
            "ended_at",
            "Duration cannot exceed 24 hours",
        ),
    ];
    for (start, end, field, message) in cases {
        let err = expect_error(
            &f.act(manual_req(&t1, start, end, None)).await,
            "VALIDATION_ERROR",
        );
        assert_eq!(err.field.as_deref(), Some(field), "{err:?}");
        assert_eq!(err.message, format!("Validation failed: {message}"));
    }
    // Exactly 24 hours, and a minute of clock skew, are fine.
    expect_payload!(
        f.act(manual_req(&t1, now + 60 - 86_400, now + 60, None))
            .await,
        TimeEntryCreated
    );
    f.received().await;

    let long = "x".repeat(1001);
    expect_error(
        &f.act(manual_req(&t1, now - 60, now, Some(&long))).await,
        "INVALID_MESSAGE",
    );
    expect_error(&f.act(start_req(&t1, Some(&long))).await, "INVALID_MESSAGE");
    let ghost = uuid::Uuid::new_v4().to_string();
    expect_error(
        &f.act(manual_req(&ghost, now - 60, now, None)).await,
        "NOT_FOUND",
    );
    expect_error(&f.act(start_req(&ghost, None)).await, "NOT_FOUND");
    let err = expect_error(&f.act(start_req("PM-1", None)).await, "VALIDATION_ERROR");
    assert_eq!(err.field.as_deref(), Some("work_item_id"));
    f.nothing_received().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_persist_every_field_and_deletes_are_live() {
    let mut f = Fixture::new(1).await;
    let t1 = f.id(0);
    let now = pm_shared::now_secs();
    let entry = expect_payload!(
        f.act(manual_req(&t1, now - 3600, now - 600, Some("a")))
            .await,
        TimeEntryCreated
    )
    .time_entry
    .expect("time_entry");
    f.received().await;

    // started_at is persisted (the reference lost it), the duration follows.
    let reply = f
        .act(Payload::UpdateTimeEntryRequest(
            proto::UpdateTimeEntryRequest {
                started_at: Some(now - 7200),
                description: Some("b".into()),
                ..update_req(&entry.id)
            },
        ))
        .await;
    let updated = expect_payload!(reply, TimeEntryUpdated)
        .time_entry
        .expect("time_entry");
    assert_eq!(
        (
            updated.started_at,
            updated.duration_seconds,
            updated.description.as_deref()
        ),
        (now - 7200, Some(6600), Some("b"))
    );
    let (activity, event) = f.received().await;
    assert_eq!(
        activity.changes,
        vec![
            field_change(
                "started_at",
                Some(&(now - 3600).to_string()),
                Some(&(now - 7200).to_string())
            ),
            field_change("duration_seconds", Some("3000"), Some("6600")),
            field_change("description", Some("a"), Some("b")),
        ]
    );
    assert_eq!(
        expect_payload!(event, TimeEntryUpdated).time_entry,
        Some(updated.clone())
    );
    let stored = expect_payload!(f.act(list_req(&t1, None, None)).await, TimeEntriesList);
    assert_eq!(stored.time_entries, vec![updated.clone()]);

    // The same values again: answered, not written, not broadcast.
    let reply = f
        .act(Payload::UpdateTimeEntryRequest(
            proto::UpdateTimeEntryRequest {
                started_at: Some(now - 7200),
                ..update_req(&entry.id)
            },
        ))
        .await;
    assert_eq!(reply.seq, 0);
    expect_payload!(reply, TimeEntryUpdated);
    // A rule broken by the update.
    let err = expect_error(
        &f.act(Payload::UpdateTimeEntryRequest(
            proto::UpdateTimeEntryRequest {
                ended_at: Some(now - 8000),
                ..update_req(&entry.id)
            },
        ))
        .await,
        "VALIDATION_ERROR",
    );
    assert_eq!(err.field.as_deref(), Some("started_at"));
    f.nothing_received().await;

    // An end set on a running timer stops it.
    let timer = expect_payload!(f.act(start_req(&t1, None)).await, TimerStarted)
        .time_entry
        .expect("time_entry");
    f.received().await;
    let stopped = expect_payload!(
        f.act(Payload::UpdateTimeEntryRequest(
            proto::UpdateTimeEntryRequest {
                ended_at: Some(timer.started_at + 1),
                ..update_req(&timer.id)
            }
        ))
        .await,
        TimeEntryUpdated
    )
    .time_entry
    .expect("time_entry");
    assert_eq!(stopped.duration_seconds, Some(1));
    f.received().await;
    let running = expect_payload!(f.act(running_req()).await, RunningTimerResponse);
    assert_eq!(running.time_entry, None);

    let reply = f.act(delete_req(&entry.id)).await;
    let deleted = expect_payload!(reply, TimeEntryDeleted);
    assert_eq!(
        (
            deleted.time_entry_id.as_str(),
            deleted.work_item_id.as_str(),
            deleted.user_id.as_str()
        ),
        (entry.id.as_str(), t1.as_str(), USER_A)
    );
    let (activity, event) = f.received().await;
    assert_eq!(activity.action, "deleted");
    assert_eq!(expect_payload!(event, TimeEntryDeleted), deleted);
    let list = expect_payload!(f.act(list_req(&t1, None, None)).await, TimeEntriesList);
    assert_eq!(list.total_count, 1);
    expect_error(&f.act(delete_req(&entry.id)).await, "NOT_FOUND");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_page_with_the_reference_defaults() {
    let mut f = Fixture::new(1).await;
    let t1 = f.id(0);
    let now = pm_shared::now_secs();
    let mut ids = Vec::new();
    for i in 0..5 {
        let start = now - 10_000 + i * 1000;
        ids.push(
            expect_payload!(
                f.act(manual_req(&t1, start, start + 100, None)).await,
                TimeEntryCreated
            )
            .time_entry
            .expect("time_entry")
            .id,
        );
    }
    ids.reverse(); // latest start first
    let page = |list: proto::TimeEntriesList| {
        (
            list.time_entries
                .into_iter()
                .map(|t| t.id)
                .collect::<Vec<_>>(),
            list.total_count,
        )
    };
    let all = expect_payload!(f.act(list_req(&t1, None, None)).await, TimeEntriesList);
    assert_eq!(page(all), (ids.clone(), 5));
    let some = expect_payload!(
        f.act(list_req(&t1, Some(2), Some(1))).await,
        TimeEntriesList
    );
    assert_eq!(page(some), (ids[1..3].to_vec(), 5));
    let one = expect_payload!(
        f.act(list_req(&t1, Some(0), Some(-4))).await,
        TimeEntriesList
    );
    assert_eq!(page(one), (ids[..1].to_vec(), 5));
    let none = expect_payload!(
        f.act(list_req(&t1, Some(9999), Some(5))).await,
        TimeEntriesList
    );
    assert_eq!(page(none), (vec![], 5));
    expect_error(
        &f.act(list_req(&uuid::Uuid::new_v4().to_string(), None, None))
            .await,
        "NOT_FOUND",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_time_entries_start_stop_edit_and_delete_live() {
    let mut f = Fixture::new(2).await;
    let (t1, t2) = (f.id(0), f.id(1));
    let http = f.server.http(Some(USER_A));

    let first = http
        .post(
            "/api/v1/time-entries",
            json!({"work_item_id": "LNK-1", "description": "one"}),
        )
        .await
        .ok()["time_entry"]
        .clone();
    let keys: Vec<&str> = first
        .as_object()
        .expect("dto")
        .keys()
        .map(String::as_str)
        .collect();
    let mut expected = vec![
        "id",
        "work_item_id",
        "user_id",
        "started_at",
        "ended_at",
        "duration_seconds",
        "description",
        "is_running",
        "created_at",
        "updated_at",
    ];
    expected.sort_unstable();
    let mut keys = keys;
    keys.sort_unstable();
    assert_eq!(keys, expected);
    assert_eq!(first["is_running"], true);
    assert_eq!(first["work_item_id"], t1.as_str());
    let (_, event) = f.received().await;
    expect_payload!(event, TimerStarted);

    // A second POST stops the first timer (the reference left both running).
    let second = http
        .post("/api/v1/time-entries", json!({"work_item_id": t2}))
        .await
        .ok()["time_entry"]
        .clone();
    let (_, event) = f.received().await;
    let started = expect_payload!(event, TimerStarted);
    assert_eq!(started.stopped_entry.map(|t| t.id), Some(s(&first, "id")));
    let again = http
        .get(&format!("/api/v1/time-entries/{}", s(&first, "id")))
        .await
        .ok()["time_entry"]
        .clone();
    assert_eq!(again["is_running"], false);
    assert!(again["duration_seconds"].is_i64());

    // PUT: stop, stop again (400), edit; another user may not.
    let second_id = s(&second, "id");
    let path = format!("/api/v1/time-entries/{second_id}");
    let stopped = http.put(&path, json!({"stop": true})).await.ok()["time_entry"].clone();
    assert_eq!(stopped["is_running"], false);
    let (_, event) = f.received().await;
    expect_payload!(event, TimerStopped);
    let e = http.put(&path, json!({"stop": true})).await;
    assert_eq!(e.expect_error(400, "VALIDATION_ERROR")["field"], "stop");
    let edited = http.put(&path, json!({"description": "two"})).await.ok()["time_entry"].clone();
    assert_eq!(edited["description"], "two");
    let (_, event) = f.received().await;
    expect_payload!(event, TimeEntryUpdated);
    f.server
        .http(Some(USER_B))
        .put(&path, json!({"description": "hijack"}))
        .await
        .expect_error(403, "UNAUTHORIZED");

    // A finished entry by REST, then the list (latest start first).
    let now = pm_shared::now_secs();
    let manual = http
        .post(
            "/api/v1/time-entries",
            json!({"work_item_id": t2, "started_at": now - 7200, "ended_at": now - 3600}),
        )
        .await
        .ok()["time_entry"]
        .clone();
    assert_eq!(manual["duration_seconds"], 3600);
    let (_, event) = f.received().await;
    expect_payload!(event, TimeEntryCreated);
    let list = http
        .get(&format!("/api/v1/work-items/{t2}/time-entries"))
        .await
        .ok()["time_entries"]
        .clone();
    let listed: Vec<String> = list
        .as_array()
        .expect("list")
        .iter()
        .map(|t| s(t, "id"))
        .collect();
    assert_eq!(listed, vec![second_id.clone(), s(&manual, "id")]);
    http.post(
        "/api/v1/time-entries",
        json!({"work_item_id": t2, "ended_at": now}),
    )
    .await
    .expect_error(400, "VALIDATION_ERROR");

    let deleted = http.delete(&path).await;
    assert_eq!(deleted.ok()["deleted_id"], second_id.as_str());
    let (_, event) = f.received().await;
    expect_payload!(event, TimeEntryDeleted);
    http.get(&path).await.expect_error(404, "NOT_FOUND");
    http.get("/api/v1/time-entries/nope")
        .await
        .expect_error(400, "VALIDATION_ERROR");
}
