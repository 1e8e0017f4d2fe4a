//! pm-server's integration tests, one binary (`cargo test -p pm-server --test it`): each module
//! was a test binary of its own, and every edit of the harness relinked all of them. Filter by
//! module as by name, e.g. `cargo test -p pm-server --test it resume::`.
#[macro_use]
mod common;

mod api_description;
mod backups;
mod big_board;
mod broadcast;
mod chaos;
mod concurrency;
mod config_file;
mod dependencies;
mod durability;
mod errors;
mod hardening;
mod history;
mod import_parts;
mod import_tolerant;
mod install;
mod issue_token;
mod item_type;
mod limits;
mod logs;
mod metrics;
#[macro_use]
mod nodes;
mod offline;
mod permissions;
mod pipelining;
mod presence;
mod protocol;
mod random_input;
mod reference_db;
mod replay_bounds;
mod replica;
mod rest;
mod restore;
mod resume;
mod storage_full;
mod sync;
mod team;
mod time_entries;
mod wire_details;
