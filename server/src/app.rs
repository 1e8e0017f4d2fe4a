//! Application state, the router, and `serve`, which tests run in-process on port 0.
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
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
use tokio::sync::watch;

use crate::config::{AuthMode, Config};
use crate::hub::EventHub;
use crate::store::Store;
use crate::transport::limits::{ConnectionLimits, PeerConnections};
use crate::transport::{rest, ws};

pub struct AppState {
    pub config: Config,
    pub store: Store,
    pub hub: EventHub,
    pub connections: Arc<ConnectionLimits>,
    /// Writes waiting for the single writer (see `commands::group`).
    pub writes: crate::commands::group::WriteQueue,
    /// REST token buckets per client (see `transport::guard`).
    pub rest_limiter: crate::transport::guard::RestLimiter,
    /// Turns for resumes' replay reads (`transport::ws::resume`), [`REPLAY_READERS`] at a time.
    pub replay_reads: tokio::sync::Semaphore,
    shutdown: watch::Sender<bool>,
}

/// Replay chunks read at once, server-wide. A reconnect storm is many resumes reading at once:
/// with the read pool's 8 connections all replaying, 8 SQLite threads and the tasks they hand
/// rows to kept both CPUs busy, and a concurrent writer's p99 rose ×8 (1.4 → 11 ms, 1,000
/// clients resuming 1,000 events each, `pm-bench resume-storm`). One at a time: ×1.41–1.91,
/// median ×1.82 of five runs (p99 ~1.8 ms), and a storm lasts ~15 % longer (2.2–2.7 s against
/// 1.9–2.1 s) for a quarter less server CPU (fewer threads handing rows over). A turn is held
/// for one read of at most a chunk, never while waiting for a client (bench/NOTES.md).
pub const REPLAY_READERS: usize = 1;

pub type SharedState = Arc<AppState>;

impl AppState {
    /// Opens (creating if needed) the database named by `config` and applies migrations.
    pub async fn open(config: Config) -> anyhow::Result<SharedState> {
        config.validate()?;
        if config.remote_desktop() {
            tracing::warn!(
                host = %config.host,
                "DESKTOP MODE ON A NON-LOOPBACK ADDRESS (--allow-remote-desktop): anyone who can \
                 reach this port can read and change every project as any user, and administer \
                 the server. Use --auth token for a shared server."
            );
        }
        let store = Store::open(&config.database_path()).await?;
        let hub = match config.auth {
            AuthMode::Desktop => EventHub::default(),
            AuthMode::Token => {
                let mut writer = store.writer().await;
                EventHub::members_only(crate::access::all_members(&mut writer).await?)
            }
        };
        // Every event an earlier run committed counts as published: a resume replays up to
        // each stream's last seq and goes live from there (see `EventHub::subscribe_if_at`).
        {
            let mut read = store.read.acquire().await?;
            hub.reset_published(crate::store::events::all_streams(&mut read).await?);
        }
        Ok(Arc::new(AppState {
            config,
            store,
            hub,
            connections: Arc::default(),
            writes: Default::default(),
            rest_limiter: Default::default(),
            replay_reads: tokio::sync::Semaphore::new(REPLAY_READERS),
            shutdown: watch::channel(false).0,
        }))
    }

    /// The read rules for `actor` (membership checks in token mode).
    pub fn viewer(&self, actor: &crate::commands::Actor) -> crate::access::Viewer {
        crate::access::Viewer {
            user_id: actor.user_id.clone(),
            mode: self.config.auth,
        }
    }

    /// Asks the server to shut down gracefully (POST /admin/shutdown).
    pub fn request_shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    /// Resolves when the server starts shutting down; open WebSockets close with 1001.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }
}

/// Every route, behind the Host/Origin rules and the REST rate limit (`transport::guard`).
pub fn router(state: SharedState) -> Router {
    use crate::transport::guard;
    Router::new()
        .route("/ws", get(ws::upgrade))
        .merge(rest::routes())
        .layer(middleware::from_fn_with_state(
            state.clone(),
            guard::rest_rate_limit,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            guard::host_and_origin,
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
    let notify = state.clone();
    let stopping = async move {
        // The caller's signal, or POST /admin/shutdown.
        let mut requested = notify.shutdown.subscribe();
        tokio::select! {
            _ = shutdown => {}
            _ = requested.wait_for(|down| *down) => {}
        }
        notify.shutdown.send_replace(true);
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
    // Record the watermark once more on the way out.
    if let Err(e) = state
        .store
        .maintain(state.config.event_retention_count, retention_secs(&state))
        .await
    {
        tracing::warn!(error = %e, "final maintenance failed");
    }
    match state.store.checkpoint_truncate().await {
        Ok(true) => {}
        Ok(false) => tracing::warn!("the final WAL checkpoint could not finish (readers busy)"),
        Err(e) => tracing::warn!(error = %e, "final WAL checkpoint failed"),
    }
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

/// Prunes the replay log every `maintenance_interval_secs`.
async fn maintain(state: SharedState) {
    let every = std::time::Duration::from_secs(state.config.maintenance_interval_secs.max(1));
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        match state
            .store
            .maintain(state.config.event_retention_count, retention_secs(&state))
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::info!(pruned = n, "pruned the replay log"),
            Err(e) => tracing::warn!(error = %e, "maintenance failed"),
        }
    }
}
