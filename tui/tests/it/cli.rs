//! The real `pm` binary against a real pm-server on a loopback port with a temp database.

use std::time::Duration;

use crate::common::{now, pm_command, pm_in, run, ymd, TestServer};
use futures_util::{SinkExt, StreamExt};
use pm_shared::proto::{self, Payload, WebSocketMessage};
use prost::Message as _;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}

fn version(v: &Value) -> String {
    v["version"].as_i64().expect("version").to_string()
}

#[test]
fn project_create_get_list_update_delete() {
    let server = TestServer::start();
    let created = server.ok(&[
        "project",
        "create",
        "--title",
        "Platform",
        "--key",
        "plat",
        "--description",
        "Core",
    ]);
    let p = &created["project"];
    assert_eq!(p["key"], "PLAT");
    assert_eq!(p["title"], "Platform");
    assert_eq!(p["description"], "Core");
    assert_eq!(p["status"], "active");
    assert_eq!(p["version"], 1);
    let id = s(&p["id"]).to_string();

    // By UUID and by key.
    assert_eq!(
        server.ok(&["project", "get", &id])["project"]["id"],
        id.as_str()
    );
    assert_eq!(
        server.ok(&["project", "get", "PLAT"])["project"]["id"],
        id.as_str()
    );

    server.project("WEB");
    let list = server.ok(&["project", "list"]);
    let keys: Vec<&str> = list["projects"]
        .as_array()
        .expect("projects")
        .iter()
        .map(|p| s(&p["key"]))
        .collect();
    assert_eq!(keys, ["PLAT", "WEB"]);

    let updated = server.ok(&[
        "project",
        "update",
        "PLAT",
        "--title",
        "Platform v2",
        "--status",
        "archived",
        "--expected-version",
        "1",
    ]);
    assert_eq!(updated["project"]["title"], "Platform v2");
    assert_eq!(updated["project"]["status"], "archived");
    assert_eq!(updated["project"]["version"], 2);

    let deleted = server.ok(&["project", "delete", &id]);
    assert_eq!(deleted["deleted_id"], id.as_str());
    let err = server.pm(&["project", "get", "PLAT"]).runtime_error();
    assert!(err.contains("NOT_FOUND"), "{err}");
}

#[test]
fn work_item_create_get_list_update_delete() {
    let server = TestServer::start();
    let project = server.project("PM");
    let pid = s(&project["id"]).to_string();

    // The reference's example, with a UUID project id.
    let task = server.ok(&[
        "work-item",
        "create",
        "--project-id",
        &pid,
        "--type",
        "task",
        "--title",
        "Test",
    ])["work_item"]
        .clone();
    assert_eq!(task["display_key"], "PM-1");
    assert_eq!(task["item_type"], "task");
    assert_eq!(task["status"], "backlog");
    assert_eq!(task["priority"], "medium");
    assert_eq!(task["version"], 1);
    assert_eq!(task["project_id"], pid.as_str());

    // A project key works too, and so does a parent given by display key.
    let epic = server.ok(&[
        "work-item",
        "create",
        "--project-id",
        "PM",
        "--type",
        "epic",
        "--title",
        "Checkout",
        "--priority",
        "high",
        "--description",
        "Pay for things",
    ])["work_item"]
        .clone();
    assert_eq!(epic["display_key"], "PM-2");
    assert_eq!(epic["priority"], "high");
    let story = server.ok(&[
        "work-item",
        "create",
        "--project-id",
        "PM",
        "--type",
        "story",
        "--title",
        "Card",
        "--parent-id",
        "PM-2",
        "--status",
        "todo",
    ])["work_item"]
        .clone();
    assert_eq!(story["parent_id"], epic["id"]);
    assert_eq!(story["status"], "todo");

    // get by display key and by UUID
    let by_key = server.ok(&["work-item", "get", "PM-3"]);
    assert_eq!(by_key["work_item"]["id"], story["id"]);
    let by_id = server.ok(&["work-item", "get", s(&story["id"])]);
    assert_eq!(by_id["work_item"]["display_key"], "PM-3");

    // list and its filters
    let keys = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["work-item", "list"];
        all.extend_from_slice(args);
        let out = server.ok(&all);
        let mut keys: Vec<String> = out["work_items"]
            .as_array()
            .expect("work_items")
            .iter()
            .map(|w| s(&w["display_key"]).to_string())
            .collect();
        keys.sort();
        keys
    };
    assert_eq!(keys(&["PM"]), ["PM-1", "PM-2", "PM-3"]);
    assert_eq!(keys(&[&pid, "--type", "epic"]), ["PM-2"]);
    assert_eq!(keys(&["PM", "--status", "todo"]), ["PM-3"]);
    assert_eq!(keys(&["PM", "--parent-id", "PM-2"]), ["PM-3"]);
    assert_eq!(keys(&["PM", "--orphaned"]), ["PM-1", "PM-2"]);
    assert_eq!(keys(&["PM", "--descendants-of", "PM-2"]), ["PM-3"]);
    assert_eq!(keys(&["PM", "--ancestors-of", "PM-3"]), ["PM-2"]);

    // update with --expected-version (a debug build must not panic) ...
    let v = version(&task);
    let updated = server.ok(&[
        "work-item",
        "update",
        "PM-1",
        "--title",
        "Renamed",
        "--status",
        "in_progress",
        "--priority",
        "critical",
        "--story-points",
        "5",
        "--position",
        "7",
        "--expected-version",
        &v,
    ])["work_item"]
        .clone();
    assert_eq!(updated["title"], "Renamed");
    assert_eq!(updated["status"], "in_progress");
    assert_eq!(updated["priority"], "critical");
    assert_eq!(updated["story_points"], 5);
    assert_eq!(updated["position"], 7);
    assert_eq!(updated["version"], 2);
    // ... and with the reference's --version spelling; --parent-id moves it under the story.
    let moved = server.ok(&[
        "work-item",
        "update",
        s(&task["id"]),
        "--parent-id",
        "PM-3",
        "--version",
        "2",
    ])["work_item"]
        .clone();
    assert_eq!(moved["parent_id"], story["id"]);
    assert_eq!(moved["version"], 3);
    // --update-parent alone makes it top-level again; "" unassigns.
    let top = server.ok(&[
        "work-item",
        "update",
        "PM-1",
        "--update-parent",
        "--assignee-id",
        "",
        "--expected-version",
        "3",
    ])["work_item"]
        .clone();
    assert_eq!(top["parent_id"], Value::Null);
    assert_eq!(top["assignee_id"], Value::Null);

    // done items are listed only with --include-done
    server.ok(&[
        "work-item",
        "update",
        "PM-1",
        "--status",
        "done",
        "--expected-version",
        "4",
    ]);
    assert_eq!(keys(&["PM"]), ["PM-2", "PM-3"]);
    assert_eq!(keys(&["PM", "--include-done"]), ["PM-1", "PM-2", "PM-3"]);

    // delete: an item with children is refused, leaves first
    let err = server.pm(&["work-item", "delete", "PM-2"]).runtime_error();
    assert!(err.contains("child"), "{err}");
    assert_eq!(
        server.ok(&["work-item", "delete", "PM-3"])["deleted_id"],
        story["id"]
    );
    assert_eq!(
        server.ok(&["work-item", "delete", "PM-2"])["deleted_id"],
        epic["id"]
    );
    let err = server.pm(&["work-item", "get", "PM-2"]).runtime_error();
    assert!(err.contains("NOT_FOUND"), "{err}");
}

