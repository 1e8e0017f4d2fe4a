//! The whole configuration: the command line and `PM_*` variables (clap), the config file under
//! them, and the reference's variables that have no pm flag. Precedence: flag > environment >
//! config file > default.
//!
//! The file's values become command-line arguments placed before the real ones, added only for
//! flags neither the command line nor the environment set (clap reports where each value came
//! from); the whole line is then parsed again. So every value, whatever its source, goes
//! through the same parser and the same checks.
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches};

use super::file::{self, Setting, Use};
use super::{AuthMode, Config};

/// A configuration and what the server should say about it once its log is set up.
#[derive(Debug)]
pub struct Loaded {
    pub config: Config,
    /// Settings pm ignores, named loudly (the log is not set up while the configuration loads).
    pub warnings: Vec<String>,
    /// Notes on how a setting was read (e.g. the reference's rate limit in pm's terms).
    pub notes: Vec<String>,
    /// The config file, when there is one.
    pub file: Option<PathBuf>,
}

/// The configuration of this process: its arguments and environment.
pub fn load() -> anyhow::Result<Loaded> {
    load_from(std::env::args_os(), |name| std::env::var(name).ok())
}

/// The configuration for `args` (the program's name first), reading the reference's variables
/// that have no pm flag through `env`. Clap reads the flags' own variables from the process.
/// A clap error (including --help and --version) is returned as a `clap::Error`.
pub fn load_from(
    args: impl IntoIterator<Item = impl Into<OsString>>,
    env: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<Loaded> {
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let first = Config::command().try_get_matches_from(&args)?;
    let data_dir = Config::from_arg_matches(&first)?.data_dir();
    let (path, settings) = file::read(&data_dir)?;
    let mut overlay = Overlay {
        matches: &first,
        data_dir: &data_dir,
        args: Vec::new(),
        warnings: Vec::new(),
        notes: Vec::new(),
    };
    overlay.file(&path, &settings);
    overlay.reference_env(&env);
    overlay.rate_limit(&path, &settings, &env)?;

    let Overlay {
        args: extra,
        mut warnings,
        mut notes,
        ..
    } = overlay;
    // The file's arguments go before the real ones, so they never land after a subcommand.
    let mut full = Vec::with_capacity(args.len() + extra.len());
    full.extend(args.first().cloned());
    full.extend(extra.into_iter().map(OsString::from));
    full.extend(args.iter().skip(1).cloned());
    let matches = Config::command().try_get_matches_from(&full)?;
    let mut config = Config::from_arg_matches(&matches)?;
    let needed = config.message_bytes_for_text_limits();
    if config.max_message_bytes < needed {
        if given(&matches, "max_message_bytes") {
            warnings.push(format!(
                "--max-message-bytes / PM_WS_MAX_MESSAGE_BYTES {} is smaller than the longest \
                 text the [validation] maxima allow ({needed} bytes): such texts cannot be sent",
                config.max_message_bytes
            ));
        } else {
            notes.push(format!(
                "the largest WebSocket message is raised to {needed} bytes to carry the longest \
                 text the [validation] maxima allow"
            ));
            config.max_message_bytes = needed;
        }
    }
    if config.jwt_secret.is_some() && config.jwt_public_key_path.is_some() {
        warnings.push(
            "both a JWT secret and a public key are configured: the secret is used (HS256) and \
             jwt_public_key_path is IGNORED, as by the reference"
                .into(),
        );
    }
    // The reference's `auth.enabled` chooses token mode unless --auth / PM_AUTH_MODE said.
    if !given(&matches, "auth") {
        if let Some(enabled) = config.auth_enabled {
            config.auth = if enabled {
                AuthMode::Token
            } else {
                AuthMode::Desktop
            };
        }
    }
    Ok(Loaded {
        config,
        warnings,
        notes,
        file: path.exists().then_some(path),
    })
}

/// Whether the command line or the environment set the flag `id`.
fn given(matches: &ArgMatches, id: &str) -> bool {
    matches!(
        matches.value_source(id),
        Some(ValueSource::CommandLine | ValueSource::EnvVariable)
    )
}

struct Overlay<'a> {
    matches: &'a ArgMatches,
    data_dir: &'a Path,
    args: Vec<String>,
    warnings: Vec<String>,
    notes: Vec<String>,
}

