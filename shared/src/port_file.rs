//! The port discovery file `server.json` and the data directory it lives in: the format the
//! server writes and `pm` (ours or the reference's) reads to find a server that bound port 0,
//! and the chain both sides use to pick the data directory. Plain `std` + serde, so the server
//! shares it without linking the client SDK (`pm_client::rest_client` reads the file).
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Environment variable naming the server's data directory (the server reads it too).
pub const DATA_DIR_ENV: &str = "PM_DATA_DIR";
/// The port discovery file in the data directory.
pub const PORT_FILE: &str = "server.json";

/// The port discovery file `<data dir>/server.json`, as both our server and the reference's
/// write it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerInfo {
    pub pid: u32,
    pub port: u16,
    pub host: String,
    #[serde(default)]
    pub started_at: String,
    #[serde(default)]
    pub version: String,
}

impl ServerInfo {
    /// `http://host:port`; a wildcard bind address becomes the matching loopback address.
    pub fn url(&self) -> String {
        let host = match self.host.trim() {
            "" | "0.0.0.0" => "127.0.0.1".to_string(),
            "::" | "[::]" => "[::1]".to_string(),
            h if h.contains(':') && !h.starts_with('[') => format!("[{h}]"),
            h => h.to_string(),
        };
        format!("http://{host}:{}", self.port)
    }
}

/// `<git root of the working directory>/.pm`, else `~/.pm`, else `./.pm`: where `pm-server`
/// keeps its data (and port file) when it is given no data directory.
pub fn default_data_dir() -> PathBuf {
    git_root()
        .map(|root| root.join(".pm"))
        .or_else(home_data_dir)
        .unwrap_or_else(|| PathBuf::from(".pm"))
}

/// `git rev-parse --show-toplevel` of the working directory, if it is inside a work tree.
pub fn git_root() -> Option<PathBuf> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "--show-toplevel"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let root = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (!root.is_empty()).then(|| PathBuf::from(root))
}

fn home_data_dir() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".pm"))
}

/// The data directories whose port file is looked at, in order: `PM_DATA_DIR`, the git root's
/// `.pm`, `~/.pm` (duplicates removed).
pub fn data_dir_candidates() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    let env_dir = std::env::var_os(DATA_DIR_ENV)
        .filter(|d| !d.is_empty())
        .map(PathBuf::from);
    for dir in [env_dir, git_root().map(|r| r.join(".pm")), home_data_dir()]
        .into_iter()
        .flatten()
    {
        if !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    if dirs.is_empty() {
        dirs.push(PathBuf::from(".pm"));
    }
    dirs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_file_urls() {
        let info = |host: &str| ServerInfo {
            pid: 1,
            port: 9,
            host: host.into(),
            started_at: String::new(),
            version: String::new(),
        };
        assert_eq!(info("127.0.0.1").url(), "http://127.0.0.1:9");
        assert_eq!(info("0.0.0.0").url(), "http://127.0.0.1:9");
        assert_eq!(info("::").url(), "http://[::1]:9");
        assert_eq!(info("::1").url(), "http://[::1]:9");
        assert_eq!(info("localhost").url(), "http://localhost:9");
    }
}
