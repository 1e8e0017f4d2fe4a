//! Running pm as a service: the log's options (a real server process writing its log file),
//! request ids and connection spans, tokens kept out of the log, and `GET /metrics` moving
//! with real traffic.
use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common::*;
use pm_shared::proto::{self, Payload};
use serde_json::{json, Value};

/// A token-mode pm-server process, killed and reaped when dropped.
struct ServerProcess(Child);

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const SECRET: &str = "operations-test-secret-of-at-least-32-chars";

/// Starts the real `pm-server` binary in token mode on `dir` with extra `args` and `envs`, and
/// returns it with its address once it has written its port file.
async fn spawn_server(
    dir: &std::path::Path,
    args: &[&str],
    envs: &[(&str, &str)],
) -> (ServerProcess, std::net::SocketAddr) {
    let port_file = dir.join("server.json");
    let mut command = Command::new(env!("CARGO_BIN_EXE_pm-server"));
    command
        .args(["--port", "0", "--auth", "token", "--data-dir"])
        .arg(dir)
        .args(args)
        .env_remove("PM_LOG")
        .env("PM_AUTH_JWT_SECRET", SECRET)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in envs {
        command.env(k, v);
    }
    let child = ServerProcess(command.spawn().expect("spawn pm-server"));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(text) = std::fs::read_to_string(&port_file) {
            if let Ok(info) = serde_json::from_str::<Value>(&text) {
                if info["pid"].as_u64() == Some(u64::from(child.0.id())) {
                    let port = info["port"].as_u64().expect("port") as u16;
                    return (child, std::net::SocketAddr::from(([127, 0, 0, 1], port)));
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

/// Traffic whose every request carries `token`, in the Authorization header and in the query
/// string too (where a careless access log would print it): a REST read, a REST write, a
/// refused request, and a WebSocket session that creates a project. Returns the request ids
/// the server sent back.
async fn traffic_with_token(addr: std::net::SocketAddr, token: &str) -> Vec<String> {
    let http = reqwest::Client::new();
    let base = format!("http://{addr}");
    let mut ids = Vec::new();
    for (method, path, body) in [
        (reqwest::Method::GET, "/api/v1/projects", None),
        (
            reqwest::Method::POST,
            "/api/v1/projects",
            Some(json!({"title": "Logged", "key": "LOG"})),
        ),
        (reqwest::Method::GET, "/api/v1/no-such-route", None),
    ] {
        let mut request = http
            .request(method, format!("{base}{path}?token={token}"))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let id = response
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .expect("every response names its request id")
            .to_string();
        ids.push(id);
    }
    // A client's own request id is kept (and one with a space in it is not).
    let response = http
        .get(format!("{base}/api/v1/projects"))
        .bearer_auth(token)
        .header("x-request-id", "proxy-id-42")
        .send()
        .await
        .expect("request");
    assert_eq!(response.headers()["x-request-id"], "proxy-id-42");
    let response = http
        .get(format!("{base}/api/v1/projects"))
        .bearer_auth(token)
        .header("x-request-id", "forged id")
        .send()
        .await
        .expect("request");
    assert_ne!(response.headers()["x-request-id"], "forged id");
    // A bad token in the query is refused and not logged either.
    let refused = http
        .get(format!("{base}/ws?token={token}x"))
        .send()
        .await
        .expect("request");
    assert!(refused.status().is_client_error());

    let mut ws = WsClient::connect(addr, &format!("token={token}"), None).await;
    ws.create_project("Over the socket", "WSL").await;
    ws.close().await;
    ids
}

/// The log file, waiting until it holds `needle` (lines are written as they happen, but the
/// socket's close is logged by the server's task after the client has gone).
async fn log_text(path: &std::path::Path, needle: &str) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.contains(needle) || tokio::time::Instant::now() > deadline {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn pm_log_file_gets_json_lines_with_request_ids_and_never_a_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (server, addr) = spawn_server(
        dir.path(),
        &[],
        &[
            ("PM_LOG_FILE", "pm.log"),
            ("PM_LOG_FORMAT", "json"),
            ("PM_LOG_LEVEL", "info,pm_server=debug"),
        ],
    )
    .await;
    let user = "7d9f4c2e-3b1a-4e5f-8c6d-0a1b2c3d4e5f";
    let token = pm_server::auth::issue(SECRET, user, vec![], 3600).expect("token");
    let ids = traffic_with_token(addr, &token).await;

    // Relative to <data dir>/log, as the reference puts it.
    let text = log_text(&dir.path().join("log").join("pm.log"), "websocket closed").await;
    drop(server);
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(lines
        .iter()
        .any(|l| l["fields"]["message"] == "pm-server listening"));

    // Every REST request has its line, under its id, with the path and not the query.
    for id in &ids {
        let served = lines
            .iter()
            .find(|l| l["span"]["id"] == id.as_str() && l["fields"]["message"] == "request served")
            .unwrap_or_else(|| panic!("no line for request {id} in\n{text}"));
        assert_eq!(served["span"]["name"], "request");
        assert!(served["span"]["path"]
            .as_str()
            .is_some_and(|p| p.starts_with("/api/v1/")));
        assert!(served["fields"]["status"].is_u64());
    }
    // The WebSocket's lines carry the connection's span: its number and its user.
    let connected = lines
        .iter()
        .find(|l| l["fields"]["message"] == "websocket connected")
        .unwrap_or_else(|| panic!("no websocket line in\n{text}"));
    assert_eq!(connected["span"]["name"], "ws");
    assert_eq!(connected["span"]["user"], user);
    assert!(connected["span"]["conn"].is_u64(), "{connected}");

    // The token is nowhere: not whole, not its signature, not in a refused URL.
    let signature = token.rsplit('.').next().expect("a JWT has three parts");
    assert!(!text.contains(signature), "a token was logged:\n{text}");
    assert!(
        !text.contains("token="),
        "a query string was logged:\n{text}"
    );
}

#[tokio::test]
async fn log_file_and_text_format_flags_name_each_request() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("elsewhere").join("server.log");
    let file_arg = file.to_str().expect("a UTF-8 path");
    let (server, addr) = spawn_server(
        dir.path(),
        &[
            "--log-file",
            file_arg,
            "--log-format",
            "text",
            "--log-level",
            "pm_server=debug",
        ],
        // The flag beats its variable.
        &[("PM_LOG_FORMAT", "json"), ("PM_LOG_COLORED", "true")],
    )
    .await;
    let token = pm_server::auth::issue(SECRET, USER_A, vec![], 3600).expect("token");
    let ids = traffic_with_token(addr, &token).await;
    let text = log_text(&file, "websocket closed").await;
    drop(server);
    assert!(
        !text.trim_start().starts_with('{'),
        "text, not JSON:\n{text}"
    );
    assert!(
        !text.contains('\u{1b}'),
        "no colour codes in a file:\n{text}"
    );
    for id in &ids {
        assert!(
            text.contains(&format!("request{{id={id} ")),
            "no line for request {id} in\n{text}"
        );
    }
    // The connection's lines carry its span.
    assert!(
        text.lines()
            .any(|l| l.contains(&format!("ws{{user={USER_A} conn="))
                && l.contains("websocket connected")),
        "{text}"
    );
    let signature = token.rsplit('.').next().expect("a JWT has three parts");
    assert!(!text.contains(signature), "a token was logged:\n{text}");
}

#[tokio::test]
async fn a_bad_log_format_is_refused_with_the_choices() {
    let output = Command::new(env!("CARGO_BIN_EXE_pm-server"))
        .args(["--log-format", "xml"])
        .output()
        .expect("run pm-server");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("json") && stderr.contains("text"),
        "{stderr}"
    );
}

/// `GET /metrics` as name{labels} → value, for the samples (not the comments).
async fn scrape(http: &Http) -> HashMap<String, f64> {
    let reply = http.get("/metrics").await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let Value::String(text) = reply.body else {
        panic!("the metrics are text, not {:?}", reply.body)
    };
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (name, value) = l.rsplit_once(' ').expect("name value");
            (name.to_string(), value.parse().expect("a number"))
        })
        .collect()
}

