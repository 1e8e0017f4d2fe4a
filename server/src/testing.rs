//! An in-process pm-server for tests and benchmarks: [`serve`](crate::serve) on a loopback port
//! the OS picks, over a data directory the caller owns, started and stopped exactly as `main`
//! does it. The integration tests of pm-server, pm (the CLI and the board) and pm-bench start
//! their servers here; their clients differ, and stay with them.
//!
//! Always compiled, and it needs nothing the server does not already use: behind a cargo
//! feature, pm-server's own integration tests would need `required-features`, and a target
//! whose features are off is skipped without a word by a plain `cargo test -p pm-server`. The
//! data directory's type is the caller's (`tempfile::TempDir`, usually), so tempfile stays a
//! dev-dependency.
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::{AppState, Config, SharedState};

/// How long opening the database, or a graceful stop, may take: a broken server fails its test
/// instead of hanging it.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// A running server. Dropping it stops the server too (its stop signal's sender goes away),
/// without waiting for it; [`TestServer::stop`] waits and reports how it ended.
pub struct TestServer<D> {
    pub addr: SocketAddr,
    pub state: SharedState,
    dir: D,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

/// The variable that runs every test server on PostgreSQL: the URL of a database the tests
/// may create databases from (`postgres://postgres@127.0.0.1:5432/postgres`).
pub const POSTGRES_ENV: &str = "PM_TEST_DATABASE_URL";

/// Whether test servers run on PostgreSQL (see [`POSTGRES_ENV`]).
pub fn on_postgres() -> bool {
    std::env::var_os(POSTGRES_ENV).is_some_and(|v| !v.is_empty())
}

/// With [`POSTGRES_ENV`] set, the URL of the data directory's own PostgreSQL database: created
/// (empty) the first time, named in the directory, so a server restarted on the directory
/// finds its database again, as it would its SQLite file. None: SQLite.
pub async fn postgres_for(dir: &Path) -> anyhow::Result<Option<String>> {
    use sqlx::Connection as _;
    let Some(admin) = std::env::var(POSTGRES_ENV).ok().filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let named = dir.join("postgres-database");
    if let Ok(url) = std::fs::read_to_string(&named) {
        return Ok(Some(url));
    }
    let name = format!("pm_t_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .with_context(|| format!("connecting to {POSTGRES_ENV}"))?;
    sqlx::Executor::execute(&mut conn, format!("CREATE DATABASE {name}").as_str())
        .await
        .context("creating a test database")?;
    let _ = conn.close().await;
    let url = with_database(&admin, &name);
    std::fs::write(&named, &url).context("naming the test database")?;
    Ok(Some(url))
}

/// `url` with its database (the path) replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    let base = match base[after_scheme..].find('/') {
        Some(slash) => &base[..after_scheme + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

impl<D: AsRef<Path>> TestServer<D> {
    /// A server on 127.0.0.1:<port picked by the OS> over `dir`, with `configure` applied to
    /// [`Config::for_data_dir`] first.
    pub async fn start(dir: D, configure: impl FnOnce(&mut Config)) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("bind 127.0.0.1:0")?;
        Self::start_on(listener, dir, configure).await
    }

    /// A server on a listener the caller bound (another address, e.g. `[::]:0`).
    pub async fn start_on(
        listener: TcpListener,
        dir: D,
        configure: impl FnOnce(&mut Config),
    ) -> anyhow::Result<Self> {
        let mut config = Config::for_data_dir(dir.as_ref());
        config.database_url = postgres_for(dir.as_ref()).await?;
        configure(&mut config);
        let state = tokio::time::timeout(DEADLINE, AppState::open(config))
            .await
            .context("opening the server's database timed out")??;
        let addr = listener.local_addr().context("the listener's address")?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(crate::serve(listener, state.clone(), async move {
            // A dropped sender stops the server as a sent signal does.
            let _ = stopped.await;
        }));
        Ok(TestServer {
            addr,
            state,
            dir,
            stop,
            task,
        })
    }

    /// `http://<addr>`: the base URL of REST, and of the WebSocket at `/ws` for the client SDK.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.as_ref()
    }

    /// Stops the server gracefully (as on SIGTERM: connections are closed, the database is
    /// left consistent) and hands back its data directory, to start another server on it.
    pub async fn stop(self) -> anyhow::Result<D> {
        let TestServer {
            dir, stop, task, ..
        } = self;
        let _ = stop.send(());
        tokio::time::timeout(DEADLINE, task)
            .await
            .context("the server did not stop in time")?
            .context("the server's task panicked")?
            .context("the server ended with an error")?;
        Ok(dir)
    }
}
