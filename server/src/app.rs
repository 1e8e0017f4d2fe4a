//! Application state, the router, and `serve`, which tests run in-process on port 0.
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::{AuthMode, Config};
use crate::hub::EventHub;
use crate::store::Store;
use crate::transport::limits::ConnectionLimits;
use crate::transport::{rest, ws};

pub struct AppState {
    pub config: Config,
    pub store: Store,
    pub hub: EventHub,
    pub connections: Arc<ConnectionLimits>,
    /// Writes waiting for the single writer (see `commands::group`).
    pub writes: crate::commands::group::WriteQueue,
    shutdown: watch::Sender<bool>,
}

pub type SharedState = Arc<AppState>;

impl AppState {
    /// Opens (creating if needed) the database named by `config` and applies migrations.
    pub async fn open(config: Config) -> anyhow::Result<SharedState> {
        config.validate()?;
        let store = Store::open(&config.database_path()).await?;
        let hub = match config.auth {
            AuthMode::Desktop => EventHub::default(),
            AuthMode::Token => {
                let mut writer = store.writer().await;
                EventHub::members_only(crate::access::all_members(&mut writer).await?)
            }
        };
        Ok(Arc::new(AppState {
            config,
            store,
            hub,
            connections: Arc::default(),
            writes: Default::default(),
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

pub fn router(state: SharedState) -> Router {
    Router::new()
        .route("/ws", get(ws::upgrade))
        .merge(rest::routes())
        .with_state(state)
}

/// Serves until `shutdown` resolves, then closes WebSockets (1001) and drains HTTP requests.
pub async fn serve(
    listener: TcpListener,
    state: SharedState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    let app = router(state.clone());
    let listener = listener.tap_io(|tcp| {
        // Events are small and latency matters more than packet count.
        let _ = tcp.set_nodelay(true);
    });
    let maintenance = tokio::spawn(maintain(state.clone()));
    let notify = state.clone();
    let served = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        // The caller's signal, or POST /admin/shutdown.
        let mut requested = notify.shutdown.subscribe();
        tokio::select! {
            _ = shutdown => {}
            _ = requested.wait_for(|down| *down) => {}
        }
        notify.shutdown.send_replace(true);
    })
    .await;
    maintenance.abort();
    // Record the watermark once more on the way out.
    if let Err(e) = state
        .store
        .maintain(state.config.event_retention_count, retention_secs(&state))
        .await
    {
        tracing::warn!(error = %e, "final maintenance failed");
    }
    served
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
