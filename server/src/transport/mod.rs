//! Transports: WebSocket (`ws`) and REST (`rest`). Both turn requests into commands for the
//! pipeline or into snapshot reads; neither writes or broadcasts anything itself.
pub mod guard;
pub mod limits;
pub mod rest;
pub mod ws;
