//! `pm init`: writes `.pm/` (config template, .gitignore, skill document) at the git root, else
//! in the working directory; never overwrites a file without --force.
use std::path::Path;

use crate::common::{pm_command, run, Run};

const FILES: [&str; 3] = ["config.toml", ".gitignore", "skills/pm/SKILL.md"];

/// `pm init <args>` in `cwd`, with git's search stopped at `ceiling` and HOME inside it.
fn init(ceiling: &Path, cwd: &Path, args: &[&str]) -> Run {
    let mut cmd = pm_command();
    cmd.env("HOME", ceiling.join("home"))
        .env("GIT_CEILING_DIRECTORIES", ceiling)
        .current_dir(cwd)
        .arg("init")
        .args(args);
    run(cmd).success()
}

fn git_init(dir: &Path) {
    let status = std::process::Command::new("git")
        .args(["init", "-q"])
        .current_dir(dir)
        .status()
        .expect("run git");
    assert!(status.success(), "git init");
}

#[test]
fn init_writes_pm_at_the_git_root_and_keeps_existing_files() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let repo = tmp.path().join("repo");
    let sub = repo.join("src").join("deep");
    std::fs::create_dir_all(&sub).expect("mkdir");
    git_init(&repo);

    // From a subdirectory: .pm goes to the repository's root, where pm-server keeps its data.
    let first = init(tmp.path(), &sub, &[]);
    let pm = repo.join(".pm");
    for f in FILES {
        assert!(
            pm.join(f).is_file(),
            "{f} missing; stdout: {}",
            first.stdout
        );
        assert!(first
            .stdout
            .contains(&format!("wrote {}", pm.join(f).display())));
    }
    assert!(!sub.join(".pm").exists());
    let skill = std::fs::read_to_string(pm.join("skills/pm/SKILL.md")).expect("skill");
    assert!(skill.contains("pm work-item update") && skill.contains("--from-toml"));

    // git ignores the server's state and keeps the config and the skill document.
    for state in [
        "data.db",
        "data.db-wal",
        "data.db-shm",
        "server.json",
        "server.lock",
    ] {
        std::fs::write(pm.join(state), "x").expect("write state");
    }
    std::fs::create_dir_all(pm.join("log")).expect("mkdir log");
    std::fs::write(pm.join("log").join("pm-server.log"), "x").expect("write log");
    std::fs::write(pm.join("data.json"), "{}").expect("write export");
    let out = std::process::Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=all", ".pm"])
        .current_dir(&repo)
        .output()
        .expect("git status");
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(listed.contains(".pm/config.toml"), "{listed}");
    assert!(listed.contains(".pm/skills/pm/SKILL.md"), "{listed}");
    assert!(listed.contains(".pm/data.json"), "{listed}");
    assert!(
        !listed.contains("data.db") && !listed.contains("server.") && !listed.contains("log"),
        "{listed}"
    );

    // Idempotent: a second run keeps every file, an edited one included.
    std::fs::write(pm.join("config.toml"), "# mine\n").expect("edit");
    let second = init(tmp.path(), &repo, &[]);
    assert_eq!(
        second.stdout.matches("kept ").count(),
        3,
        "{}",
        second.stdout
    );
    assert!(second.stdout.contains("--force"), "{}", second.stdout);
    assert_eq!(
        std::fs::read_to_string(pm.join("config.toml")).expect("config"),
        "# mine\n"
    );

    // --force writes them all again.
    let forced = init(tmp.path(), &repo, &["--force"]);
    assert_eq!(
        forced.stdout.matches("overwrote ").count(),
        3,
        "{}",
        forced.stdout
    );
    let config = std::fs::read_to_string(pm.join("config.toml")).expect("config");
    assert!(config.contains("[validation]"), "{config}");
}

#[test]
fn init_outside_git_writes_pm_in_the_working_directory() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let cwd = tmp.path().join("plain");
    std::fs::create_dir_all(&cwd).expect("mkdir");
    init(tmp.path(), &cwd, &[]);
    for f in FILES {
        assert!(cwd.join(".pm").join(f).is_file(), "{f}");
    }
    assert!(!tmp.path().join("home").join(".pm").exists());

    // --dir names another directory.
    let other = tmp.path().join("elsewhere");
    init(tmp.path(), &cwd, &["--dir", other.to_str().expect("utf-8")]);
    assert!(other.join("config.toml").is_file());
}
