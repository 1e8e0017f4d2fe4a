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
