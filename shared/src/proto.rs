//! Protobuf types generated from `proto/messages.proto` (package `pm`).
#![allow(clippy::all, missing_docs)]
include!(concat!(env!("OUT_DIR"), "/pm.rs"));

pub use web_socket_message::Payload;

impl WebSocketMessage {
    /// An envelope with a payload and nothing else set.
    pub fn with_payload(message_id: impl Into<String>, payload: Payload) -> Self {
        WebSocketMessage {
            message_id: message_id.into(),
            timestamp: crate::now_secs(),
            payload: Some(payload),
            ..Default::default()
        }
    }
}