#[test]
fn work_item_type_changes_and_points_clear() {
    let server = TestServer::start();
    server.project("PM");
    let create = |kind: &str, title: &str, parent: Option<&str>| {
        let mut args = vec![
            "work-item",
            "create",
            "--project-id",
            "PM",
            "--type",
            kind,
            "--title",
            title,
        ];
        args.extend(parent.map(|p| ["--parent-id", p]).into_iter().flatten());
        server.ok(&args)["work_item"].clone()
    };
    create("epic", "Checkout", None);
    create("story", "Pay", Some("PM-1"));
    create("task", "Card form", None);
    let update = |args: &[&str]| {
        let mut all = vec!["work-item", "update"];
        all.extend_from_slice(args);
        server.pm(&all)
    };

    let points = update(&["PM-3", "--story-points", "8", "--expected-version", "1"])
        .success()
        .json();
    assert_eq!(points["work_item"]["story_points"], 8);
    let story = update(&[
        "PM-3",
        "--type",
        "story",
        "--clear-points",
        "--expected-version",
        "2",
    ])
    .success()
    .json();
    assert_eq!(story["work_item"]["item_type"], "story");
    assert_eq!(story["work_item"]["story_points"], Value::Null);

    // A type that breaks the hierarchy: the story under the epic cannot be a task.
    let err = update(&["PM-2", "--type", "task", "--expected-version", "1"]).runtime_error();
    assert!(
        err.contains("item_type") || err.contains("Invalid hierarchy"),
        "{err}"
    );
    // Unknown types and points set and cleared at once never leave the CLI.
    let err = update(&["PM-3", "--type", "bug", "--expected-version", "3"]).usage_error();
    assert!(err.contains("bug"), "{err}");
    let err = update(&[
        "PM-3",
        "--story-points",
        "3",
        "--clear-points",
        "--expected-version",
        "3",
    ])
    .usage_error();
    assert!(err.contains("--clear-points"), "{err}");
}

#[test]
fn a_deleted_work_item_is_restored_by_its_key() {
    let server = TestServer::start();
    server.project("PM");
    let item = server.ok(&[
        "work-item",
        "create",
        "--project-id",
        "PM",
        "--type",
        "task",
        "--title",
        "Oops",
    ])["work_item"]
        .clone();
    server.ok(&["work-item", "delete", "PM-1"]);
    let back = server.ok(&["work-item", "restore", "PM-1"])["work_item"].clone();
    assert_eq!(
        (back["id"].clone(), back["display_key"].clone()),
        (item["id"].clone(), "PM-1".into())
    );
    let err = server.pm(&["work-item", "restore", "PM-1"]).runtime_error();
    assert!(err.contains("not deleted"), "{err}");
}

