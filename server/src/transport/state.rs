//! The server's state: its configuration and the parts every request may reach (the store's
//! readers, the hub, the writer, the connection limits). Built once by [`AppState::open`].
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::guard::RestLimiter;
use super::limits::ConnectionLimits;
use crate::commands::Command;
use crate::config::{AuthMode, Config};
use crate::hub::EventHub;
use crate::store::Store;
use crate::writer::Writer;

pub struct AppState {
    pub config: Config,
    /// The readers, the epoch and the write health; the writer's connection is the writer's.
    pub store: Arc<Store>,
    pub hub: Arc<EventHub>,
    /// The one writer: every mutation goes through it (see `crate::writer`).
    pub writer: Writer<Command>,
    pub connections: Arc<ConnectionLimits>,
    /// REST token buckets per client (see `transport::guard`).
    pub rest_limiter: RestLimiter,
    /// Turns for resumes' replay reads (`transport::ws::resume`), [`REPLAY_READERS`] at a time.
    pub replay_reads: tokio::sync::Semaphore,
    /// On PostgreSQL: the follower of the other servers' writes (see `crate::follow`).
    pub follower: Option<Arc<crate::follow::FollowerHealth>>,
    /// This server's counters, shared with the hub and the writer (`GET /metrics`).
    pub metrics: crate::metrics::Metrics,
    /// Who is on which board right now (never stored, see `crate::presence`).
    pub presence: Arc<crate::presence::Presence>,
    shutdown: watch::Sender<bool>,
    /// One server per data directory, until it has stopped serving (see
    /// [`AppState::release_data_dir`]).
    data_dir_lock: std::sync::Mutex<Option<crate::discovery::DataDirLock>>,
}

/// Replay chunks read at once, server-wide. A reconnect storm is many resumes reading at once:
/// with the read pool's connections all replaying, their SQLite threads and the tasks they hand
/// rows to kept both CPUs busy and a concurrent writer's p99 rose several times over; one at a
/// time keeps it within the goal, for a storm that lasts a little longer. A turn is held for
/// one read of at most a chunk, never while waiting for a client. Measured: bench/NOTES.md,
/// "Resume storm".
pub const REPLAY_READERS: usize = 1;

pub type SharedState = Arc<AppState>;

impl AppState {
    /// Lets the data directory go once the server has stopped serving (`app::serve` calls it
    /// last): a server started next on the same directory in the same process (a restart in
    /// the tests) then need not wait for every task that still holds this state to drop it. A
    /// process that ends lets it go anyway.
    pub fn release_data_dir(&self) {
        let lock = self
            .data_dir_lock
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        drop(lock);
    }

    /// Opens (creating if needed) the database named by `config` and applies migrations.
    pub async fn open(mut config: Config) -> anyhow::Result<SharedState> {
        config.read_keys()?;
        config.validate()?;
        if config.remote_desktop() {
            tracing::warn!(
                host = %config.host,
                "DESKTOP MODE ON A NON-LOOPBACK ADDRESS (--allow-remote-desktop): anyone who can \
                 reach this port can read and change every project as any user, and administer \
                 the server. Use --auth token for a shared server."
            );
        }
        // Before the database is opened: a second server must not touch it at all.
        let data_dir_lock = crate::discovery::lock(&config.data_dir())?;
        let (store, writer) = match &config.database_url {
            Some(url) => Store::open_postgres(url).await?,
            None => Store::open(&config.database_path()).await?,
        };
        let mut read = store.read.acquire().await?;
        let metrics = crate::metrics::Metrics::new();
        let hub = match config.auth {
            AuthMode::Desktop => EventHub::default(),
            AuthMode::Token => {
                EventHub::members_only(crate::access::all_members(&mut read.conn()).await?)
            }
        }
        .with_metrics(metrics.clone());
        // Every event an earlier run committed counts as published: a resume replays up to
        // each stream's last seq and goes live from there (see `EventHub::subscribe_if_at`).
        hub.reset_published(crate::store::events::all_streams(&mut read.conn()).await?);
        drop(read);
        let (store, hub) = (Arc::new(store), Arc::new(hub));
        let settings = crate::writer::Settings {
            auth: config.auth,
            request_timeout: Duration::from_secs(config.request_timeout_secs.max(1)),
            limits: config.validation_limits(),
        };
        let writer = Writer::spawn(writer, store.clone(), hub.clone(), settings);
        let shutdown = watch::channel(false).0;
        let follower = config.database_url.clone().map(|url| {
            crate::follow::spawn(
                url,
                store.node().to_string(),
                store.clone(),
                hub.clone(),
                shutdown.subscribe(),
            )
        });
        let presence = Arc::new(crate::presence::Presence::new(
            store.node(),
            crate::presence::Timing::of(&config),
        ));
        presence.spawn(hub.clone(), shutdown.subscribe());
        if let Some(url) = config.database_url.clone() {
            presence.relay(url, store.clone(), shutdown.subscribe());
        }
        Ok(Arc::new(AppState {
            config,
            store,
            hub,
            writer,
            connections: Arc::default(),
            rest_limiter: Default::default(),
            replay_reads: tokio::sync::Semaphore::new(REPLAY_READERS),
            follower,
            metrics,
            presence,
            shutdown,
            data_dir_lock: std::sync::Mutex::new(Some(data_dir_lock)),
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
