//! Fuzzes frame decoding and dispatch: any bytes a client can send get one proper reply, and
//! never a panic. The server state is real (a temp SQLite database) and shared across inputs.
#![no_main]
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use pm_server::commands::Actor;
use pm_server::hub::{CutOff, Subscriber};
use pm_shared::proto::Payload;

struct World {
    runtime: tokio::runtime::Runtime,
    state: pm_server::SharedState,
    conn: pm_server::hub::ConnId,
    _dir: tempfile::TempDir,
    // Keeps the dummy connection's queue open.
    _queue: tokio::sync::mpsc::Receiver<pm_server::hub::Outbound>,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
        let dir = tempfile::tempdir().expect("tempdir");
        let state = runtime
            .block_on(pm_server::AppState::open(pm_server::Config::for_data_dir(dir.path())))
            .expect("state");
        let (tx, rx) = tokio::sync::mpsc::channel(1_000_000);
        let conn = state.hub.register(Subscriber {
            user_id: pm_shared::DEFAULT_USER_ID.into(),
            queue: tx,
            queued_bytes: Default::default(),
            max_bytes: usize::MAX,
            cut_off: std::sync::Arc::new(CutOff::default()),
        });
        World { runtime, state, conn, _dir: dir, _queue: rx }
    })
}

fuzz_target!(|data: &[u8]| {
    let w = world();
    let actor = Actor { user_id: pm_shared::DEFAULT_USER_ID.into() };
    let reply = w.runtime.block_on(pm_server::transport::ws::answer_frame(
        &w.state,
        w.conn,
        &actor,
        bytes::Bytes::copy_from_slice(data),
    ));
    if let Some(Payload::Error(e)) = &reply.payload {
        assert_ne!(e.code, "INTERNAL_ERROR", "an input made the server fail: {e:?}");
    }
});
