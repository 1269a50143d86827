//! Target for the chat data channel (§19): every message a peer sends on it, `room_msg`
//! included (§19.6).

use media::chat::{ChatError, ChatFrame, MAX_FRAME_BYTES, MAX_REASON_BYTES, MAX_TEXT_BYTES};

/// `ChatFrame::parse`: what parses stays within the limits, encodes to at most the frame
/// limit and parses back to itself; a `room_msg` payload rebuilds the same frame through
/// `ChatFrame::room_msg`. The same bytes offered to `ChatFrame::room_msg` (the sending side)
/// give a frame the receiver accepts.
pub fn chat_frame(data: &[u8]) {
    match ChatFrame::parse(data) {
        Ok(frame) => {
            check_limits(&frame);
            let encoded = frame.encode();
            assert!(encoded.len() <= MAX_FRAME_BYTES);
            assert_eq!(ChatFrame::parse(&encoded).as_ref(), Ok(&frame));
            if let ChatFrame::RoomMsg { msg } = &frame {
                assert_eq!(ChatFrame::room_msg(msg.as_bytes()).as_ref(), Ok(&frame));
            }
        }
        Err(ChatError::UnknownType(name)) => assert!(name.len() <= 64),
        Err(_) => {}
    }
    if let Ok(frame) = ChatFrame::room_msg(data) {
        let encoded = frame.encode();
        assert!(encoded.len() <= MAX_FRAME_BYTES);
        assert_eq!(ChatFrame::parse(&encoded).as_ref(), Ok(&frame));
    }
}

fn check_limits(frame: &ChatFrame) {
    let shown = match frame {
        ChatFrame::Text { text, .. } => {
            assert!(text.len() <= MAX_TEXT_BYTES);
            text
        }
        ChatFrame::Bye { reason } => {
            assert!(reason.len() <= MAX_REASON_BYTES);
            reason
        }
        ChatFrame::RoomMsg { msg } => {
            assert!(msg.as_bytes().starts_with(b"{"));
            return;
        }
        ChatFrame::Ping { .. } | ChatFrame::Pong { .. } => return,
    };
    assert!(!shown
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t'));
}