#[test]
fn sprint_create_get_list_update_delete() {
    let server = TestServer::start();
    let project = server.project("SP");
    let start = now() + 86_400;
    let end = start + 14 * 86_400;
    let sprint = server.ok(&[
        "sprint",
        "create",
        "--project-id",
        "SP",
        "--name",
        "Sprint 1",
        "--goal",
        "Ship",
        "--start-date",
        &start.to_string(),
        "--end-date",
        &end.to_string(),
    ])["sprint"]
        .clone();
    assert_eq!(sprint["name"], "Sprint 1");
    assert_eq!(sprint["goal"], "Ship");
    assert_eq!(sprint["status"], "planned");
    assert_eq!(sprint["start_date"], start);
    assert_eq!(sprint["end_date"], end);
    assert_eq!(sprint["project_id"], project["id"]);
    let id = s(&sprint["id"]).to_string();

    assert_eq!(
        server.ok(&["sprint", "get", &id])["sprint"]["id"],
        id.as_str()
    );
    let list = server.ok(&["sprint", "list", "SP"]);
    assert_eq!(list["sprints"].as_array().map(Vec::len), Some(1));
    let list = server.ok(&["sprint", "list", s(&project["id"])]);
    assert_eq!(list["sprints"][0]["id"], id.as_str());

    // Dates as calendar dates; status transitions.
    let new_end = ymd(end + 7 * 86_400);
    let updated = server.ok(&[
        "sprint",
        "update",
        &id,
        "--name",
        "Sprint one",
        "--end-date",
        &new_end,
        "--status",
        "active",
        "--expected-version",
        "1",
    ])["sprint"]
        .clone();
    assert_eq!(updated["name"], "Sprint one");
    assert_eq!(updated["status"], "active");
    assert_eq!(updated["version"], 2);
    let end_secs = updated["end_date"].as_i64().expect("end_date");
    assert_eq!(end_secs % 86_400, 0);
    assert_eq!(ymd(end_secs), new_end);

    // Work items join the sprint and can be listed by it.
    server.ok(&[
        "work-item",
        "create",
        "--project-id",
        "SP",
        "--type",
        "task",
        "--title",
        "In",
    ]);
    server.ok(&[
        "work-item",
        "create",
        "--project-id",
        "SP",
        "--type",
        "task",
        "--title",
        "Out",
    ]);
    let item = server.ok(&[
        "work-item",
        "update",
        "SP-1",
        "--sprint-id",
        &id,
        "--version",
        "1",
    ]);
    assert_eq!(item["work_item"]["sprint_id"], id.as_str());
    let listed = server.ok(&["work-item", "list", "SP", "--sprint-id", &id]);
    assert_eq!(listed["work_items"].as_array().map(Vec::len), Some(1));
    assert_eq!(listed["work_items"][0]["display_key"], "SP-1");

    // A version conflict is exit 1.
    let err = server
        .pm(&[
            "sprint",
            "update",
            &id,
            "--name",
            "x",
            "--expected-version",
            "1",
        ])
        .runtime_error();
    assert!(err.contains("CONFLICT"), "{err}");

    assert_eq!(
        server.ok(&["sprint", "delete", &id])["deleted_id"],
        id.as_str()
    );
    let err = server.pm(&["sprint", "get", &id]).runtime_error();
    assert!(err.contains("NOT_FOUND"), "{err}");
}

#[test]
fn comment_create_get_list_update_delete() {
    let server = TestServer::start();
    server.project("CM");
    let item = server.ok(&[
        "work-item",
        "create",
        "--project-id",
        "CM",
        "--type",
        "story",
        "--title",
        "Story",
    ])["work_item"]
        .clone();
    let c1 = server.ok(&[
        "comment",
        "create",
        "--work-item-id",
        "CM-1",
        "--content",
        "First",
    ])["comment"]
        .clone();
    assert_eq!(c1["content"], "First");
    assert_eq!(c1["work_item_id"], item["id"]);
    let c2 = server.ok(&[
        "comment",
        "create",
        "--work-item-id",
        s(&item["id"]),
        "--content",
        "Second",
    ])["comment"]
        .clone();
    let id = s(&c1["id"]).to_string();

    assert_eq!(
        server.ok(&["comment", "get", &id])["comment"]["content"],
        "First"
    );
    let list = server.ok(&["comment", "list", "CM-1"]);
    let mut contents: Vec<&str> = list["comments"]
        .as_array()
        .expect("comments")
        .iter()
        .map(|c| s(&c["content"]))
        .collect();
    // Comments of the same second come in id order (server: ORDER BY created_at, id).
    contents.sort();
    assert_eq!(contents, ["First", "Second"]);

    let updated = server.ok(&["comment", "update", &id, "--content", "First, edited"]);
    assert_eq!(updated["comment"]["content"], "First, edited");

    assert_eq!(
        server.ok(&["comment", "delete", &id])["deleted_id"],
        id.as_str()
    );
    let list = server.ok(&["comment", "list", s(&item["id"])]);
    assert_eq!(list["comments"].as_array().map(Vec::len), Some(1));
    assert_eq!(list["comments"][0]["id"], c2["id"]);
    let err = server.pm(&["comment", "get", &id]).runtime_error();
    assert!(err.contains("NOT_FOUND"), "{err}");
}

