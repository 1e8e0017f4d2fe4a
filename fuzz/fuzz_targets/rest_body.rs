//! Fuzzes REST bodies: the first byte picks a route, the rest is the body. Every answer must be
//! a success or a 4xx with the error JSON, never a 5xx or a panic.
#![no_main]
use std::sync::OnceLock;

use axum::body::Body;
use axum::http::{Method, Request};
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;

struct World {
    runtime: tokio::runtime::Runtime,
    router: axum::Router,
    _dir: tempfile::TempDir,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
        let dir = tempfile::tempdir().expect("tempdir");
        let state = runtime
            .block_on(pm_server::AppState::open(pm_server::Config::for_data_dir(dir.path())))
            .expect("state");
        World { runtime, router: pm_server::app::router(state), _dir: dir }
    })
}

const ROUTES: &[(&str, &str)] = &[
    ("POST", "/api/v1/projects"),
    ("PUT", "/api/v1/projects/FZ"),
    ("POST", "/api/v1/work-items"),
    ("PUT", "/api/v1/work-items/FZ-1"),
    ("POST", "/api/v1/sprints"),
    ("POST", "/api/v1/work-items/FZ-1/comments"),
    ("PUT", "/api/v1/comments/00000000-0000-4000-8000-000000000000"),
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else { return };
    let (method, path) = ROUTES[pick as usize % ROUTES.len()];
    let w = world();
    let request = Request::builder()
        .method(Method::from_bytes(method.as_bytes()).expect("method"))
        .uri(path)
        .header("content-type", "application/json")
        .body(Body::from(body.to_vec()))
        .expect("request");
    let response = w.runtime.block_on(w.router.clone().oneshot(request)).expect("infallible");
    assert!(!response.status().is_server_error(), "{method} {path} answered {}", response.status());
});
