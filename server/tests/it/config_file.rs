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

/// A throwaway RSA key pair for the RS256 test (generated with openssl for this test only).
const TEST_RSA_PRIVATE: &str = "-----BEGIN RSA PRIVATE KEY-----
MIIEowIBAAKCAQEAsf3DX+iUF3BPEm/3LeT0vn5VXYx7x/PfL8ICiqFcmYYZRQ3n
XgZaTBzjS4KuZkaMuRNbAFDYJGnEpP72sB9YFElx5sSjJ3ZDoYDgVWC0mfSmM1Tk
IHVuQqD3pCMbVvCz2yk7AqvQcKgQDxz/0pu2Ef4UF5lwPSl4Bu7FBW3mnTMeQWhk
VR2Mw1pdXy2SyAmbcue4+NoeOY60XdQA51AbKcYGe1dzp7j8NRYiHe6qd8N1qxYb
zC1obR1qCgXa+Gj+WIsIrg8KYhW5MYH3M20/kJU335+dVBOlKi+rM1+b4+SB12NA
H1l3b/9NJx2lpQHr62Jr41CmmRtwU7RS151XpQIDAQABAoIBAEyRVhktg3tbwGA1
kzcGfbRuw0lFdEAtbC7uvkolpSCT+83lb8jWYcTJTov+sQhlRAcfyO9nV7u+Vi4G
UlesfCbp+1oi7+67ZNeWiaqgucBa6p49YA+IhMCb3zwYMBwj2rMmVvDMuZOk8JeX
yYMvodC2pK0MQCjHbI9K6q1tvB2WFUzgQx5XOnmW50JiKMY5r8xs4x9R2qcY4u65
ibrD/Sk2kqribQ6RcGRAy+qTqGLA5sEKgNB64xjcnaMaXEMnJ/+As7lGoufcwFkg
Cc6mQzg1vXmV2GLBtxMzaqKmjx+pedamgtyGXf6Z64xk6PJoYavp5fI9KW+kmtbt
dJ17RMcCgYEA8gGRa5VAPOlfbK+oNm5fFJgqnlmn9+WmRHmPo79Y/vfjvfWnH9+d
VmwjX+rGh3o+NW3cwAZ76sfyYe4FagHh/GB/mvmCOQS5Xv10E/VPbAN2mV23Shnw
7vJrEeNve81I5tyzpW1yNyjAd1Im2ioFsEEIeJvzNVtfUIULBEFKfg8CgYEAvEiU
PoNzAk5n870UKaVsq7FW3fQhQX4IHlEOLm8+of9ogbmKrisW2VUyxioifAUrDOhz
jT4ZFYynTnLtvvIS/FVEXYUFE8+M3f9wUMqxzV9M1RPvopbQZ105jT+QcBW7DQhn
PyxHN6lId9+zuBq7+q7maFxO24r/9tvZFnrUQwsCgYEAkG1vJA2GsNN2J58NfK6R
//BwPuCy5bcga21A1DC2JDQ8rnmUq+kANTuEQRIUOXYy+h/+xnsYKR37AYbTpFhL
ThspDIwrs2umVZJdXCviokvO0+iiIo8owvHaBGr/dZsmDuFYNToEF/cyJgPZPAoo
KvAk5hXsJ8PINn2v/XIZyvECgYAIW3xhDfqj5pEMq57iflpFgLinX3e+bXa0ycpE
W2G/VRPxdifmtTjtaq+3RhWDxcL0brj6UwBQCY8/lzBgYmRfWPWQ5R+lknfhPr5g
h66+u/UwHBNt9x3HCMdOMr0ZjI1h9baHglKi8Nurnn1etakUZoEJrtc9PX1BGt8W
9VrIowKBgCsJ4iL0YutZ1sUFsSKdpMWaCPUMYfsE3J6JRD7y+/GmuVFG5EP+1fUL
uXOesO6GAg+bnyG7qrra/+Xjot0HzWrJrwwxW3vw79wNd6dMQ1dx5LPs+bxezUhA
i+mr7epGYiYILNxPfdtsq4f+atETGds5a92k+BeKIR05Q81leNXX
-----END RSA PRIVATE KEY-----\n";
const TEST_RSA_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAsf3DX+iUF3BPEm/3LeT0
vn5VXYx7x/PfL8ICiqFcmYYZRQ3nXgZaTBzjS4KuZkaMuRNbAFDYJGnEpP72sB9Y
FElx5sSjJ3ZDoYDgVWC0mfSmM1TkIHVuQqD3pCMbVvCz2yk7AqvQcKgQDxz/0pu2
Ef4UF5lwPSl4Bu7FBW3mnTMeQWhkVR2Mw1pdXy2SyAmbcue4+NoeOY60XdQA51Ab
KcYGe1dzp7j8NRYiHe6qd8N1qxYbzC1obR1qCgXa+Gj+WIsIrg8KYhW5MYH3M20/
kJU335+dVBOlKi+rM1+b4+SB12NAH1l3b/9NJx2lpQHr62Jr41CmmRtwU7RS151X
pQIDAQAB
-----END PUBLIC KEY-----\n";

