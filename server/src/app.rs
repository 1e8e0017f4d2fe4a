//! The router and `serve`, which tests run in-process on port 0.
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, DefaultBodyLimit};
use axum::middleware;
use axum::routing::get;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::Service as _;
use hyper::Request;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

use crate::transport::limits::PeerConnections;
use crate::transport::state::{AppState, SharedState};
use crate::transport::{rest, ws};

/// Every route, behind the Host/Origin rules and the REST rate limit (`transport::guard`), each
/// request in a span of its own (`transport::request_span`).
pub fn router(state: SharedState) -> Router {
    use crate::transport::guard;
    Router::new()
        .route("/ws", get(ws::upgrade))
        .merge(rest::routes())
        // A body as large as a WebSocket message may be, at least axum's default of 2 MB (the
        // config raises --max-message-bytes for large text maxima); the import keeps its own.
        .layer(DefaultBodyLimit::max(
            state.config.max_message_bytes.max(2 << 20),
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            guard::rest_rate_limit,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            guard::host_and_origin,
        ))
        // Outermost: the refusals above are logged and counted under the request's id too.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::transport::request_span::request_span,
        ))
        .with_state(state)
}

/// Serves until `shutdown` resolves, then closes WebSockets (1001), drains HTTP requests and
/// folds the write-ahead log into the database file (so a copy of it is a full backup).
///
/// Connections are served by hyper directly rather than `axum::serve`, which cannot bound how
/// long a client may take to send its request headers: without that bound, sockets that never
/// finish a request held file descriptors until none were left for anyone else. One address
/// may also hold only so many HTTP connections at once (`--max-http-connections-per-ip`).
pub async fn serve(
    listener: TcpListener,
    state: SharedState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(state.clone());
    let maintenance = tokio::spawn(maintain(state.clone()));
    let metrics_upkeep = tokio::spawn(upkeep(state.metrics.clone()));
    let notify = state.clone();
    let stopping = async move {
        // The caller's signal, or POST /admin/shutdown.
        let mut requested = notify.shutdown_signal();
        tokio::select! {
            _ = shutdown => {}
            _ = requested.wait_for(|down| *down) => {}
        }
        notify.request_shutdown();
    };
    tokio::pin!(stopping);
    let header_timeout = Duration::from_secs(state.config.header_read_timeout_secs.max(1));
    // Each connection's task holds a sender; when all are gone, every connection has closed.
    let (open_tx, mut open_rx) = tokio::sync::mpsc::channel::<()>(1);
    let peers = Arc::new(PeerConnections::default());
    let per_peer = state.config.max_http_connections_per_ip;
    loop {
        let (tcp, peer) = tokio::select! {
            _ = &mut stopping => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    // Out of file descriptors, typically: wait for some to be freed.
                    tracing::error!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Some(slot) = peers.try_open(peer.ip(), per_peer) else {
            state
                .metrics
                .refused(crate::metrics::Refused::PeerConnections);
            tracing::debug!(%peer, "refused: too many HTTP connections from this address");
            continue;
        };
        // Events are small and latency matters more than packet count.
        let _ = tcp.set_nodelay(true);
        let routes = TowerToHyperService::new(app.clone());
        let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            routes.call(request)
        });
        let mut stop = state.shutdown_signal();
        let open = open_tx.clone();
        tokio::spawn(async move {
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .serve_connection(TokioIo::new(tcp), service)
                .with_upgrades();
            tokio::pin!(connection);
            let served = tokio::select! {
                served = connection.as_mut() => served,
                _ = async { stop.wait_for(|down| *down).await.map(|_| ()) } => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = served {
                tracing::debug!(%peer, error = %e, "HTTP connection ended");
            }
            drop(slot);
            drop(open);
        });
    }
    drop(listener);
    drop(open_tx);
    let _ = open_rx.recv().await;
    maintenance.abort();
    metrics_upkeep.abort();
    // Record the watermark once more on the way out.
    if let Err(e) = state
        .writer
        .maintain(state.config.event_retention_count, retention_secs(&state))
        .await
    {
        tracing::warn!(error = %e, "final maintenance failed");
    }
    match state.writer.checkpoint_truncate().await {
        Ok(true) => {}
        Ok(false) => tracing::warn!("the final WAL checkpoint could not finish (readers busy)"),
        Err(e) => tracing::warn!(error = %e, "final WAL checkpoint failed"),
    }
    state.release_data_dir();
    Ok(())
}

/// Errors of one connection that `accept` reports; the listener itself is fine.
fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    )
}

fn retention_secs(state: &AppState) -> u64 {
    state.config.event_retention_days.saturating_mul(86_400)
}

/// Folds the metrics' histogram samples into their buckets now and then (see
/// `Metrics::upkeep`), whether or not anyone scrapes.
async fn upkeep(metrics: crate::metrics::Metrics) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tick.tick().await;
        metrics.upkeep();
    }
}

/// Prunes the replay log every `maintenance_interval_secs`.
async fn maintain(state: SharedState) {
    let every = std::time::Duration::from_secs(state.config.maintenance_interval_secs.max(1));
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        match state
            .writer
            .maintain(state.config.event_retention_count, retention_secs(&state))
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::info!(pruned = n, "pruned the replay log"),
            Err(e) => tracing::warn!(error = %e, "maintenance failed"),
        }
    }
}
