//! Every `pm` subcommand that talks to the server, against a server in token mode: each one
//! works with `--token` and with `$PM_TOKEN`, and without a token fails with exit status 1 and
//! `Error: …` (the server's 401). The real `pm` binary against a real pm-server.

use std::cell::RefCell;

use crate::common::{pm_command, run, Run, TestServer};
use pm_server::config::AuthMode;
use serde_json::Value;

const SECRET: &str = "cli-token-test-secret-0123456789abcdef";
const USER: &str = "70e40000-0000-4000-8000-000000000001";
const OTHER: &str = "70e40000-0000-4000-8000-000000000002";

/// How the token reaches `pm`.
#[derive(Clone, Copy, Debug)]
enum Via {
    Flag,
    Env,
}

struct Session<'a> {
    server: &'a TestServer,
    token: String,
    via: Via,
    /// Every argument list run, to check below that no server subcommand was left out.
    ran: RefCell<Vec<Vec<String>>>,
}

impl Session<'_> {
    fn pm(&self, args: &[&str], token: Option<Via>) -> Run {
        let mut cmd = pm_command();
        cmd.arg("--server").arg(self.server.url());
        match token {
            Some(Via::Flag) => {
                cmd.arg("--token").arg(&self.token);
            }
            Some(Via::Env) => {
                cmd.env("PM_TOKEN", &self.token);
            }
            None => {}
        }
        cmd.args(args);
        run(cmd)
    }

    /// Runs `pm <args>` first without a token (it must fail with 401 and change nothing), then
    /// with the session's token (it must succeed). Returns the second run's stdout.
    fn run(&self, args: &[&str]) -> String {
        self.ran
            .borrow_mut()
            .push(args.iter().map(|a| a.to_string()).collect());
        let err = self.pm(args, None).runtime_error();
        assert!(
            err.contains("a bearer token is required") && err.contains("UNAUTHORIZED"),
            "{args:?} without a token: {err}"
        );
        let out = self.pm(args, Some(self.via)).success();
        assert!(!out.stdout.trim().is_empty(), "{args:?} via {:?}", self.via);
        out.stdout
    }

    fn ok(&self, args: &[&str]) -> Value {
        let stdout = self.run(args);
        serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("{args:?}: stdout is not JSON ({e}): {stdout}"))
    }
}

fn s(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("not a string: {v}"))
        .to_string()
}

/// Every subcommand that reaches the server, once, in an order that gives each one something
/// to act on. `key` names the project this session creates.
fn every_server_subcommand(session: &Session, key: &str) {
    let t = |args: &[&str]| session.ok(args);

    // Projects and members. The token's user creates the project, so it is its admin.
    let project = t(&["project", "create", "--title", "Token", "--key", key]);
    let pid = s(&project["project"]["id"]);
    t(&["project", "list"]);
    t(&["project", "get", key]);
    t(&[
        "project",
        "update",
        key,
        "--title",
        "Token v2",
        "--expected-version",
        "1",
    ]);
    t(&["project", "member", "add", key, OTHER, "--role", "viewer"]);
    t(&["project", "member", "list", key]);
    t(&["project", "member", "remove", key, OTHER]);
    t(&["swim-lane", "list", key]);

    // Work items.
    let k1 = format!("{key}-1");
    let k2 = format!("{key}-2");
    for title in ["One", "Two"] {
        t(&[
            "work-item",
            "create",
            "--project-id",
            key,
            "--type",
            "task",
            "--title",
            title,
        ]);
    }
    t(&["work-item", "get", &k1]);
    t(&["work-item", "list", key]);
    t(&[
        "work-item",
        "update",
        &k1,
        "--status",
        "in_progress",
        "--expected-version",
        "1",
    ]);

    // Comments.
    let comment = t(&[
        "comment",
        "create",
        "--work-item-id",
        &k1,
        "--content",
        "Hi",
    ]);
    let cid = s(&comment["comment"]["id"]);
    t(&["comment", "get", &cid]);
    t(&["comment", "list", &k1]);
    t(&["comment", "update", &cid, "--content", "Hello"]);

    // Sprints.
    let sprint = t(&[
        "sprint",
        "create",
        "--project-id",
        key,
        "--name",
        "S1",
        "--start-date",
        "2030-01-01",
        "--end-date",
        "2030-01-15",
    ]);
    let sid = s(&sprint["sprint"]["id"]);
    t(&["sprint", "get", &sid]);
    t(&["sprint", "list", key]);
    t(&[
        "sprint",
        "update",
        &sid,
        "--goal",
        "Ship",
        "--expected-version",
        "1",
    ]);

    // Dependencies.
    let dep = t(&[
        "dependency",
        "create",
        "--blocking",
        &k1,
        "--blocked",
        &k2,
        "--type",
        "blocks",
    ]);
    let did = s(&dep["id"]);
    t(&["dependency", "list", &k2]);

    // Time entries.
    let entry = t(&["time-entry", "create", "--work-item-id", &k1]);
    let tid = s(&entry["time_entry"]["id"]);
    t(&["time-entry", "get", &tid]);
    t(&["time-entry", "list", &k1]);
    t(&["time-entry", "update", &tid, "--stop"]);

    // History.
    t(&["activity", "work-item", &k1]);
    t(&["activity", "project", &pid]);

    // Backup and restore (a whole export needs the server's admin role, which the token has).
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("backup.json");
    let file = file.to_str().expect("path");
    t(&["sync", "export", "-o", file]);
    t(&[
        "sync",
        "export",
        "work-item",
        &k1,
        "--descendant-levels",
        "1",
        "--comments",
    ]);
    t(&["sync", "import", "-f", file]);

    // Deletes last.
    t(&["time-entry", "delete", &tid]);
    t(&["dependency", "delete", &did]);
    t(&["sprint", "delete", &sid]);
    t(&["comment", "delete", &cid]);
    t(&["work-item", "delete", &k2]);
    t(&["work-item", "restore", &k2]);
    t(&["work-item", "delete", &k2]);
    t(&["work-item", "delete", &k1]);
    t(&["project", "delete", key]);
}

