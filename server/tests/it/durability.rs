//! Durability seams: `kill -9` of a real server process during a stream of writes, and the
//! replay log's retention window.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::*;
use pm_shared::proto::{self, Payload};

/// A real pm-server process; killed (SIGKILL) and reaped when dropped.
struct ServerProcess(Child);

impl ServerProcess {
    fn kill_9(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill_9();
    }
}

/// Starts the real `pm-server` binary on `dir` and returns it with its base URL.
async fn spawn_server(dir: &std::path::Path) -> (ServerProcess, String) {
    let port_file = dir.join("server.json");
    let _ = std::fs::remove_file(&port_file);
    let child = ServerProcess(
        Command::new(env!("CARGO_BIN_EXE_pm-server"))
            .args(["--port", "0", "--data-dir"])
            .arg(dir)
            .env("PM_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn pm-server"),
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(text) = std::fs::read_to_string(&port_file) {
            if let Ok(info) = serde_json::from_str::<serde_json::Value>(&text) {
                if info["pid"].as_u64() == Some(u64::from(child.0.id())) {
                    let port = info["port"].as_u64().expect("port");
                    return (child, format!("http://127.0.0.1:{port}"));
                }
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "pm-server did not write its port file"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_writes_loses_no_committed_change_or_event() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut child, base) = spawn_server(dir.path()).await;
    let http = reqwest::Client::new();
    let project: serde_json::Value = http
        .post(format!("{base}/api/v1/projects"))
        .json(&serde_json::json!({"title": "Crash", "key": "CR"}))
        .send()
        .await
        .expect("create project")
        .json()
        .await
        .expect("json");
    let pid = project["project"]["id"].as_str().expect("id").to_string();

    // Three writers create items as fast as they can; every acknowledged id is recorded.
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..3 {
        let (http, base, pid, acked, stop) = (
            http.clone(),
            base.clone(),
            pid.clone(),
            acked.clone(),
            stop.clone(),
        );
        writers.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let res = http
                    .post(format!("{base}/api/v1/work-items"))
                    .json(&serde_json::json!({"project_id": pid, "item_type": "task", "title": format!("w{w}-{n}")}))
                    .timeout(Duration::from_secs(2))
                    .send()
                    .await;
                match res {
                    Ok(r) if r.status().is_success() => {
                        let body: serde_json::Value = r.json().await.expect("json");
                        acked.lock().expect("acked").push(body["work_item"]["id"].as_str().expect("id").to_string());
                    }
                    Ok(r) => panic!("refused write: {}", r.status()),
                    Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                }
            }
        }));
    }
    // Let a good number of writes commit, then kill the server without warning.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while acked.lock().expect("acked").len() < 150 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "writes are not going through"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    child.kill_9();
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.expect("writer");
    }
    let acked: Vec<String> = acked.lock().expect("acked").clone();

    // Restart on the same database.
    let (_child, base) = spawn_server(dir.path()).await;
    let ws_addr = base.trim_start_matches("http://").parse().expect("addr");
    let mut client = WsClient::connect(
        ws_addr,
        "user_id=00000000-0000-4000-8000-000000000099",
        None,
    )
    .await;
    let (items, snapshot) = client.work_items(&pid).await;
    let ids: std::collections::HashSet<&str> = items.iter().map(|w| w.id.as_str()).collect();
    for id in &acked {
        assert!(ids.contains(id.as_str()), "acknowledged item {id} was lost");
    }
    let last = snapshot.seq;
    assert_eq!(
        last as usize,
        items.len(),
        "one event per created item, no more, no less"
    );

    // The whole history replays gap-free from 0, and holds every acknowledged create.
    let reply = client
        .subscribe_with(proto::Subscribe {
            cursors: vec![proto::ResumeCursor {
                stream: pid.clone(),
                last_seq: 0,
                epoch: snapshot.epoch.clone(),
            }],
            ..Default::default()
        })
        .await;
    assert!(reply.payload.is_none(), "subscribe reply: {reply:?}");
    let events = client.take_events();
    let numbered: Vec<&proto::WebSocketMessage> = events.iter().filter(|e| e.seq > 0).collect();
    let seqs: Vec<u64> = numbered.iter().map(|e| e.seq).collect();
    assert_eq!(
        seqs,
        (1..=last).collect::<Vec<_>>(),
        "replay is exactly 1..={last}"
    );
    let created: std::collections::HashSet<String> = numbered
        .iter()
        .filter_map(|e| match &e.payload {
            Some(Payload::WorkItemCreated(c)) => c.work_item.as_ref().map(|w| w.id.clone()),
            _ => None,
        })
        .collect();
    for id in &acked {
        assert!(created.contains(id), "no event for acknowledged item {id}");
    }

    // New writes continue the sequence.
    let next = client
        .request(create_item_req(
            &pid,
            proto::WorkItemType::Task,
            "after the crash",
            None,
        ))
        .await;
    assert_eq!(next.seq, last + 1);
}

