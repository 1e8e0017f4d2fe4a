//! A text edited in the user's own editor (`$VISUAL`, else `$EDITOR`, else `vi`): the text goes
//! into a temporary file, the editor runs on it in the terminal, and what it saved comes back.
//! The board hands the terminal over while it runs (see `board::run_editor`).
use std::io::Write as _;
use std::path::PathBuf;
use std::process::Command;

/// The editor the user chose.
pub fn editor_command() -> String {
    ["VISUAL", "EDITOR"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .map(|v| v.trim().to_string())
        .find(|v| !v.is_empty())
        .unwrap_or_else(|| "vi".to_string())
}

/// Runs `editor` (a program and its arguments, split at spaces, e.g. `code --wait`) on a file
/// holding `text`; the file's text when the editor exits successfully. The file is removed
/// afterwards, except when it cannot be read back (the error names it, so nothing is lost).
pub fn edit_with(editor: &str, text: &str) -> Result<String, String> {
    let mut words = editor.split_whitespace();
    let program = words
        .next()
        .ok_or_else(|| "no editor: set $EDITOR".to_string())?;
    let path = temp_path();
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    let mut content = text.to_string();
    if !content.is_empty() && !content.ends_with('\n') {
        content.push('\n');
    }
    file.write_all(content.as_bytes())
        .and_then(|_| file.flush())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    drop(file);
    let status = Command::new(program).args(words).arg(&path).status();
    // (the result, whether the file stays because the text could not be given back)
    let (result, keep) = match status {
        Ok(status) if status.success() => match std::fs::read(&path) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => (Ok(text), false),
                Err(_) => (
                    Err(format!("{} is not UTF-8 text; it is kept", path.display())),
                    true,
                ),
            },
            Err(e) => (Err(format!("cannot read {}: {e}", path.display())), false),
        },
        Ok(status) => (
            Err(format!("{program} exited with {status}; nothing saved")),
            false,
        ),
        Err(e) => (
            Err(format!("cannot run {program}: {e} (set $EDITOR)")),
            false,
        ),
    };
    if !keep {
        let _ = std::fs::remove_file(&path);
    }
    result
}

/// A fresh file name in the temporary directory (`.md`, so editors highlight markdown).
fn temp_path() -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    std::env::temp_dir().join(format!("pm-description-{}-{nanos}.md", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An "editor": a shell script that runs `body` with the file as $1.
    fn script(dir: &std::path::Path, body: &str) -> String {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join("editor.sh");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write the script");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .expect("make it executable");
        path.to_string_lossy().into_owned()
    }

    #[test]
    fn the_editor_sees_the_text_and_its_changes_come_back() {
        let dir = tempfile::tempdir().expect("temp dir");
        let seen = dir.path().join("seen");
        let editor = script(
            dir.path(),
            &format!(
                "cp \"$1\" '{}'; printf 'Line one\\n\\nLine *three*\\n' > \"$1\"",
                seen.display()
            ),
        );
        let out = edit_with(&editor, "Old text").expect("edited");
        assert_eq!(out, "Line one\n\nLine *three*\n");
        assert_eq!(
            std::fs::read_to_string(&seen).expect("seen"),
            "Old text\n",
            "the editor opened on the text"
        );
    }

    #[test]
    fn arguments_are_passed_and_a_failing_editor_saves_nothing() {
        let dir = tempfile::tempdir().expect("temp dir");
        // `sh -c '…' sh FILE`: an editor given as a program with arguments.
        let editor = format!(
            "{} --wait",
            script(dir.path(), "[ \"$1\" = --wait ] && echo ok > \"$2\"")
        );
        assert_eq!(edit_with(&editor, "").expect("edited"), "ok\n");
        let failing = script(dir.path(), "exit 3");
        let err = edit_with(&failing, "text").expect_err("a failing editor");
        assert!(
            err.contains("exit") && err.contains("nothing saved"),
            "{err}"
        );
        let err = edit_with("/nonexistent/editor", "text").expect_err("no such editor");
        assert!(err.contains("cannot run"), "{err}");
        assert!(edit_with("  ", "text").is_err());
    }
}