/// The subcommand paths `pm --help` lists under `path` (depth first), without `help`.
fn listed_subcommands(path: &[String]) -> Vec<Vec<String>> {
    let mut cmd = pm_command();
    cmd.args(path).arg("--help");
    let help = run(cmd).success().stdout;
    let mut found = Vec::new();
    let Some(section) = help.split("Commands:\n").nth(1) else {
        return found;
    };
    for line in section.lines().take_while(|l| l.starts_with("  ")) {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        // Lines indented further continue a long description.
        if name == "help" || line.starts_with("   ") {
            continue;
        }
        let mut sub = path.to_vec();
        sub.push(name.to_string());
        found.push(sub.clone());
        found.extend(listed_subcommands(&sub));
    }
    found
}

#[test]
fn every_server_subcommand_sends_the_token_from_the_flag_or_pm_token() {
    let server = TestServer::start_with(|c| {
        c.auth = AuthMode::Token;
        c.jwt_secret = Some(SECRET.into());
    });
    // The server's admin role: a whole export needs it.
    let token = pm_server::auth::issue(SECRET, USER, vec!["admin".into()], 3600).expect("token");
    let mut ran = Vec::new();
    for (via, key) in [(Via::Flag, "FLAG"), (Via::Env, "ENV")] {
        let session = Session {
            server: &server,
            token: token.clone(),
            via,
            ran: RefCell::new(Vec::new()),
        };
        every_server_subcommand(&session, key);
        ran.extend(session.ran.into_inner());
    }

    // No subcommand `pm --help` lists was skipped, except the three that never reach the
    // server through this path: `board` (needs a terminal), `completions` and `init` (local).
    let listed = listed_subcommands(&[]);
    let path = |p: &[&str]| p.iter().map(|w| w.to_string()).collect::<Vec<_>>();
    for deep in [
        path(&["project", "member", "remove"]),
        path(&["sync", "export", "work-item"]),
    ] {
        assert!(listed.contains(&deep), "{deep:?} not in {listed:?}");
    }
    let skipped: Vec<Vec<String>> = listed
        .into_iter()
        .filter(|path| !matches!(path[0].as_str(), "board" | "completions" | "init"))
        .filter(|path| !ran.iter().any(|args| args.starts_with(path)))
        .collect();
    assert!(
        skipped.is_empty(),
        "subcommands not run in token mode: {skipped:?}"
    );
}

#[test]
fn a_wrong_token_is_refused_whichever_way_it_comes() {
    let server = TestServer::start_with(|c| {
        c.auth = AuthMode::Token;
        c.jwt_secret = Some(SECRET.into());
    });
    let forged = pm_server::auth::issue(
        "another-secret-0123456789abcdef0123456789",
        USER,
        vec!["admin".into()],
        3600,
    )
    .expect("token");
    for args in [&["project", "list"][..], &["sync", "export"][..]] {
        let mut cmd = pm_command();
        cmd.arg("--server")
            .arg(server.url())
            .arg("--token")
            .arg(&forged)
            .args(args);
        run(cmd).runtime_error();
        let mut cmd = pm_command();
        cmd.arg("--server")
            .arg(server.url())
            .env("PM_TOKEN", &forged)
            .args(args);
        run(cmd).runtime_error();
    }
}
