//! The client side of pm that talks to a server: the REST client with server discovery
//! ([`rest_client`]), the WebSocket session with reconnect ([`sdk`]) and the replica that keeps a
//! [`pm_shared::store::ClientStore`] in sync over it ([`replica`]). Used by the `pm` binary and
//! the tests; `pm-server` does not depend on it.
pub mod offline;
pub mod replica;
pub mod rest_client;
pub mod sdk;