#[test]
fn swim_lanes_are_the_board_columns() {
    let server = TestServer::start();
    let project = server.project("SL");
    let lanes = server.ok(&["swim-lane", "list", "SL"]);
    let names: Vec<&str> = lanes["swim_lanes"]
        .as_array()
        .expect("swim_lanes")
        .iter()
        .map(|l| s(&l["status_value"]))
        .collect();
    assert_eq!(names, ["backlog", "todo", "in_progress", "review", "done"]);
    assert_eq!(lanes["swim_lanes"][0]["project_id"], project["id"]);
    assert_eq!(server.ok(&["swim-lane", "list", s(&project["id"])]), lanes);
}

#[test]
fn unknown_ids_exit_1_with_an_error_message() {
    let server = TestServer::start();
    server.project("UK");
    let missing = "0b6c1f9e-5d8a-4c1e-9f3a-2f1d7e6a9b10";
    for args in [
        vec!["project", "get", "NOPE"],
        vec!["project", "get", missing],
        vec!["project", "delete", "NOPE"],
        vec![
            "project",
            "update",
            "NOPE",
            "--title",
            "x",
            "--expected-version",
            "1",
        ],
        vec!["work-item", "get", "UK-99"],
        vec!["work-item", "get", missing],
        vec![
            "work-item",
            "update",
            missing,
            "--title",
            "x",
            "--expected-version",
            "1",
        ],
        vec!["work-item", "delete", "UK-99"],
        vec!["work-item", "list", "NOPE"],
        vec!["sprint", "get", missing],
        vec!["sprint", "list", "NOPE"],
        vec!["sprint", "delete", missing],
        vec!["comment", "get", missing],
        vec!["comment", "list", "UK-99"],
        vec!["comment", "update", missing, "--content", "x"],
        vec!["comment", "delete", missing],
        vec!["swim-lane", "list", "NOPE"],
    ] {
        let err = server.pm(&args).runtime_error();
        assert!(err.contains("NOT_FOUND"), "{args:?}: {err}");
    }
    // A malformed id is the server's validation error, still exit 1.
    let err = server.pm(&["sprint", "get", "not-a-uuid"]).runtime_error();
    assert!(err.contains("VALIDATION_ERROR"), "{err}");
    // Server-side validation, e.g. a blank title.
    let err = server
        .pm(&[
            "work-item",
            "create",
            "--project-id",
            "UK",
            "--type",
            "task",
            "--title",
            "  ",
        ])
        .runtime_error();
    assert!(err.contains("title"), "{err}");
}

#[test]
fn bad_enum_values_and_missing_flags_are_usage_errors() {
    let server = TestServer::start();
    server.project("BE");
    for args in [
        vec![
            "work-item",
            "create",
            "--project-id",
            "BE",
            "--type",
            "bogus",
            "--title",
            "x",
        ],
        vec![
            "work-item",
            "create",
            "--project-id",
            "BE",
            "--type",
            "task",
            "--title",
            "x",
            "--status",
            "blocked",
        ],
        vec![
            "work-item",
            "create",
            "--project-id",
            "BE",
            "--type",
            "task",
            "--title",
            "x",
            "--priority",
            "urgent",
        ],
        vec![
            "work-item",
            "update",
            "BE-1",
            "--story-points",
            "101",
            "--expected-version",
            "1",
        ],
        vec!["work-item", "update", "BE-1", "--title", "no version"],
        vec![
            "work-item",
            "list",
            "BE",
            "--parent-id",
            "BE-1",
            "--orphaned",
        ],
        vec![
            "project",
            "update",
            "BE",
            "--status",
            "deleted",
            "--expected-version",
            "1",
        ],
        vec![
            "sprint",
            "update",
            "0b6c1f9e-5d8a-4c1e-9f3a-2f1d7e6a9b10",
            "--status",
            "open",
            "--expected-version",
            "1",
        ],
        vec![
            "sprint",
            "create",
            "--project-id",
            "BE",
            "--name",
            "S",
            "--start-date",
            "soon",
            "--end-date",
            "later",
        ],
        vec!["project", "create", "--title", "missing key"],
        vec!["project", "frobnicate"],
        vec!["project", "list", "--no-such-flag"],
        vec!["--format", "yaml", "project", "list"],
    ] {
        let err = server.pm(&args).usage_error();
        assert!(!err.is_empty(), "{args:?}");
    }
    let err = server
        .pm(&[
            "work-item",
            "create",
            "--project-id",
            "BE",
            "--type",
            "bogus",
            "--title",
            "x",
        ])
        .usage_error();
    assert!(err.contains("invalid value 'bogus'"), "{err}");
    assert!(err.contains("epic, story, task"), "{err}");
    // Nothing was created by the rejected commands.
    let list = server.ok(&["work-item", "list", "BE", "--include-done"]);
    assert_eq!(list["work_items"], serde_json::json!([]));
    // No arguments at all: usage on stderr, exit 2.
    run(pm_command()).usage_error();
}

