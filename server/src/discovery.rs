//! The port discovery file `<data dir>/server.json`, as the reference writes it, so `pm` (ours
//! or the reference's) finds a server that bound port 0.
use std::path::{Path, PathBuf};

pub use pm_shared::rest_client::ServerInfo;

pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(pm_shared::rest_client::PORT_FILE)
}

/// Writes the file atomically (temp file + rename) so a reader never sees half of it.
pub fn write(data_dir: &Path, host: &str, port: u16) -> std::io::Result<PathBuf> {
    let info = ServerInfo {
        pid: std::process::id(),
        port,
        host: host.to_string(),
        started_at: rfc3339(pm_shared::now_secs()),
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

/// Unix seconds as RFC 3339 UTC ("2026-11-22T06:00:00Z").
pub fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_rfc3339() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(1_795_327_200), "2026-11-22T06:00:00Z");
    }
}
