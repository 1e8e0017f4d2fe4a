//! The reference's config file, `<data dir>/config.toml` (the reference calls the data dir its
//! config dir: `<git root>/.pm`, else `~/.pm`), and the reference's `PM_*` variables that have
//! no pm flag of the same name.
//!
//! Every key the reference knows is listed in [`KEYS`] with what pm makes of it: the value of a
//! pm flag (used unless the command line or the environment gave that flag), or a setting pm
//! has no such feature for, which is reported loudly and ignored. A key the reference does not
//! know, or a value of the wrong type, is an error naming the file, the key and the type.
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The file's name in the data directory.
pub const FILE_NAME: &str = "config.toml";

/// What a key's value must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    /// An integer within these bounds.
    Integer(i64, i64),
    Boolean,
    /// A number (an integer is accepted too).
    Number,
}

impl Kind {
    fn describe(self) -> String {
        match self {
            Kind::Text => "a string".into(),
            Kind::Integer(min, i64::MAX) => format!("an integer of at least {min}"),
            Kind::Integer(min, max) => format!("an integer from {min} to {max}"),
            Kind::Boolean => "a boolean (true or false)".into(),
            Kind::Number => "a number".into(),
        }
    }

    fn accepts(self, value: &toml::Value) -> bool {
        match (self, value) {
            (Kind::Text, toml::Value::String(_)) => true,
            (Kind::Integer(min, max), toml::Value::Integer(i)) => (min..=max).contains(i),
            (Kind::Boolean, toml::Value::Boolean(_)) => true,
            (Kind::Number, toml::Value::Integer(_) | toml::Value::Float(_)) => true,
            _ => false,
        }
    }
}

