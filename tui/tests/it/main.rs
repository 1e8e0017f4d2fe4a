//! The CLI's integration tests against a real server, one binary (`cargo test -p pm --test it`):
//! each module was a test binary of its own.
mod common;

mod cli;
mod cli_failover;
mod cli_import;
mod cli_init;
mod cli_terminal;
mod cli_token;
mod cli_toml;
mod cli_tracking;
