//! What `pm-server` and its clients both need: the wire protocol, the domain rules, the port
//! file's format and the client store. No networking: the client SDK that talks to a server
//! (REST client, WebSocket session, replica) is `pm-client` (`shared/client/`), so the server
//! does not link it.
pub mod date;
pub mod domain;
pub mod export;
pub mod hierarchy;
pub mod port_file;
pub mod proto;
pub mod store;
pub mod terminal;

/// The user every request is attributed to when it names no valid user (desktop mode).
pub const DEFAULT_USER_ID: &str = "00000000-0000-0000-0000-000000000001";

/// Current time in Unix seconds, the unit of every timestamp on the wire and in the database.
pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
