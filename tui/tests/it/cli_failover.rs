//! Several servers for one database (`--server URL1,URL2,…`, `PM_SERVER`): a server that does
//! not answer is passed over for the next, for reads and writes alike.
use crate::common::{pm_command, run, TestServer};

/// A loopback port nothing listens on.
const DEAD: &str = "http://127.0.0.1:1";

#[test]
fn a_server_that_does_not_answer_is_passed_over() {
    let server = TestServer::start();
    let list = format!("{DEAD},{}", server.url());
    let mut cmd = pm_command();
    cmd.args([
        "--server", &list, "project", "create", "--title", "Failover", "--key", "FO",
    ]);
    let created = run(cmd).success().json();
    assert_eq!(created["project"]["key"], "FO");

    let mut cmd = pm_command();
    cmd.env("PM_SERVER", &list).args(["project", "list"]);
    let listed = run(cmd).success().json();
    assert_eq!(listed["projects"][0]["key"], "FO");
}

#[test]
fn when_no_server_answers_the_error_names_the_last_one_tried() {
    let mut cmd = pm_command();
    cmd.args([
        "--server",
        &format!("{DEAD},http://127.0.0.1:2"),
        "project",
        "list",
    ]);
    let err = run(cmd).runtime_error();
    assert!(err.contains("127.0.0.1:2"), "{err}");
}

#[test]
fn a_malformed_entry_in_the_list_is_a_usage_error() {
    let mut cmd = pm_command();
    cmd.args(["--server", "http://127.0.0.1:9,ftp://x", "project", "list"]);
    let out = run(cmd);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("ftp://x"), "{}", out.stderr);
}
