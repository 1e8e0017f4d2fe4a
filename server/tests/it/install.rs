//! What scripts/install.sh asks pm-server for: completion scripts and man pages.
use std::process::Command;

/// What the installer asks pm-server for: completion scripts and man pages, from the same
/// definitions as `--help` (the hidden `man` among them).
#[test]
fn pm_server_prints_completions_and_writes_man_pages() {
    for shell in ["bash", "zsh", "fish"] {
        let out = Command::new(env!("CARGO_BIN_EXE_pm-server"))
            .args(["completions", shell])
            .env_remove("PM_LOG")
            .output()
            .expect("run pm-server");
        assert!(out.status.success(), "{shell}: {out:?}");
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(
            script.contains("log-format") && script.contains("issue-token"),
            "{shell}"
        );
        assert!(out.stderr.is_empty(), "{shell}: nothing logged: {out:?}");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let pages = dir.path().join("man1");
    let out = Command::new(env!("CARGO_BIN_EXE_pm-server"))
        .args(["man", "--dir"])
        .arg(&pages)
        .output()
        .expect("run pm-server");
    assert!(out.status.success(), "{out:?}");
    let top = std::fs::read_to_string(pages.join("pm-server.1")).expect("pm-server.1");
    assert!(top.contains(".TH pm-server 1"), "{top}");
    assert!(
        top.contains("PM_LOG_FORMAT"),
        "flags show their variables: {top}"
    );
    assert!(pages.join("pm-server-issue-token.1").exists());
    assert!(!pages.join("pm-server-man.1").exists());
    let help = Command::new(env!("CARGO_BIN_EXE_pm-server"))
        .arg("--help")
        .output()
        .expect("run pm-server");
    assert!(!String::from_utf8_lossy(&help.stdout).contains("\n  man "));
}
