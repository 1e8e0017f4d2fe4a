//! History (activity log over WS and REST, for live and deleted entities), the LLM context
//! entries (and that every example query in them runs), and the board snapshot's links and time
//! entries.

use crate::common::fixture::*;
use crate::common::*;
use pm_shared::proto::{self, DependencyType, Payload};
use serde_json::Value;

fn context_req(
    category: Option<&str>,
    context_type: Option<&str>,
    min_priority: Option<i32>,
) -> Payload {
    Payload::GetLlmContextRequest(proto::GetLlmContextRequest {
        category: category.map(str::to_string),
        context_type: context_type.map(str::to_string),
        min_priority,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llm_context_describes_pm_and_its_queries_run() {
    sqlite_only!();
    let mut f = Fixture::new(2).await;
    let all = expect_payload!(f.act(context_req(None, None, None)).await, LlmContextList).entries;
    assert!(all.len() >= 20, "{} entries", all.len());
    let order: Vec<(i32, String)> = all.iter().map(|e| (-e.priority, e.title.clone())).collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted, "priority desc, then title");
    let text: String = all.iter().map(|e| e.content.as_str()).collect();
    for table in [
        "pm_work_items",
        "pm_dependencies",
        "pm_time_entries",
        "pm_activity_log",
        "pm_events",
        "epoch",
    ] {
        assert!(
            text.contains(table) || all.iter().any(|e| e.title.contains(table)),
            "nothing about {table}"
        );
    }
    let patterns = expect_payload!(
        f.act(context_req(None, Some("query_pattern"), None)).await,
        LlmContextList
    )
    .entries;
    assert!(!patterns.is_empty());
    assert!(patterns
        .iter()
        .all(|e| e.context_type == "query_pattern" && e.example_sql.is_some()));
    let deps = expect_payload!(
        f.act(context_req(Some("dependencies"), None, Some(95)))
            .await,
        LlmContextList
    )
    .entries;
    assert!(!deps.is_empty());
    assert!(deps
        .iter()
        .all(|e| e.category == "dependencies" && e.priority >= 95));

    // Every example query is valid SQL for this very schema (parameters bound as text).
    for e in all.iter().filter(|e| e.example_sql.is_some()) {
        let sql = e.example_sql.as_deref().unwrap_or_default();
        let params = (1..=9).filter(|i| sql.contains(&format!("?{i}"))).count();
        let mut q = sqlx::query(sql);
        for _ in 0..params {
            q = q.bind(f.id(0));
        }
        q.fetch_all(f.server.state.store.read.sqlite().expect("a SQLite store"))
            .await
            .unwrap_or_else(|err| panic!("{}: {err}\n{sql}", e.title));
    }

    let http = f.server.http(None);
    let rules = http
        .get("/api/v1/llm-context?context_type=business_rule")
        .await
        .ok()["entries"]
        .clone();
    let rules = rules.as_array().expect("entries");
    assert!(!rules.is_empty());
    assert!(rules.iter().all(|e| e["context_type"] == "business_rule"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_is_readable_over_ws_and_rest_even_after_a_delete() {
    let mut f = Fixture::new(2).await;
    let (t1, t2) = (f.id(0), f.id(1));
    f.alice
        .update_item(proto::UpdateWorkItemRequest {
            title: Some("Renamed".into()),
            status: Some("review".into()),
            ..upd(&t1, 1)
        })
        .await;
    f.alice
        .update_item(proto::UpdateWorkItemRequest {
            priority: Some("high".into()),
            ..upd(&t1, 2)
        })
        .await;
    let entry = expect_payload!(f.act(start_req(&t1, None)).await, TimerStarted)
        .time_entry
        .expect("time_entry");
    let link = expect_payload!(
        f.act(dep_req(&t2, &t1, DependencyType::Blocks)).await,
        DependencyCreated
    )
    .dependency
    .expect("dependency");

    let http = f.server.http(None);
    let page = http
        .get("/api/v1/activity?entity_type=work-item&entity_id=LNK-1")
        .await
        .ok()
        .clone();
    assert_eq!(
        (n(&page, "total_count"), page["has_more"].clone()),
        (3, Value::Bool(false))
    );
    let entries = page["activity"].as_array().expect("activity").clone();
    let actions: Vec<&str> = entries
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert_eq!(actions, ["updated", "updated", "created"]);
    // Newest first, with every changed field; one change also fills the reference's fields.
    assert_eq!(entries[0]["field_name"], "priority");
    assert_eq!(entries[0]["old_value"], "medium");
    assert_eq!(entries[0]["new_value"], "high");
    let fields: Vec<&str> = entries[1]["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter_map(|c| c["field_name"].as_str())
        .collect();
    assert_eq!(fields, ["title", "status"]);
    assert_eq!(entries[1]["comment"], "2 fields changed");
    let second = http
        .get(&format!(
            "/api/v1/activity?entity_type=work_item&entity_id={t1}&limit=1&offset=1"
        ))
        .await
        .ok()
        .clone();
    assert_eq!(second["has_more"], true);
    assert_eq!(second["activity"][0]["id"], entries[1]["id"]);

    // A project by its key, in any case, as by its id.
    let by_key = http
        .get("/api/v1/activity?entity_type=project&entity_id=lnk")
        .await
        .ok()
        .clone();
    assert_eq!(by_key["activity"][0]["action"], "created", "{by_key}");
    let project_id = by_key["activity"][0]["entity_id"].clone();
    let by_id = http
        .get(&format!(
            "/api/v1/activity?entity_type=project&entity_id={}",
            project_id.as_str().expect("entity_id")
        ))
        .await
        .ok()
        .clone();
    assert_eq!(by_key, by_id);
    http.get("/api/v1/activity?entity_type=project&entity_id=NOPE")
        .await
        .expect_error(404, "NOT_FOUND");

    for (kind, id) in [("time_entry", &entry.id), ("dependency", &link.id)] {
        let page = http
            .get(&format!(
                "/api/v1/activity?entity_type={kind}&entity_id={id}"
            ))
            .await
            .ok()
            .clone();
        assert_eq!(page["activity"][0]["action"], "created", "{kind}");
        assert_eq!(page["activity"][0]["user_id"], USER_A);
    }

    // A deleted item keeps its history (by id; its key no longer names anything).
    f.act(Payload::DeleteDependencyRequest(
        proto::DeleteDependencyRequest {
            dependency_id: link.id.clone(),
        },
    ))
    .await;
    expect_payload!(
        f.act(Payload::DeleteWorkItemRequest(
            proto::DeleteWorkItemRequest {
                work_item_id: t2.clone(),
            }
        ))
        .await,
        WorkItemDeleted
    );
    let history = expect_payload!(f.act(history_req("work_item", &t2)).await, ActivityLogList);
    let actions: Vec<&str> = history.entries.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["deleted", "created"]);
    let page = http
        .get(&format!(
            "/api/v1/activity?entity_type=work_item&entity_id={t2}"
        ))
        .await
        .ok()
        .clone();
    assert_eq!(n(&page, "total_count"), 2);
    http.get("/api/v1/activity?entity_type=work_item&entity_id=LNK-2")
        .await
        .expect_error(404, "NOT_FOUND");

    // Bad questions get the error JSON.
    let e = http.get("/api/v1/activity?entity_id=x").await;
    assert_eq!(
        e.expect_error(400, "VALIDATION_ERROR")["field"],
        "entity_type"
    );
    let e = http
        .get(&format!(
            "/api/v1/activity?entity_type=widget&entity_id={t1}"
        ))
        .await;
    assert_eq!(
        e.expect_error(400, "VALIDATION_ERROR")["field"],
        "entity_type"
    );
    let e = http
        .get("/api/v1/activity?entity_type=sprint&entity_id=nope")
        .await;
    assert_eq!(
        e.expect_error(400, "VALIDATION_ERROR")["field"],
        "entity_id"
    );
    http.get(&format!(
        "/api/v1/activity?entity_type=sprint&entity_id={}",
        uuid::Uuid::new_v4()
    ))
    .await
    .expect_error(404, "NOT_FOUND");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_board_snapshot_carries_links_and_time_entries_of_live_items() {
    let mut f = Fixture::new(3).await;
    let (t1, t2, t3) = (f.id(0), f.id(1), f.id(2));
    let keep = expect_payload!(
        f.act(dep_req(&t1, &t2, DependencyType::Blocks)).await,
        DependencyCreated
    )
    .dependency
    .expect("dependency");
    expect_payload!(
        f.act(dep_req(&t3, &t2, DependencyType::RelatesTo)).await,
        DependencyCreated
    );
    let timer = expect_payload!(f.act(start_req(&t1, None)).await, TimerStarted)
        .time_entry
        .expect("time_entry");
    let now = pm_shared::now_secs();
    expect_payload!(
        f.act(Payload::CreateTimeEntryRequest(
            proto::CreateTimeEntryRequest {
                work_item_id: t3.clone(),
                started_at: now - 100,
                ended_at: now - 50,
                description: None,
            }
        ))
        .await,
        TimeEntryCreated
    );
    // t3 goes away: its link and its time entry leave the snapshot with it.
    expect_payload!(
        f.act(Payload::DeleteWorkItemRequest(
            proto::DeleteWorkItemRequest { work_item_id: t3 }
        ))
        .await,
        WorkItemDeleted
    );
    let snap = expect_payload!(
        f.act(Payload::GetProjectSnapshotRequest(
            proto::GetProjectSnapshotRequest {
                project_id: f.project.id.clone(),
                ..Default::default()
            }
        ))
        .await,
        ProjectSnapshot
    );
    assert_eq!(snap.dependencies, vec![keep]);
    assert_eq!(snap.time_entries, vec![timer]);
}
