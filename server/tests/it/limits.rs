//! Limits answer as documented: a rate-limited frame gets a RATE_LIMITED error with its
//! message_id and the connection stays usable; connections over the per-user or total limit are
//! refused with the error JSON.

use std::time::Duration;

use crate::common::*;
use pm_shared::proto::{self, Payload, WebSocketMessage};

const USER: &str = "00000000-0000-4000-8000-000000000001";

#[tokio::test]
async fn frames_over_the_rate_limit_get_rate_limited_and_the_connection_recovers() {
    let server = TestServer::start_with(|c| {
        c.rate_limit_per_sec = 20;
        c.rate_limit_burst = 5;
    })
    .await;
    // The buckets' time stands still unless moved, so the counts below are exact whatever the
    // machine's speed.
    server.state.connections.clock.stop();
    let mut client = server.connect(USER).await;
    // Fire 30 pings at once: the burst of 5 passes, the rest are refused.
    for i in 0..30 {
        client
            .send(&WebSocketMessage::with_payload(
                format!("p{i}"),
                Payload::Ping(proto::Ping { timestamp: i }),
            ))
            .await;
    }
    let mut pongs = 0;
    let mut limited = Vec::new();
    for _ in 0..30 {
        let msg = client.next_event(Duration::from_secs(5)).await;
        match msg.payload {
            Some(Payload::Pong(_)) => pongs += 1,
            Some(Payload::Error(e)) => {
                assert_eq!(e.code, "RATE_LIMITED", "{e:?}");
                limited.push(msg.message_id);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(pongs >= 5, "the burst passes ({pongs} pongs)");
    assert!(
        limited.len() >= 20,
        "the rest is refused ({} refused)",
        limited.len()
    );
    assert!(
        limited.iter().all(|id| id.starts_with('p')),
        "refusals echo the request's message_id"
    );
    assert_eq!((pongs, limited.len()), (5, 25), "with the clock stopped");
    // Nothing refills while the clock stands still.
    client
        .send(&WebSocketMessage::with_payload(
            "still-empty",
            Payload::Ping(proto::Ping { timestamp: 0 }),
        ))
        .await;
    let refused = client.next_event(Duration::from_secs(5)).await;
    assert!(
        matches!(&refused.payload, Some(Payload::Error(e)) if e.code == "RATE_LIMITED"),
        "{refused:?}"
    );
    // After a pause the bucket has refilled and the same connection works.
    server
        .state
        .connections
        .clock
        .advance(Duration::from_millis(400));
    let project = client.create_project("Still here", "SH").await;
    assert_eq!(project.key, "SH");
}

#[tokio::test]
async fn connections_over_the_limits_are_refused_with_error_json() {
    let server = TestServer::start_with(|c| {
        c.max_connections = 3;
        c.max_connections_per_user = 2;
    })
    .await;
    let _a1 = server.connect(USER).await;
    let _a2 = server.connect(USER).await;
    let url = server.ws_url(&format!("user_id={USER}"));
    let refused = tokio_tungstenite::connect_async(url)
        .await
        .expect_err("third connection of one user");
    let tokio_tungstenite::tungstenite::Error::Http(response) = refused else {
        panic!("{refused:?}")
    };
    assert_eq!(response.status(), 429);
    let body: serde_json::Value =
        serde_json::from_slice(response.body().as_deref().unwrap_or_default()).expect("json");
    assert_eq!(body["error"]["code"], "CONNECTION_LIMIT");

    let _b = server.connect("00000000-0000-4000-8000-000000000002").await;
    let url = server.ws_url("user_id=00000000-0000-4000-8000-000000000003");
    let refused = tokio_tungstenite::connect_async(url)
        .await
        .expect_err("fourth connection in all");
    let tokio_tungstenite::tungstenite::Error::Http(response) = refused else {
        panic!("{refused:?}")
    };
    assert_eq!(response.status(), 503);

    // Closing a connection frees its slot.
    drop(_b);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let url = server.ws_url("user_id=00000000-0000-4000-8000-000000000003");
        if tokio_tungstenite::connect_async(url).await.is_ok() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the slot was never freed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
