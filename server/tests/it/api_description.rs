//! `GET /api/v1/openapi.json`: the REST API's description against the router it describes
//! (schemathesis checks the answers against it: scripts/schemathesis.sh).
use crate::common::*;

/// The description is OpenAPI 3.1 and tells the truth about the router: each operation it
/// lists is routed (not the unknown-route or wrong-method answer), and the routes it must
/// cover are there.
#[tokio::test]
async fn the_openapi_description_lists_every_route_and_only_routes() {
    let server = TestServer::start().await;
    let http = server.http(Some(USER_A));
    let reply = http.get("/api/v1/openapi.json").await;
    let doc = reply.ok();
    assert_eq!(doc["openapi"], "3.1.0");
    let mut operations = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in ["get", "post", "put", "delete"] {
            if item.get(method).is_some() {
                operations.push((method.to_uppercase(), path.clone()));
            }
        }
    }
    assert_eq!(operations.len(), 43, "{operations:?}");
    for expected in [
        ("GET", "/api/v1/projects/{id}/work-items"),
        ("POST", "/api/v1/sync/import"),
        ("DELETE", "/api/v1/projects/{id}/members/{user_id}"),
        ("GET", "/metrics"),
        ("PUT", "/api/v1/time-entries/{id}"),
        ("POST", "/api/v1/work-items/{id}/restore"),
    ] {
        assert!(
            operations.contains(&(expected.0.to_string(), expected.1.to_string())),
            "{expected:?} is not described"
        );
    }
    for (method, path) in &operations {
        if path == "/admin/shutdown" {
            continue;
        }
        let concrete = path
            .replace("{id}", "00000000-0000-4000-8000-000000000000")
            .replace("{user_id}", USER_B);
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let answer = http.run(http.request(method.clone(), &concrete)).await;
        assert_ne!(
            answer.status, 405,
            "{method} {path} is not routed: {:?}",
            answer.body
        );
        assert!(
            !(answer.status == 404 && answer.body["error"]["message"] == "No such route"),
            "{method} {path} is not routed"
        );
    }
    // Every operation answers the error JSON when it fails.
    let default = &doc["paths"]["/api/v1/work-items"]["post"]["responses"]["default"];
    assert_eq!(
        default["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/ErrorReply"
    );
    // Who you are: a bearer token (token mode), X-User-Id (desktop mode), or neither.
    let schemes = doc["components"]["securitySchemes"]
        .as_object()
        .expect("schemes");
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["user_id"]["name"], "X-User-Id");
    assert_eq!(doc["security"].as_array().map(Vec::len), Some(3));
    // The links name their target by `operationId`, as OpenAPI spells it.
    let links = &doc["paths"]["/api/v1/projects"]["post"]["responses"]["200"]["links"];
    assert_eq!(links["get_project"]["operationId"], "get_project");
    assert_eq!(
        links["get_project"]["parameters"]["id"],
        "$response.body#/project/id"
    );
}
