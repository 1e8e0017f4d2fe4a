//! Server configuration: command-line flags, each with a `PM_*` environment variable, and the
//! reference's config file `<data dir>/config.toml` under both (see [`file`]).
//! Precedence: flag > environment > config file > default.
use std::path::PathBuf;

use pm_shared::domain::limits::{self, ValidationLimits};

pub mod file;
pub mod load;

pub use load::{load, load_from, Loaded};

#[derive(Debug, Clone, PartialEq, Eq, clap::Parser)]
#[command(
    name = "pm-server",
    version,
    about = "pm server: real-time collaborative agile board",
    after_help = "Settings also come from <data dir>/config.toml, in the Blazor Agile Board's \
                  format ([server], [auth], [validation], [logging], ...). A flag beats its \
                  environment variable, which beats the file, which beats the default."
)]
pub struct Config {
    #[command(subcommand)]
    pub command: Option<ServerCommand>,
    /// Who may do what: `desktop` trusts the user a client names (one trusted local user
    /// space); `token` requires a signed JWT and enforces project membership and roles.
    #[arg(long, env = "PM_AUTH_MODE", value_enum, default_value_t = AuthMode::Desktop)]
    pub auth: AuthMode,
    /// HS256 secret for token mode (at least 32 characters).
    #[arg(long, env = "PM_AUTH_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// Address to bind. In desktop mode it must be a loopback address unless
    /// --allow-remote-desktop is given too.
    #[arg(long, env = "PM_SERVER_HOST", default_value = "127.0.0.1")]
    pub host: String,
    /// Desktop mode on a non-loopback address (0.0.0.0, ::, a LAN address): everyone who can
    /// reach the port is trusted as whichever user they name. Refused unless given; with it the
    /// server starts with a warning and accepts any Host header (the Origin rule still holds).
    #[arg(long, env = "PM_ALLOW_REMOTE_DESKTOP")]
    pub allow_remote_desktop: bool,
    /// A web origin (e.g. `http://localhost:5000`, the Blazor UI's) allowed besides same-origin
    /// and loopback origins; repeatable. The environment variable takes a comma-separated list.
    #[arg(
        long = "allowed-origin",
        env = "PM_ALLOWED_ORIGINS",
        value_delimiter = ','
    )]
    pub allowed_origins: Vec<String>,
    /// Seconds a client may take to send a request's headers (and an idle keep-alive
    /// connection may stay open) before the connection is closed.
    #[arg(long, env = "PM_HEADER_READ_TIMEOUT_SECS", default_value_t = 10)]
    pub header_read_timeout_secs: u64,
    /// HTTP connections one address may hold open (WebSockets, once upgraded, count against
    /// the per-user limit instead); more are closed at once. 0: no limit.
    #[arg(long, env = "PM_MAX_HTTP_CONNECTIONS_PER_IP", default_value_t = 256)]
    pub max_http_connections_per_ip: usize,
    /// Seconds a WebSocket message may take from its first byte to its last; a slower one
    /// closes the connection (1008).
    #[arg(long, env = "PM_WS_FRAME_TIMEOUT_SECS", default_value_t = 30)]
    pub ws_frame_timeout_secs: u64,
    /// Bytes of incomplete WebSocket messages (counted by the length their frames announce)
    /// one user may have in flight across all their connections; more closes the connection
    /// that went over (1009). Each connection is bounded by --max-message-bytes as well.
    #[arg(long, env = "PM_WS_PARTIAL_BYTES_PER_USER", default_value_t = 8 * 1024 * 1024)]
    pub ws_partial_bytes_per_user: usize,
    /// The same bound for all connections together.
    #[arg(long, env = "PM_WS_PARTIAL_BYTES_TOTAL", default_value_t = 64 * 1024 * 1024)]
    pub ws_partial_bytes_total: usize,
    /// REST requests a client (a user in token mode, else an IP address) may make per second,
    /// sustained; more get 429 RATE_LIMITED with Retry-After. 0 turns the limit off.
    #[arg(long, env = "PM_REST_RATE_LIMIT_PER_SEC", default_value_t = 1000)]
    pub rest_rate_limit_per_sec: u32,
    /// REST requests a client may make at once above the sustained rate.
    #[arg(long, env = "PM_REST_RATE_LIMIT_BURST", default_value_t = 5000)]
    pub rest_rate_limit_burst: u32,
    /// Port to bind; 0 lets the OS choose (clients find it in <data-dir>/server.json).
    #[arg(long, env = "PM_SERVER_PORT", default_value_t = 0)]
    pub port: u16,
    /// Directory holding the database and the port discovery file
    /// [default: <git root of cwd>/.pm, else ~/.pm].
    #[arg(long, env = "PM_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// SQLite database file, relative to the data directory unless absolute.
    #[arg(long, env = "PM_DATABASE_PATH", default_value = "data.db")]
    pub database: PathBuf,
    /// Run on PostgreSQL instead of the SQLite file (`postgres://user:password@host/db`).
    /// Several servers may share one such database: every change reaches every subscriber of
    /// every server, in order. The data directory still holds this server's port file.
    #[arg(long, env = "PM_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Capacity of each connection's outgoing queue, in messages. A client that falls this far
    /// behind is cut off from live delivery and told to resync.
    #[arg(long, env = "PM_WS_SEND_BUFFER_SIZE", default_value_t = 1024)]
    pub send_buffer: usize,
    /// The same limit in bytes of encoded frames waiting for one connection.
    #[arg(long, env = "PM_WS_SEND_BUFFER_BYTES", default_value_t = 8 * 1024 * 1024)]
    pub send_buffer_bytes: usize,
    /// Requests (frames) a WebSocket may send per second, sustained; more get RATE_LIMITED.
    #[arg(long, env = "PM_RATE_LIMIT_PER_SEC", default_value_t = 1000)]
    pub rate_limit_per_sec: u32,
    /// Frames a WebSocket may send at once above the sustained rate.
    #[arg(long, env = "PM_RATE_LIMIT_BURST", default_value_t = 2000)]
    pub rate_limit_burst: u32,
    /// Open WebSocket connections allowed in all.
    #[arg(long, env = "PM_SERVER_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,
    /// Open WebSocket connections allowed per user.
    #[arg(long, env = "PM_MAX_CONNECTIONS_PER_USER", default_value_t = 100)]
    pub max_connections_per_user: usize,
    /// How long a write may wait for its turn before it is refused with TIMEOUT. A write that
    /// has started always finishes: nothing is ever left half-done.
    #[arg(long, env = "PM_REQUEST_TIMEOUT_SECS", default_value_t = 30)]
    pub request_timeout_secs: u64,
    /// Events kept per stream for replay; a client further behind reloads a snapshot.
    #[arg(long, env = "PM_EVENT_RETENTION_COUNT", default_value_t = 100_000)]
    pub event_retention_count: u64,
    /// Events older than this many days are dropped from the replay log.
    #[arg(long, env = "PM_EVENT_RETENTION_DAYS", default_value_t = 30)]
    pub event_retention_days: u64,
    /// How often the replay log is pruned, in seconds.
    #[arg(long, env = "PM_MAINTENANCE_INTERVAL_SECS", default_value_t = 60)]
    pub maintenance_interval_secs: u64,
    /// Seconds a connection's presence (who is on a board, see README "Presence") lasts after
    /// its last heartbeat; clients send one every 15 seconds. A server sharing a PostgreSQL
    /// database that stops sending its clients' presence loses them on the others as late.
    #[arg(long, env = "PM_PRESENCE_TIMEOUT_SECS", default_value_t = 30)]
    pub presence_timeout_secs: u64,
    /// Presence changes are gathered for this many milliseconds and sent as one frame per
    /// project: a burst of cursor moves reaches each watcher as one message.
    #[arg(long, env = "PM_PRESENCE_FLUSH_MS", default_value_t = 1200)]
    pub presence_flush_ms: u64,
    /// Largest WebSocket message accepted, in bytes; a larger one closes the socket (1009).
    #[arg(long, env = "PM_WS_MAX_MESSAGE_BYTES", default_value_t = 1024 * 1024)]
    pub max_message_bytes: usize,
    /// Most rows (projects, items, sprints, comments, links, time entries) one sync import may
    /// hold; a larger one is refused whole.
    #[arg(long, env = "PM_MAX_IMPORT_ROWS", default_value_t = 500_000)]
    pub max_import_rows: usize,
    /// An import larger than this many rows is written in parts of this size, one transaction
    /// each, so other users' writes get their turn in between (see `commands::import_plan`).
    #[arg(long, env = "PM_IMPORT_CHUNK_ROWS", default_value_t = 2_000)]
    pub import_chunk_rows: usize,
    /// Shut down after this many seconds without a WebSocket connection; 0: never. As the
    /// reference does: after a grace period of min(secs, 60) the server checks every
    /// max(secs/2, 10) seconds and stops after two checks in a row found no connection.
    #[arg(long, env = "PM_IDLE_SHUTDOWN_SECS", default_value_t = 0)]
    pub idle_shutdown_secs: u64,
    /// The reference's switch for token mode (`[auth] enabled`): true means `--auth token`.
    /// Booleans are `true`/`1` or `false`/`0`.
    #[arg(long, env = "PM_AUTH_ENABLED", value_parser = parse_bool)]
    pub auth_enabled: Option<bool>,
    /// Token mode with RS256 tokens: the issuer's RSA public key (PEM). With --jwt-secret too,
    /// the secret is used and this is ignored, as by the reference.
    #[arg(long, env = "PM_AUTH_JWT_PUBLIC_KEY_PATH")]
    pub jwt_public_key_path: Option<PathBuf>,
    /// The key of --jwt-public-key-path, read when the server opens ([`Config::read_keys`]).
    #[arg(skip)]
    pub jwt_public_key: Option<crate::public_key::PublicKey>,
    /// Log filter (`error`, `warn`, `info`, `debug`, `trace`, or a tracing directive list);
    /// PM_LOG, when set, wins [default: info].
    #[arg(long, env = "PM_LOG_LEVEL")]
    pub log_level: Option<String>,
    /// Colour the log (ANSI) [default: true; never when logging to a file].
    #[arg(long, env = "PM_LOG_COLORED", value_parser = parse_bool)]
    pub log_colored: Option<bool>,
    /// Also write the log to this file (appended); relative to `<data dir>/log` unless absolute.
    #[arg(long, env = "PM_LOG_FILE")]
    pub log_file: Option<PathBuf>,
    /// How each log line is written: `text` for people, `json` (one object a line, with the
    /// request or connection span's fields) for log collectors.
    #[arg(long, env = "PM_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Longest title (projects and work items), in characters: 1 to 500.
    #[arg(long, env = "PM_VALIDATION_MAX_TITLE_LENGTH", default_value_t = limits::TITLE_MAX)]
    pub max_title_length: usize,
    /// Longest description (projects and work items), in characters: 0 to 500,000.
    #[arg(long, env = "PM_VALIDATION_MAX_DESCRIPTION_LENGTH", default_value_t = limits::DESCRIPTION_MAX)]
    pub max_description_length: usize,
    /// Longest comment, in characters: 1 to 500,000.
    #[arg(long, env = "PM_VALIDATION_MAX_COMMENT_LENGTH", default_value_t = limits::COMMENT_MAX)]
    pub max_comment_length: usize,
    /// Longest sprint name, in characters: 1 to 500.
    #[arg(long, env = "PM_VALIDATION_MAX_SPRINT_NAME_LENGTH", default_value_t = limits::SPRINT_NAME_MAX)]
    pub max_sprint_name_length: usize,
    /// Most story points one work item may carry: 0 to 1,000.
    #[arg(long, env = "PM_VALIDATION_MAX_STORY_POINTS", default_value_t = limits::STORY_POINTS_MAX)]
    pub max_story_points: i32,
}

