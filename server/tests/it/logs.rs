//! The log's options on a real server process writing its log file (`PM_LOG_FILE`,
//! `--log-file`, `--log-format`), request ids and connection spans, and tokens kept out of it.
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common::*;
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
