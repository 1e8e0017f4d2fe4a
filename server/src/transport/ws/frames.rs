//! WebSocket frames as the server sends them (RFC 6455 §5: unmasked, one frame per message),
//! built with tungstenite's frame format.
//!
//! Frames are built once and written to sockets as they are: the hub frames each group of
//! events once, and every subscriber's writer sends those same bytes in one write.
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
pub fn push_binary(out: &mut Vec<u8>, payload: &[u8]) {
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

/// One payload as one binary message.
pub fn binary(payload: &[u8]) -> Bytes {
    binary_all(&[payload])
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
        assert_eq!(&close(1001, "bye")[..2], &[0x88, 5]);
        assert_eq!(&pong(Bytes::from_static(b"hi"))[..], &[0x8a, 2, b'h', b'i']);
    }

    fn payloads_of(framed: &[u8]) -> Vec<Vec<u8>> {
        payloads(framed).into_iter().map(|b| b.to_vec()).collect()
    }
}
