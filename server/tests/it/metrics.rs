//! `GET /metrics`: counters that move with real traffic, each server's own, admins only in
//! token mode.
use std::collections::HashMap;
use std::time::Duration;

use crate::common::*;
use pm_shared::proto::{self, Payload};
use serde_json::{json, Value};

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
    // SQLite's write-ahead log (PostgreSQL keeps its own, not in this server's files).
    if !pm_server::testing::on_postgres() {
        assert!(get(&after, "pm_sqlite_wal_bytes") > 0.0, "{after:?}");
    }

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
