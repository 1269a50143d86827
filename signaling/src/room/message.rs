//! Room messages: one member's signed text to everyone in a room (§21.4 of
//! `docs/protocol.md`). The same signed message may come by two paths (the call's data
//! channels, and sealed envelopes through the server); [`super::RoomInbox`] drops the second
//! copy and keeps each sender's order.

use base64::Engine as _;
use ed25519_dalek::Signature;
use sha2::{Digest, Sha256};

use super::error::RoomError;
use super::id::RoomId;
use crate::envelope::MAX_PLAINTEXT_BYTES;
use crate::identity::{verify_strict, CallId, Identity};

/// Domain separation of the message signature.
pub const ROOM_MESSAGE_SIG_DOMAIN: &[u8] = b"call-room-msg/v1";
/// Longest message text, bytes of UTF-8 (as a chat frame's, §19).
pub const MAX_ROOM_TEXT_BYTES: usize = 8 * 1024;
/// Bytes of a message ID.
pub const MESSAGE_ID_LEN: usize = 16;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// A message's ID: the first 16 bytes of SHA-256 over its signed bytes and signature, written
/// as 32 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MessageId(pub [u8; MESSAGE_ID_LEN]);

impl std::fmt::Display for MessageId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&data_encoding::HEXLOWER.encode(&self.0))
    }
}

impl std::fmt::Debug for MessageId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MessageId({self})")
    }
}

impl std::str::FromStr for MessageId {
    type Err = RoomError;

    fn from_str(s: &str) -> Result<MessageId, RoomError> {
        let bytes = data_encoding::HEXLOWER_PERMISSIVE
            .decode(s.as_bytes())
            .map_err(|_| RoomError::Malformed("a message ID is 32 hex digits".into()))?;
        bytes
            .try_into()
            .map(MessageId)
            .map_err(|_| RoomError::Malformed("a message ID is 32 hex digits".into()))
    }
}

/// What a message says (unsigned).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomMessage {
    /// The room.
    pub room: RoomId,
    /// Who wrote it.
    pub sender: CallId,
    /// The sender's counter in this room: 1, 2, 3, … (receivers keep this order).
    pub seq: u64,
    /// The sender's clock, Unix milliseconds (shown, not trusted).
    pub ts_ms: u64,
    /// The message it answers, if any.
    pub reply_to: Option<MessageId>,
    /// The text (peer-supplied: escape it before showing it). Newlines and tabs allowed.
    pub text: String,
}

impl RoomMessage {
    fn check(&self) -> Result<(), RoomError> {
        if self.text.len() > MAX_ROOM_TEXT_BYTES {
            return Err(RoomError::Invalid(format!(
                "message text is {} bytes, at most {MAX_ROOM_TEXT_BYTES} are allowed",
                self.text.len()
            )));
        }
        if self
            .text
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
        {
            return Err(RoomError::Invalid(
                "message text contains control characters".into(),
            ));
        }
        if self.seq == 0 {
            return Err(RoomError::Invalid("seq starts at 1".into()));
        }
        Ok(())
    }

    /// The bytes the sender signs (§21.4).
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            ROOM_MESSAGE_SIG_DOMAIN.len() + 16 + 32 + 8 + 8 + 17 + 4 + self.text.len(),
        );
        out.extend_from_slice(ROOM_MESSAGE_SIG_DOMAIN);
        out.extend_from_slice(self.room.as_bytes());
        out.extend_from_slice(self.sender.as_bytes());
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.ts_ms.to_be_bytes());
        match &self.reply_to {
            Some(id) => {
                out.push(1);
                out.extend_from_slice(&id.0);
            }
            None => out.push(0),
        }
        out.extend_from_slice(&(self.text.len() as u32).to_be_bytes());
        out.extend_from_slice(self.text.as_bytes());
        out
    }

    /// Signs the message; `sender` must be `identity`'s ID.
    pub fn sign(self, identity: &Identity) -> Result<SignedRoomMessage, RoomError> {
        self.check()?;
        if self.sender != identity.call_id() {
            return Err(RoomError::Invalid(
                "a message is signed by its sender".into(),
            ));
        }
        let sig = identity.sign(&self.signed_bytes());
        Ok(SignedRoomMessage { msg: self, sig })
    }
}

/// A signed room message: the plaintext of a `room_message` envelope and of a room chat frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRoomMessage {
    /// The message.
    pub msg: RoomMessage,
    sig: Signature,
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    room: RoomId,
    sender: CallId,
    seq: u64,
    ts_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reply_to: Option<String>,
    text: String,
    sig: String,
}

