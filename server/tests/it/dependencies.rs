//! Dependencies over real sockets: alice links work items, bob (subscribed) receives every
//! DependencyCreated/Deleted with its activity entry and the next seq; every rule of the
//! reference is enforced over WS and REST alike; a deleted link can be made again.

use crate::common::fixture::*;
use crate::common::*;
use pm_shared::proto::{self, DependencyType, Payload};
use serde_json::json;

fn short(id: &str) -> String {
    id.chars().take(8).collect()
}

fn deps_req(item: &str) -> Payload {
    Payload::GetDependenciesRequest(proto::GetDependenciesRequest {
        work_item_id: item.to_string(),
    })
}

fn delete_req(id: &str) -> Payload {
    Payload::DeleteDependencyRequest(proto::DeleteDependencyRequest {
        dependency_id: id.to_string(),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_are_created_listed_deleted_and_made_again_live() {
    let mut f = Fixture::new(2).await;
    let (t1, t2) = (f.id(0), f.id(1));

    let reply = f.act(dep_req(&t1, &t2, DependencyType::Blocks)).await;
    let created = expect_payload!(reply, DependencyCreated);
    let dep = created.dependency.clone().expect("dependency");
    assert_eq!(dep.blocking_item_id, t1);
    assert_eq!(dep.blocked_item_id, t2);
    assert_eq!(dep.dependency_type, DependencyType::Blocks as i32);
    assert_eq!(dep.created_by, USER_A);
    assert_eq!(created.user_id, USER_A);
    assert_eq!(reply.stream, f.project.id);

    // Bob: ActivityLogCreated with the real fields, then the event with the next seq.
    let (entry, event) = f.received().await;
    assert_eq!(
        (entry.entity_type.as_str(), entry.action.as_str()),
        ("dependency", "created")
    );
    assert_eq!(entry.entity_id, dep.id);
    assert_eq!(
        entry.changes,
        vec![
            field_change("blocking_item_id", None, Some(&t1)),
            field_change("blocked_item_id", None, Some(&t2)),
            field_change("dependency_type", None, Some("blocks")),
        ]
    );
    assert_eq!(event.seq, reply.seq);
    assert_eq!(
        expect_payload!(event, DependencyCreated).dependency,
        Some(dep.clone())
    );

    // Both sides see the link: T2 is blocked by it, T1 blocks through it.
    let list = expect_payload!(f.act(deps_req(&t2)).await, DependenciesList);
    assert_eq!((list.blocking, list.blocked.len()), (vec![dep.clone()], 0));
    let reply = f.act(deps_req(&t1)).await;
    assert_eq!(reply.seq, event.seq, "the list says which seq it includes");
    let list = expect_payload!(reply, DependenciesList);
    assert_eq!((list.blocking.len(), list.blocked), (0, vec![dep.clone()]));

    let reply = f.act(delete_req(&dep.id)).await;
    let deleted = expect_payload!(reply, DependencyDeleted);
    assert_eq!(
        (
            deleted.dependency_id.as_str(),
            deleted.blocking_item_id.as_str(),
            deleted.blocked_item_id.as_str(),
            deleted.user_id.as_str()
        ),
        (dep.id.as_str(), t1.as_str(), t2.as_str(), USER_A)
    );
    let (entry, event) = f.received().await;
    assert_eq!(entry.action, "deleted");
    assert_eq!(expect_payload!(event, DependencyDeleted), deleted);
    let list = expect_payload!(f.act(deps_req(&t2)).await, DependenciesList);
    assert!(list.blocking.is_empty() && list.blocked.is_empty());

    // The same pair again (the reference failed with a UNIQUE error here).
    let again = expect_payload!(
        f.act(dep_req(&t1, &t2, DependencyType::Blocks)).await,
        DependencyCreated
    )
    .dependency
    .expect("dependency");
    assert_ne!(again.id, dep.id);
    let (_, event) = f.received().await;
    assert_eq!(
        expect_payload!(event, DependencyCreated).dependency,
        Some(again)
    );

    // The deleted link's history is still readable.
    let history = expect_payload!(
        f.act(history_req("dependency", &dep.id)).await,
        ActivityLogList
    );
    let actions: Vec<&str> = history.entries.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["deleted", "created"]);
    assert_eq!(
        history.entries[0].changes,
        vec![
            field_change("blocking_item_id", Some(&t1), None),
            field_change("blocked_item_id", Some(&t2), None),
            field_change("dependency_type", Some("blocks"), None),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rule_of_the_reference_is_enforced() {
    let mut f = Fixture::new(3).await;
    let (t1, t2, t3) = (f.id(0), f.id(1), f.id(2));
    let rejected = |reply: &proto::WebSocketMessage, code: &str, field: Option<&str>| {
        let err = expect_error(reply, code);
        assert_eq!(err.field.as_deref(), field, "{err:?}");
        err.message
    };

    let msg = rejected(
        &f.act(dep_req(&t1, &t1, DependencyType::Blocks)).await,
        "VALIDATION_ERROR",
        Some("blocked_item_id"),
    );
    assert_eq!(msg, "Validation failed: Work item cannot block itself");
    for kind in [0, 9] {
        let reply = f
            .act(Payload::CreateDependencyRequest(
                proto::CreateDependencyRequest {
                    blocking_item_id: t1.clone(),
                    blocked_item_id: t2.clone(),
                    dependency_type: kind,
                },
            ))
            .await;
        let msg = rejected(&reply, "VALIDATION_ERROR", Some("dependency_type"));
        assert_eq!(
            msg,
            "Validation failed: Invalid dependency_type. Must be BLOCKS or RELATES_TO"
        );
    }
    rejected(
        &f.act(dep_req("not-a-uuid", &t2, DependencyType::Blocks))
            .await,
        "VALIDATION_ERROR",
        Some("blocking_item_id"),
    );
    let ghost = uuid::Uuid::new_v4().to_string();
    let msg = rejected(
        &f.act(dep_req(&ghost, &t2, DependencyType::Blocks)).await,
        "NOT_FOUND",
        None,
    );
    assert_eq!(
        msg,
        format!("Resource not found: Work item {ghost} not found (blocking)")
    );
    let msg = rejected(
        &f.act(dep_req(&t1, &ghost, DependencyType::Blocks)).await,
        "NOT_FOUND",
        None,
    );
    assert!(msg.ends_with("(blocked)"), "{msg}");

    // Items of two projects cannot be linked.
    let other = f.alice.create_project("Other", "OTH").await;
    let foreign = f
        .alice
        .create_item(&other.id, proto::WorkItemType::Task, "X", None)
        .await;
    let msg = rejected(
        &f.act(dep_req(&t1, &foreign.id, DependencyType::RelatesTo))
            .await,
        "VALIDATION_ERROR",
        Some("blocking_item_id"),
    );
    assert_eq!(
        msg,
        "Validation failed: Dependencies can only be created between items in the same project"
    );
    f.nothing_received().await;

    // One live link per ordered pair, whatever its type; the reverse relates_to is fine.
    expect_payload!(
        f.act(dep_req(&t1, &t2, DependencyType::RelatesTo)).await,
        DependencyCreated
    );
    f.received().await;
    for kind in [DependencyType::RelatesTo, DependencyType::Blocks] {
        let msg = rejected(
            &f.act(dep_req(&t1, &t2, kind)).await,
            "VALIDATION_ERROR",
            Some("blocked_item_id"),
        );
        assert_eq!(
            msg,
            "Validation failed: Dependency already exists between these items"
        );
    }
    expect_payload!(
        f.act(dep_req(&t2, &t1, DependencyType::RelatesTo)).await,
        DependencyCreated
    );
    f.received().await;

    // blocks may not close a loop: t2 → t3 → t1 (as blocks) plus t1 → t2 would.
    for (a, b) in [(&t2, &t3), (&t3, &t1)] {
        expect_payload!(
            f.act(dep_req(a, b, DependencyType::Blocks)).await,
            DependencyCreated
        );
        f.received().await;
    }
    let t4 = f.task("T4").await.id;
    expect_payload!(
        f.act(dep_req(&t1, &t4, DependencyType::Blocks)).await,
        DependencyCreated
    );
    f.received().await;
    let msg = rejected(
        &f.act(dep_req(&t4, &t2, DependencyType::Blocks)).await,
        "VALIDATION_ERROR",
        Some("blocking_item_id"),
    );
    // The path from the would-be blocked item to the would-be blocking one.
    assert_eq!(
        msg,
        format!(
            "Validation failed: Circular dependency detected: {} → {} → {} → {}. This would create a cycle.",
            short(&t2),
            short(&t3),
            short(&t1),
            short(&t4)
        )
    );
    // relates_to links never form cycles.
    expect_payload!(
        f.act(dep_req(&t4, &t2, DependencyType::RelatesTo)).await,
        DependencyCreated
    );
    f.received().await;

    let msg = rejected(&f.act(delete_req(&ghost)).await, "NOT_FOUND", None);
    assert_eq!(
        msg,
        format!("Resource not found: Dependency {ghost} not found")
    );
    rejected(
        &f.act(delete_req("nope")).await,
        "VALIDATION_ERROR",
        Some("dependency_id"),
    );
    let missing_item = f.act(deps_req(&ghost)).await;
    rejected(&missing_item, "NOT_FOUND", None);
    f.nothing_received().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_links_per_item_and_side() {
    let server = TestServer::start().await;
    let mut alice = server.connect(USER_A).await;
    let project = alice.create_project("Many", "MANY").await;
    let mut items = Vec::new();
    for i in 0..52 {
        items.push(
            alice
                .create_item(
                    &project.id,
                    proto::WorkItemType::Task,
                    &format!("M{i}"),
                    None,
                )
                .await
                .id,
        );
    }
    let (hub, rest) = items.split_first().expect("items");
    for other in &rest[..50] {
        expect_payload!(
            alice
                .request(dep_req(other, hub, DependencyType::RelatesTo))
                .await,
            DependencyCreated
        );
    }
    let err = expect_error(
        &alice
            .request(dep_req(&rest[50], hub, DependencyType::Blocks))
            .await,
        "VALIDATION_ERROR",
    );
    assert_eq!(err.field.as_deref(), Some("blocked_item_id"));
    assert_eq!(
        err.message,
        "Validation failed: Item already has 50 blocking dependencies (max 50)"
    );
    for other in &rest[..50] {
        expect_payload!(
            alice
                .request(dep_req(hub, other, DependencyType::RelatesTo))
                .await,
            DependencyCreated
        );
    }
    let err = expect_error(
        &alice
            .request(dep_req(hub, &rest[50], DependencyType::Blocks))
            .await,
        "VALIDATION_ERROR",
    );
    assert_eq!(err.field.as_deref(), Some("blocking_item_id"));
    assert_eq!(
        err.message,
        "Validation failed: Item already blocks 50 items (max 50)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cycles_are_found_through_long_chains() {
    let server = TestServer::start().await;
    let mut alice = server.connect(USER_A).await;
    let project = alice.create_project("Chain", "CHN").await;
    let mut chain = Vec::new();
    for i in 0..40 {
        chain.push(
            alice
                .create_item(
                    &project.id,
                    proto::WorkItemType::Task,
                    &format!("C{i}"),
                    None,
                )
                .await
                .id,
        );
    }
    // A diamond-rich graph: each item blocks the next two.
    for i in 0..chain.len() - 1 {
        for j in [i + 1, i + 2] {
            if let Some(next) = chain.get(j) {
                expect_payload!(
                    alice
                        .request(dep_req(&chain[i], next, DependencyType::Blocks))
                        .await,
                    DependencyCreated
                );
            }
        }
    }
    let last = chain.last().expect("chain");
    let err = expect_error(
        &alice
            .request(dep_req(last, &chain[0], DependencyType::Blocks))
            .await,
        "VALIDATION_ERROR",
    );
    // A shortest path (several exist: 20 hops), from the would-be blocked item to the
    // would-be blocking one.
    let hops = err.message.matches(" → ").count();
    assert_eq!(hops, 20, "{}", err.message);
    assert!(
        err.message
            .contains(&format!("detected: {} → ", short(&chain[0])))
            && err
                .message
                .contains(&format!(" → {}. This would", short(last))),
        "{}",
        err.message
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_links_have_the_reference_shapes_and_reach_ws_subscribers() {
    let mut f = Fixture::new(3).await;
    let (t1, t2, t3) = (f.id(0), f.id(1), f.id(2));
    let http = f.server.http(Some(USER_C));

    // POST answers a bare DTO; display keys are accepted for the items.
    let reply = http
        .post(
            "/api/v1/dependencies",
            json!({"blocking_item_id": "LNK-1", "blocked_item_id": t2, "dependency_type": "blocks"}),
        )
        .await;
    let dto = reply.ok().clone();
    let keys: Vec<&str> = dto
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    let mut expected = vec![
        "id",
        "blocking_item_id",
        "blocked_item_id",
        "dependency_type",
        "created_at",
        "created_by",
    ];
    expected.sort_unstable();
    let mut keys = keys;
    keys.sort_unstable();
    assert_eq!(keys, expected);
    assert_eq!(
        (
            s(&dto, "blocking_item_id"),
            s(&dto, "blocked_item_id"),
            s(&dto, "dependency_type"),
            s(&dto, "created_by")
        ),
        (t1.clone(), t2.clone(), "blocks".into(), USER_C.into())
    );
    let (entry, event) = f.received().await;
    assert_eq!(entry.user_id, USER_C);
    let first = expect_payload!(event, DependencyCreated)
        .dependency
        .expect("dependency");
    assert_eq!(first.id, s(&dto, "id"));

    let second = http
        .post(
            "/api/v1/dependencies",
            json!({"blocking_item_id": t2, "blocked_item_id": t3, "dependency_type": "relates_to"}),
        )
        .await
        .ok()
        .clone();
    f.received().await;

    // T2's list merges both directions, sorted by dependency id.
    let list = http
        .get(&format!("/api/v1/work-items/{t2}/dependencies"))
        .await
        .ok()["dependencies"]
        .clone();
    let mut ids = vec![s(&dto, "id"), s(&second, "id")];
    ids.sort();
    let listed: Vec<String> = list
        .as_array()
        .expect("list")
        .iter()
        .map(|d| s(d, "id"))
        .collect();
    assert_eq!(listed, ids);
    assert_eq!(
        http.get("/api/v1/work-items/LNK-3/dependencies").await.ok()["dependencies"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );

    // The reference's REST wording for self links and duplicates; bad types; missing items.
    let err = http
        .post(
            "/api/v1/dependencies",
            json!({"blocking_item_id": t1, "blocked_item_id": t1, "dependency_type": "blocks"}),
        )
        .await;
    let e = err.expect_error(400, "VALIDATION_ERROR");
    assert_eq!(
        e["message"],
        "Validation failed: A work item cannot depend on itself"
    );
    let err = http
        .post(
            "/api/v1/dependencies",
            json!({"blocking_item_id": t1, "blocked_item_id": t2, "dependency_type": "relates_to"}),
        )
        .await;
    let e = err.expect_error(400, "VALIDATION_ERROR");
    assert_eq!(
        e["message"],
        "Validation failed: This dependency already exists"
    );
    let err = http
        .post(
            "/api/v1/dependencies",
            json!({"blocking_item_id": t1, "blocked_item_id": t3, "dependency_type": "depends"}),
        )
        .await;
    assert_eq!(
        err.expect_error(400, "VALIDATION_ERROR")["field"],
        "dependency_type"
    );
    let ghost = uuid::Uuid::new_v4().to_string();
    http.post(
        "/api/v1/dependencies",
        json!({"blocking_item_id": ghost, "blocked_item_id": t3, "dependency_type": "blocks"}),
    )
    .await
    .expect_error(404, "NOT_FOUND");
    // A cycle over REST too (the reference's REST had no same-project or limit checks; ours
    // are the same rules as over WS).
    http.post(
        "/api/v1/dependencies",
        json!({"blocking_item_id": t2, "blocked_item_id": t1, "dependency_type": "blocks"}),
    )
    .await
    .expect_error(400, "VALIDATION_ERROR");
    f.nothing_received().await;

    // DELETE echoes the id exactly as given.
    let given = s(&dto, "id").to_uppercase();
    let reply = http.delete(&format!("/api/v1/dependencies/{given}")).await;
    assert_eq!(reply.ok()["deleted_id"], given.as_str());
    let (_, event) = f.received().await;
    assert_eq!(
        expect_payload!(event, DependencyDeleted).dependency_id,
        s(&dto, "id")
    );
    http.delete(&format!("/api/v1/dependencies/{given}"))
        .await
        .expect_error(404, "NOT_FOUND");
}