#[test]
fn version_conflict_exits_1() {
    let server = TestServer::start();
    server.project("VC");
    server.ok(&[
        "work-item",
        "create",
        "--project-id",
        "VC",
        "--type",
        "task",
        "--title",
        "T",
    ]);
    server.ok(&[
        "work-item",
        "update",
        "VC-1",
        "--title",
        "Mine",
        "--expected-version",
        "1",
    ]);
    let err = server
        .pm(&[
            "work-item",
            "update",
            "VC-1",
            "--title",
            "Theirs",
            "--expected-version",
            "1",
        ])
        .runtime_error();
    assert!(err.contains("CONFLICT"), "{err}");
    assert!(err.contains("current version: 2"), "{err}");
    let item = server.ok(&["work-item", "get", "VC-1"]);
    assert_eq!(item["work_item"]["title"], "Mine");

    let err = server
        .pm(&[
            "project",
            "update",
            "VC",
            "--title",
            "x",
            "--expected-version",
            "7",
        ])
        .runtime_error();
    assert!(err.contains("CONFLICT"), "{err}");
}

#[test]
fn server_down_exits_1_with_a_clear_message() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let url = format!("http://127.0.0.1:{port}");
    let mut cmd = pm_command();
    cmd.args(["--server", &url, "project", "list"]);
    let err = run(cmd).runtime_error();
    assert!(err.contains("cannot reach pm-server at"), "{err}");
    assert!(err.contains(&url), "{err}");
    assert!(err.contains("Is the server running?"), "{err}");

    // A server that stopped: the same.
    let server = TestServer::start();
    let url = server.url();
    drop(server);
    let mut cmd = pm_command();
    cmd.args(["project", "list", "--server", &url]);
    let err = run(cmd).runtime_error();
    assert!(err.contains("cannot reach pm-server"), "{err}");
}

#[test]
fn no_discoverable_server_exits_1_naming_where_it_looked() {
    let home = tempfile::tempdir().expect("home");
    let cwd = tempfile::tempdir().expect("cwd");
    let err = run(pm_in(home.path(), cwd.path(), &["project", "list"])).runtime_error();
    assert!(err.contains("No running pm-server found"), "{err}");
    let port_file = home.path().join(".pm").join("server.json");
    assert!(err.contains(&port_file.display().to_string()), "{err}");
    assert!(err.contains("PM_SERVER"), "{err}");
    assert!(err.contains("--server"), "{err}");
}

#[test]
fn pm_server_env_finds_the_server_and_server_flag_wins() {
    let server = TestServer::start();
    server.project("ENV");
    let home = tempfile::tempdir().expect("home");
    let cwd = tempfile::tempdir().expect("cwd");
    let mut cmd = pm_in(home.path(), cwd.path(), &["project", "get", "ENV"]);
    cmd.env("PM_SERVER", server.url());
    assert_eq!(run(cmd).success().json()["project"]["key"], "ENV");
    // A bare host:port is accepted.
    let mut cmd = pm_in(home.path(), cwd.path(), &["project", "get", "ENV"]);
    cmd.env("PM_SERVER", server.addr.to_string());
    run(cmd).success();
    // --server beats PM_SERVER.
    let mut cmd = pm_in(home.path(), cwd.path(), &["project", "get", "ENV"]);
    cmd.env("PM_SERVER", "http://127.0.0.1:1")
        .args(["--server", &server.url()]);
    run(cmd).success();
}

#[test]
fn the_servers_port_file_is_discovered() {
    let server = TestServer::start();
    server.project("PF");
    let home = tempfile::tempdir().expect("home");
    let cwd = tempfile::tempdir().expect("cwd");
    let data = home.path().join(".pm");
    std::fs::create_dir_all(&data).expect("data dir");
    // Written by the server's own writer; it names this (live) test process.
    pm_server::discovery::write(&data, "127.0.0.1", server.addr.port()).expect("port file");
    let out = run(pm_in(home.path(), cwd.path(), &["project", "list"])).success();
    assert_eq!(out.json()["projects"][0]["key"], "PF");

    // PM_DATA_DIR names another data directory, looked at first.
    let other = tempfile::tempdir().expect("data dir");
    let info = serde_json::json!({
        "pid": std::process::id(), "port": server.addr.port(), "host": "0.0.0.0",
        "started_at": "2026-01-01T00:00:00Z", "version": "0.1.4",
    });
    std::fs::write(other.path().join("server.json"), info.to_string()).expect("write");
    let empty_home = tempfile::tempdir().expect("home");
    let mut cmd = pm_in(empty_home.path(), cwd.path(), &["project", "get", "PF"]);
    cmd.env("PM_DATA_DIR", other.path());
    run(cmd).success();
}

#[test]
fn a_stale_port_file_is_removed() {
    let home = tempfile::tempdir().expect("home");
    let cwd = tempfile::tempdir().expect("cwd");
    let data = home.path().join(".pm");
    std::fs::create_dir_all(&data).expect("data dir");
    // The pid of a process that has exited.
    let mut child = std::process::Command::new("true").spawn().expect("spawn");
    let dead = child.id();
    child.wait().expect("wait");
    let info = serde_json::json!({
        "pid": dead, "port": 1, "host": "127.0.0.1", "started_at": "", "version": "",
    });
    let file = data.join("server.json");
    std::fs::write(&file, info.to_string()).expect("write");
    let err = run(pm_in(home.path(), cwd.path(), &["project", "list"])).runtime_error();
    assert!(err.contains("No running pm-server found"), "{err}");
    assert!(err.contains("stale"), "{err}");
    assert!(!file.exists(), "the stale port file is still there");
}

