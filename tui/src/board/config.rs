//! The board's own settings: `$XDG_CONFIG_HOME/pm/config.toml`, else `~/.config/pm/config.toml`.
//! Every setting is optional; a flag or environment variable beats the file.
//!
//! ```toml
//! server = "http://127.0.0.1:8000"   # when neither --server nor $PM_SERVER is given
//! name = "alice"                     # when neither --name nor $PM_USER_NAME is given
//! project = "PM"                     # when --project is not given
//! color = false                      # like NO_COLOR
//! mouse = true                       # like --mouse
//! theme = "light"                    # colours for a light background (default "dark")
//! invisible = true                   # like --invisible: see who is here, be seen by nobody
//!
//! [keys]                             # a command's keys, replacing its defaults
//! undo = ["u", "ctrl-z"]
//! quit = "x"
//! ```
//!
//! A setting the board does not know, or a value of the wrong type, stops the board with a
//! message naming the file and the setting.
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct BoardConfig {
    pub server: Option<String>,
    pub name: Option<String>,
    pub project: Option<String>,
    /// False draws without colours.
    pub color: Option<bool>,
    /// True uses the mouse.
    pub mouse: Option<bool>,
    /// "dark" or "light".
    pub theme: Option<String>,
    /// True: others do not see me on the board (presence).
    pub invisible: Option<bool>,
    /// Command name → its keys, in the file's order.
    pub keys: Vec<(String, Vec<String>)>,
}

/// Where the file is: `$XDG_CONFIG_HOME/pm/config.toml`, else `$HOME/.config/pm/config.toml`.
pub fn path(xdg_config_home: Option<&str>, home: Option<&str>) -> Option<PathBuf> {
    match (xdg_config_home.filter(|x| !x.is_empty()), home) {
        (Some(xdg), _) => Some(Path::new(xdg).join("pm").join("config.toml")),
        (None, Some(home)) if !home.is_empty() => Some(
            Path::new(home)
                .join(".config")
                .join("pm")
                .join("config.toml"),
        ),
        _ => None,
    }
}

/// The settings in the file at `path`; none when there is no file.
pub fn load(path: &Path) -> Result<BoardConfig, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text).map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BoardConfig::default()),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

pub fn parse(text: &str) -> Result<BoardConfig, String> {
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| e.message().to_string())?;
    let mut config = BoardConfig::default();
    let string = |name: &str, value: &toml::Value| {
        value
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("{name} must be a string"))
    };
    for (name, value) in &table {
        match name.as_str() {
            "server" => config.server = Some(string(name, value)?),
            "name" => config.name = Some(string(name, value)?),
            "project" => config.project = Some(string(name, value)?),
            "theme" => {
                let theme = string(name, value)?;
                if theme != "dark" && theme != "light" {
                    return Err(format!(
                        "theme must be \"dark\" or \"light\", not \"{theme}\""
                    ));
                }
                config.theme = Some(theme);
            }
            "color" | "mouse" | "invisible" => {
                let flag = value
                    .as_bool()
                    .ok_or_else(|| format!("{name} must be true or false"))?;
                match name.as_str() {
                    "color" => config.color = Some(flag),
                    "mouse" => config.mouse = Some(flag),
                    _ => config.invisible = Some(flag),
                }
            }
            "keys" => {
                let keys = value
                    .as_table()
                    .ok_or_else(|| "[keys] must be a table".to_string())?;
                for (command, keys) in keys {
                    let list = match keys {
                        toml::Value::String(k) => vec![k.clone()],
                        toml::Value::Array(ks) => ks
                            .iter()
                            .map(|k| k.as_str().map(str::to_string))
                            .collect::<Option<Vec<String>>>()
                            .ok_or_else(|| {
                                format!("keys.{command} must be a key or a list of keys")
                            })?,
                        _ => return Err(format!("keys.{command} must be a key or a list of keys")),
                    };
                    config.keys.push((command.clone(), list));
                }
            }
            other => {
                return Err(format!(
                    "unknown setting \"{other}\" (server, name, project, color, mouse, theme, \
                 invisible, [keys])"
                ))
            }
        }
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_setting_is_read() {
        let config = parse(
            "server = \"http://h:1\"\nname = \"alice\"\nproject = \"PM\"\ncolor = false\nmouse = true\n\
             theme = \"light\"\ninvisible = true\n[keys]\nundo = [\"u\", \"ctrl-z\"]\nquit = \"x\"\n",
        )
        .expect("parsed");
        assert_eq!(
            config,
            BoardConfig {
                server: Some("http://h:1".into()),
                name: Some("alice".into()),
                project: Some("PM".into()),
                color: Some(false),
                mouse: Some(true),
                theme: Some("light".into()),
                invisible: Some(true),
                keys: vec![
                    ("undo".into(), vec!["u".into(), "ctrl-z".into()]),
                    ("quit".into(), vec!["x".into()]),
                ],
            }
        );
        assert_eq!(parse("").expect("empty"), BoardConfig::default());
    }

    #[test]
    fn mistakes_are_named() {
        for (text, says) in [
            ("sever = \"x\"", "unknown setting \"sever\""),
            ("name = 3", "name must be a string"),
            ("color = \"no\"", "color must be true or false"),
            ("invisible = 1", "invisible must be true or false"),
            ("keys = 1", "[keys] must be a table"),
            ("theme = \"blue\"", "theme must be \"dark\" or \"light\""),
            (
                "[keys]\nundo = [1]",
                "keys.undo must be a key or a list of keys",
            ),
            ("name = ", "string"),
        ] {
            let err = parse(text).expect_err(text);
            assert!(err.contains(says), "{text}: {err}");
        }
    }

    #[test]
    fn the_file_is_under_xdg_config_home_else_home() {
        assert_eq!(
            path(Some("/x"), Some("/h")),
            Some(PathBuf::from("/x/pm/config.toml"))
        );
        assert_eq!(
            path(Some(""), Some("/h")),
            Some(PathBuf::from("/h/.config/pm/config.toml"))
        );
        assert_eq!(path(None, None), None);
        let dir = tempfile::tempdir().expect("temp dir");
        assert_eq!(
            load(&dir.path().join("none.toml")).expect("no file"),
            BoardConfig::default()
        );
        let file = dir.path().join("config.toml");
        std::fs::write(&file, "colour = true").expect("write");
        let err = load(&file).expect_err("unknown");
        assert!(
            err.contains("config.toml") && err.contains("colour"),
            "{err}"
        );
    }
}
