//! A real pm-server on a loopback port with a temp database, and a runner for the real `pm`
//! binary.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::process::Output;

use assert_cmd::Command;
use serde_json::Value;

/// A pm-server ([`pm_server::testing`]) serving on 127.0.0.1:<random port> from a temp data
/// directory, on its own runtime thread (so tests can run the CLI with blocking calls). Stopped
/// on drop.
pub struct TestServer {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestServer {
    pub fn start() -> Self {
        Self::start_with(|_| {})
    }

    /// A server whose configuration `configure` adjusts first (e.g. token mode).
    pub fn start_with(configure: impl FnOnce(&mut pm_server::Config) + Send + 'static) -> Self {
        let data = tempfile::tempdir().expect("temp data dir");
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("server runtime");
            rt.block_on(async move {
                let server = pm_server::testing::TestServer::start(data, configure)
                    .await
                    .expect("start the server");
                addr_tx.send(server.addr).expect("send addr");
                let _ = stop_rx.await;
                server.stop().await.expect("a graceful stop");
            });
        });
        let addr = addr_rx.recv().expect("server started");
        TestServer {
            addr,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `pm --server <url> <args…>`.
    pub fn pm(&self, args: &[&str]) -> Run {
        let mut cmd = pm_command();
        cmd.arg("--server").arg(self.url()).args(args);
        run(cmd)
    }

    /// `pm --server <url> <args…>`, which must succeed; returns its JSON.
    pub fn ok(&self, args: &[&str]) -> Value {
        self.pm(args).success().json()
    }

    /// Creates a project and returns its JSON.
    pub fn project(&self, key: &str) -> Value {
        self.ok(&[
            "project",
            "create",
            "--title",
            &format!("Project {key}"),
            "--key",
            key,
        ])["project"]
            .clone()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The `pm` binary with none of the caller's pm settings in its environment.
pub fn pm_command() -> Command {
    let mut cmd = Command::cargo_bin("pm").expect("pm binary");
    for var in [
        "PM_SERVER",
        "PM_USER_ID",
        "PM_TOKEN",
        "PM_DATA_DIR",
        "GIT_DIR",
        "GIT_WORK_TREE",
    ] {
        cmd.env_remove(var);
    }
    cmd.timeout(std::time::Duration::from_secs(60));
    cmd
}

/// `pm` run with HOME set to `home` and the working directory `cwd`, both outside any git
/// repository, and no --server: discovery is left to the port file.
pub fn pm_in(home: &Path, cwd: &Path, args: &[&str]) -> Command {
    let mut cmd = pm_command();
    let ceiling = cwd.parent().unwrap_or(cwd);
    cmd.env("HOME", home)
        .env("GIT_CEILING_DIRECTORIES", ceiling)
        .current_dir(cwd)
        .args(args);
    cmd
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

pub fn run(mut cmd: Command) -> Run {
    let out: Output = cmd.output().expect("run pm");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

impl Run {
    pub fn success(self) -> Self {
        assert_eq!(
            self.code, 0,
            "expected success\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        assert!(self.stderr.is_empty(), "stderr: {}", self.stderr);
        self
    }

    /// Exit status 1, nothing on stdout, and `Error: …` on stderr; returns stderr.
    pub fn runtime_error(self) -> String {
        assert_eq!(
            self.code, 1,
            "expected exit 1\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        assert!(self.stdout.is_empty(), "stdout: {}", self.stdout);
        assert!(
            self.stderr.starts_with("Error: "),
            "stderr: {}",
            self.stderr
        );
        self.stderr
    }

    /// Exit status 2 (clap's usage error); returns stderr.
    pub fn usage_error(self) -> String {
        assert_eq!(
            self.code, 2,
            "expected exit 2\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        assert!(self.stdout.is_empty(), "stdout: {}", self.stdout);
        self.stderr
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.stdout))
    }
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// `YYYY-MM-DD` (UTC) of Unix seconds.
pub fn ymd(secs: i64) -> String {
    pm_shared::date::ymd(secs)
}