/// A boolean as the reference reads one (`true` or `1`), with `false` and `0` for no; anything
/// else is refused rather than read as false, so a typo cannot switch authentication off.
pub fn parse_bool(value: &str) -> Result<bool, String> {
    match value.trim() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        other => Err(format!("expected true, false, 1 or 0, got `{other}`")),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuthMode {
    Desktop,
    Token,
}

#[derive(Debug, Clone, PartialEq, Eq, clap::Subcommand)]
pub enum ServerCommand {
    /// Print a signed token for a user (token mode): pm-server issue-token --user-id <uuid>
    IssueToken {
        /// The user the token names (its `sub`)
        #[arg(long)]
        user_id: String,
        /// Also grant server administration (the `admin` role: /admin endpoints)
        #[arg(long)]
        admin: bool,
        /// Days until the token expires: 1 to 36500 (anything else is refused)
        #[arg(long, default_value_t = 30)]
        ttl_days: i64,
    },
    /// Convert a Blazor Agile Board database into this data directory's database (which must
    /// not hold a board yet), then exit: pm-server migrate --from <path/to/.pm/data.db>
    Migrate {
        /// The Blazor Agile Board's database file; it is only read
        #[arg(long = "from")]
        from: PathBuf,
    },
    /// Print a shell completion script: pm-server completions bash
    Completions {
        /// Shell to generate the script for
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write the man pages of pm-server and its subcommands into a directory
    /// (scripts/install.sh)
    #[command(hide = true)]
    Man {
        /// Directory to write the pages into (created when missing)
        #[arg(long)]
        dir: PathBuf,
    },
}

/// Shortest accepted JWT secret.
pub const MIN_SECRET_LEN: usize = 32;

impl Config {
    /// Rejects configurations that cannot work (e.g. token mode without a usable secret).
    pub fn validate(&self) -> anyhow::Result<()> {
        match (self.auth_enabled, self.auth) {
            (Some(true), AuthMode::Desktop) | (Some(false), AuthMode::Token) => {
                anyhow::bail!(
                "--auth {} contradicts PM_AUTH_ENABLED / --auth-enabled / [auth] enabled = {}: \
                 say one of them",
                if self.auth == AuthMode::Token { "token" } else { "desktop" },
                self.auth == AuthMode::Desktop
            )
            }
            _ => {}
        }
        let secret_ok = match self.jwt_secret.as_deref() {
            Some(secret) => secret.len() >= MIN_SECRET_LEN,
            // No secret: the public key decides, as in the reference.
            None => self.jwt_public_key.is_some(),
        };
        if self.auth == AuthMode::Token && !secret_ok {
            anyhow::bail!(
                "authentication is on (--auth token, PM_AUTH_ENABLED or [auth] enabled) but there \
                 is no usable key: set --jwt-secret / PM_AUTH_JWT_SECRET / [auth] jwt_secret to \
                 a secret of at least {MIN_SECRET_LEN} characters, or --jwt-public-key-path / \
                 PM_AUTH_JWT_PUBLIC_KEY_PATH / [auth] jwt_public_key_path to an RSA public key \
                 (PEM) for RS256 tokens. The server does not start unprotected."
            );
        }
        self.validation_ranges()?;
        if self.auth == AuthMode::Desktop
            && !self.allow_remote_desktop
            && !is_loopback_name(&self.host)
        {
            anyhow::bail!(
                "desktop mode trusts every caller, so it binds loopback only: --host {} would let \
                 anyone who can reach the port act as any user. Use token mode (--auth token), or \
                 say --allow-remote-desktop / PM_ALLOW_REMOTE_DESKTOP=true if you mean it",
                self.host
            );
        }
        Ok(())
    }

    /// Whether desktop mode was allowed on a non-loopback address (see `validate`).
    pub fn remote_desktop(&self) -> bool {
        self.auth == AuthMode::Desktop && !is_loopback_name(&self.host)
    }

    /// What `pm-server` uses with no flags and no `PM_*` variables: every default comes from
    /// the `#[arg(default_value…)]` attributes above, the one place defaults are written.
    ///
    /// Why parse instead of keeping consts: a const per flag would still be spelled out three
    /// times (the const, the attribute naming it, the struct literal), and a new flag could
    /// still be forgotten in the literal. Parsing an empty command line with clap's own
    /// `Command` takes every flag as it is declared, new ones included. The arguments' `env`
    /// names are removed from that `Command` first, so the process environment (a developer's
    /// `PM_*` variables) never leaks into tests or embedders.
    pub fn defaults() -> Self {
        use clap::{CommandFactory, FromArgMatches};
        let command = Config::command().mut_args(|arg| arg.env(None::<&'static str>));
        let matches = command
            .try_get_matches_from(["pm-server"])
            .expect("every pm-server flag has a default or is optional");
        Config::from_arg_matches(&matches).expect("clap's defaults fit Config")
    }

    /// A configuration for tests and embedding: [`Config::defaults`] on loopback, port 0 (the
    /// OS picks), with the given data directory.
    pub fn for_data_dir(dir: impl Into<PathBuf>) -> Self {
        Config {
            host: "127.0.0.1".into(),
            port: 0,
            data_dir: Some(dir.into()),
            ..Config::defaults()
        }
    }

    /// Reads the key files the configuration names (the RS256 public key of token mode, when no
    /// secret is given), so that a missing or malformed key stops the server at start.
    pub fn read_keys(&mut self) -> anyhow::Result<()> {
        if self.auth == AuthMode::Token && self.jwt_secret.is_none() {
            if let Some(path) = &self.jwt_public_key_path {
                self.jwt_public_key = Some(crate::public_key::PublicKey::read(path)?);
            }
        }
        Ok(())
    }

    /// Refuses text maxima outside the reference's ranges (its config would refuse them too).
    fn validation_ranges(&self) -> anyhow::Result<()> {
        fn check<T: PartialOrd + std::fmt::Display>(
            name: &str,
            value: T,
            range: std::ops::RangeInclusive<T>,
        ) -> anyhow::Result<()> {
            if range.contains(&value) {
                return Ok(());
            }
            anyhow::bail!(
                "validation.{name} (PM_VALIDATION_{}, --{}) must be {} to {}, got {value}",
                name.to_ascii_uppercase(),
                name.replace('_', "-"),
                range.start(),
                range.end()
            )
        }
        check(
            "max_title_length",
            self.max_title_length,
            limits::TITLE_MAX_RANGE,
        )?;
        check(
            "max_description_length",
            self.max_description_length,
            limits::DESCRIPTION_MAX_RANGE,
        )?;
        check(
            "max_comment_length",
            self.max_comment_length,
            limits::COMMENT_MAX_RANGE,
        )?;
        check(
            "max_sprint_name_length",
            self.max_sprint_name_length,
            limits::SPRINT_NAME_MAX_RANGE,
        )?;
        check(
            "max_story_points",
            self.max_story_points,
            limits::STORY_POINTS_MAX_RANGE,
        )
    }

    /// The maxima the commands validate against.
    pub fn validation_limits(&self) -> ValidationLimits {
        ValidationLimits {
            title: self.max_title_length,
            description: self.max_description_length,
            comment: self.max_comment_length,
            sprint_name: self.max_sprint_name_length,
            story_points: self.max_story_points,
        }
    }

    /// The message size the configured text maxima need: a description or comment the server
    /// accepts must fit in the message that carries it (4 bytes a character at worst, plus room
    /// for the rest of the message). The config raises --max-message-bytes to it unless the
    /// flag was given ([`load_from`]).
    pub fn message_bytes_for_text_limits(&self) -> usize {
        let longest = self
            .max_description_length
            .max(self.max_comment_length)
            .max(self.max_title_length);
        longest.saturating_mul(4).saturating_add(64 * 1024)
    }

    /// The file `--log-file` names: relative to `<data dir>/log`, as the reference puts it.
    pub fn log_file_path(&self) -> Option<PathBuf> {
        let file = self.log_file.as_ref()?;
        Some(if file.is_absolute() {
            file.clone()
        } else {
            self.data_dir().join("log").join(file)
        })
    }

    pub fn data_dir(&self) -> PathBuf {
        self.data_dir.clone().unwrap_or_else(default_data_dir)
    }

    pub fn database_path(&self) -> PathBuf {
        self.data_dir().join(&self.database)
    }
}

/// Whether a host name or address (as given to --host, or in a Host header without its port)
/// names this machine: `localhost`, `127.x.x.x`, `::1`, or an IPv4-mapped loopback address.
pub fn is_loopback_name(host: &str) -> bool {
    let host = host.trim();
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.to_canonical().is_loopback())
}

/// `<git root of the working directory>/.pm`, else `~/.pm`: the same place the reference server
/// and both CLIs look, so `pm` finds the server without flags.
pub use pm_shared::port_file::default_data_dir;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn desktop_mode_binds_loopback_unless_told_otherwise() {
        let mut c = Config::for_data_dir("/tmp/x");
        for host in [
            "127.0.0.1",
            "::1",
            "[::1]",
            "localhost",
            "127.1.2.3",
            "::ffff:127.0.0.1",
        ] {
            c.host = host.into();
            assert!(c.validate().is_ok(), "{host}");
        }
        for host in ["0.0.0.0", "::", "192.168.1.10", "example.com"] {
            c.host = host.into();
            c.allow_remote_desktop = false;
            let err = c.validate().expect_err(host).to_string();
            assert!(err.contains("--allow-remote-desktop"), "{err}");
            c.allow_remote_desktop = true;
            assert!(c.validate().is_ok(), "{host} allowed explicitly");
            assert!(c.remote_desktop());
        }
        c.auth = AuthMode::Token;
        c.allow_remote_desktop = false;
        c.jwt_secret = Some("0123456789abcdef0123456789abcdef".into());
        assert!(c.validate().is_ok(), "token mode may bind anywhere");
    }

    #[test]
    fn repeated_and_boolean_flags_parse() {
        use clap::Parser;
        let c = Config::try_parse_from([
            "pm-server",
            "--allowed-origin",
            "http://a.example",
            "--allowed-origin",
            "http://b.example",
            "--allow-remote-desktop",
        ])
        .expect("parse");
        assert_eq!(c.allowed_origins, ["http://a.example", "http://b.example"]);
        assert!(c.allow_remote_desktop);
    }

    #[test]
    fn the_test_config_is_the_servers_default_config() {
        use clap::{CommandFactory, Parser};
        // `defaults` never reads the environment: no argument of the command it parses has one.
        let with_env = Config::command()
            .get_arguments()
            .filter(|a| a.get_env().is_some())
            .count();
        assert!(with_env > 20, "the flags have PM_* variables ({with_env})");
        let stripped = Config::command().mut_args(|arg| arg.env(None::<&'static str>));
        assert!(stripped.get_arguments().all(|a| a.get_env().is_none()));

        // The test config differs from pm-server's defaults in data dir, host and port only.
        let dir = PathBuf::from("/tmp/pm-test-data");
        let test = Config::for_data_dir(&dir);
        let defaults = Config::defaults();
        assert_eq!(test.data_dir.as_deref(), Some(dir.as_path()));
        assert_eq!((test.host.as_str(), test.port), ("127.0.0.1", 0));
        assert_eq!(
            Config {
                data_dir: defaults.data_dir.clone(),
                host: defaults.host.clone(),
                port: defaults.port,
                ..test
            },
            defaults
        );
        assert_eq!(defaults.data_dir, None, "<git root>/.pm, else ~/.pm");
        assert_eq!(defaults.auth, AuthMode::Desktop);

        // And `defaults` is what `pm-server` itself parses (`Config::parse` in main) when no
        // PM_* variable is set, as in CI; with one set that comparison would test the variable.
        if !std::env::vars_os().any(|(k, _)| k.to_string_lossy().starts_with("PM_")) {
            assert_eq!(
                Config::try_parse_from(["pm-server"]).expect("parse"),
                defaults
            );
        }
    }
}
