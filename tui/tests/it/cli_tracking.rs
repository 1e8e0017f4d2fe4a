//! The `dependency`, `time-entry`, `activity` and `sync` subcommands: the real `pm` binary
//! against a real pm-server on a loopback port with a temp database.

use crate::common::{now, pm_command, run, TestServer};
use serde_json::Value;

fn s(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("not a string: {v}"))
        .to_string()
}

/// A project PM with tasks PM-1 … PM-n.
fn board(server: &TestServer, tasks: usize) {
    server.project("PM");
    for i in 1..=tasks {
        server.ok(&[
            "work-item",
            "create",
            "--project-id",
            "PM",
            "--type",
            "task",
            "--title",
            &format!("Task {i}"),
        ]);
    }
}

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().expect("object").keys().cloned().collect();
    k.sort();
    k
}

#[test]
fn dependency_list_create_delete() {
    let server = TestServer::start();
    board(&server, 3);
    let pm1 = s(&server.ok(&["work-item", "get", "PM-1"])["work_item"]["id"]);
    let pm2 = s(&server.ok(&["work-item", "get", "PM-2"])["work_item"]["id"]);

    // The reference's grammar; the answer is the bare dependency.
    let dep = server.ok(&[
        "dependency",
        "create",
        "--blocking",
        "PM-1",
        "--blocked",
        &pm2,
        "--type",
        "blocks",
    ]);
    assert_eq!(
        keys(&dep),
        [
            "blocked_item_id",
            "blocking_item_id",
            "created_at",
            "created_by",
            "dependency_type",
            "id"
        ]
    );
    assert_eq!(
        (s(&dep["blocking_item_id"]), s(&dep["blocked_item_id"])),
        (pm1.clone(), pm2.clone())
    );
    assert_eq!(dep["dependency_type"], "blocks");
    server.ok(&[
        "dependency",
        "create",
        "--blocking",
        "PM-3",
        "--blocked",
        "PM-2",
        "--type",
        "relates_to",
    ]);

    let list = server.ok(&["dependency", "list", "PM-2"]);
    assert_eq!(list["dependencies"].as_array().map(Vec::len), Some(2));
    let table = server
        .pm(&["dependency", "list", "PM-2", "--format", "table"])
        .success()
        .stdout;
    assert!(table.starts_with("ID"), "{table}");
    assert!(
        table.contains("relates_to") && table.contains("blocks"),
        "{table}"
    );
    // The table names the cards by key, not by UUID.
    assert!(table.contains("blocks      PM-1      PM-2"), "{table}");
    assert!(table.contains("relates_to  PM-3      PM-2"), "{table}");
    assert!(!table.contains(&pm1) && !table.contains(&pm2), "{table}");

    // Rules come back as API errors (exit 1); bad grammar is a usage error (exit 2).
    let err = server
        .pm(&[
            "dependency",
            "create",
            "--blocking",
            "PM-1",
            "--blocked",
            "PM-1",
            "--type",
            "blocks",
        ])
        .runtime_error();
    assert!(
        err.contains("A work item cannot depend on itself")
            && err.contains("field: blocked_item_id"),
        "{err}"
    );
    let err = server
        .pm(&[
            "dependency",
            "create",
            "--blocking",
            "PM-2",
            "--blocked",
            "PM-1",
            "--type",
            "blocks",
        ])
        .runtime_error();
    assert!(err.contains("Circular dependency detected"), "{err}");
    server
        .pm(&[
            "dependency",
            "create",
            "--blocking",
            "PM-1",
            "--blocked",
            "PM-2",
            "--type",
            "depends",
        ])
        .usage_error();
    server
        .pm(&[
            "dependency",
            "create",
            "--blocking",
            "PM-1",
            "--type",
            "blocks",
        ])
        .usage_error();

    let id = s(&dep["id"]);
    let gone = server.ok(&["dependency", "delete", &id]);
    assert_eq!(gone["deleted_id"], id.as_str());
    assert_eq!(
        server.ok(&["dependency", "list", "PM-2"])["dependencies"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    let err = server.pm(&["dependency", "delete", &id]).runtime_error();
    assert!(err.contains("NOT_FOUND"), "{err}");
    // The same pair can be linked again.
    server.ok(&[
        "dependency",
        "create",
        "--blocking",
        "PM-1",
        "--blocked",
        "PM-2",
        "--type",
        "blocks",
    ]);
}

#[test]
fn time_entry_list_get_create_update_delete() {
    let server = TestServer::start();
    board(&server, 2);
    let first = server.ok(&[
        "time-entry",
        "create",
        "--work-item-id",
        "PM-1",
        "--description",
        "Pairing",
    ])["time_entry"]
        .clone();
    assert_eq!(first["is_running"], true);
    assert_eq!(first["description"], "Pairing");
    let first_id = s(&first["id"]);

    // Starting another timer stops the first.
    let second =
        server.ok(&["time-entry", "create", "--work-item-id", "PM-2"])["time_entry"].clone();
    let second_id = s(&second["id"]);
    let stopped = server.ok(&["time-entry", "get", &first_id])["time_entry"].clone();
    assert_eq!(stopped["is_running"], false);

    let done = server.ok(&["time-entry", "update", &second_id, "--stop"])["time_entry"].clone();
    assert_eq!(done["is_running"], false);
    let err = server
        .pm(&["time-entry", "update", &second_id, "--stop"])
        .runtime_error();
    assert!(err.contains("Timer is not running"), "{err}");
    let edited = server.ok(&[
        "time-entry",
        "update",
        &second_id,
        "--description",
        "Review",
    ])["time_entry"]
        .clone();
    assert_eq!(edited["description"], "Review");

    // Finished work, and the list (latest start first).
    let start = now() - 7200;
    let manual = server.ok(&[
        "time-entry",
        "create",
        "--work-item-id",
        "PM-2",
        "--started-at",
        &start.to_string(),
        "--ended-at",
        &(start + 1800).to_string(),
    ])["time_entry"]
        .clone();
    assert_eq!(manual["duration_seconds"], 1800);
    let list = server.ok(&["time-entry", "list", "PM-2"]);
    let ids: Vec<String> = list["time_entries"]
        .as_array()
        .expect("list")
        .iter()
        .map(|t| s(&t["id"]))
        .collect();
    assert_eq!(ids, [second_id.clone(), s(&manual["id"])]);
    let table = server
        .pm(&["time-entry", "list", "PM-2", "--format", "table"])
        .success()
        .stdout;
    assert!(
        table.contains("STARTED") && table.contains("Review"),
        "{table}"
    );

    // Someone else cannot touch it; bad grammar is a usage error.
    let bob = "b0b00000-0000-4000-8000-000000000002";
    let err = server
        .pm(&["time-entry", "delete", &second_id, "--user-id", bob])
        .runtime_error();
    assert!(err.contains("UNAUTHORIZED"), "{err}");
    server
        .pm(&[
            "time-entry",
            "create",
            "--work-item-id",
            "PM-1",
            "--started-at",
            "5",
        ])
        .usage_error();
    let err = server
        .pm(&[
            "time-entry",
            "create",
            "--work-item-id",
            "PM-1",
            "--started-at",
            "5",
            "--ended-at",
            "999999",
        ])
        .runtime_error();
    assert!(err.contains("Duration cannot exceed 24 hours"), "{err}");

    let gone = server.ok(&["time-entry", "delete", &second_id]);
    assert_eq!(gone["deleted_id"], second_id.as_str());
    let err = server
        .pm(&["time-entry", "get", &second_id])
        .runtime_error();
    assert!(err.contains("NOT_FOUND"), "{err}");
}

#[test]
fn activity_shows_an_entitys_history() {
    let server = TestServer::start();
    board(&server, 1);
    server.ok(&[
        "work-item",
        "update",
        "PM-1",
        "--status",
        "review",
        "--title",
        "Renamed",
        "--expected-version",
        "1",
    ]);
    let history = server.ok(&["activity", "work-item", "PM-1"]);
    assert_eq!(history["total_count"], 2);
    let entries = history["activity"].as_array().expect("activity");
    assert_eq!(entries[0]["action"], "updated");
    let fields: Vec<String> = entries[0]["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| s(&c["field_name"]))
        .collect();
    assert_eq!(fields, ["title", "status"]);
    let page = server.ok(&[
        "activity",
        "work_item",
        "PM-1",
        "--limit",
        "1",
        "--offset",
        "1",
    ]);
    assert_eq!(page["activity"][0]["action"], "created");
    assert_eq!(page["has_more"], false);
    let table = server
        .pm(&["activity", "work-item", "PM-1", "--format", "table"])
        .success()
        .stdout;
    assert!(table.contains("status backlog → review"), "{table}");
    assert!(table.contains("total_count  2"), "{table}");
    server.pm(&["activity", "widget", "PM-1"]).usage_error();
    let err = server.pm(&["activity", "sprint", "nope"]).runtime_error();
    assert!(err.contains("Invalid entity_id"), "{err}");
}

#[test]
fn a_projects_activity_is_found_by_its_key_too() {
    let server = TestServer::start();
    board(&server, 1);
    let project = server.ok(&["project", "get", "PM"]);
    let by_id = server.ok(&["activity", "project", &s(&project["project"]["id"])]);
    let by_key = server.ok(&["activity", "project", "PM"]);
    assert_eq!(by_key, by_id);
    assert_eq!(by_key["activity"][0]["action"], "created");
    let by_lower_key = server.ok(&["activity", "project", "pm"]);
    assert_eq!(by_lower_key, by_id);
    let err = server.pm(&["activity", "project", "NOPE"]).runtime_error();
    assert!(
        err.contains("NOT_FOUND") || err.contains("not found"),
        "{err}"
    );
}

#[test]
fn sync_export_and_import_round_trip_between_servers() {
    let a = TestServer::start();
    board(&a, 3);
    a.ok(&[
        "work-item",
        "update",
        "PM-3",
        "--parent-id",
        "",
        "--status",
        "done",
        "--expected-version",
        "1",
    ]);
    a.ok(&[
        "comment",
        "create",
        "--work-item-id",
        "PM-1",
        "--content",
        "Hello",
    ]);
    a.ok(&[
        "dependency",
        "create",
        "--blocking",
        "PM-1",
        "--blocked",
        "PM-2",
        "--type",
        "blocks",
    ]);
    a.ok(&[
        "time-entry",
        "create",
        "--work-item-id",
        "PM-2",
        "--description",
        "On it",
    ]);

    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("export.json");
    let path = file.to_str().expect("path");
    let out = a.pm(&["sync", "export", "-o", path]).success();
    // stdout is the server's JSON as written (its key order), the file the same, indented.
    assert!(
        out.stdout
            .starts_with("{\"schema_version\":1,\"exported_at\":"),
        "{}",
        out.stdout
    );
    let written = std::fs::read_to_string(&file).expect("export file");
    assert!(
        written.starts_with("{\n  \"schema_version\": 1,\n  \"exported_at\": "),
        "{written}"
    );
    let exported: Value = serde_json::from_str(&out.stdout).expect("JSON");
    let from_file: Value = serde_json::from_str(&written).expect("JSON");
    assert_eq!(exported, from_file);

    let b = TestServer::start();
    let result = b.ok(&["sync", "import", "-f", path]);
    for (kind, created) in [
        ("projects", 1),
        ("work_items", 3),
        ("comments", 1),
        ("dependencies", 1),
        ("time_entries", 1),
    ] {
        assert_eq!(result[kind]["created"], created, "{kind}: {result}");
    }
    let again: Value =
        serde_json::from_str(&b.pm(&["sync", "export"]).success().stdout).expect("JSON");
    let strip = |mut v: Value| {
        v.as_object_mut().expect("object").remove("exported_at");
        v
    };
    assert_eq!(strip(again), strip(exported));
    let twice = b.ok(&["sync", "import", "--file", path]);
    assert_eq!(twice["work_items"]["skipped"], 3, "{twice}");
    assert_eq!(twice["work_items"]["created"], 0, "{twice}");
    // The next card on the new server continues the numbering.
    let next = b.ok(&[
        "work-item",
        "create",
        "--project-id",
        "PM",
        "--type",
        "task",
        "--title",
        "Next",
    ]);
    assert_eq!(next["work_item"]["display_key"], "PM-4");

    // A scoped export, and its limits.
    let scoped: Value = serde_json::from_str(
        &a.pm(&[
            "sync",
            "export",
            "work-item",
            "PM-1",
            "--descendant-levels",
            "1",
            "--comments",
        ])
        .success()
        .stdout,
    )
    .expect("JSON");
    assert_eq!(scoped["work_items"].as_array().map(Vec::len), Some(1));
    assert_eq!(scoped["comments"].as_array().map(Vec::len), Some(1));
    assert_eq!(scoped["projects"], serde_json::json!([]));
    a.pm(&[
        "sync",
        "export",
        "work-item",
        "PM-1",
        "--descendant-levels",
        "3",
    ])
    .usage_error();

    // Files that cannot be imported.
    let err = b
        .pm(&[
            "sync",
            "import",
            "-f",
            dir.path().join("missing.json").to_str().expect("path"),
        ])
        .runtime_error();
    assert!(err.contains("cannot read"), "{err}");
    let junk = dir.path().join("junk.json");
    std::fs::write(&junk, "not json").expect("write");
    let err = b
        .pm(&["sync", "import", "-f", junk.to_str().expect("path")])
        .runtime_error();
    assert!(err.contains("is not JSON"), "{err}");
    let bad = dir.path().join("bad.json");
    let mut doc = from_file.clone();
    doc["work_items"][1]["status"] = Value::from("blocked");
    std::fs::write(&bad, doc.to_string()).expect("write");
    let err = b
        .pm(&[
            "sync",
            "import",
            "-f",
            bad.to_str().expect("path"),
            "--strict",
        ])
        .runtime_error();
    assert!(err.contains("field: work_items[1].status"), "{err}");
    let mut cmd = pm_command();
    cmd.args(["sync", "import"]);
    run(cmd).usage_error();
}