/// `[auth] jwt_public_key_path` (the reference's RS256 mode): tokens signed with the matching
/// private key are accepted, others refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rs256_public_key_verifies_tokens() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key_path = dir.path().join("jwt.pub.pem");
    std::fs::write(&key_path, TEST_RSA_PUBLIC).expect("write the key");
    let server = TestServer::start_in(dir, |c| {
        c.auth = pm_server::config::AuthMode::Token;
        c.jwt_public_key_path = Some(key_path.clone());
    })
    .await;
    let (label, private_der) = pm_server::public_key::pem::decode(TEST_RSA_PRIVATE).expect("PEM");
    assert_eq!(label, "RSA PRIVATE KEY");
    let now = pm_shared::now_secs();
    let claims = pm_server::auth::Claims {
        sub: USER_A.into(),
        iat: now,
        exp: now + 3600,
        roles: vec![],
    };
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_rsa_der(&private_der),
    )
    .expect("sign");
    let mut client = server.connect_query(&format!("token={token}")).await;
    client.create_project("Signed", "RSA").await;

    let forged = pm_server::auth::issue(
        "an HS256 secret of at least 32 characters",
        USER_A,
        vec![],
        3600,
    )
    .expect("sign");
    let r = server
        .http(None)
        .request(reqwest::Method::GET, "/api/v1/projects")
        .bearer_auth(forged)
        .send()
        .await
        .expect("request");
    assert_eq!(r.status().as_u16(), 401);
    let r = server
        .http(None)
        .request(reqwest::Method::GET, "/api/v1/projects")
        .bearer_auth(token)
        .send()
        .await
        .expect("request");
    assert_eq!(r.status().as_u16(), 200);
}

/// Flag > environment > config file > default, shown with a file value out of range: it stops
/// the server only when nothing above it sets the same setting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flag_beats_the_environment_which_beats_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("config.toml"),
        "[validation]\nmax_comment_length = 600000\n",
    )
    .expect("write");
    let (_, stderr) = refused(&mut server_command(dir.path()));
    assert!(stderr.contains("max_comment_length"), "{stderr}");

    let starts = |command: &mut Command| {
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        let pid = child.id();
        let dir = dir.path().to_path_buf();
        async move {
            let started = wait_for_port_file(&dir, pid).await.is_some();
            let _ = child.kill();
            let _ = child.wait();
            started
        }
    };
    let mut env_wins = server_command(dir.path());
    env_wins.env("PM_VALIDATION_MAX_COMMENT_LENGTH", "150000");
    assert!(
        starts(&mut env_wins).await,
        "the environment's value is used"
    );

    std::fs::remove_file(dir.path().join("config.toml")).expect("remove");
    let mut env_only = server_command(dir.path());
    env_only.env("PM_VALIDATION_MAX_COMMENT_LENGTH", "600000");
    let (_, stderr) = refused(&mut env_only);
    assert!(
        stderr.contains("PM_VALIDATION_MAX_COMMENT_LENGTH"),
        "{stderr}"
    );
    let mut flag_wins = server_command(dir.path());
    flag_wins
        .env("PM_VALIDATION_MAX_COMMENT_LENGTH", "600000")
        .arg("--max-comment-length=150000");
    assert!(starts(&mut flag_wins).await, "the flag's value is used");
}

/// An import is held to the importing server's configured maxima, not to pm's defaults: a
/// comment of 100,000 characters moves between two servers configured for 150,000.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_accepts_texts_within_the_configured_limits() {
    let configure = |c: &mut pm_server::Config| c.max_comment_length = 150_000;
    let a = TestServer::start_with(configure).await;
    let mut f = Fixture::on(a, "IMP", 1).await;
    let item = f.items[0].id.clone();
    let reply = f.alice.request(comment(&item, 100_000)).await;
    expect_payload!(reply, CommentCreated);
    let export = f.server.http(Some(USER_A)).get("/api/v1/sync/export").await;
    let doc = export.ok().clone();

    let b = TestServer::start_with(configure).await;
    let http = b.http(Some(USER_A));
    let r = http.post("/api/v1/sync/import", doc).await;
    assert!(r.status < 300, "{} {}", r.status, r.body);
    let exported = http.get("/api/v1/sync/export").await;
    let comments = exported.ok()["comments"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(comments.len(), 1);
    assert_eq!(
        comments[0]["content"].as_str().map(|c| c.chars().count()),
        Some(100_000)
    );
}