#[test]
fn output_is_compact_json_by_default_and_indented_with_pretty() {
    let server = TestServer::start();
    server.project("OUT");
    let compact = server.pm(&["project", "get", "OUT"]).success();
    assert_eq!(compact.stdout.lines().count(), 1, "{}", compact.stdout);
    let pretty = server.pm(&["project", "get", "OUT", "--pretty"]).success();
    assert!(pretty.stdout.lines().count() > 5, "{}", pretty.stdout);
    assert!(
        pretty.stdout.contains("\n  \"project\": {\n"),
        "{}",
        pretty.stdout
    );
    assert_eq!(compact.json(), pretty.json());
    // Global flags go before the subcommand too.
    let before = server.pm(&["--pretty", "project", "get", "OUT"]).success();
    assert_eq!(before.stdout, pretty.stdout);
}

#[test]
fn table_format_for_lists_and_single_entities() {
    let server = TestServer::start();
    server.project("TB");
    server.ok(&[
        "work-item",
        "create",
        "--project-id",
        "TB",
        "--type",
        "epic",
        "--title",
        "Big",
    ]);
    server.ok(&[
        "work-item",
        "create",
        "--project-id",
        "TB",
        "--type",
        "story",
        "--title",
        "Small",
        "--parent-id",
        "TB-1",
    ]);
    let out = server
        .pm(&["work-item", "list", "TB", "--format", "table"])
        .success()
        .stdout;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(lines[0].starts_with("KEY   TYPE   STATUS"), "{out}");
    assert!(lines[0].ends_with("TITLE"), "{out}");
    assert!(lines[1].starts_with("TB-1  epic   backlog"), "{out}");
    assert!(lines[1].ends_with("Big"), "{out}");
    assert!(lines[2].starts_with("TB-2  story  backlog"), "{out}");
    // Columns line up: every row has its TITLE where the header has it.
    let title_at = lines[0].find("TITLE").expect("TITLE");
    assert_eq!(lines[1].find("Big"), Some(title_at), "{out}");
    assert_eq!(lines[2].find("Small"), Some(title_at), "{out}");

    let out = server
        .pm(&["--format", "table", "project", "list"])
        .success()
        .stdout;
    assert!(out.starts_with("KEY  TITLE       STATUS  VER  ID"), "{out}");
    assert!(out.contains("\nTB   Project TB  active  1"), "{out}");

    let out = server
        .pm(&["swim-lane", "list", "TB", "--format", "table"])
        .success()
        .stdout;
    assert!(out.contains("2    In Progress  in_progress"), "{out}");

    let out = server
        .pm(&["sprint", "list", "TB", "--format", "table"])
        .success()
        .stdout;
    assert_eq!(out, "NAME  STATUS  START  END  VER  ID\n(no sprints)\n");

    let out = server
        .pm(&["work-item", "get", "TB-2", "--format", "table"])
        .success()
        .stdout;
    let fields: Vec<(&str, &str)> = out
        .lines()
        .map(|l| l.split_once(' ').map_or((l, ""), |(k, v)| (k, v.trim())))
        .collect();
    assert_eq!(fields[0], ("display_key", "TB-2"), "{out}");
    assert_eq!(fields[1], ("item_type", "story"), "{out}");
    assert!(fields.contains(&("title", "Small")), "{out}");
    assert!(fields.contains(&("sprint_id", "-")), "{out}");
    // Values start in one column.
    let value_at = out.find("TB-2").expect("value");
    assert!(out.lines().all(|l| l.len() > value_at), "{out}");
}

#[test]
fn completions_for_bash_zsh_and_fish() {
    for shell in ["bash", "zsh", "fish"] {
        let mut cmd = pm_command();
        cmd.args(["completions", shell]);
        let out = run(cmd).success();
        assert!(out.stdout.contains("work-item"), "{shell}: {}", out.stdout);
        assert!(out.stdout.contains("expected-version"), "{shell}");
    }
    let mut cmd = pm_command();
    cmd.args(["completions", "tcsh"]);
    run(cmd).usage_error();
}

