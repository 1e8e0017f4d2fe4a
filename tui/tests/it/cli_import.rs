//! `pm sync import`: tolerant by default (the rows that cannot be stored are left out, listed
//! in the JSON answer and summarised on stderr), all or nothing with `--strict`.

use crate::common::TestServer;
use pm_shared::domain::limits;
use serde_json::{json, Value};

const USER: &str = "00000000-0000-0000-0000-000000000001";
const PROJECT: &str = "0b0b0b0b-0000-4000-8000-000000000001";

fn item(n: u64) -> String {
    format!("0b0b0b0b-0000-4000-8000-0000000001{n:02}")
}

/// One project, three tasks, a comment over the default limit, a link to an item that is
/// nowhere and a good one.
fn document() -> Value {
    let t0 = 1_770_000_000_i64;
    let tasks: Vec<Value> = (1..=3)
        .map(|n| {
            json!({
                "id": item(n), "item_type": "task", "title": format!("Task {n}"),
                "status": "todo", "priority": "low", "project_id": PROJECT,
                "item_number": n, "position": n, "version": 1, "created_at": t0,
                "updated_at": t0, "created_by": USER, "updated_by": USER,
            })
        })
        .collect();
    json!({
        "schema_version": 1,
        "projects": [{
            "id": PROJECT, "key": "IMP", "title": "Imported", "description": "",
            "status": "active", "version": 1, "created_at": t0, "updated_at": t0,
            "created_by": USER, "updated_by": USER,
        }],
        "work_items": tasks,
        "comments": [
            {"id": "0b0b0b0b-0000-4000-8000-000000000201", "work_item_id": item(1),
             "content": "fine", "created_at": t0, "updated_at": t0,
             "created_by": USER, "updated_by": USER},
            {"id": "0b0b0b0b-0000-4000-8000-000000000202", "work_item_id": item(2),
             "content": "y".repeat(limits::COMMENT_MAX + 1), "created_at": t0,
             "updated_at": t0, "created_by": USER, "updated_by": USER},
        ],
        "dependencies": [
            {"id": "0b0b0b0b-0000-4000-8000-000000000301", "blocking_item_id": item(1),
             "blocked_item_id": item(2), "dependency_type": "blocks",
             "created_at": t0, "created_by": USER},
            {"id": "0b0b0b0b-0000-4000-8000-000000000302", "blocking_item_id": item(3),
             "blocked_item_id": item(99), "dependency_type": "relates_to",
             "created_at": t0, "created_by": USER},
        ],
    })
}

#[test]
fn strict_refuses_the_file_and_the_default_imports_the_rest_with_a_summary() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("data.json");
    std::fs::write(&file, document().to_string()).expect("write");
    let path = file.to_str().expect("path");

    let err = server
        .pm(&["sync", "import", "-f", path, "--strict"])
        .runtime_error();
    assert!(err.contains("comments[1]"), "{err}");
    assert!(err.contains("must not exceed"), "{err}");
    server.pm(&["project", "get", "IMP"]).runtime_error();

    let run = server.pm(&["sync", "import", "-f", path]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let result = run.json();
    assert_eq!(result["work_items"]["created"], 3, "{result}");
    assert_eq!(result["comments"]["created"], 1, "{result}");
    assert_eq!(result["comments"]["skipped"], 1, "{result}");
    assert_eq!(result["dependencies"]["created"], 1, "{result}");
    assert_eq!(result["dependencies"]["skipped"], 1, "{result}");
    let skipped = result["skipped"].as_array().expect("skipped");
    assert_eq!(skipped.len(), 2, "{result}");
    assert_eq!(skipped[0]["entity"], "comments");
    assert_eq!(skipped[0]["index"], 1);
    assert_eq!(skipped[0]["field"], "content");
    assert_eq!(skipped[1]["entity"], "dependencies");
    assert_eq!(skipped[1]["field"], "blocked_item_id");
    let summary: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(summary.len(), 4, "{}", run.stderr);
    assert_eq!(
        summary[0],
        "Imported: projects 1 created; work_items 3 created; comments 1 created, 1 skipped; \
         dependencies 1 created, 1 skipped"
    );
    assert!(summary[1].starts_with("Skipped 2 rows"), "{}", summary[1]);
    assert!(
        summary[2]
            .starts_with("  comments[1] (id 0b0b0b0b-0000-4000-8000-000000000202): content: ")
            && summary[2].contains("must not exceed"),
        "{}",
        summary[2]
    );
    assert!(
        summary[3].starts_with("  dependencies[1] (id 0b0b0b0b-0000-4000-8000-000000000302): ")
            && summary[3].contains(&item(99)),
        "{}",
        summary[3]
    );
    let project = server.ok(&["project", "get", "IMP"]);
    assert_eq!(project["project"]["description"], "");

    // Again: nothing changes; the same two rows are named again.
    let again = server.pm(&["sync", "import", "-f", path]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    let twice = again.json();
    assert_eq!(twice["work_items"]["created"], 0, "{twice}");
    assert_eq!(twice["work_items"]["skipped"], 3, "{twice}");
    assert_eq!(twice["skipped"], result["skipped"]);
    assert!(
        again
            .stderr
            .starts_with("Imported: projects 1 skipped; work_items 3 skipped"),
        "{}",
        again.stderr
    );

    // A file every row of which goes in is imported quietly.
    let mut clean = document();
    clean["comments"] = json!([clean["comments"][0].clone()]);
    clean["dependencies"] = json!([clean["dependencies"][0].clone()]);
    std::fs::write(&file, clean.to_string()).expect("write");
    let quiet = server
        .pm(&["sync", "import", "-f", path, "--strict"])
        .success();
    assert_eq!(quiet.json()["comments"]["skipped"], 1);
    assert_eq!(quiet.json().get("skipped"), None);
}
