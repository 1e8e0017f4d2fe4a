//! pm-server: the real-time collaborative agile board server.
//!
//! Data flows one way: transport (`transport::ws`, `transport::rest`) → command (`commands`:
//! what each mutation changes) → writer (`writer`: the one task that writes, numbers events and
//! publishes them) → store (`store`) + hub (`hub`) → clients. Reads go from the transports
//! straight to `reads`. When several servers share one PostgreSQL database, each also follows
//! the others' writes: store → `follow` → hub. Presence (who is on a board right now) is
//! ephemeral and bypasses all of that: transport → `presence` → hub.
pub mod access;
pub mod app;
pub mod auth;
pub mod commands;
pub mod config;
pub mod discovery;
pub mod error;
pub mod follow;
pub mod frames;
pub mod hub;
pub mod idle;
pub mod ids;
pub mod logging;
pub mod metrics;
pub mod presence;
pub mod public_key;
pub mod reads;
pub mod store;
pub mod sync;
pub mod testing;
pub mod transport;
pub mod writer;

pub use app::serve;
pub use config::Config;
pub use transport::state::{AppState, SharedState, REPLAY_READERS};
