//! A zero-allocation reader for the few fields a subscriber needs from a `pm.WebSocketMessage`
//! frame: the message_id, which payload it carries, `seq`, `stream` and, for work item events,
//! the item's title. Subscribers see every frame of every mutation, so on a 2-core machine a
//! full protobuf decode per frame would make the bench, not the server, the bottleneck.
//! `tests` below check it against prost's encoder.

/// Field numbers of `pm.WebSocketMessage` (see proto/messages.proto).
pub mod field {
    pub const MESSAGE_ID: u32 = 1;
    pub const WORK_ITEM_CREATED: u32 = 40;
    pub const WORK_ITEM_UPDATED: u32 = 41;
    pub const ERROR: u32 = 100;
    pub const ACTIVITY_LOG_CREATED: u32 = 142;
    pub const RESYNC_REQUIRED: u32 = 310;
    pub const SEQ: u32 = 300;
    pub const STREAM: u32 = 302;
}

/// What [`peek`] found in one frame.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Peek<'a> {
    pub message_id: &'a [u8],
    /// The oneof field number of the payload (0: none).
    pub payload: u32,
    pub seq: u64,
    pub stream: &'a [u8],
    /// `work_item.title` of WorkItemCreated / WorkItemUpdated.
    pub title: Option<&'a [u8]>,
    /// `work_item.id` and `work_item.project_id` of the same events: with the title, what
    /// identifies an event of a server that numbers none (the reference).
    pub item_id: Option<&'a [u8]>,
    pub item_project: Option<&'a [u8]>,
}

fn varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos)?;
        *pos += 1;
        value |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// Iterates the fields of one message: (field number, varint value or bytes), until `visit`
/// returns false.
fn fields<'a>(buf: &'a [u8], mut visit: impl FnMut(u32, u64, &'a [u8]) -> bool) -> Option<()> {
    let mut pos = 0;
    while pos < buf.len() {
        let tag = varint(buf, &mut pos)?;
        let (number, wire) = ((tag >> 3) as u32, tag & 7);
        let more = match wire {
            0 => {
                let v = varint(buf, &mut pos)?;
                visit(number, v, &[])
            }
            1 => {
                pos = pos.checked_add(8).filter(|&p| p <= buf.len())?;
                true
            }
            2 => {
                let len = varint(buf, &mut pos)? as usize;
                let end = pos.checked_add(len).filter(|&e| e <= buf.len())?;
                let more = visit(number, 0, &buf[pos..end]);
                pos = end;
                more
            }
            5 => {
                pos = pos.checked_add(4).filter(|&p| p <= buf.len())?;
                true
            }
            _ => return None,
        };
        if !more {
            break;
        }
    }
    Some(())
}

/// The first length-delimited field `number` of a message. Stops there: an event's work item
/// is the first field of its payload.
fn first_bytes(buf: &[u8], number: u32) -> Option<&[u8]> {
    let mut found = None;
    fields(buf, |n, _, b| {
        if n == number {
            found = Some(b);
        }
        found.is_none()
    })?;
    found
}

/// Reads a `WorkItem`'s id, project_id and title into `peek`. Stops at the title, which comes
/// before the long fields of the item (WorkItem { string id = 1; string project_id = 4;
/// string title = 6; }).
fn read_item<'a>(item: &'a [u8], peek: &mut Peek<'a>) {
    let _ = fields(item, |n, _, b| {
        match n {
            1 => peek.item_id = Some(b),
            4 => peek.item_project = Some(b),
            6 => peek.title = Some(b),
            _ => {}
        }
        peek.title.is_none()
    });
}

/// Reads the header fields of a frame; None when it is not valid protobuf.
pub fn peek(frame: &[u8]) -> Option<Peek<'_>> {
    let mut peek = Peek::default();
    let mut payload_bytes: &[u8] = &[];
    fields(frame, |number, value, bytes| {
        match number {
            field::MESSAGE_ID => peek.message_id = bytes,
            field::SEQ => peek.seq = value,
            field::STREAM => peek.stream = bytes,
            10..=299 | 303.. => {
                peek.payload = number;
                payload_bytes = bytes;
            }
            _ => {}
        }
        true
    })?;
    if matches!(
        peek.payload,
        field::WORK_ITEM_CREATED | field::WORK_ITEM_UPDATED
    ) {
        // WorkItemCreated/Updated { WorkItem work_item = 1; }
        if let Some(item) = first_bytes(payload_bytes, 1) {
            read_item(item, &mut peek);
        }
    }
    Some(peek)
}