/// `pm man --dir` (the installer's): a page for pm and one for each subcommand, from the same
/// definitions as `--help`; a directory it cannot create is an error, not a panic.
#[test]
fn man_pages_for_pm_and_every_subcommand() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pages = dir.path().join("man1");
    let mut cmd = pm_command();
    cmd.args(["man", "--dir"]).arg(&pages);
    run(cmd).success();
    let read = |name: &str| {
        std::fs::read_to_string(pages.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    let top = read("pm.1");
    assert!(top.contains(".TH pm 1"), "{top}");
    assert!(
        top.contains("pm\\-work\\-item(1)"),
        "the top page names the others:\n{top}"
    );
    let update = read("pm-work-item-update.1");
    assert!(update.contains("expected\\-version"), "{update}");
    assert!(
        !pages.join("pm-man.1").exists(),
        "the hidden subcommand has no page"
    );
    // `man` is not listed by --help.
    let mut help = pm_command();
    help.arg("--help");
    let out = run(help).success();
    assert!(!out.stdout.contains("\n  man "), "{}", out.stdout);

    let file = dir.path().join("a-file");
    std::fs::write(&file, "").expect("write");
    let mut cmd = pm_command();
    cmd.args(["man", "--dir"]).arg(file.join("sub"));
    let stderr = run(cmd).runtime_error();
    assert!(stderr.contains("cannot write the man pages"), "{stderr}");
}

#[test]
fn a_title_with_a_line_break_is_refused_before_it_is_sent() {
    for args in [
        &[
            "work-item",
            "create",
            "--project-id",
            "PM",
            "--type",
            "task",
            "--title",
            "line1\nline2",
        ][..],
        &[
            "work-item",
            "update",
            "PM-1",
            "--title",
            "a\r\nb",
            "--expected-version",
            "1",
        ],
    ] {
        let mut cmd = pm_command();
        // Nothing listens here: a request would fail with status 1, not 2.
        cmd.args(["--server", "http://127.0.0.1:1"]).args(args);
        let err = run(cmd).usage_error();
        assert!(err.contains("one line"), "{err}");
    }
}

/// `pm completions bash | head -1`: the reader goes away; pm stops quietly with status 0.
#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    let bin = assert_cmd::cargo::cargo_bin("pm");
    for args in [&["completions", "bash"][..], &["--help"]] {
        let mut child = std::process::Command::new(&bin)
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn pm");
        // Close the reading end before pm writes anything.
        drop(child.stdout.take());
        let out = child.wait_with_output().expect("wait for pm");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "pm {args:?}: {stderr}");
        assert_eq!(out.status.code(), Some(0), "pm {args:?}: {stderr}");
    }
}

#[test]
fn help_shows_examples_for_every_subcommand() {
    let mut paths: Vec<Vec<&str>> = vec![vec![], vec!["completions"], vec!["activity"]];
    for (resource, actions) in [
        (
            "project",
            &["list", "get", "create", "update", "delete"][..],
        ),
        (
            "work-item",
            &["list", "get", "create", "update", "delete"][..],
        ),
        ("sprint", &["list", "get", "create", "update", "delete"][..]),
        (
            "comment",
            &["list", "get", "create", "update", "delete"][..],
        ),
        ("swim-lane", &["list"][..]),
        ("dependency", &["list", "create", "delete"][..]),
        (
            "time-entry",
            &["list", "get", "create", "update", "delete"][..],
        ),
        ("sync", &["export", "import"][..]),
    ] {
        for action in actions {
            paths.push(vec![resource, action]);
        }
    }
    for path in paths {
        let mut cmd = pm_command();
        cmd.args(&path).arg("--help");
        let out = run(cmd).success();
        assert!(out.stdout.contains("Examples:"), "{path:?}: {}", out.stdout);
        if let Some(resource) = path.first() {
            assert!(out.stdout.contains(&format!("pm {resource}")), "{path:?}");
        }
        assert!(
            out.stdout.contains("--server <URL>"),
            "{path:?}: global flags"
        );
    }
    let mut cmd = pm_command();
    cmd.arg("--version");
    let out = run(cmd).success();
    assert!(out.stdout.starts_with("pm "), "{}", out.stdout);
}

#[test]
fn identity_comes_from_user_id_then_pm_user_id_then_the_default() {
    let server = TestServer::start();
    let alice = "a11ce000-0000-4000-8000-000000000001";
    let bob = "b0b00000-0000-4000-8000-000000000002";
    let p = server.ok(&[
        "project",
        "create",
        "--title",
        "A",
        "--key",
        "ID",
        "--user-id",
        alice,
    ]);
    assert_eq!(p["project"]["created_by"], alice);

    let mut cmd = pm_command();
    cmd.env("PM_USER_ID", bob).args([
        "--server",
        &server.url(),
        "project",
        "update",
        "ID",
        "--title",
        "B",
        "--expected-version",
        "1",
    ]);
    let p = run(cmd).success().json();
    assert_eq!(p["project"]["updated_by"], bob);

    let p = server.ok(&[
        "project",
        "update",
        "ID",
        "--title",
        "C",
        "--expected-version",
        "2",
    ]);
    assert_eq!(p["project"]["updated_by"], pm_shared::DEFAULT_USER_ID);

    let err = server
        .pm(&["project", "list", "--user-id", "not-a-uuid"])
        .runtime_error();
    assert!(err.contains("invalid user id 'not-a-uuid'"), "{err}");
}

