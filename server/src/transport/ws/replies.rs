//! The messages the server answers with: replies, snapshots, event envelopes and errors.

use pm_shared::proto::{Payload, WebSocketMessage};

use crate::error::AppError;

pub(super) fn reply(message_id: &str, payload: Payload) -> WebSocketMessage {
    WebSocketMessage::with_payload(message_id, payload)
}

pub(super) fn empty_reply(message_id: &str) -> WebSocketMessage {
    WebSocketMessage {
        message_id: message_id.to_string(),
        timestamp: pm_shared::now_secs(),
        ..Default::default()
    }
}

pub(super) fn snapshot_reply(
    message_id: &str,
    payload: Payload,
    stream: &str,
    seq: u64,
    epoch: &str,
) -> WebSocketMessage {
    WebSocketMessage {
        seq,
        stream: stream.to_string(),
        epoch: epoch.to_string(),
        ..reply(message_id, payload)
    }
}

pub(super) fn event_envelope(payload: Payload, stream: &str, epoch: &str) -> WebSocketMessage {
    WebSocketMessage {
        stream: stream.to_string(),
        epoch: epoch.to_string(),
        ..reply(&crate::ids::random_id(), payload)
    }
}

pub(super) fn error_reply(message_id: &str, err: &AppError) -> WebSocketMessage {
    reply(message_id, Payload::Error(err.to_proto()))
}