/// What pm does with a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    /// The value of the pm flag with this id (the `Config` field): same meaning.
    Flag(&'static str),
    /// The same, for a path the reference reads relative to its config dir.
    FlagPath(&'static str),
    /// `logging.file`: a file name inside `logging.dir`.
    LogFile,
    /// `logging.dir`: where `logging.file` goes (`log`, in the data dir, by default).
    LogDir,
    /// `rate_limit.max_requests` / `window_secs`: pm's token bucket is refilled per second, so
    /// they become a burst of `max_requests` and a sustained rate of max_requests/window_secs.
    RateLimit,
    /// pm has no such feature: the key is reported and ignored. The text says why.
    Ignored(&'static str),
}

/// One key of the reference's config file.
#[derive(Debug, Clone, Copy)]
pub struct Key {
    pub section: &'static str,
    pub name: &'static str,
    pub kind: Kind,
    pub used: Use,
    /// The reference's environment variable for a key pm has no flag for (a flag's variable is
    /// the flag's own `env`).
    pub env: Option<&'static str>,
}

const fn key(section: &'static str, name: &'static str, kind: Kind, used: Use) -> Key {
    Key {
        section,
        name,
        kind,
        used,
        env: None,
    }
}

const fn env_key(
    section: &'static str,
    name: &'static str,
    kind: Kind,
    used: Use,
    env: &'static str,
) -> Key {
    Key {
        section,
        name,
        kind,
        used,
        env: Some(env),
    }
}

const U32: Kind = Kind::Integer(0, u32::MAX as i64);
const NO_CIRCUIT_BREAKER: Use = Use::Ignored(
    "pm has no circuit breaker: a failed write fails alone, the next one runs (see SPEC.md)",
);
const NO_RETRY: Use =
    Use::Ignored("pm does not retry failed writes inside the server: the client decides");

/// Every key of the reference's config file (pm-config at 0.1.4).
pub const KEYS: &[Key] = &[
    key("server", "host", Kind::Text, Use::Flag("host")),
    key(
        "server",
        "port",
        Kind::Integer(0, u16::MAX as i64),
        Use::Flag("port"),
    ),
    key(
        "server",
        "max_connections",
        Kind::Integer(1, 100_000),
        Use::Flag("max_connections"),
    ),
    key(
        "server",
        "idle_shutdown_secs",
        Kind::Integer(0, i64::MAX),
        Use::Flag("idle_shutdown_secs"),
    ),
    key("database", "path", Kind::Text, Use::Flag("database")),
    key("auth", "enabled", Kind::Boolean, Use::Flag("auth_enabled")),
    key("auth", "jwt_secret", Kind::Text, Use::Flag("jwt_secret")),
    key(
        "auth",
        "jwt_public_key_path",
        Kind::Text,
        Use::FlagPath("jwt_public_key_path"),
    ),
    env_key(
        "auth",
        "desktop_user_id",
        Kind::Text,
        Use::Ignored(
            "in desktop mode pm's user is the UUID the client names, else pm's default user",
        ),
        "PM_AUTH_DESKTOP_USER_ID",
    ),
    key("logging", "level", Kind::Text, Use::Flag("log_level")),
    key("logging", "colored", Kind::Boolean, Use::Flag("log_colored")),
    key("logging", "file", Kind::Text, Use::LogFile),
    key("logging", "dir", Kind::Text, Use::LogDir),
    key(
        "validation",
        "max_title_length",
        Kind::Integer(0, i64::MAX),
        Use::Flag("max_title_length"),
    ),
    key(
        "validation",
        "max_description_length",
        Kind::Integer(0, i64::MAX),
        Use::Flag("max_description_length"),
    ),
    key(
        "validation",
        "max_comment_length",
        Kind::Integer(0, i64::MAX),
        Use::Flag("max_comment_length"),
    ),
    key(
        "validation",
        "max_sprint_name_length",
        Kind::Integer(0, i64::MAX),
        Use::Flag("max_sprint_name_length"),
    ),
    key(
        "validation",
        "max_story_points",
        Kind::Integer(i32::MIN as i64, i32::MAX as i64),
        Use::Flag("max_story_points"),
    ),
    env_key(
        "validation",
        "max_error_message_length",
        Kind::Integer(50, 1_000),
        Use::Ignored("pm does not shorten error messages (the reference does not either)"),
        "PM_VALIDATION_MAX_ERROR_MESSAGE_LENGTH",
    ),
    env_key(
        "rate_limit",
        "max_requests",
        Kind::Integer(1, u32::MAX as i64),
        Use::RateLimit,
        "PM_RATE_LIMIT_MAX_REQUESTS",
    ),
    env_key(
        "rate_limit",
        "window_secs",
        Kind::Integer(1, u32::MAX as i64),
        Use::RateLimit,
        "PM_RATE_LIMIT_WINDOW_SECS",
    ),
    key(
        "websocket",
        "send_buffer_size",
        Kind::Integer(1, u32::MAX as i64),
        Use::Flag("send_buffer"),
    ),
    env_key(
        "websocket",
        "heartbeat_interval_secs",
        U32,
        Use::Ignored("pm answers the client's pings and sends none of its own"),
        "PM_WS_HEARTBEAT_INTERVAL_SECS",
    ),
    env_key(
        "websocket",
        "heartbeat_timeout_secs",
        U32,
        Use::Ignored("pm closes a connection on a stalled message (--ws-frame-timeout-secs), not on a missed heartbeat"),
        "PM_WS_HEARTBEAT_TIMEOUT_SECS",
    ),
    env_key(
        "activity_log",
        "retention_days",
        U32,
        Use::Ignored("pm keeps the activity log whole (the reference has no cleanup job either)"),
        "PM_ACTIVITY_LOG_RETENTION_DAYS",
    ),
    env_key(
        "activity_log",
        "cleanup_interval_hours",
        U32,
        Use::Ignored("pm keeps the activity log whole (the reference has no cleanup job either)"),
        "PM_ACTIVITY_LOG_CLEANUP_INTERVAL_HOURS",
    ),
    env_key(
        "circuit_breaker",
        "failure_threshold",
        U32,
        NO_CIRCUIT_BREAKER,
        "PM_CB_FAILURE_THRESHOLD",
    ),
    env_key(
        "circuit_breaker",
        "open_duration_secs",
        U32,
        NO_CIRCUIT_BREAKER,
        "PM_CB_OPEN_DURATION_SECS",
    ),
    env_key(
        "circuit_breaker",
        "half_open_success_threshold",
        U32,
        NO_CIRCUIT_BREAKER,
        "PM_CB_HALF_OPEN_SUCCESS_THRESHOLD",
    ),
    env_key(
        "circuit_breaker",
        "failure_window_secs",
        U32,
        NO_CIRCUIT_BREAKER,
        "PM_CB_FAILURE_WINDOW_SECS",
    ),
    env_key(
        "retry",
        "max_attempts",
        U32,
        NO_RETRY,
        "PM_RETRY_MAX_ATTEMPTS",
    ),
    env_key(
        "retry",
        "initial_delay_ms",
        U32,
        NO_RETRY,
        "PM_RETRY_INITIAL_DELAY_MS",
    ),
    env_key(
        "retry",
        "max_delay_secs",
        U32,
        NO_RETRY,
        "PM_RETRY_MAX_DELAY_SECS",
    ),
    env_key(
        "retry",
        "backoff_multiplier",
        Kind::Number,
        NO_RETRY,
        "PM_RETRY_BACKOFF_MULTIPLIER",
    ),
    env_key("retry", "jitter", Kind::Boolean, NO_RETRY, "PM_RETRY_JITTER"),
    env_key(
        "handler",
        "timeout_secs",
        U32,
        Use::Ignored("pm bounds a write's wait for its turn instead (--request-timeout-secs); a write that started always finishes"),
        "PM_HANDLER_TIMEOUT_SECS",
    ),
];

/// One key the file set, checked against [`KEYS`].
#[derive(Debug, Clone, PartialEq)]
pub struct Setting {
    pub key: Key,
    pub value: toml::Value,
}

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        (self.section, self.name) == (other.section, other.name)
    }
}