/// The point of the product: a card created from the command line reaches every open board.
#[test]
fn a_work_item_created_by_the_cli_reaches_a_subscribed_websocket_client() {
    let server = TestServer::start();
    let project = server.project("WS");
    let pid = s(&project["id"]).to_string();
    let url = server.url();
    let ws_url = format!("ws://{}/ws", server.addr);

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let (mut ws, _) = tokio_tungstenite::connect_async(ws_url.as_str())
            .await
            .expect("connect");
        let subscribe = WebSocketMessage::with_payload(
            "sub-1",
            Payload::Subscribe(proto::Subscribe {
                project_ids: vec![pid.clone()],
                ..Default::default()
            }),
        );
        ws.send(Message::Binary(subscribe.encode_to_vec().into()))
            .await
            .expect("send subscribe");
        // Wait for the (payload-less) Subscribe reply so the subscription is in place.
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let frame = ws.next().await.expect("open").expect("frame");
                if let Message::Binary(b) = frame {
                    let msg = WebSocketMessage::decode(b).expect("decode");
                    if msg.message_id == "sub-1" {
                        assert!(msg.payload.is_none(), "{msg:?}");
                        break;
                    }
                }
            }
        })
        .await
        .expect("subscribe reply");

        let cli = tokio::task::spawn_blocking(move || {
            let mut cmd = pm_command();
            cmd.args([
                "--server",
                &url,
                "work-item",
                "create",
                "--project-id",
                "WS",
                "--type",
                "task",
                "--title",
                "From the CLI",
            ]);
            run(cmd).success().json()
        });

        let event = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let frame = ws.next().await.expect("open").expect("frame");
                if let Message::Binary(b) = frame {
                    let msg = WebSocketMessage::decode(b).expect("decode");
                    if let Some(Payload::WorkItemCreated(e)) = msg.payload {
                        break (msg.message_id, e);
                    }
                }
            }
        })
        .await
        .expect("WorkItemCreated within 10 s");

        let created = cli.await.expect("cli");
        let (message_id, e) = event;
        let item = e.work_item.expect("work item");
        assert_eq!(item.title, "From the CLI");
        assert_eq!(item.project_id, pid);
        assert_eq!(item.id, s(&created["work_item"]["id"]));
        assert_eq!(item.item_number, 1);
        assert_eq!(e.user_id, pm_shared::DEFAULT_USER_ID);
        assert!(!message_id.is_empty());
    });
}

/// `pm board` reads `$XDG_CONFIG_HOME/pm/config.toml` before anything else: a mistake in it is
/// named (file and setting) even where no terminal is at hand.
#[test]
fn the_boards_config_file_is_checked_and_its_mistakes_named() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("pm").join("config.toml");
    std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
    let board = |config: &str| {
        std::fs::write(&file, config).expect("write the config");
        let mut cmd = pm_command();
        cmd.env("XDG_CONFIG_HOME", dir.path()).arg("board");
        run(cmd)
    };
    let out = board("colour = false\n");
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("config.toml") && out.stderr.contains("unknown setting \"colour\""),
        "{}",
        out.stderr
    );
    let out = board("[keys]\nundo = \"p\"\n");
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("[keys]: the key p is bound to both priority and undo"),
        "{}",
        out.stderr
    );
    // A good file: the board goes on to want a terminal.
    let out = board("name = \"alice\"\ncolor = false\n[keys]\nundo = [\"u\", \"ctrl-z\"]\n");
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("needs an interactive terminal"),
        "{}",
        out.stderr
    );
}

/// `--format table` names users (from the server's user list) and cards (by key) instead of
/// showing id prefixes; the JSON keeps the ids.
#[test]
fn tables_name_users_and_cards() {
    const CAROL: &str = "ca201000-0000-4000-a000-000000000003";
    let server = TestServer::start();
    server.project("NM");
    for title in ["One", "Two"] {
        server.ok(&[
            "work-item",
            "create",
            "--project-id",
            "NM",
            "--type",
            "task",
            "--title",
            title,
        ]);
    }
    // carol's name is known to the server once she has connected with it (as a board does).
    let ws_url = format!("ws://{}/ws?user_id={CAROL}&name=carol", server.addr);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let (mut ws, _) = tokio_tungstenite::connect_async(ws_url.as_str())
            .await
            .expect("connect");
        let _ = ws.close(None).await;
    });
    let as_carol = |args: &[&str]| {
        let mut all = vec!["--user-id", CAROL];
        all.extend_from_slice(args);
        server.pm(&all).success().stdout
    };
    as_carol(&[
        "comment",
        "create",
        "--work-item-id",
        "NM-1",
        "--content",
        "Hi",
    ]);
    as_carol(&[
        "dependency",
        "create",
        "--blocking",
        "NM-1",
        "--blocked",
        "NM-2",
        "--type",
        "blocks",
    ]);
    let comments = as_carol(&["comment", "list", "NM-1", "--format", "table"]);
    let by = comments.lines().nth(1).unwrap_or_default();
    assert!(
        by.contains("carol") && !by.contains("ca201000"),
        "{comments}"
    );
    let links = as_carol(&["dependency", "list", "NM-2", "--format", "table"]);
    assert!(links.contains("NM-1") && links.contains("NM-2"), "{links}");
    let history = as_carol(&["activity", "work-item", "NM-1", "--format", "table"]);
    assert!(
        history.contains("Local User"),
        "the creator by name: {history}"
    );
    // JSON is the server's own.
    let json = as_carol(&["comment", "list", "NM-1"]);
    assert!(json.contains(CAROL), "{json}");
}
