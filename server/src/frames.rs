//! WebSocket frames as the server sends them (RFC 6455 §5: unmasked, one frame per message),
//! built with tungstenite's frame format.
//!
//! Frames are built once and written to sockets as they are: the hub frames each group of
//! events once, and every subscriber's writer sends those same bytes in one write. Both the hub
//! and the WebSocket transport above it build frames, so framing sits below both.
use bytes::Bytes;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::{CloseFrame, Frame, FrameHeader};

fn header(opcode: OpCode) -> FrameHeader {
    FrameHeader {
        opcode,
        ..FrameHeader::default()
    }
}

/// Appends `payload` as one binary message.
fn push_binary(out: &mut Vec<u8>, payload: &[u8]) {
    out.reserve(payload.len() + 10);
    // Writing into a Vec cannot fail.
    let _ = header(OpCode::Data(Data::Binary)).format(payload.len() as u64, out);
    out.extend_from_slice(payload);
}

/// Each payload as one binary message, all in one buffer.
pub fn binary_all<B: AsRef<[u8]>>(payloads: &[B]) -> Bytes {
    let size = payloads.iter().map(|p| p.as_ref().len() + 10).sum();
    let mut out = Vec::with_capacity(size);
    for p in payloads {
        push_binary(&mut out, p.as_ref());
    }
    out.into()
}

/// A message encoded straight into its frame, behind the header: an answer (a snapshot can be
/// megabytes) is not encoded and then copied.
pub fn message(msg: &impl prost::Message) -> Bytes {
    let len = msg.encoded_len();
    let mut out = Vec::with_capacity(len + 10);
    let _ = header(OpCode::Data(Data::Binary)).format(len as u64, &mut out);
    // A Vec grows as needed: encoding into it cannot fail.
    let _ = msg.encode(&mut out);
    out.into()
}

fn control(frame: Frame) -> Bytes {
    let mut out = Vec::with_capacity(frame.len());
    let _ = frame.format(&mut out);
    out.into()
}

/// The answer to a WebSocket-level ping.
pub fn pong(data: Bytes) -> Bytes {
    control(Frame::pong(data))
}

/// A close frame with a status code and reason.
pub fn close(code: u16, reason: &'static str) -> Bytes {
    control(Frame::close(Some(CloseFrame {
        code: CloseCode::from(code),
        reason: reason.into(),
    })))
}

/// Splits what [`binary_all`] built back into payloads (tests read what reached a queue).
#[cfg(test)]
pub fn payloads(mut framed: &[u8]) -> Vec<Bytes> {
    let mut out = Vec::new();
    while !framed.is_empty() {
        let mut cursor = std::io::Cursor::new(framed);
        let Ok(Some((_, len))) = FrameHeader::parse(&mut cursor) else {
            panic!("not a complete frame");
        };
        let start = cursor.position() as usize;
        let end = start + len as usize;
        out.push(Bytes::copy_from_slice(&framed[start..end]));
        framed = &framed[end..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_read_back_at_every_length_format() {
        // 7-bit, 16-bit and 64-bit payload lengths.
        let payloads = vec![vec![1u8; 3], vec![2u8; 300], vec![3u8; 70_000], Vec::new()];
        let framed = binary_all(&payloads);
        assert_eq!(framed[0], 0x82, "FIN + binary");
        assert_eq!(payloads_of(&framed), payloads);
        // A message framed as it is encoded reads back as what prost encodes, at each length.
        for text in ["", "short", &"x".repeat(300), &"y".repeat(70_000)] {
            let msg = pm_shared::proto::WebSocketMessage {
                message_id: text.to_string(),
                ..Default::default()
            };
            let framed = message(&msg);
            assert_eq!(framed, binary_all(&[prost::Message::encode_to_vec(&msg)]));
        }
        assert_eq!(&close(1001, "bye")[..2], &[0x88, 5]);
        assert_eq!(&pong(Bytes::from_static(b"hi"))[..], &[0x8a, 2, b'h', b'i']);
    }

    fn payloads_of(framed: &[u8]) -> Vec<Vec<u8>> {
        payloads(framed).into_iter().map(|b| b.to_vec()).collect()
    }
}
