//! What one instance publishes on another's Redis channel: a `deliver` frame for one of its
//! connections, or "close your connection N of this call ID, a newer login took it".
//!
//! Distance from the wire: one step behind Redis pub/sub. The text forms are written by this
//! module and by the Lua scripts in [`scripts`](super::scripts) (which publish the same two
//! shapes), and parsed here with a size limit and typed errors: Redis is shared
//! infrastructure, so a stray publish on our channel must be dropped, never panic.
//!
//! ```text
//! d <to> <from> <deliver frame JSON>     a frame for the connection of <to>
//! k <id> <conn>                          close connection <conn> of <id> (displaced)
//! ```

use crate::identity::CallId;
use crate::protocol::MAX_FRAME_BYTES;

/// Largest message accepted from the channel: a largest `deliver` frame plus the header.
pub const MAX_MESSAGE_BYTES: usize = MAX_FRAME_BYTES + 256;

/// One message between instances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterMessage {
    /// Queue `frame` (an encoded `deliver` frame, already checked by the sender's instance)
    /// on the connection bound to `to`.
    Deliver {
        /// The recipient.
        to: CallId,
        /// The sender (for the outbox's per-sender fairness).
        from: CallId,
        /// The `deliver` frame.
        frame: String,
    },
    /// Close connection `conn` of `id` with `replaced`: the ID logged in on another instance.
    Kick {
        /// The call ID.
        id: CallId,
        /// The connection number on the receiving instance.
        conn: u64,
    },
}

/// Why a channel message was dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    /// Over [`MAX_MESSAGE_BYTES`].
    #[error("cluster message of {0} bytes is over the {MAX_MESSAGE_BYTES}-byte limit")]
    TooLarge(usize),
    /// Not UTF-8.
    #[error("cluster message is not UTF-8")]
    NotText,
    /// Neither shape.
    #[error("cluster message has an unknown shape (expected `d TO FROM FRAME` or `k ID CONN`)")]
    Shape,
    /// A call ID field does not parse.
    #[error("cluster message names an invalid call ID")]
    BadId,
    /// The connection number does not parse.
    #[error("cluster message names an invalid connection number")]
    BadConn,
}

impl ClusterMessage {
    /// The text form published on a channel.
    pub fn encode(&self) -> String {
        match self {
            ClusterMessage::Deliver { to, from, frame } => format!("d {to} {from} {frame}"),
            ClusterMessage::Kick { id, conn } => format!("k {id} {conn}"),
        }
    }

    /// Parses a message read from the channel.
    pub fn parse(bytes: &[u8]) -> Result<ClusterMessage, MessageError> {
        if bytes.len() > MAX_MESSAGE_BYTES {
            return Err(MessageError::TooLarge(bytes.len()));
        }
        let text = std::str::from_utf8(bytes).map_err(|_| MessageError::NotText)?;
        let id = |s: &str| s.parse::<CallId>().map_err(|_| MessageError::BadId);
        if let Some(rest) = text.strip_prefix("d ") {
            let mut parts = rest.splitn(3, ' ');
            let (Some(to), Some(from), Some(frame)) = (parts.next(), parts.next(), parts.next())
            else {
                return Err(MessageError::Shape);
            };
            if frame.is_empty() {
                return Err(MessageError::Shape);
            }
            return Ok(ClusterMessage::Deliver {
                to: id(to)?,
                from: id(from)?,
                frame: frame.to_owned(),
            });
        }
        if let Some(rest) = text.strip_prefix("k ") {
            let Some((who, conn)) = rest.split_once(' ') else {
                return Err(MessageError::Shape);
            };
            if conn.is_empty() || !conn.bytes().all(|b| b.is_ascii_digit()) {
                return Err(MessageError::BadConn);
            }
            return Ok(ClusterMessage::Kick {
                id: id(who)?,
                conn: conn.parse().map_err(|_| MessageError::BadConn)?,
            });
        }
        Err(MessageError::Shape)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;
    use proptest::prelude::*;

    fn id(n: u8) -> CallId {
        Identity::from_seed([n; 32]).call_id()
    }

    #[test]
    fn both_shapes_round_trip() {
        for msg in [
            ClusterMessage::Deliver {
                to: id(1),
                from: id(2),
                frame: r#"{"type":"deliver","envelope":{"a b":"c d"}}"#.into(),
            },
            ClusterMessage::Kick {
                id: id(3),
                conn: u64::MAX,
            },
        ] {
            assert_eq!(ClusterMessage::parse(msg.encode().as_bytes()), Ok(msg));
        }
    }

    #[test]
    fn malformed_messages_get_typed_errors() {
        let ok_id = id(1).to_string();
        let cases: [(Vec<u8>, MessageError); 8] = [
            (b"".to_vec(), MessageError::Shape),
            (b"x y z".to_vec(), MessageError::Shape),
            (
                format!("d {ok_id} {ok_id}").into_bytes(),
                MessageError::Shape,
            ),
            (
                format!("d {ok_id} {ok_id} ").into_bytes(),
                MessageError::Shape,
            ),
            (
                format!("d nope {ok_id} f").into_bytes(),
                MessageError::BadId,
            ),
            (format!("k {ok_id} -1").into_bytes(), MessageError::BadConn),
            (
                format!("k {ok_id} 99999999999999999999999").into_bytes(),
                MessageError::BadConn,
            ),
            (vec![b'd', b' ', 0xff], MessageError::NotText),
        ];
        for (input, want) in cases {
            assert_eq!(ClusterMessage::parse(&input), Err(want), "{input:?}");
        }
        let big = vec![b'd'; MAX_MESSAGE_BYTES + 1];
        assert_eq!(
            ClusterMessage::parse(&big),
            Err(MessageError::TooLarge(MAX_MESSAGE_BYTES + 1))
        );
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
            let _ = ClusterMessage::parse(&bytes);
        }

        #[test]
        fn any_frame_text_round_trips(frame in "[^\u{0}]{1,200}", a in 0u8..8, b in 0u8..8) {
            let msg = ClusterMessage::Deliver { to: id(a), from: id(b), frame };
            prop_assert_eq!(ClusterMessage::parse(msg.encode().as_bytes()), Ok(msg));
        }
    }
}