fn get(m: &HashMap<String, f64>, name: &str) -> f64 {
    m.get(name).copied().unwrap_or(0.0)
}

#[tokio::test]
async fn metrics_move_with_the_traffic_of_this_server_only() {
    let server = TestServer::start_with(|c| c.max_connections_per_user = 2).await;
    let other = TestServer::start().await;
    let http = server.http(Some(USER_A));
    let before = scrape(&http).await;
    assert_eq!(get(&before, "pm_events_published_total"), 0.0);
    assert_eq!(get(&before, "pm_ws_connections{mode=\"desktop\"}"), 0.0);

    let mut alice = server.connect(USER_A).await;
    let project = alice.create_project("Metrics", "MET").await;
    let mut bob = server.connect(USER_B).await;
    bob.subscribe(&[&project.id]).await;
    for i in 0..5 {
        let reply = http
            .post(
                "/api/v1/work-items",
                json!({"project_id": project.id, "item_type": "task", "title": format!("T{i}")}),
            )
            .await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
    }
    for _ in 0..5 {
        bob.next_event(TIMEOUT).await;
    }
    // A resume of the project from seq 1 replays what came after it.
    let mut carol = server.connect(USER_C).await;
    let resumed = carol
        .subscribe_with(proto::Subscribe {
            cursors: vec![proto::ResumeCursor {
                stream: project.id.clone(),
                last_seq: 1,
                epoch: server.epoch(),
            }],
            ..Default::default()
        })
        .await;
    assert!(resumed.payload.is_none(), "{resumed:?}");
    // A third socket for one user is over --max-connections-per-user.
    let _second = server.connect(USER_A).await;
    let third = reqwest::Client::new()
        .get(format!("http://{}/ws?user_id={USER_A}", server.addr))
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .send()
        .await
        .expect("request");
    assert_eq!(third.status().as_u16(), 429);
    let after = scrape(&http).await;
    let moved = |name: &str| get(&after, name) - get(&before, name);
    // One project and five items: each event published once (ActivityLogCreated too).
    assert!(moved("pm_events_published_total") >= 6.0, "{after:?}");
    assert!(moved("pm_ws_frames_sent_total") >= 5.0, "{after:?}");
    assert!(moved("pm_ws_bytes_sent_total") > 500.0, "{after:?}");
    assert!(moved("pm_write_group_size_count") >= 1.0, "{after:?}");
    assert!(moved("pm_write_group_size_sum") >= 6.0, "{after:?}");
    assert!(moved("pm_write_seconds_count") >= 1.0, "{after:?}");
    assert!(moved("pm_write_seconds_sum") > 0.0, "{after:?}");
    assert!(
        moved("pm_http_requests_total{class=\"2xx\"}") >= 6.0,
        "{after:?}"
    );
    // The WebSocket upgrades (101).
    assert_eq!(
        moved("pm_http_requests_total{class=\"1xx\"}"),
        4.0,
        "{after:?}"
    );
    assert_eq!(moved("pm_replays_total"), 1.0, "{after:?}");
    // Items 2 to 5 of the project's stream.
    assert_eq!(moved("pm_replay_events_sum"), 4.0, "{after:?}");
    assert_eq!(moved("pm_ws_connections_opened_total"), 4.0, "{after:?}");
    assert_eq!(get(&after, "pm_ws_connections{mode=\"desktop\"}"), 4.0);
    assert_eq!(
        moved("pm_refused_total{reason=\"user_full\"}"),
        1.0,
        "{after:?}"
    );
    // bob and carol watch the project.
    let stream = format!("pm_stream_subscribers{{stream=\"{}\"}}", project.id);
    assert_eq!(get(&after, &stream), 2.0, "{after:?}");
    assert!(get(&after, "pm_sqlite_wal_bytes") > 0.0, "{after:?}");

    // Another server in the same process counts its own traffic only.
    let elsewhere = scrape(&other.http(Some(USER_A))).await;
    assert_eq!(get(&elsewhere, "pm_events_published_total"), 0.0);
    assert_eq!(get(&elsewhere, "pm_ws_connections_opened_total"), 0.0);
}

