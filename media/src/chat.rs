//! Chat frames: what travels on the `chat` data channel (docs/protocol.md §19).
//!
//! One data-channel message is one JSON object, its type in the member `t`. The channel is
//! reliable and ordered, and bound to the peer's identity through the DTLS fingerprint in its
//! signed SDP, so a frame needs no signature of its own. Frames from the wire go through
//! [`ChatFrame::parse`], which enforces the size limits before and after decoding, refuses
//! duplicate members, and reports frame types it does not know as
//! [`ChatError::UnknownType`] so the receiver can ignore (and count) them instead of treating
//! the peer as broken: more room and file frames will be added later under reserved names.
//!
//! A room's call carries the room's messages in `room_msg` frames: the signed message of
//! docs/protocol.md §21.4, nested as its exact JSON bytes ([`RoomPayload`]). This crate does
//! not know rooms: it checks that the payload is a JSON object and leaves the signature, the
//! sender and the room to the engine.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// Largest data-channel message we accept as a chat frame, in bytes: a `room_msg` frame holding
/// the largest signed room message (45 KiB, the envelope plaintext limit) fits, and it stays
/// under what data channels carry without `a=max-message-size` (Chromium: 65,536 bytes;
/// webrtc-rs reads messages into a 65,535-byte buffer).
pub const MAX_FRAME_BYTES: usize = 48 * 1024;
// Checked when compiling: a frame fits webrtc-rs's read buffer (and so Chromium's default).
const _: () = assert!(MAX_FRAME_BYTES < u16::MAX as usize);
/// Largest chat text, in bytes of UTF-8.
pub const MAX_TEXT_BYTES: usize = 8 * 1024;
/// Largest `bye` reason, in bytes of UTF-8 (as a signaling hang-up reason).
pub const MAX_REASON_BYTES: usize = 256;
/// Longest frame type name kept in [`ChatError::UnknownType`] (longer ones are cut).
const MAX_TYPE_NAME_BYTES: usize = 64;

/// Frame types this version understands (the values of `t`).
pub const KNOWN_TYPES: [&str; 5] = ["text", "ping", "pong", "bye", "room_msg"];
/// Prefixes of frame types reserved for later versions (room frames other than `room_msg`,
/// file transfer). A receiver that does not implement them ignores them like any unknown type.
pub const RESERVED_TYPE_PREFIXES: [&str; 2] = ["room_", "file_"];

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
    /// A message to the room whose call this is, signed by its sender (who must be this peer).
    /// Parsed by [`ChatFrame::parse`] through its own wire struct (a raw JSON value cannot be
    /// read through the derived tagged-enum impl).
    #[serde(skip_deserializing)]
    RoomMsg {
        /// The signed room message (§21.4), as a JSON object.
        msg: RoomPayload,
    },
}

/// The signed room message in a `room_msg` frame: a JSON object kept as its exact bytes, which
/// the engine parses and verifies (its signature covers the message's fields, not this text).
#[derive(Clone, Debug, Serialize)]
#[serde(transparent)]
pub struct RoomPayload(Box<RawValue>);

impl RoomPayload {
    /// The object's JSON bytes, as received (or as given to [`ChatFrame::room_msg`]).
    pub fn as_bytes(&self) -> &[u8] {
        self.0.get().as_bytes()
    }
}

impl PartialEq for RoomPayload {
    fn eq(&self, other: &Self) -> bool {
        self.0.get() == other.0.get()
    }
}

impl Eq for RoomPayload {}

/// A `room_msg` frame as read from the wire: exactly `t` and `msg`, each once.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoomMsgWire<'a> {
    #[serde(borrow, rename = "t")]
    _t: Cow<'a, str>,
    msg: Box<RawValue>,
}

