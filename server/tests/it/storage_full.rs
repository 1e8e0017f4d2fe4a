//! A full disk: the data directory on a small tmpfs of the test's own. Writes fail with
//! STORAGE_FULL while it is full and succeed again once there is room; every acknowledged write
//! is in the database, no seq is ever given to two events, `/ready` says what is going on, and
//! a client that resumes is either replayed exactly or told to resync.
//!
//! Mounting a tmpfs needs root (CI and the development machine run as root); elsewhere the
//! test says it was skipped.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;
use pm_shared::proto::{self, Payload, WebSocketMessage};
use prost::Message as _;
use sqlx::Connection;

/// A tmpfs mounted on a directory of its own, unmounted when dropped.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "pm-test-full"])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs {
            dir: dir.to_path_buf(),
        })
    }

    fn resize(&self, size: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.dir)
            .status()
            .expect("mount -o remount");
        assert!(status.success(), "remount {size}");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

fn described(project: &str, n: usize) -> Payload {
    Payload::CreateWorkItemRequest(proto::CreateWorkItemRequest {
        item_type: proto::WorkItemType::Task as i32,
        title: format!("item {n}"),
        // Large rows fill the disk quickly; the number keeps every page different.
        description: Some(format!("{n:06} {}", "x".repeat(7_000))),
        project_id: project.into(),
        ..Default::default()
    })
}

/// Sends `count` creates one after another; returns (acknowledged (id, seq), error codes).
async fn write(
    client: &mut WsClient,
    project: &str,
    from: usize,
    count: usize,
) -> (Vec<(String, u64)>, Vec<String>) {
    let mut acked = Vec::new();
    let mut errors = Vec::new();
    for n in from..from + count {
        let reply = client.request(described(project, n)).await;
        match &reply.payload {
            Some(Payload::WorkItemCreated(c)) => {
                let item = c.work_item.as_ref().expect("item");
                acked.push((item.id.clone(), reply.seq));
            }
            Some(Payload::Error(e)) => errors.push(e.code.clone()),
            other => panic!("unexpected reply {other:?}"),
        }
    }
    (acked, errors)
}

async fn ready_status(server: &TestServer) -> u16 {
    server.http(None).get("/ready").await.status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_never_loses_an_acknowledged_write_nor_reuses_a_seq() {
    sqlite_only!();
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(disk) = Tmpfs::mount(dir.path(), "3m") else {
        eprintln!("SKIPPED: mounting a tmpfs needs root");
        return;
    };
    let data = tempfile::tempdir_in(dir.path()).expect("data dir");
    let db_path = data.path().join("data.db");
    let server = TestServer::start_in(data, |_| {}).await;
    let epoch = server.epoch();
    let mut writer = server.connect(USER_A).await;
    let project = writer.create_project("Full", "FULL").await;
    let mut watcher = server.connect(USER_B).await;
    watcher.subscribe(&[&project.id]).await;

    // Fill the disk, and keep writing for a while after the first failure.
    let mut acked = Vec::new();
    let mut errors = Vec::new();
    let mut n = 0;
    while errors.len() < 40 {
        let (ok, failed) = write(&mut writer, &project.id, n, 20).await;
        n += 20;
        acked.extend(ok);
        errors.extend(failed);
        assert!(n < 5_000, "3 MB never filled up");
    }
    eprintln!(
        "{} writes acknowledged before the disk filled; errors: {errors:?}",
        acked.len()
    );
    assert!(
        errors.iter().any(|c| c == "STORAGE_FULL"),
        "a full disk is named as such: {errors:?}"
    );
    assert!(
        errors
            .iter()
            .all(|c| c == "STORAGE_FULL" || c == "INTERNAL_ERROR"),
        "{errors:?}"
    );
    assert_eq!(
        ready_status(&server).await,
        503,
        "/ready reports failing writes"
    );
    // REST says the same, with its own status.
    server
        .http(Some(USER_A))
        .post(
            "/api/v1/work-items",
            serde_json::json!({
                "project_id": project.id, "item_type": "task", "title": "over REST",
                "description": "y".repeat(7_000),
            }),
        )
        .await
        .expect_error(507, "STORAGE_FULL");

    // Room again: writes succeed again, and /ready says so.
    disk.resize("64m");
    let (ok, failed) = write(&mut writer, &project.id, n, 20).await;
    assert!(failed.len() < 20, "writes never recovered: {failed:?}");
    acked.extend(ok);
    let (ok, failed) = write(&mut writer, &project.id, n + 20, 5).await;
    assert!(failed.is_empty(), "{failed:?}");
    acked.extend(ok);
    assert_eq!(ready_status(&server).await, 200);

    let events = watcher.drain_events().await;
    let final_epoch = server.epoch();
    drop(writer);
    drop(watcher);
    let data = server.stop().await;

    // Every acknowledged write is in the database.
    let mut db = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db_path.display()))
        .await
        .expect("open the database");
    for (id, _) in &acked {
        let found: Option<String> = sqlx::query_scalar("SELECT id FROM pm_work_items WHERE id = ?")
            .bind(id)
            .fetch_optional(&mut db)
            .await
            .expect("query");
        assert!(
            found.is_some(),
            "acknowledged item {id} is not in the database"
        );
    }
    // No (epoch, seq) ever named two different events, and every event of the final epoch is
    // the one the database holds under that seq.
    let mut seen: HashMap<(String, u64), Vec<u8>> = HashMap::new();
    for msg in events
        .iter()
        .filter(|m| m.seq > 0 && m.stream == project.id)
    {
        let frame = msg.encode_to_vec();
        if let Some(before) = seen.insert((msg.epoch.clone(), msg.seq), frame.clone()) {
            assert_eq!(
                before, frame,
                "seq {} of epoch {} sent for two events",
                msg.seq, msg.epoch
            );
        }
        if msg.epoch == final_epoch {
            let stored: Option<Vec<u8>> =
                sqlx::query_scalar("SELECT frame FROM pm_events WHERE stream = ? AND seq = ?")
                    .bind(&project.id)
                    .bind(msg.seq as i64)
                    .fetch_optional(&mut db)
                    .await
                    .expect("query");
            let stored = stored
                .unwrap_or_else(|| panic!("event seq {} was published but not stored", msg.seq));
            let stored = WebSocketMessage::decode(stored.as_slice()).expect("stored frame");
            assert_eq!(stored.payload, msg.payload, "seq {}", msg.seq);
        }
    }
    // Acknowledged seqs are unique and item numbers were never handed out twice.
    let mut seqs: Vec<u64> = acked.iter().map(|(_, s)| *s).collect();
    seqs.sort_unstable();
    let before = seqs.len();
    seqs.dedup();
    if final_epoch == epoch {
        assert_eq!(seqs.len(), before, "an acknowledged seq was given twice");
    }
    let numbers: Vec<i64> =
        sqlx::query_scalar("SELECT item_number FROM pm_work_items WHERE project_id = ?")
            .bind(&project.id)
            .fetch_all(&mut db)
            .await
            .expect("numbers");
    let mut unique = numbers.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), numbers.len());
    drop(db);
    drop(data);
    drop(disk);
}