#[tokio::test]
async fn metrics_count_what_the_rate_limits_refuse() {
    let tight = TestServer::start_with(|c| {
        c.rate_limit_per_sec = 1;
        c.rate_limit_burst = 1;
        c.rest_rate_limit_per_sec = 1;
        c.rest_rate_limit_burst = 5;
    })
    .await;
    let mut flooder = tight.connect(USER_A).await;
    for _ in 0..5 {
        flooder
            .send(&proto::WebSocketMessage {
                message_id: "flood".into(),
                payload: Some(Payload::ListProjectsRequest(proto::ListProjectsRequest {})),
                ..Default::default()
            })
            .await;
    }
    // An answer to each: the project list, then RATE_LIMITED errors.
    let mut refused = 0;
    for _ in 0..5 {
        let answer = flooder.next_event(TIMEOUT).await;
        if matches!(&answer.payload, Some(Payload::Error(e)) if e.code == "RATE_LIMITED") {
            refused += 1;
        }
    }
    assert!(refused >= 3, "{refused}");
    let http = tight.http(Some(USER_A));
    let mut limited = 0;
    for _ in 0..10 {
        if http.get("/health").await.status == 429 {
            limited += 1;
        }
    }
    assert!(limited >= 4, "{limited}");
    // The bucket refills one request a second: room for the scrape.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let m = scrape(&http).await;
    assert_eq!(
        get(&m, "pm_rate_limited_total{transport=\"ws\"}"),
        f64::from(refused)
    );
    assert_eq!(
        get(&m, "pm_rate_limited_total{transport=\"rest\"}"),
        f64::from(limited)
    );
    assert_eq!(
        get(&m, "pm_http_requests_total{class=\"4xx\"}"),
        f64::from(limited)
    );
}

