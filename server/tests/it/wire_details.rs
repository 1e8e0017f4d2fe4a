//! Small wire details the reference's clients depend on: swim-lane ids are UUIDs (stable per
//! project and status), a scoped export with dependencies keeps the links with one end in its
//! set, and an imported project description "" comes back as "" (REST, WS and export).

use std::collections::BTreeSet;

use crate::common::*;
use pm_shared::proto::{self, Payload, WorkItemType};
use serde_json::{json, Value};

async fn lane_ids(server: &TestServer, project: &str) -> Vec<String> {
    let reply = server
        .http(None)
        .get(&format!("/api/v1/projects/{project}/swim-lanes"))
        .await;
    reply.ok()["swim_lanes"]
        .as_array()
        .expect("swim_lanes")
        .iter()
        .map(|l| s(l, "id"))
        .collect()
}

fn project_doc(pid: &str, key: &str, description: Value) -> Value {
    json!({
        "schema_version": 1,
        "projects": [{
            "id": pid, "key": key, "title": "Imported", "description": description,
            "status": "active", "version": 1, "created_at": 1_770_000_000,
            "updated_at": 1_770_000_000, "created_by": USER_A, "updated_by": USER_A,
        }],
        // The reference's clients may have written lanes with any id, old pm ones included.
        "swim_lanes": [
            {"id": format!("{pid}:backlog"), "project_id": pid, "name": "Backlog",
             "status_value": "backlog", "position": 0, "is_default": true},
            {"id": "not-a-uuid", "name": "Done", "status_value": "done"},
        ],
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swim_lane_ids_are_uuids_stable_per_project_and_status() {
    let server = TestServer::start().await;
    let mut alice = server.connect(USER_A).await;
    let one = alice.create_project("One", "ONE").await;
    let two = alice.create_project("Two", "TWO").await;
    let lanes = lane_ids(&server, &one.id).await;
    assert_eq!(lanes.len(), 5);
    for id in &lanes {
        assert!(uuid::Uuid::parse_str(id).is_ok(), "not a UUID: {id}");
        assert!(!id.contains(&one.id), "{id}");
    }
    assert_eq!(lanes.iter().collect::<BTreeSet<_>>().len(), 5, "{lanes:?}");
    // The same on every call and by key; another project's lanes are others.
    assert_eq!(lane_ids(&server, "ONE").await, lanes);
    let others = lane_ids(&server, &two.id).await;
    assert!(others.iter().all(|id| !lanes.contains(id)), "{others:?}");

    // The same project on another server (an import) has the same lanes: the id depends on
    // the project and the status only. An old-form lane id in the file is no obstacle.
    let doc = sync_export(&server, "").await;
    let other = TestServer::start().await;
    let result = sync_import(&other, USER_C, &doc).await.ok().clone();
    assert_eq!(import_counts(&result, "projects"), (2, 0, 0));
    assert_eq!(lane_ids(&other, &one.id).await, lanes);

    let pid = "0d0d0d0d-0000-4000-8000-000000000001";
    let result = sync_import(&other, USER_C, &project_doc(pid, "OLD", Value::Null))
        .await
        .ok()
        .clone();
    assert_eq!(import_counts(&result, "swim_lanes"), (0, 0, 2));
    assert_eq!(import_counts(&result, "projects"), (1, 0, 0));
    assert_eq!(
        result.get("skipped"),
        None,
        "lanes are not refused rows: {result}"
    );
    let strict = sync_import_strict(&other, USER_C, &project_doc(pid, "OLD", Value::Null)).await;
    assert_eq!(import_counts(strict.ok(), "swim_lanes"), (0, 0, 2));
    assert_eq!(lane_ids(&other, pid).await.len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scoped_export_with_dependencies_keeps_links_with_one_end_in_the_set() {
    let server = TestServer::start().await;
    let mut a = server.connect(USER_A).await;
    let p = a.create_project("Links", "LK").await;
    let epic = a.create_item(&p.id, WorkItemType::Epic, "Root", None).await;
    let story = a
        .create_item(&p.id, WorkItemType::Story, "Inside", Some(&epic.id))
        .await;
    let outside = a
        .create_item(&p.id, WorkItemType::Task, "Outside", None)
        .await;
    let far = a.create_item(&p.id, WorkItemType::Task, "Far", None).await;
    let mut ids = Vec::new();
    for (blocking, blocked, kind) in [
        (&epic.id, &story.id, proto::DependencyType::Blocks),
        (&story.id, &outside.id, proto::DependencyType::Blocks),
        (&outside.id, &epic.id, proto::DependencyType::RelatesTo),
        (&outside.id, &far.id, proto::DependencyType::Blocks),
    ] {
        let req = crate::common::fixture::dep_req(blocking, blocked, kind);
        let created = expect_payload!(a.request(req).await, DependencyCreated);
        ids.push(created.dependency.expect("dependency").id);
    }
    let scoped = sync_export(
        &server,
        &format!(
            "?work_item={}&descendant_levels=1&dependencies=true",
            epic.id
        ),
    )
    .await;
    let exported: BTreeSet<String> = scoped["dependencies"]
        .as_array()
        .expect("dependencies")
        .iter()
        .map(|d| s(d, "id"))
        .collect();
    // Inside, leaving, entering; not the one between two items outside the set.
    assert_eq!(
        exported,
        ids[..3].iter().cloned().collect::<BTreeSet<_>>(),
        "{scoped}"
    );
    // Only the root: its two links, one to an item inside the full tree, one from outside.
    let root = sync_export(&server, "?work_item=LK-1&dependencies=true").await;
    assert_eq!(root["dependencies"].as_array().map(Vec::len), Some(2));

    // Such an export imports where its other ends are missing: those links are skipped.
    let other = TestServer::start().await;
    let mut doc = sync_export(&server, "").await;
    doc["dependencies"] = scoped["dependencies"].clone();
    doc["work_items"] = json!(doc["work_items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|w| w["title"] != "Outside")
        .cloned()
        .collect::<Vec<_>>());
    let result = sync_import(&other, USER_C, &doc).await.ok().clone();
    assert_eq!(
        import_counts(&result, "dependencies"),
        (1, 0, 2),
        "{result}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_imported_empty_project_description_stays_empty_over_rest_ws_and_export() {
    let server = TestServer::start().await;
    let mut watcher = server.connect(USER_C).await;
    watcher
        .subscribe_with(proto::Subscribe {
            project_list: true,
            ..Default::default()
        })
        .await;
    let empty = "0c0c0c0c-0000-4000-8000-000000000001";
    let blank = "0c0c0c0c-0000-4000-8000-000000000002";
    let none = "0c0c0c0c-0000-4000-8000-000000000003";
    for (pid, key, description) in [
        (empty, "EMPTY", json!("")),
        (blank, "BLANK", json!("   ")),
        (none, "NONE", Value::Null),
    ] {
        let result = sync_import(&server, USER_C, &project_doc(pid, key, description))
            .await
            .ok()
            .clone();
        assert_eq!(import_counts(&result, "projects"), (1, 0, 0), "{result}");
    }
    // The events the import broadcast.
    let created: Vec<proto::Project> = watcher
        .drain_events()
        .await
        .into_iter()
        .filter_map(|m| match m.payload {
            Some(Payload::ProjectCreated(c)) => c.project,
            _ => None,
        })
        .collect();
    let described = |list: &[proto::Project], id: &str| {
        list.iter()
            .find(|p| p.id == id)
            .unwrap_or_else(|| panic!("no project {id} in {list:?}"))
            .description
            .clone()
    };
    assert_eq!(described(&created, empty), Some(String::new()));
    assert_eq!(described(&created, blank), Some(String::new()));
    assert_eq!(described(&created, none), None);
    // A WS read.
    let (listed, _) = watcher.list_projects().await;
    assert_eq!(described(&listed, empty), Some(String::new()));
    assert_eq!(described(&listed, none), None);
    // REST.
    let http = server.http(None);
    let got = http.get("/api/v1/projects/EMPTY").await.ok()["project"].clone();
    assert_eq!(got["description"], json!(""));
    let got = http.get("/api/v1/projects/NONE").await.ok()["project"].clone();
    assert_eq!(got["description"], Value::Null);
    // The export, and an import of it elsewhere.
    let doc = sync_export(&server, "").await;
    let of = |doc: &Value, id: &str| {
        doc["projects"]
            .as_array()
            .expect("projects")
            .iter()
            .find(|p| p["id"] == id)
            .map(|p| p["description"].clone())
            .unwrap_or_else(|| panic!("no project {id}"))
    };
    assert_eq!(of(&doc, empty), json!(""));
    assert_eq!(of(&doc, none), Value::Null);
    let other = TestServer::start().await;
    sync_import(&other, USER_C, &doc).await.ok();
    let again = sync_export(&other, "").await;
    assert_eq!(of(&again, empty), json!(""));
    assert_eq!(of(&again, none), Value::Null);
}
