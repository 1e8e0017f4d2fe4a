//! The port discovery file `<data dir>/server.json`, as the reference writes it, so `pm` (ours
//! or the reference's) finds a server that bound port 0.
use std::path::{Path, PathBuf};

pub use pm_shared::port_file::ServerInfo;

pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(pm_shared::port_file::PORT_FILE)
}

/// Writes the file atomically (temp file + rename) so a reader never sees half of it.
pub fn write(data_dir: &Path, host: &str, port: u16) -> std::io::Result<PathBuf> {
    let info = ServerInfo {
        pid: std::process::id(),
        port,
        host: host.to_string(),
        started_at: pm_shared::date::rfc3339(pm_shared::now_secs()),
        version: env!("CARGO_PKG_VERSION").to_string(),
    };
    let target = path(data_dir);
    let tmp = data_dir.join(format!(".server.json.{}", std::process::id()));
    let json = serde_json::to_string_pretty(&info).map_err(std::io::Error::other)?;
    std::fs::write(&tmp, json)?;
    std::fs::rename(&tmp, &target)?;
    Ok(target)
}

/// Removes the file if it still names this process.
pub fn remove(data_dir: &Path) {
    let target = path(data_dir);
    let ours = std::fs::read_to_string(&target)
        .ok()
        .and_then(|s| serde_json::from_str::<ServerInfo>(&s).ok())
        .is_some_and(|i| i.pid == std::process::id());
    if ours {
        let _ = std::fs::remove_file(target);
    }
}

/// The lock file in the data directory: one pm-server per data directory.
pub const LOCK_FILE: &str = "server.lock";

/// An OS lock on `<data dir>/server.lock`, held for the server's life. The OS lets it go when
/// the process ends, however it ends, so a crashed server never leaves a stale lock.
#[derive(Debug)]
pub struct DataDirLock {
    _file: std::fs::File,
}

/// Takes the data directory's lock, or says which server holds it. Two servers on one database
/// would number events independently and fail each other's writes.
pub fn lock(data_dir: &Path) -> anyhow::Result<DataDirLock> {
    std::fs::create_dir_all(data_dir).map_err(|e| {
        anyhow::anyhow!(
            "cannot create the data directory {}: {e}",
            data_dir.display()
        )
    })?;
    let path = data_dir.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| anyhow::anyhow!("cannot open the lock file {}: {e}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(DataDirLock { _file: file }),
        Err(std::fs::TryLockError::WouldBlock) => {
            let holder = std::fs::read_to_string(self::path(data_dir))
                .ok()
                .and_then(|s| serde_json::from_str::<ServerInfo>(&s).ok())
                .map(|i| format!("pid {}, port {}", i.pid, i.port))
                .unwrap_or_else(|| "still starting: it has not written server.json yet".into());
            anyhow::bail!(
                "another pm-server is already serving the data directory {} ({holder}); \
                 stop it first, or give this one another --data-dir",
                data_dir.display()
            )
        }
        Err(std::fs::TryLockError::Error(e)) => {
            anyhow::bail!("cannot lock {}: {e}", path.display())
        }
    }
}
