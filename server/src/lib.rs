//! pm-server: the real-time collaborative agile board server.
//!
//! Data flows one way: transport (`transport::ws`, `transport::rest`) → command (`commands`,
//! the one mutation pipeline) → store (`store`) + event → hub (`hub`) → clients.
//! Reads go from the transports straight to `reads`.
pub mod access;
pub mod app;
pub mod auth;
pub mod commands;
pub mod config;
pub mod discovery;
pub mod error;
pub mod frames;
pub mod hub;
pub mod reads;
pub mod store;
pub mod sync;
pub mod transport;

pub use app::{serve, AppState, SharedState};
pub use config::Config;