impl Overlay<'_> {
    /// `--flag=value` for `id`, unless the command line or the environment set it.
    fn flag(&mut self, id: &str, value: String) {
        if !given(self.matches, id) {
            self.args
                .push(format!("--{}={value}", id.replace('_', "-")));
        }
    }

    fn file(&mut self, path: &Path, settings: &[Setting]) {
        let file = path.display();
        let log_dir = settings
            .iter()
            .find(|s| s.key.used == Use::LogDir)
            .map(Setting::text)
            .unwrap_or_else(|| "log".into());
        for setting in settings {
            let key = &setting.key;
            match key.used {
                Use::Flag(id) => self.flag(id, setting.text()),
                Use::FlagPath(id) => {
                    let path = self.data_dir.join(setting.text());
                    self.flag(id, path.display().to_string());
                }
                Use::LogFile => {
                    let path = self.data_dir.join(&log_dir).join(setting.text());
                    self.flag("log_file", path.display().to_string());
                }
                Use::LogDir | Use::RateLimit => {}
                Use::Ignored(why) => self.warnings.push(format!(
                    "`{}.{}` in {file} is IGNORED: {why}",
                    key.section, key.name
                )),
            }
        }
    }

    /// The reference's variables for settings pm has no feature for.
    fn reference_env(&mut self, env: &impl Fn(&str) -> Option<String>) {
        for key in file::KEYS {
            let (Some(name), Use::Ignored(why)) = (key.env, key.used) else {
                continue;
            };
            if env(name).is_some() {
                self.warnings.push(format!(
                    "{name} is IGNORED ({}.{}): {why}",
                    key.section, key.name
                ));
            }
        }
    }

    /// The reference's `max_requests` per `window_secs` (defaults 100 and 60) as pm's bucket:
    /// a burst of `max_requests`, refilled at max_requests/window_secs a second (at least 1).
    /// Only when the file or the reference's variables name one of them, and only for the pm
    /// flags the command line and environment left unset.
    fn rate_limit(
        &mut self,
        path: &Path,
        settings: &[Setting],
        env: &impl Fn(&str) -> Option<String>,
    ) -> anyhow::Result<()> {
        let read = |name: &str, variable: &str| -> anyhow::Result<Option<u64>> {
            if let Some(value) = env(variable) {
                let parsed = value.trim().parse::<u64>().ok().filter(|v| *v >= 1);
                return parsed.map(Some).ok_or_else(|| {
                    anyhow::anyhow!(
                        "{variable} must be a whole number of at least 1, got `{value}`"
                    )
                });
            }
            Ok(settings
                .iter()
                .find(|s| s.key.section == "rate_limit" && s.key.name == name)
                .and_then(|s| s.value.as_integer())
                .and_then(|v| u64::try_from(v).ok()))
        };
        let requests = read("max_requests", "PM_RATE_LIMIT_MAX_REQUESTS")?;
        let window = read("window_secs", "PM_RATE_LIMIT_WINDOW_SECS")?;
        if requests.is_none() && window.is_none() {
            return Ok(());
        }
        let requests = requests.unwrap_or(100).min(u64::from(u32::MAX));
        let window = window.unwrap_or(60);
        let per_sec = requests.div_ceil(window).max(1);
        self.flag("rate_limit_burst", requests.to_string());
        self.flag("rate_limit_per_sec", per_sec.to_string());
        self.notes.push(format!(
            "rate_limit: {requests} requests per {window} s (from {} or PM_RATE_LIMIT_*) is a \
             WebSocket burst of {requests} and {per_sec} a second sustained",
            path.display()
        ));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_in(dir: &Path, file: &str, args: &[&str], env: &[(&str, &str)]) -> Loaded {
        std::fs::write(dir.join(file::FILE_NAME), file).expect("write config");
        let mut argv = vec![
            "pm-server".to_string(),
            format!("--data-dir={}", dir.display()),
        ];
        argv.extend(args.iter().map(|a| a.to_string()));
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        load_from(argv, |name| {
            env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
        .expect("load")
    }

    fn no_pm_env() -> bool {
        !std::env::vars_os().any(|(k, _)| k.to_string_lossy().starts_with("PM_"))
    }

    #[test]
    fn the_file_fills_what_the_command_line_leaves_unset() {
        if !no_pm_env() {
            return; // a developer's PM_* variables would rightly win over the file
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let text = "[server]\nport = 4321\nhost = \"localhost\"\nidle_shutdown_secs = 2\n\
                    [validation]\nmax_comment_length = 150000\n\
                    [logging]\nfile = \"pm.log\"\ncolored = false\nlevel = \"debug\"\n\
                    [websocket]\nheartbeat_timeout_secs = 31\nsend_buffer_size = 77\n";
        let loaded = load_in(dir.path(), text, &["--port", "5555"], &[]);
        let c = &loaded.config;
        assert_eq!(c.port, 5555, "the command line beats the file");
        assert_eq!(c.host, "localhost");
        assert_eq!(c.idle_shutdown_secs, 2);
        assert_eq!(c.max_comment_length, 150_000);
        assert_eq!(c.validation_limits().comment, 150_000);
        assert_eq!(c.send_buffer, 77);
        assert_eq!(c.log_colored, Some(false));
        assert_eq!(c.log_level.as_deref(), Some("debug"));
        assert_eq!(
            c.log_file_path(),
            Some(dir.path().join("log").join("pm.log"))
        );
        assert_eq!(c.auth, AuthMode::Desktop);
        assert!(
            loaded
                .warnings
                .iter()
                .any(|w| w.contains("websocket.heartbeat_timeout_secs")),
            "{:?}",
            loaded.warnings
        );
        assert_eq!(loaded.file, Some(dir.path().join(file::FILE_NAME)));
    }

    #[test]
    fn auth_enabled_in_the_file_means_token_mode_and_needs_a_key() {
        if !no_pm_env() {
            return;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let loaded = load_in(dir.path(), "[auth]\nenabled = true\n", &[], &[]);
        assert_eq!(loaded.config.auth, AuthMode::Token);
        let e = loaded.config.validate().expect_err("no key").to_string();
        assert!(
            e.contains("no usable key") && e.contains("jwt_secret"),
            "{e}"
        );

        let secret = "0123456789abcdef0123456789abcdef";
        let text = format!("[auth]\nenabled = true\njwt_secret = \"{secret}\"\n");
        let loaded = load_in(dir.path(), &text, &[], &[]);
        assert_eq!(loaded.config.jwt_secret.as_deref(), Some(secret));
        loaded.config.validate().expect("a usable key");

        // The public key's path is relative to the data dir; a missing file stops the start.
        let text = "[auth]\nenabled = true\njwt_public_key_path = \"key.pem\"\n";
        let mut loaded = load_in(dir.path(), text, &[], &[]);
        assert_eq!(
            loaded.config.jwt_public_key_path,
            Some(dir.path().join("key.pem"))
        );
        let e = loaded.config.read_keys().expect_err("no file").to_string();
        assert!(e.contains("key.pem"), "{e}");
        let e = loaded.config.validate().expect_err("no key").to_string();
        assert!(e.contains("no usable key"), "{e}");
        std::fs::write(dir.path().join("key.pem"), "not a key").expect("write");
        let e = loaded.config.read_keys().expect_err("not PEM").to_string();
        assert!(e.contains("not an RSA public key"), "{e}");

        // Both: the secret is used, the key is named as ignored.
        let text = format!(
            "[auth]\nenabled = true\njwt_secret = \"{secret}\"\njwt_public_key_path = \"key.pem\"\n"
        );
        let mut loaded = load_in(dir.path(), &text, &[], &[]);
        loaded
            .config
            .read_keys()
            .expect("the secret is used, the key file is not read");
        loaded.config.validate().expect("a usable secret");
        assert!(
            loaded
                .warnings
                .iter()
                .any(|w| w.contains("jwt_public_key_path")),
            "{:?}",
            loaded.warnings
        );

        let loaded = load_in(
            dir.path(),
            "[auth]\nenabled = true\n",
            &["--auth", "desktop"],
            &[],
        );
        let e = loaded
            .config
            .validate()
            .expect_err("contradiction")
            .to_string();
        assert!(e.contains("contradicts"), "{e}");
    }

    #[test]
    fn reference_variables_pm_has_no_feature_for_are_named() {
        if !no_pm_env() {
            return;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let loaded = load_in(
            dir.path(),
            "[rate_limit]\nmax_requests = 1000\n",
            &[],
            &[
                ("PM_CB_FAILURE_THRESHOLD", "5"),
                ("PM_RATE_LIMIT_WINDOW_SECS", "10"),
            ],
        );
        assert!(
            loaded
                .warnings
                .iter()
                .any(|w| w.contains("PM_CB_FAILURE_THRESHOLD")),
            "{:?}",
            loaded.warnings
        );
        // 1000 per 10 s: the environment's window, the file's count.
        assert_eq!(loaded.config.rate_limit_burst, 1000);
        assert_eq!(loaded.config.rate_limit_per_sec, 100);
    }

    #[test]
    fn limits_outside_the_references_ranges_are_refused() {
        if !no_pm_env() {
            return;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        for (text, key) in [
            (
                "[validation]\nmax_comment_length = 500001\n",
                "max_comment_length",
            ),
            (
                "[validation]\nmax_comment_length = 0\n",
                "max_comment_length",
            ),
            ("[validation]\nmax_title_length = 501\n", "max_title_length"),
            (
                "[validation]\nmax_story_points = 1001\n",
                "max_story_points",
            ),
        ] {
            let loaded = load_in(dir.path(), text, &[], &[]);
            let e = loaded.config.validate().expect_err(text).to_string();
            assert!(e.contains(key), "{e}");
        }
        let loaded = load_in(
            dir.path(),
            "[validation]\nmax_comment_length = 500000\n",
            &[],
            &[],
        );
        loaded
            .config
            .validate()
            .expect("the ceiling itself is allowed");
        // 500,000 characters need more than the default 1 MiB message: raised, unless the
        // flag says otherwise (then a warning).
        assert_eq!(loaded.config.max_message_bytes, 4 * 500_000 + 64 * 1024);
        let loaded = load_in(
            dir.path(),
            "[validation]\nmax_comment_length = 500000\n",
            &["--max-message-bytes=4096"],
            &[],
        );
        assert_eq!(loaded.config.max_message_bytes, 4096);
        assert!(loaded
            .warnings
            .iter()
            .any(|w| w.contains("--max-message-bytes")));
        let loaded = load_in(dir.path(), "", &[], &[]);
        assert_eq!(
            loaded.config.max_message_bytes,
            1024 * 1024,
            "the default stays"
        );
    }
}
