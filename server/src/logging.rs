//! The server's log: where it goes (stderr, and the file `--log-file` names), how much of it
//! (`PM_LOG`, else `--log-level`) and in which shape (`--log-format text|json`).
//!
//! What the log may say is decided where lines are written: a REST line carries its request's
//! span (`request{id, method, path}`: the path never has the query string, where a `?token=`
//! would be), a WebSocket line its connection's span (`ws{conn, user}`), and no line carries a
//! header or a token.
use tracing_subscriber::fmt::writer::{BoxMakeWriter, MakeWriterExt as _};
use tracing_subscriber::EnvFilter;

use crate::config::{Config, LogFormat};

/// Installs the log for the process. PM_LOG, when set, wins over --log-level / PM_LOG_LEVEL /
/// `[logging] level` (default `info`).
pub fn init(config: &Config) -> anyhow::Result<()> {
    let filter = match EnvFilter::try_from_env("PM_LOG") {
        Ok(filter) => filter,
        Err(_) => {
            let level = config.log_level.as_deref().unwrap_or("info");
            EnvFilter::try_new(level)
                .map_err(|e| anyhow::anyhow!("log level `{level}` is not valid: {e}"))?
        }
    };
    let file = open_file(config)?;
    // Colour codes would end up in the file (or a JSON collector) as text. Otherwise tracing
    // decides (NO_COLOR).
    let ansi =
        config.log_colored != Some(false) && file.is_none() && config.log_format == LogFormat::Text;
    let writer = match file {
        Some(file) => BoxMakeWriter::new(std::io::stderr.and(file)),
        None => BoxMakeWriter::new(std::io::stderr),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(ansi);
    match config.log_format {
        LogFormat::Text => builder.try_init(),
        // The current span's fields flattened into each line's `span`, and the spans above it
        // in `spans`: a collector can group by request id or connection.
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .try_init(),
    }
    .map_err(|e| anyhow::anyhow!("cannot install the log: {e}"))
}

/// The file --log-file / PM_LOG_FILE / `[logging] file` names (in `[logging] dir`, by default
/// `<data dir>/log`), opened for appending; its directory is created.
fn open_file(config: &Config) -> anyhow::Result<Option<std::sync::Mutex<std::fs::File>>> {
    let Some(path) = config.log_file_path() else {
        return Ok(None);
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| {
            anyhow::anyhow!("cannot create the log directory {}: {e}", dir.display())
        })?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| anyhow::anyhow!("cannot open the log file {}: {e}", path.display()))?;
    Ok(Some(std::sync::Mutex::new(file)))
}