/// Why a chat frame was refused. Every case drops the one frame; none closes the channel.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChatError {
    /// The frame exceeds [`MAX_FRAME_BYTES`].
    #[error("chat frame of {0} bytes exceeds the {MAX_FRAME_BYTES}-byte limit")]
    FrameTooLarge(usize),
    /// The text exceeds [`MAX_TEXT_BYTES`].
    #[error("chat text of {0} bytes exceeds the {MAX_TEXT_BYTES}-byte limit; split it into several messages")]
    TextTooLarge(usize),
    /// The `bye` reason exceeds [`MAX_REASON_BYTES`].
    #[error("hang-up reason of {0} bytes exceeds the {MAX_REASON_BYTES}-byte limit")]
    ReasonTooLarge(usize),
    /// The text contains control characters (terminal escapes could spoof the display).
    #[error("chat text contains control characters")]
    ControlCharacters,
    /// A well-formed frame of a type this version does not know (a later version's, or a
    /// reserved room/file frame): ignore it and count it.
    #[error("ignored a chat frame of unknown type {0:?}")]
    UnknownType(String),
    /// Not a valid frame: not JSON, not an object, no `t`, a duplicate member, an unknown or
    /// missing member, or a value of the wrong type.
    #[error("malformed chat frame: {0}")]
    Malformed(String),
}

/// Only `t`, read first so an unknown type is told apart from a malformed frame. Other
/// members are skipped; a duplicate `t` is refused by the derived impl.
#[derive(Deserialize)]
struct TypeProbe<'a> {
    #[serde(borrow)]
    t: Cow<'a, str>,
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

    /// Builds a `room_msg` frame around `msg`, the JSON of a signed room message; refuses what is
    /// not a JSON object and a frame over [`MAX_FRAME_BYTES`] (the caller then sends the message
    /// another way).
    pub fn room_msg(msg: &[u8]) -> Result<ChatFrame, ChatError> {
        let malformed = |e: serde_json::Error| ChatError::Malformed(e.to_string());
        let raw: Box<RawValue> = serde_json::from_slice(msg).map_err(malformed)?;
        let frame = ChatFrame::RoomMsg {
            msg: RoomPayload(raw),
        };
        frame.check()?;
        let size = frame.encode().len();
        if size > MAX_FRAME_BYTES {
            return Err(ChatError::FrameTooLarge(size));
        }
        Ok(frame)
    }

    /// Parses a frame received from the peer.
    pub fn parse(bytes: &[u8]) -> Result<ChatFrame, ChatError> {
        if bytes.len() > MAX_FRAME_BYTES {
            return Err(ChatError::FrameTooLarge(bytes.len()));
        }
        let malformed = |e: serde_json::Error| ChatError::Malformed(e.to_string());
        let probe: TypeProbe<'_> = serde_json::from_slice(bytes).map_err(malformed)?;
        if !KNOWN_TYPES.contains(&probe.t.as_ref()) {
            return Err(ChatError::UnknownType(truncate(&probe.t)));
        }
        let frame = if probe.t == "room_msg" {
            let wire: RoomMsgWire<'_> = serde_json::from_slice(bytes).map_err(malformed)?;
            ChatFrame::RoomMsg {
                msg: RoomPayload(wire.msg),
            }
        } else {
            serde_json::from_slice(bytes).map_err(malformed)?
        };
        frame.check()?;
        Ok(frame)
    }

    /// Encodes the frame for the data channel: compact JSON, `t` first, then the members in
    /// the order of the spec (a `room_msg`'s `msg` as the bytes it was built from).
    pub fn encode(&self) -> Vec<u8> {
        // Serialising strings, integers and already-valid raw JSON cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    fn check(&self) -> Result<(), ChatError> {
        let text = match self {
            ChatFrame::Text { text, .. } => {
                if text.len() > MAX_TEXT_BYTES {
                    return Err(ChatError::TextTooLarge(text.len()));
                }
                text
            }
            ChatFrame::Bye { reason } => {
                if reason.len() > MAX_REASON_BYTES {
                    return Err(ChatError::ReasonTooLarge(reason.len()));
                }
                reason
            }
            ChatFrame::RoomMsg { msg } => {
                // What is inside is the engine's to check; the frame only promises an object.
                if !msg.0.get().starts_with('{') {
                    return Err(ChatError::Malformed(
                        "the msg of a room_msg frame is not a JSON object".into(),
                    ));
                }
                return Ok(());
            }
            ChatFrame::Ping { .. } | ChatFrame::Pong { .. } => return Ok(()),
        };
        if text
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
        {
            return Err(ChatError::ControlCharacters);
        }
        Ok(())
    }
}

/// At most [`MAX_TYPE_NAME_BYTES`] of `s`, cut at a character boundary.
fn truncate(s: &str) -> String {
    let mut end = s.len().min(MAX_TYPE_NAME_BYTES);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

#[cfg(test)]
mod tests;