/// The number in a bench title or message id: the digits after the last non-digit ("b-42" → 42).
pub fn trailing_number(bytes: &[u8]) -> Option<u64> {
    let start = bytes
        .iter()
        .rposition(|b| !b.is_ascii_digit())
        .map_or(0, |p| p + 1);
    let digits = &bytes[start..];
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    Some(
        digits
            .iter()
            .fold(0u64, |n, d| n * 10 + u64::from(d - b'0')),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use pm_shared::proto::{self, Payload, WebSocketMessage};
    use prost::Message;

    fn item(title: &str) -> proto::WorkItem {
        proto::WorkItem {
            id: "11111111-1111-4111-8111-111111111111".into(),
            title: title.into(),
            description: Some("x".repeat(300)),
            status: "todo".into(),
            project_id: "pp".into(),
            ancestor_ids: vec!["a".into(), "b".into()],
            item_number: 7,
            version: 3,
            ..Default::default()
        }
    }

    #[test]
    fn reads_what_prost_wrote() {
        let msg = WebSocketMessage {
            message_id: "m-123".into(),
            timestamp: 1_700_000_000,
            payload: Some(Payload::WorkItemUpdated(proto::WorkItemUpdated {
                work_item: Some(item("b-42")),
                changes: vec![proto::FieldChange {
                    field_name: "title".into(),
                    old_value: Some("b-41".into()),
                    new_value: Some("b-42".into()),
                }],
                user_id: "u".into(),
            })),
            seq: 123_456_789_012,
            epoch: "e".into(),
            stream: "p".into(),
        };
        let bytes = msg.encode_to_vec();
        let p = peek(&bytes).unwrap();
        assert_eq!(p.message_id, b"m-123");
        assert_eq!(p.payload, field::WORK_ITEM_UPDATED);
        assert_eq!(p.seq, 123_456_789_012);
        assert_eq!(p.stream, b"p");
        assert_eq!(p.title, Some(&b"b-42"[..]));
        assert_eq!(
            p.item_id,
            Some(&b"11111111-1111-4111-8111-111111111111"[..])
        );
        assert_eq!(p.item_project, Some(&b"pp"[..]));
        assert_eq!(trailing_number(p.title.unwrap()), Some(42));

        let created = WebSocketMessage {
            payload: Some(Payload::WorkItemCreated(proto::WorkItemCreated {
                work_item: Some(item("s-7")),
                user_id: "u".into(),
                ..Default::default()
            })),
            seq: 1,
            ..Default::default()
        }
        .encode_to_vec();
        let p = peek(&created).unwrap();
        assert_eq!((p.payload, p.seq, p.title), (40, 1, Some(&b"s-7"[..])));

        let activity = WebSocketMessage {
            payload: Some(Payload::ActivityLogCreated(proto::ActivityLogCreated {
                entry: Some(proto::ActivityLogEntry::default()),
            })),
            ..Default::default()
        }
        .encode_to_vec();
        let p = peek(&activity).unwrap();
        assert_eq!((p.payload, p.seq, p.title), (142, 0, None));

        let resync = WebSocketMessage {
            payload: Some(Payload::ResyncRequired(proto::ResyncRequired::default())),
            ..Default::default()
        }
        .encode_to_vec();
        assert_eq!(peek(&resync).unwrap().payload, field::RESYNC_REQUIRED);
        let empty = WebSocketMessage {
            message_id: "x".into(),
            ..Default::default()
        }
        .encode_to_vec();
        assert_eq!(peek(&empty).unwrap().payload, 0);
    }

    #[test]
    fn rejects_garbage() {
        assert!(peek(&[0xff, 0xff, 0xff]).is_none());
        assert!(peek(&[0x0a, 0x05, b'a']).is_none());
        assert_eq!(trailing_number(b"abc"), None);
        assert_eq!(trailing_number(b"17"), Some(17));
    }
}
