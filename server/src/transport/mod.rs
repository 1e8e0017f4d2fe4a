//! Transports: WebSocket (`ws`) and REST (`rest`). Both turn requests into commands for the
//! writer or into snapshot reads; neither writes or broadcasts anything itself. The state they
//! share is [`state::AppState`].
pub mod guard;
pub mod limits;
pub mod request_span;
pub mod rest;
pub mod state;
pub mod ws;