impl SignedRoomMessage {
    /// Parses untrusted bytes; checks the limits and the sender's signature. Whether the
    /// sender is a member is the receiver's check against the room state it holds.
    pub fn parse(bytes: &[u8]) -> Result<SignedRoomMessage, RoomError> {
        if bytes.len() > MAX_PLAINTEXT_BYTES {
            return Err(RoomError::TooLarge {
                size: bytes.len(),
                max: MAX_PLAINTEXT_BYTES,
            });
        }
        let wire: Wire = serde_json::from_slice(bytes).map_err(|e| RoomError::malformed(&e))?;
        let sig_bytes: [u8; 64] = B64
            .decode(&wire.sig)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| RoomError::Malformed("sig is not 64 bytes of base64".into()))?;
        let reply_to = match wire.reply_to {
            Some(text) => Some(text.parse::<MessageId>()?),
            None => None,
        };
        let msg = RoomMessage {
            room: wire.room,
            sender: wire.sender,
            seq: wire.seq,
            ts_ms: wire.ts_ms,
            reply_to,
            text: wire.text,
        };
        msg.check()?;
        let sig = Signature::from_bytes(&sig_bytes);
        verify_strict(&msg.sender, &msg.signed_bytes(), &sig)
            .map_err(|_| RoomError::BadSignature)?;
        Ok(SignedRoomMessage { msg, sig })
    }

    /// The JSON text.
    pub fn to_json(&self) -> Vec<u8> {
        let wire = Wire {
            room: self.msg.room,
            sender: self.msg.sender,
            seq: self.msg.seq,
            ts_ms: self.msg.ts_ms,
            reply_to: self.msg.reply_to.map(|id| id.to_string()),
            text: self.msg.text.clone(),
            sig: B64.encode(self.sig.to_bytes()),
        };
        serde_json::to_vec(&wire).unwrap_or_default()
    }

    /// The message's ID.
    pub fn id(&self) -> MessageId {
        let digest = Sha256::new()
            .chain_update(self.msg.signed_bytes())
            .chain_update(self.sig.to_bytes())
            .finalize();
        let mut id = [0; MESSAGE_ID_LEN];
        id.copy_from_slice(&digest[..MESSAGE_ID_LEN]);
        MessageId(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_fixtures::{alice, bob};
    use proptest::prelude::*;

    pub(crate) fn msg(seq: u64, text: &str) -> SignedRoomMessage {
        RoomMessage {
            room: RoomId::from_bytes([3; 16]),
            sender: alice().call_id(),
            seq,
            ts_ms: 1_700_000_000_000 + seq,
            reply_to: None,
            text: text.into(),
        }
        .sign(&alice())
        .unwrap()
    }

    #[test]
    fn round_trip_and_id() {
        let first = msg(1, "hello\nworld");
        let mut reply = first.msg.clone();
        reply.seq = 2;
        reply.reply_to = Some(first.id());
        let reply = reply.sign(&alice()).unwrap();
        for m in [first, reply] {
            let back = SignedRoomMessage::parse(&m.to_json()).unwrap();
            assert_eq!(back, m);
            assert_eq!(back.id(), m.id());
            assert_eq!(m.id().to_string().parse::<MessageId>().unwrap(), m.id());
        }
    }

    #[test]
    fn tampering_and_impersonation_are_refused() {
        let json = String::from_utf8(msg(1, "pay Bob").to_json()).unwrap();
        let tampered = json.replace("pay Bob", "pay Eve");
        assert_eq!(
            SignedRoomMessage::parse(tampered.as_bytes()),
            Err(RoomError::BadSignature)
        );
        let claimed = json.replace(&alice().call_id().to_string(), &bob().call_id().to_string());
        assert_eq!(
            SignedRoomMessage::parse(claimed.as_bytes()),
            Err(RoomError::BadSignature)
        );
        let mut m = msg(1, "x").msg;
        m.sender = bob().call_id();
        assert!(m.sign(&alice()).is_err());
    }

    #[test]
    fn limits() {
        let mut m = msg(1, "x").msg;
        m.text = "a".repeat(MAX_ROOM_TEXT_BYTES + 1);
        assert!(matches!(
            m.clone().sign(&alice()),
            Err(RoomError::Invalid(_))
        ));
        m.text = "\u{1b}[2J".into();
        assert!(matches!(
            m.clone().sign(&alice()),
            Err(RoomError::Invalid(_))
        ));
        m.text = "ok".into();
        m.seq = 0;
        assert!(matches!(m.sign(&alice()), Err(RoomError::Invalid(_))));
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
            let _ = SignedRoomMessage::parse(&bytes);
        }
    }
}
