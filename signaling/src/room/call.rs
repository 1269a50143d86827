//! A room's conference call, on the wire (§21.5 of `docs/protocol.md`): `room_call` envelopes
//! say "I am joining" / "I am here" / "I am leaving" with a per-join session nonce; each pair of
//! members then sets up one ordinary signed offer/answer (§5.1) whose call token is derived
//! from the room and both sessions, so an offer is bound to this room's call and this pair, and
//! one fixed rule says which of the two offers.

use sha2::{Digest, Sha256};

use super::error::RoomError;
use super::id::RoomId;
use crate::identity::CallId;
use crate::offer::CallToken;

/// Domain separation of the pair token.
pub const PAIR_TOKEN_DOMAIN: &[u8] = b"call-room-pair/v1";

/// One member's presence in a room's call: 16 random bytes, fresh for every `call join`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CallSession(pub [u8; 16]);

impl CallSession {
    /// A fresh session.
    pub fn random() -> CallSession {
        CallSession(rand::random())
    }
}

impl std::fmt::Debug for CallSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "CallSession({})",
            data_encoding::HEXLOWER.encode(&self.0)
        )
    }
}

/// What a `room_call` envelope says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoomCallOp {
    /// "I am joining the call": sent to every other member.
    Join,
    /// "I am in the call": the answer of a member in the call to a `join`.
    Here,
    /// "I am leaving the call".
    Leave,
}

/// The plaintext of a `room_call` envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoomCallBody {
    /// The room.
    pub room: RoomId,
    /// The sender's session.
    pub session: CallSession,
    /// What it says.
    pub op: RoomCallOp,
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    room: RoomId,
    session: String,
    op: String,
}

impl RoomCallBody {
    /// Parses an envelope plaintext (shape only; membership is the receiver's check).
    pub fn parse(bytes: &[u8]) -> Result<RoomCallBody, RoomError> {
        if bytes.len() > 1024 {
            return Err(RoomError::TooLarge {
                size: bytes.len(),
                max: 1024,
            });
        }
        let w: Wire = serde_json::from_slice(bytes).map_err(|e| RoomError::malformed(&e))?;
        let session: [u8; 16] = data_encoding::HEXLOWER_PERMISSIVE
            .decode(w.session.as_bytes())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| RoomError::Malformed("session is not 32 hex digits".into()))?;
        let op = match w.op.as_str() {
            "join" => RoomCallOp::Join,
            "here" => RoomCallOp::Here,
            "leave" => RoomCallOp::Leave,
            _ => {
                return Err(RoomError::Malformed(
                    "op must be join, here or leave".into(),
                ))
            }
        };
        Ok(RoomCallBody {
            room: w.room,
            session: CallSession(session),
            op,
        })
    }

    /// The JSON text.
    pub fn to_json(&self) -> Vec<u8> {
        let op = match self.op {
            RoomCallOp::Join => "join",
            RoomCallOp::Here => "here",
            RoomCallOp::Leave => "leave",
        };
        serde_json::to_vec(&Wire {
            room: self.room,
            session: data_encoding::HEXLOWER.encode(&self.session.0),
            op: op.into(),
        })
        .unwrap_or_default()
    }
}

/// Whether `me` sends the offer to `peer` (the member whose key bytes are smaller offers), so
/// two members joining at once never both offer.
pub fn offers_to(me: &CallId, peer: &CallId) -> bool {
    me.as_bytes() < peer.as_bytes()
}

/// The call token of the pair's offer/answer: the first 16 bytes of
/// `SHA-256("call-room-pair/v1" || room || pk_lo || session_lo || pk_hi || session_hi)`, where
/// `lo` is the member with the smaller key bytes. Both can compute it once each knows the
/// other's session, and it names this room, this pair and these two joins.
pub fn pair_token(
    room: &RoomId,
    a: (&CallId, &CallSession),
    b: (&CallId, &CallSession),
) -> CallToken {
    let (lo, hi) = if a.0.as_bytes() < b.0.as_bytes() {
        (a, b)
    } else {
        (b, a)
    };
    let digest = Sha256::new()
        .chain_update(PAIR_TOKEN_DOMAIN)
        .chain_update(room.as_bytes())
        .chain_update(lo.0.as_bytes())
        .chain_update(lo.1 .0)
        .chain_update(hi.0.as_bytes())
        .chain_update(hi.1 .0)
        .finalize();
    let mut token = [0; 16];
    token.copy_from_slice(&digest[..16]);
    CallToken::from_bytes(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_fixtures::{alice, bob};
    use proptest::prelude::*;

    #[test]
    fn round_trip_and_rules() {
        let body = RoomCallBody {
            room: RoomId::from_bytes([1; 16]),
            session: CallSession([2; 16]),
            op: RoomCallOp::Here,
        };
        assert_eq!(RoomCallBody::parse(&body.to_json()).unwrap(), body);
        let (a, b) = (alice().call_id(), bob().call_id());
        assert_ne!(offers_to(&a, &b), offers_to(&b, &a), "exactly one offers");
        let (sa, sb) = (CallSession([3; 16]), CallSession([4; 16]));
        let room = RoomId::from_bytes([1; 16]);
        let t = pair_token(&room, (&a, &sa), (&b, &sb));
        assert_eq!(
            t,
            pair_token(&room, (&b, &sb), (&a, &sa)),
            "both sides agree"
        );
        assert_ne!(
            t,
            pair_token(&room, (&a, &sb), (&b, &sa)),
            "sessions are bound to their member"
        );
        assert_ne!(
            t,
            pair_token(&RoomId::from_bytes([9; 16]), (&a, &sa), (&b, &sb))
        );
        assert_ne!(
            t,
            pair_token(&room, (&a, &CallSession([5; 16])), (&b, &sb)),
            "a new join, a new token"
        );
    }

    #[test]
    fn bad_bodies_are_typed_errors() {
        for bad in [
            &b"{}"[..],
            br#"{"room":"x","session":"00","op":"join"}"#,
            br#"{"room":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","session":"00","op":"join"}"#,
        ] {
            assert!(RoomCallBody::parse(bad).is_err());
        }
        let mut body = RoomCallBody {
            room: RoomId::from_bytes([1; 16]),
            session: CallSession([2; 16]),
            op: RoomCallOp::Join,
        }
        .to_json();
        let text = String::from_utf8(body.clone())
            .unwrap()
            .replace("join", "party");
        assert!(RoomCallBody::parse(text.as_bytes()).is_err());
        body.extend_from_slice(&[b' '; 2000]);
        assert!(matches!(
            RoomCallBody::parse(&body),
            Err(RoomError::TooLarge { .. })
        ));
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..1200)) {
            let _ = RoomCallBody::parse(&bytes);
        }
    }
}