#[tokio::test]
async fn a_cursor_older_than_the_retained_history_must_resync() {
    let server = TestServer::start_with(|c| {
        c.event_retention_count = 5;
        c.maintenance_interval_secs = 1;
    })
    .await;
    let mut client = server.connect("00000000-0000-4000-8000-000000000001").await;
    let project = client.create_project("Retention", "RT").await;
    for i in 0..20 {
        client
            .create_item(
                &project.id,
                proto::WorkItemType::Task,
                &format!("t{i}"),
                None,
            )
            .await;
    }
    // Wait for the maintenance pass to prune all but the newest 5 events.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut probe = server.connect("00000000-0000-4000-8000-000000000002").await;
        let reply = probe
            .subscribe_with(proto::Subscribe {
                cursors: vec![proto::ResumeCursor {
                    stream: project.id.clone(),
                    last_seq: 0,
                    epoch: server.epoch(),
                }],
                ..Default::default()
            })
            .await;
        assert!(reply.payload.is_none());
        let resync = probe
            .take_events()
            .into_iter()
            .find_map(|e| match e.payload {
                Some(Payload::ResyncRequired(r)) => Some(r),
                _ => None,
            });
        if let Some(r) = resync {
            assert_eq!(r.reason, "cursor_too_old");
            assert_eq!(r.current_seq, 20);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "history was never pruned"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A cursor inside the window still resumes exactly.
    let mut late = server.connect("00000000-0000-4000-8000-000000000003").await;
    late.subscribe_with(proto::Subscribe {
        cursors: vec![proto::ResumeCursor {
            stream: project.id.clone(),
            last_seq: 17,
            epoch: server.epoch(),
        }],
        ..Default::default()
    })
    .await;
    let seqs: Vec<u64> = late
        .take_events()
        .iter()
        .filter(|e| e.seq > 0)
        .map(|e| e.seq)
        .collect();
    assert_eq!(seqs, vec![18, 19, 20]);
}

#[tokio::test]
async fn a_database_rolled_back_behind_the_watermark_gets_a_new_epoch() {
    sqlite_only!();
    let server = TestServer::start().await;
    let mut client = server.connect("00000000-0000-4000-8000-000000000001").await;
    let project = client.create_project("Rollback", "RB").await;
    let epoch = server.epoch();
    let dir = server.stop().await;
    // "Restore a backup": copy the database as it is now, write more, then put the copy back.
    let db = dir.path().join("data.db");
    let backup = dir.path().join("backup.db");
    let server = TestServer::start_in(dir, |_| {}).await;
    {
        let mut reader = server
            .state
            .store
            .read
            .sqlite()
            .expect("a SQLite store")
            .acquire()
            .await
            .expect("a reader");
        sqlx::query("VACUUM INTO ?")
            .bind(backup.to_string_lossy().to_string())
            .execute(&mut *reader)
            .await
            .expect("backup");
    }
    let mut client = server.connect("00000000-0000-4000-8000-000000000001").await;
    for i in 0..3 {
        client
            .create_item(
                &project.id,
                proto::WorkItemType::Task,
                &format!("t{i}"),
                None,
            )
            .await;
    }
    assert_eq!(server.epoch(), epoch, "a restart alone keeps the epoch");
    let dir = server.stop().await;
    for ext in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{ext}", db.display()));
    }
    std::fs::rename(&backup, &db).expect("restore");
    let server = TestServer::start_in(dir, |_| {}).await;
    assert_ne!(
        server.epoch(),
        epoch,
        "history went backwards: clients must not trust old cursors"
    );
}