#[tokio::test]
async fn metrics_in_token_mode_are_for_server_admins_only() {
    let server = TestServer::start_team().await;
    let http = server.http(None);
    http.get("/metrics").await.expect_error(401, "UNAUTHORIZED");
    let user = http
        .run(
            http.request(reqwest::Method::GET, "/metrics")
                .bearer_auth(team_token(USER_A)),
        )
        .await;
    user.expect_error(403, "UNAUTHORIZED");
    let admin =
        pm_server::auth::issue(TEAM_SECRET, USER_B, vec!["admin".into()], 3600).expect("token");
    let reply = http
        .run(
            http.request(reqwest::Method::GET, "/metrics")
                .bearer_auth(admin),
        )
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let text = reply.body.as_str().expect("text");
    assert!(
        text.contains("pm_ws_connections{mode=\"token\"} 0"),
        "{text}"
    );
    assert!(text.contains("# TYPE pm_write_seconds histogram"), "{text}");
    // The two refusals above were answered, and counted.
    assert!(
        text.contains("pm_http_requests_total{class=\"4xx\"} 2"),
        "{text}"
    );
}

/// The description is OpenAPI 3.1 and tells the truth about the router: each operation it
/// lists is routed (not the unknown-route or wrong-method answer), and the routes it must
/// cover are there.
#[tokio::test]
async fn the_openapi_description_lists_every_route_and_only_routes() {
    let server = TestServer::start().await;
    let http = server.http(Some(USER_A));
    let reply = http.get("/api/v1/openapi.json").await;
    let doc = reply.ok();
    assert_eq!(doc["openapi"], "3.1.0");
    let mut operations = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in ["get", "post", "put", "delete"] {
            if item.get(method).is_some() {
                operations.push((method.to_uppercase(), path.clone()));
            }
        }
    }
    assert_eq!(operations.len(), 42, "{operations:?}");
    for expected in [
        ("GET", "/api/v1/projects/{id}/work-items"),
        ("POST", "/api/v1/sync/import"),
        ("DELETE", "/api/v1/projects/{id}/members/{user_id}"),
        ("GET", "/metrics"),
        ("PUT", "/api/v1/time-entries/{id}"),
    ] {
        assert!(
            operations.contains(&(expected.0.to_string(), expected.1.to_string())),
            "{expected:?} is not described"
        );
    }
    for (method, path) in &operations {
        if path == "/admin/shutdown" {
            continue;
        }
        let concrete = path
            .replace("{id}", "00000000-0000-4000-8000-000000000000")
            .replace("{user_id}", USER_B);
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let answer = http.run(http.request(method.clone(), &concrete)).await;
        assert_ne!(
            answer.status, 405,
            "{method} {path} is not routed: {:?}",
            answer.body
        );
        assert!(
            !(answer.status == 404 && answer.body["error"]["message"] == "No such route"),
            "{method} {path} is not routed"
        );
    }
    // Every operation answers the error JSON when it fails.
    let default = &doc["paths"]["/api/v1/work-items"]["post"]["responses"]["default"];
    assert_eq!(
        default["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/ErrorReply"
    );
    // The links name their target by `operationId`, as OpenAPI spells it.
    let links = &doc["paths"]["/api/v1/projects"]["post"]["responses"]["200"]["links"];
    assert_eq!(links["get_project"]["operationId"], "get_project");
    assert_eq!(
        links["get_project"]["parameters"]["id"],
        "$response.body#/project/id"
    );
}

/// What the installer asks pm-server for: completion scripts and man pages, from the same
/// definitions as `--help` (the hidden `man` among them).
#[test]
fn pm_server_prints_completions_and_writes_man_pages() {
    for shell in ["bash", "zsh", "fish"] {
        let out = Command::new(env!("CARGO_BIN_EXE_pm-server"))
            .args(["completions", shell])
            .env_remove("PM_LOG")
            .output()
            .expect("run pm-server");
        assert!(out.status.success(), "{shell}: {out:?}");
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(
            script.contains("log-format") && script.contains("issue-token"),
            "{shell}"
        );
        assert!(out.stderr.is_empty(), "{shell}: nothing logged: {out:?}");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let pages = dir.path().join("man1");
    let out = Command::new(env!("CARGO_BIN_EXE_pm-server"))
        .args(["man", "--dir"])
        .arg(&pages)
        .output()
        .expect("run pm-server");
    assert!(out.status.success(), "{out:?}");
    let top = std::fs::read_to_string(pages.join("pm-server.1")).expect("pm-server.1");
    assert!(top.contains(".TH pm-server 1"), "{top}");
    assert!(
        top.contains("PM_LOG_FORMAT"),
        "flags show their variables: {top}"
    );
    assert!(pages.join("pm-server-issue-token.1").exists());
    assert!(!pages.join("pm-server-man.1").exists());
    let help = Command::new(env!("CARGO_BIN_EXE_pm-server"))
        .arg("--help")
        .output()
        .expect("run pm-server");
    assert!(!String::from_utf8_lossy(&help.stdout).contains("\n  man "));
}
