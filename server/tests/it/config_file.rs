//! The reference's configuration: `<data dir>/config.toml` and its `PM_*` variables read by the
//! real binary, text limits as configuration, and one server per data directory.
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use pm_shared::proto::{self, Payload, WorkItemType};
use serde_json::json;

use crate::common::fixture::Fixture;
use crate::common::*;

/// The real `pm-server` on `dir`, with no `PM_*` variable of the developer's leaking in.
fn server_command(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_pm-server"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("PM_") {
            command.env_remove(name);
        }
    }
    command
        .args(["--port", "0", "--data-dir"])
        .arg(dir)
        .env("PM_LOG", "info")
        .stdin(Stdio::null());
    command
}

/// Runs the binary expecting it to refuse to start: its exit status and stderr.
fn refused(command: &mut Command) -> (Output, String) {
    let out = command.output().expect("run pm-server");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "pm-server started: {stderr}");
    (out, stderr)
}

fn comment(item: &str, chars: usize) -> Payload {
    Payload::CreateCommentRequest(proto::CreateCommentRequest {
        work_item_id: item.to_string(),
        content: "c".repeat(chars),
    })
}

fn error_code(reply: &proto::WebSocketMessage) -> Option<String> {
    match &reply.payload {
        Some(Payload::Error(e)) => Some(e.code.clone()),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_comment_limit_replaces_the_default() {
    let server = TestServer::start_with(|c| c.max_comment_length = 150_000).await;
    let mut f = Fixture::on(server, "CFG", 1).await;
    let item = f.items[0].id.clone();

    let reply = f.alice.request(comment(&item, 100_000)).await;
    let created = expect_payload!(reply, CommentCreated)
        .comment
        .expect("comment");
    assert_eq!(created.content.chars().count(), 100_000);
    let reply = f.alice.request(comment(&item, 150_001)).await;
    assert_eq!(
        error_code(&reply).as_deref(),
        Some("INVALID_MESSAGE"),
        "{reply:?}"
    );
    // REST checks the same limit.
    let http = f.server.http(Some(USER_A));
    let r = http
        .post(
            &format!("/api/v1/work-items/{item}/comments"),
            json!({"content": "c".repeat(150_000)}),
        )
        .await;
    assert!(r.status < 300, "{} {}", r.status, r.body);
    let r = http
        .post(
            &format!("/api/v1/work-items/{item}/comments"),
            json!({"content": "c".repeat(150_001)}),
        )
        .await;
    r.expect_error(400, "VALIDATION_ERROR");

    // The default server keeps the reference's default, 5,000.
    let mut d = Fixture::new(1).await;
    let item = d.items[0].id.clone();
    let reply = d.alice.request(comment(&item, 5_000)).await;
    expect_payload!(reply, CommentCreated);
    let reply = d.alice.request(comment(&item, 5_001)).await;
    assert_eq!(
        error_code(&reply).as_deref(),
        Some("INVALID_MESSAGE"),
        "{reply:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_server_on_the_same_data_dir_exits_naming_the_first() {
    let first = TestServer::start().await;
    let dir = first.data_dir();
    // What `main` writes once it listens (the in-process server has no `main`).
    pm_server::discovery::write(&dir, "127.0.0.1", first.addr.port()).expect("server.json");
    let port_file = std::fs::read_to_string(dir.join("server.json")).expect("read");

    let (out, stderr) = refused(&mut server_command(&dir));
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("pid {}", std::process::id()))
            && stderr.contains(&format!("port {}", first.addr.port())),
        "names the holder: {stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("server.json")).expect("read"),
        port_file,
        "the first server's discovery file is left alone"
    );
    // The first server still works.
    let mut client = first.connect(USER_A).await;
    client.create_project("Still here", "STILL").await;
    drop(client);

    // Stopped, it lets go of the data directory: the binary starts there now.
    let dir = first.stop().await;
    let mut child = server_command(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let info = wait_for_port_file(dir.path(), child.id()).await;
    assert!(
        info.is_some(),
        "the second server started once the first stopped"
    );
    let _ = child.kill();
    let _ = child.wait();
}

/// The port in `dir/server.json` once the process `pid` wrote it (None after 20 s).
async fn wait_for_port_file(dir: &Path, pid: u32) -> Option<u16> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while tokio::time::Instant::now() < deadline {
        if let Ok(text) = std::fs::read_to_string(dir.join("server.json")) {
            if let Ok(info) = serde_json::from_str::<serde_json::Value>(&text) {
                if info["pid"].as_u64() == Some(u64::from(pid)) {
                    return info["port"].as_u64().and_then(|p| u16::try_from(p).ok());
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

#[test]
fn the_config_file_is_checked_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("config.toml");

    std::fs::write(&file, "[server]\nprot = 8000\n").expect("write");
    let (_, stderr) = refused(&mut server_command(dir.path()));
    assert!(
        stderr.contains("`server.prot`") && stderr.contains(&file.display().to_string()),
        "{stderr}"
    );

    std::fs::write(&file, "[validation]\nmax_comment_length = \"lots\"\n").expect("write");
    let (_, stderr) = refused(&mut server_command(dir.path()));
    assert!(
        stderr.contains("`validation.max_comment_length`") && stderr.contains("integer"),
        "{stderr}"
    );

    std::fs::write(&file, "[validation]\nmax_comment_length = 500001\n").expect("write");
    let (_, stderr) = refused(&mut server_command(dir.path()));
    assert!(
        stderr.contains("max_comment_length") && stderr.contains("500000"),
        "{stderr}"
    );
    assert!(!dir.path().join("server.json").exists());
}

#[test]
fn auth_enabled_without_a_usable_key_refuses_to_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, stderr) = refused(server_command(dir.path()).env("PM_AUTH_ENABLED", "true"));
    assert!(stderr.contains("no usable key"), "{stderr}");
    let (_, stderr) = refused(
        server_command(dir.path())
            .env("PM_AUTH_ENABLED", "1")
            .env("PM_AUTH_JWT_SECRET", "too-short"),
    );
    assert!(stderr.contains("no usable key"), "{stderr}");

    std::fs::write(dir.path().join("config.toml"), "[auth]\nenabled = true\n").expect("write");
    let (_, stderr) = refused(&mut server_command(dir.path()));
    assert!(stderr.contains("no usable key"), "{stderr}");
    assert!(!dir.path().join("server.json").exists());
}

/// A reference-style config (the reference repository's own values, a log file and a short
/// idle shutdown) read by the binary: the limit holds, the log file fills, unsupported keys
/// are warned about, and the server stops by itself once nobody is connected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_honours_the_references_config_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("config.toml"),
        "[server]\nidle_shutdown_secs = 1\n[rate_limit]\nmax_requests = 1000\n\
         [websocket]\nheartbeat_timeout_secs = 31\n[validation]\n\
         max_description_length = 150000\nmax_comment_length = 150000\n\
         [logging]\ncolored = false\nfile = \"pm-server.log\"\n",
    )
    .expect("write");
    let mut child = server_command(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let port = wait_for_port_file(dir.path(), child.id())
        .await
        .expect("the server started");
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut client = WsClient::connect(addr, &format!("user_id={USER_A}"), None).await;
    let project = client.create_project("Config", "CONF").await;
    let reply = client
        .request(create_item_req(&project.id, WorkItemType::Task, "t", None))
        .await;
    let item = expect_payload!(reply, WorkItemCreated)
        .work_item
        .expect("item");
    let reply = client.request(comment(&item.id, 150_000)).await;
    expect_payload!(reply, CommentCreated);
    let reply = client.request(comment(&item.id, 150_001)).await;
    assert_eq!(error_code(&reply).as_deref(), Some("INVALID_MESSAGE"));
    drop(client);

    // Idle shutdown: a grace of 1 s, then two empty checks 10 s apart.
    let deadline = std::time::Instant::now() + Duration::from_secs(40);
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("pm-server did not shut down while idle");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(status.success(), "{status}");
    assert!(
        !dir.path().join("server.json").exists(),
        "a graceful stop removes server.json"
    );
    let log = std::fs::read_to_string(dir.path().join("log").join("pm-server.log"))
        .expect("the log file");
    assert!(log.contains("pm-server listening"), "{log}");
    assert!(log.contains("websocket.heartbeat_timeout_secs"), "{log}");
    assert!(log.contains("shutting down"), "{log}");
    assert!(!log.contains('\u{1b}'), "no colour codes in the file");
}
