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