impl Setting {
    /// The value as a flag's argument.
    pub fn text(&self) -> String {
        match &self.value {
            toml::Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }
}

/// The settings of `<data_dir>/config.toml`, by section and key; none when there is no file.
pub fn read(data_dir: &Path) -> anyhow::Result<(PathBuf, Vec<Setting>)> {
    let path = data_dir.join(FILE_NAME);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((path, Vec::new())),
        Err(e) => anyhow::bail!("cannot read the config file {}: {e}", path.display()),
    };
    let settings = parse(&path, &text)?;
    Ok((path, settings))
}

/// Checks every section and key of `text` against [`KEYS`].
pub fn parse(path: &Path, text: &str) -> anyhow::Result<Vec<Setting>> {
    let file = path.display();
    let table: toml::Table = toml::from_str(text)
        .map_err(|e| anyhow::anyhow!("the config file {file} is not valid TOML: {e}"))?;
    let mut settings = Vec::new();
    for (section, value) in &table {
        let known: Vec<&Key> = KEYS.iter().filter(|k| k.section == section).collect();
        if known.is_empty() {
            anyhow::bail!(
                "unknown section [{section}] in the config file {file}; the sections are {}",
                sections()
            );
        }
        let toml::Value::Table(keys) = value else {
            anyhow::bail!(
                "`{section}` in the config file {file} must be a table ([{section}]), not {}",
                value.type_str()
            );
        };
        for (name, value) in keys {
            let Some(key) = known.iter().find(|k| k.name == name) else {
                let mut names = String::new();
                for k in &known {
                    let _ = write!(
                        names,
                        "{}{}",
                        if names.is_empty() { "" } else { ", " },
                        k.name
                    );
                }
                anyhow::bail!(
                    "unknown key `{section}.{name}` in the config file {file}; [{section}] has {names}"
                );
            };
            if !key.kind.accepts(value) {
                anyhow::bail!(
                    "`{section}.{name}` in the config file {file} must be {}, got {}",
                    key.kind.describe(),
                    shown(value)
                );
            }
            settings.push(Setting {
                key: **key,
                value: value.clone(),
            });
        }
    }
    Ok(settings)
}

fn sections() -> String {
    let mut names: Vec<&str> = KEYS.iter().map(|k| k.section).collect();
    names.dedup();
    names
        .iter()
        .map(|s| format!("[{s}]"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn shown(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => format!("the string {s:?}"),
        toml::Value::Integer(i) => format!("{i}"),
        other => format!("{} {other}", other.type_str()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        parse(Path::new("/x/.pm/config.toml"), text)
            .expect_err(text)
            .to_string()
    }

    #[test]
    fn the_reference_repositorys_own_file_parses() {
        // The reference repository's `.pm/config.toml` (its values, section 0 of the fact sheet).
        let text = "[server]\nidle_shutdown_secs = 2\n[rate_limit]\nmax_requests = 1000\n\
                    [websocket]\nheartbeat_timeout_secs = 31\n[validation]\n\
                    max_description_length = 150000\nmax_comment_length = 150000\n\
                    [logging]\ncolored = false\n";
        let settings = parse(Path::new("config.toml"), text).expect("parse");
        let mut names: Vec<String> = settings
            .iter()
            .map(|s| format!("{}.{}={}", s.key.section, s.key.name, s.text()))
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "logging.colored=false",
                "rate_limit.max_requests=1000",
                "server.idle_shutdown_secs=2",
                "validation.max_comment_length=150000",
                "validation.max_description_length=150000",
                "websocket.heartbeat_timeout_secs=31",
            ]
        );
    }

    #[test]
    fn unknown_keys_and_wrong_types_name_the_file_the_key_and_the_type() {
        let e = err("[server]\nprot = 8000\n");
        assert!(
            e.contains("`server.prot`") && e.contains("/x/.pm/config.toml"),
            "{e}"
        );
        assert!(e.contains("port"), "lists the known keys: {e}");
        let e = err("[server]\nport = \"8000\"\n");
        assert!(e.contains("`server.port`") && e.contains("integer"), "{e}");
        assert!(e.contains("/x/.pm/config.toml"), "{e}");
        let e = err("[server]\nport = 70000\n");
        assert!(e.contains("from 0 to 65535"), "{e}");
        let e = err("[auth]\nenabled = \"yes\"\n");
        assert!(e.contains("`auth.enabled`") && e.contains("boolean"), "{e}");
        let e = err("[sever]\nport = 1\n");
        assert!(e.contains("[sever]") && e.contains("[server]"), "{e}");
        let e = err("server = 1\n");
        assert!(e.contains("must be a table"), "{e}");
        let e = err("[server\n");
        assert!(e.contains("not valid TOML"), "{e}");
    }

    #[test]
    fn every_flag_key_names_a_config_field() {
        use clap::CommandFactory;
        let command = crate::Config::command();
        for key in KEYS {
            if let Use::Flag(id) | Use::FlagPath(id) = key.used {
                assert!(
                    command.get_arguments().any(|a| a.get_id() == id),
                    "{}.{} -> {id}",
                    key.section,
                    key.name
                );
            }
        }
    }
}
