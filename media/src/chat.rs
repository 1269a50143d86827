//! Chat frames: what travels on the `chat` data channel.
//!
//! One data-channel message is one JSON frame. The channel is reliable and ordered, and bound to
//! the peer's identity through the DTLS fingerprint in its signed SDP, so a frame needs no
//! signature of its own. Frames from the wire go through [`ChatFrame::parse`], which enforces the
//! size limits before and after decoding.

use serde::{Deserialize, Serialize};

/// Largest data-channel message we accept as a chat frame.
pub const MAX_FRAME_BYTES: usize = 16 * 1024;
/// Largest chat text, in bytes of UTF-8.
pub const MAX_TEXT_BYTES: usize = 8 * 1024;

/// A message on the chat channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case", deny_unknown_fields)]
pub enum ChatFrame {
    /// A line of text.
    Text {
        /// Sender's message counter, increasing from 1.
        id: u64,
        /// Sender's wall-clock time, Unix milliseconds.
        ts_ms: u64,
        /// The text (no control characters but newline and tab).
        text: String,
    },
    /// Round-trip probe; the peer answers with [`ChatFrame::Pong`] carrying the same `n`.
    Ping {
        /// Probe number.
        n: u64,
    },
    /// Answer to a [`ChatFrame::Ping`].
    Pong {
        /// The probe number being answered.
        n: u64,
    },
    /// The sender is hanging up.
    Bye {
        /// Why, for display.
        reason: String,
    },
}

/// Why a chat frame was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChatError {
    /// The frame exceeds [`MAX_FRAME_BYTES`].
    #[error("chat frame of {0} bytes exceeds the {MAX_FRAME_BYTES}-byte limit")]
    FrameTooLarge(usize),
    /// The text exceeds [`MAX_TEXT_BYTES`].
    #[error("chat text of {0} bytes exceeds the {MAX_TEXT_BYTES}-byte limit; split it into several messages")]
    TextTooLarge(usize),
    /// The text contains control characters (terminal escapes could spoof the display).
    #[error("chat text contains control characters")]
    ControlCharacters,
    /// Not a valid frame.
    #[error("malformed chat frame: {0}")]
    Malformed(String),
}

impl ChatFrame {
    /// Builds a text frame, checking the same limits the receiver will.
    pub fn text(id: u64, ts_ms: u64, text: &str) -> Result<ChatFrame, ChatError> {
        let frame = ChatFrame::Text {
            id,
            ts_ms,
            text: text.to_owned(),
        };
        frame.check()?;
        Ok(frame)
    }

    /// Parses a frame received from the peer.
    pub fn parse(bytes: &[u8]) -> Result<ChatFrame, ChatError> {
        if bytes.len() > MAX_FRAME_BYTES {
            return Err(ChatError::FrameTooLarge(bytes.len()));
        }
        let frame: ChatFrame =
            serde_json::from_slice(bytes).map_err(|e| ChatError::Malformed(e.to_string()))?;
        frame.check()?;
        Ok(frame)
    }

    /// Encodes the frame for the data channel.
    pub fn encode(&self) -> Vec<u8> {
        // Serialising a plain enum of strings and integers cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    fn check(&self) -> Result<(), ChatError> {
        let text = match self {
            ChatFrame::Text { text, .. } => text,
            ChatFrame::Bye { reason } => reason,
            ChatFrame::Ping { .. } | ChatFrame::Pong { .. } => return Ok(()),
        };
        if text.len() > MAX_TEXT_BYTES {
            return Err(ChatError::TextTooLarge(text.len()));
        }
        if text
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
        {
            return Err(ChatError::ControlCharacters);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trip() {
        let f = ChatFrame::text(1, 1_700_000_000_000, "hello, world").unwrap();
        assert_eq!(ChatFrame::parse(&f.encode()).unwrap(), f);
        let bye = ChatFrame::Bye {
            reason: "hang-up".into(),
        };
        assert_eq!(ChatFrame::parse(&bye.encode()).unwrap(), bye);
        for f in [ChatFrame::Ping { n: 7 }, ChatFrame::Pong { n: u64::MAX }] {
            assert_eq!(ChatFrame::parse(&f.encode()).unwrap(), f);
        }
    }

    #[test]
    fn rejects_oversize_and_escapes() {
        assert_eq!(
            ChatFrame::parse(&vec![b' '; MAX_FRAME_BYTES + 1]),
            Err(ChatError::FrameTooLarge(MAX_FRAME_BYTES + 1))
        );
        assert_eq!(
            ChatFrame::text(1, 0, &"x".repeat(MAX_TEXT_BYTES + 1)),
            Err(ChatError::TextTooLarge(MAX_TEXT_BYTES + 1))
        );
        assert_eq!(
            ChatFrame::text(1, 0, "\x1b[2J"),
            Err(ChatError::ControlCharacters)
        );
        let raw = br#"{"t":"text","id":1,"ts_ms":0,"text":"\u001b[31m"}"#;
        assert_eq!(ChatFrame::parse(raw), Err(ChatError::ControlCharacters));
        assert!(matches!(
            ChatFrame::parse(br#"{"t":"nope"}"#),
            Err(ChatError::Malformed(_))
        ));
        assert!(matches!(
            ChatFrame::parse(br#"{"t":"bye","reason":"x","extra":1}"#),
            Err(ChatError::Malformed(_))
        ));
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = ChatFrame::parse(&bytes);
        }

        #[test]
        fn any_printable_text_round_trips(text in "[^\\p{Cc}]{0,200}", id in any::<u64>(), ts in any::<u64>()) {
            let f = ChatFrame::text(id, ts, &text).unwrap();
            prop_assert_eq!(ChatFrame::parse(&f.encode()).unwrap(), f);
        }
    }
}
