//! `pm init`: sets up a repository's `.pm/` as the reference's installer does: a commented
//! `config.toml`, a `.gitignore` that keeps the server's state out of git, and a skill
//! document that tells coding agents how to use `pm`. It never replaces a file that is there
//! (someone may have edited it) unless `--force` says so.
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use pm_shared::port_file::{git_root, DATA_DIR_ENV};

/// The files `pm init` writes, relative to the `.pm` directory, and their contents.
pub const FILES: [(&str, &str); 3] = [
    ("config.toml", include_str!("init/config.toml")),
    (".gitignore", include_str!("init/gitignore")),
    ("skills/pm/SKILL.md", include_str!("init/SKILL.md")),
];

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    pm init                 (in a git repository: <git root>/.pm)\n  \
    pm init --force         (rewrite the files, losing local edits)\n  \
    pm init --dir /srv/pm   (another data directory)\n\n\
The directory is --dir, else $PM_DATA_DIR, else <git root>/.pm, else ./.pm: where pm-server,\n\
started in the same place, keeps its data.")]
pub struct InitArgs {
    /// Overwrite files that already exist
    #[arg(long)]
    pub force: bool,
    /// The directory to set up [default: $PM_DATA_DIR, else <git root>/.pm, else ./.pm]
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// What happened to one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Wrote,
    Overwrote,
    Kept,
}

pub fn run(args: InitArgs) -> ExitCode {
    let dir = args.dir.unwrap_or_else(default_dir);
    let mut out = std::io::stdout().lock();
    for (name, contents) in FILES {
        let path = dir.join(name);
        let line = match write_file(&path, contents, args.force) {
            Ok(Outcome::Wrote) => format!("wrote {}", path.display()),
            Ok(Outcome::Overwrote) => format!("overwrote {}", path.display()),
            Ok(Outcome::Kept) => {
                format!("kept {} (it exists; --force overwrites it)", path.display())
            }
            Err(e) => return super::fail(&e),
        };
        // A closed stdout (`pm init | head -1`) does not undo the files.
        let _ = writeln!(out, "{line}");
    }
    ExitCode::SUCCESS
}

/// Where pm-server started here keeps its data: `$PM_DATA_DIR`, else `<git root>/.pm`, else
/// `./.pm` (pm-server would fall back to `~/.pm`, but a repository's setup belongs beside it).
fn default_dir() -> PathBuf {
    std::env::var_os(DATA_DIR_ENV)
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| git_root().map(|root| root.join(".pm")))
        .unwrap_or_else(|| PathBuf::from(".pm"))
}

/// Writes `contents` to `path` unless it exists (or `force`); creates the parent directories.
pub fn write_file(path: &Path, contents: &str, force: bool) -> Result<Outcome, String> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    // create_new: an existing file is never truncated, even by a concurrent `pm init`.
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
    {
        Ok(mut file) => file
            .write_all(contents.as_bytes())
            .map(|()| Outcome::Wrote)
            .map_err(|e| format!("cannot write {}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            if force {
                std::fs::write(path, contents)
                    .map(|()| Outcome::Overwrote)
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))
            } else {
                Ok(Outcome::Kept)
            }
        }
        Err(e) => Err(format!("cannot create {}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_template_is_valid_toml_with_the_reference_sections() {
        let config = FILES[0].1;
        // Everything is commented out, so the file parses to nothing and changes no default.
        let parsed: toml::Table = config.parse().expect("valid TOML");
        for section in ["server", "database", "auth", "validation", "logging"] {
            assert!(
                parsed.get(section).is_some_and(toml::Value::is_table),
                "[{section}]"
            );
            assert!(
                parsed[section].as_table().is_some_and(|t| t.is_empty()),
                "[{section}] sets nothing"
            );
        }
        // Uncommenting every setting still gives valid TOML.
        let uncommented: String = config
            .lines()
            .map(|l| match l.strip_prefix("# ") {
                Some(rest)
                    if rest.split_once(" = ").is_some_and(|(key, _)| {
                        key.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                    }) =>
                {
                    rest
                }
                _ => l,
            })
            .collect::<Vec<_>>()
            .join("\n");
        let parsed: toml::Table = uncommented.parse().expect("uncommented valid TOML");
        assert_eq!(parsed["server"]["port"].as_integer(), Some(0));
        assert_eq!(
            parsed["validation"]["max_comment_length"].as_integer(),
            Some(pm_shared::domain::limits::COMMENT_MAX as i64)
        );
    }

    #[test]
    fn the_gitignore_covers_the_servers_state() {
        let ignore = FILES[1].1;
        for pattern in [
            "*.db",
            "*.db-wal",
            "*.db-shm",
            "server.json",
            "*.lock",
            "log/",
        ] {
            assert!(ignore.lines().any(|l| l == pattern), "{pattern}");
        }
        assert!(!ignore.lines().any(|l| l == "config.toml" || l == "skills/"));
    }
}
