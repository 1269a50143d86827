//! Signed room state: a room's name and member list at one version, signed by one member
//! (§21.2 of `docs/protocol.md`). Whether a member takes a new state is [`super::held`]'s job;
//! this file is the value, its limits, its signed bytes and its JSON form.

use base64::Engine as _;
use ed25519_dalek::Signature;
use sha2::{Digest, Sha256};

use super::error::RoomError;
use super::id::RoomId;
use crate::envelope::MAX_PLAINTEXT_BYTES;
use crate::identity::{verify_strict, CallId, Identity};
use crate::offer::is_unprintable;

/// Domain separation of the room-state signature.
pub const ROOM_STATE_SIG_DOMAIN: &[u8] = b"call-room-state/v1";
/// Most members a room holds (a mesh call is for small groups; see docs/decisions.md).
pub const MAX_ROOM_MEMBERS: usize = 64;
/// Longest room name, bytes of UTF-8.
pub const MAX_ROOM_NAME_BYTES: usize = 64;
/// Longest display name of a member, bytes of UTF-8.
pub const MAX_MEMBER_NAME_BYTES: usize = 64;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// What a member may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// May sign new states (invite, remove, rename, promote).
    Admin,
    /// May talk, and sign a state that only removes itself (leaving).
    Member,
}

impl Role {
    fn byte(self) -> u8 {
        match self {
            Role::Admin => 1,
            Role::Member => 0,
        }
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }
}

impl serde::Serialize for Role {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Role {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Role, D::Error> {
        match <std::borrow::Cow<'de, str>>::deserialize(d)?.as_ref() {
            "admin" => Ok(Role::Admin),
            "member" => Ok(Role::Member),
            other => Err(serde::de::Error::custom(format!(
                "role must be \"admin\" or \"member\", not {:?}",
                other.chars().take(16).collect::<String>()
            ))),
        }
    }
}

/// One member of a room.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Member {
    /// Its identity.
    pub id: CallId,
    /// The name the admins gave it (peer-supplied text: escape it before showing it).
    pub name: String,
    /// What it may do.
    pub role: Role,
}

/// SHA-256 of a signed state ([`SignedRoomState::hash`]): names a state in `prev`, and
/// breaks ties between two states of one version.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct StateHash(pub [u8; 32]);

impl std::fmt::Debug for StateHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "StateHash({})",
            data_encoding::HEXLOWER.encode(&self.0[..8])
        )
    }
}

/// A room at one version (unsigned).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomState {
    /// Which room.
    pub room: RoomId,
    /// Starts at 1; every change adds at least 1.
    pub version: u64,
    /// The hash of the state this one was made from; all zero for version 1.
    pub prev: StateHash,
    /// The signer's clock, Unix milliseconds (shown, not trusted).
    pub ts_ms: u64,
    /// The room's name (peer-supplied text).
    pub name: String,
    /// The members, in ascending order of their 32 key bytes, each once.
    pub members: Vec<Member>,
}

impl RoomState {
    /// Version 1 of a new room with its creator as the only (admin) member.
    pub fn create(
        room: RoomId,
        name: &str,
        creator: CallId,
        creator_name: &str,
        ts_ms: u64,
    ) -> Self {
        RoomState {
            room,
            version: 1,
            prev: StateHash::default(),
            ts_ms,
            name: name.to_owned(),
            members: vec![Member {
                id: creator,
                name: creator_name.to_owned(),
                role: Role::Admin,
            }],
        }
    }

    /// The next version of `parent` (same room and members, `prev` set), for an edit.
    pub fn next(parent: &SignedRoomState, ts_ms: u64) -> Self {
        RoomState {
            version: parent.state.version.saturating_add(1),
            prev: parent.hash(),
            ts_ms,
            ..parent.state.clone()
        }
    }

    /// The member with this ID.
    pub fn member(&self, id: &CallId) -> Option<&Member> {
        self.members.iter().find(|m| m.id == *id)
    }

    /// Whether `id` is an admin.
    pub fn is_admin(&self, id: &CallId) -> bool {
        self.member(id).is_some_and(|m| m.role == Role::Admin)
    }

    /// Adds or replaces a member, keeping the canonical order.
    pub fn upsert(&mut self, member: Member) {
        self.members.retain(|m| m.id != member.id);
        self.members.push(member);
        self.members
            .sort_by(|a, b| a.id.as_bytes().cmp(b.id.as_bytes()));
    }

    /// Removes a member; whether it was there.
    pub fn remove(&mut self, id: &CallId) -> bool {
        let before = self.members.len();
        self.members.retain(|m| m.id != *id);
        self.members.len() != before
    }

    /// Checks the limits (§21.2): name and member names printable and short, 1 to
    /// [`MAX_ROOM_MEMBERS`] members in strictly ascending key order, at least one admin,
    /// version ≥ 1, `prev` zero exactly for version 1.
    pub fn check(&self) -> Result<(), RoomError> {
        check_text("room name", &self.name, MAX_ROOM_NAME_BYTES, false)?;
        if self.version == 0 {
            return Err(RoomError::Invalid("version must be at least 1".into()));
        }
        if (self.version == 1) != (self.prev == StateHash::default()) {
            return Err(RoomError::Invalid(
                "prev must be all zero for version 1 and only then".into(),
            ));
        }
        if self.members.is_empty() || self.members.len() > MAX_ROOM_MEMBERS {
            return Err(RoomError::Invalid(format!(
                "a room has 1 to {MAX_ROOM_MEMBERS} members, this state has {}",
                self.members.len()
            )));
        }
        for pair in self.members.windows(2) {
            if pair[0].id.as_bytes() >= pair[1].id.as_bytes() {
                return Err(RoomError::Invalid(
                    "members must be listed once each, in ascending key order".into(),
                ));
            }
        }
        for m in &self.members {
            check_text("member name", &m.name, MAX_MEMBER_NAME_BYTES, true)?;
        }
        if !self.members.iter().any(|m| m.role == Role::Admin) {
            return Err(RoomError::Invalid("a room needs at least one admin".into()));
        }
        Ok(())
    }

    /// The bytes the signer signs (§21.2): fixed-length fields and length-prefixed text.
    pub fn signed_bytes(&self, signer: &CallId) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            ROOM_STATE_SIG_DOMAIN.len()
                + 16
                + 8
                + 32
                + 8
                + 32
                + 1
                + self.name.len()
                + 1
                + self.members.len() * (32 + 2 + MAX_MEMBER_NAME_BYTES),
        );
        out.extend_from_slice(ROOM_STATE_SIG_DOMAIN);
        out.extend_from_slice(self.room.as_bytes());
        out.extend_from_slice(&self.version.to_be_bytes());
        out.extend_from_slice(&self.prev.0);
        out.extend_from_slice(&self.ts_ms.to_be_bytes());
        out.extend_from_slice(signer.as_bytes());
        // `check` bounds the lengths (≤ 64 bytes, ≤ 64 members): one byte each suffices.
        out.push(self.name.len() as u8);
        out.extend_from_slice(self.name.as_bytes());
        out.push(self.members.len() as u8);
        for m in &self.members {
            out.extend_from_slice(m.id.as_bytes());
            out.push(m.role.byte());
            out.push(m.name.len() as u8);
            out.extend_from_slice(m.name.as_bytes());
        }
        out
    }

    /// Signs this state (after checking it) as `signer`.
    pub fn sign(self, signer: &Identity) -> Result<SignedRoomState, RoomError> {
        self.check()?;
        let id = signer.call_id();
        let sig = signer.sign(&self.signed_bytes(&id));
        Ok(SignedRoomState {
            state: self,
            signer: id,
            sig,
        })
    }
}

/// Printable text of at most `max` bytes (empty allowed only where `may_be_empty`).
fn check_text(what: &str, text: &str, max: usize, may_be_empty: bool) -> Result<(), RoomError> {
    if text.len() > max {
        return Err(RoomError::Invalid(format!(
            "{what} is {} bytes, at most {max} are allowed",
            text.len()
        )));
    }
    if text.is_empty() && !may_be_empty {
        return Err(RoomError::Invalid(format!("{what} is empty")));
    }
    if let Some(c) = text.chars().find(|&c| is_unprintable(c)) {
        return Err(RoomError::Invalid(format!(
            "{what} contains a control or format character (U+{:04X})",
            u32::from(c)
        )));
    }
    Ok(())
}

/// A room state with its signer and signature: the plaintext of a `room_state` envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRoomState {
    /// The state.
    pub state: RoomState,
    /// Who signed it.
    pub signer: CallId,
    sig: Signature,
}

/// The JSON form (§21.2).
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    room: RoomId,
    version: u64,
    prev: String,
    ts_ms: u64,
    name: String,
    members: Vec<Member>,
    signer: CallId,
    sig: String,
}

impl SignedRoomState {
    /// Parses untrusted bytes and verifies the signature and the limits; says nothing yet about
    /// whether the signer may make this state (that is [`super::HeldRoom::offer`]'s rule).
    pub fn parse(bytes: &[u8]) -> Result<SignedRoomState, RoomError> {
        if bytes.len() > MAX_PLAINTEXT_BYTES {
            return Err(RoomError::TooLarge {
                size: bytes.len(),
                max: MAX_PLAINTEXT_BYTES,
            });
        }
        let wire: Wire = serde_json::from_slice(bytes).map_err(|e| RoomError::malformed(&e))?;
        let prev = decode_fixed::<32>("prev", &wire.prev)?;
        let sig = Signature::from_bytes(&decode_fixed::<64>("sig", &wire.sig)?);
        let signed = SignedRoomState {
            state: RoomState {
                room: wire.room,
                version: wire.version,
                prev: StateHash(prev),
                ts_ms: wire.ts_ms,
                name: wire.name,
                members: wire.members,
            },
            signer: wire.signer,
            sig,
        };
        signed.state.check()?;
        verify_strict(
            &signed.signer,
            &signed.state.signed_bytes(&signed.signer),
            &signed.sig,
        )
        .map_err(|_| RoomError::BadSignature)?;
        Ok(signed)
    }

    /// The JSON text (canonical: members in the order of §21.2, compact).
    pub fn to_json(&self) -> Vec<u8> {
        let wire = Wire {
            room: self.state.room,
            version: self.state.version,
            prev: B64.encode(self.state.prev.0),
            ts_ms: self.state.ts_ms,
            name: self.state.name.clone(),
            members: self.state.members.clone(),
            signer: self.signer,
            sig: B64.encode(self.sig.to_bytes()),
        };
        // Strings, integers and IDs only: serialization cannot fail.
        serde_json::to_vec(&wire).unwrap_or_default()
    }

    /// SHA-256 over the signed bytes and the signature: what `prev` names.
    pub fn hash(&self) -> StateHash {
        let digest = Sha256::new()
            .chain_update(self.state.signed_bytes(&self.signer))
            .chain_update(self.sig.to_bytes())
            .finalize();
        StateHash(digest.into())
    }
}

fn decode_fixed<const N: usize>(what: &str, text: &str) -> Result<[u8; N], RoomError> {
    let bytes = B64
        .decode(text)
        .map_err(|_| RoomError::Malformed(format!("{what} is not base64")))?;
    bytes
        .try_into()
        .map_err(|_| RoomError::Malformed(format!("{what} is not {N} bytes")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_fixtures::{alice, bob, carol};
    use proptest::prelude::*;

    pub(crate) fn room() -> RoomId {
        RoomId::from_bytes(std::array::from_fn(|i| 0xa0 + i as u8))
    }

    fn v1() -> SignedRoomState {
        RoomState::create(
            room(),
            "Book club",
            alice().call_id(),
            "Alice",
            1_700_000_000_000,
        )
        .sign(&alice())
        .unwrap()
    }

    #[test]
    fn sign_parse_round_trip() {
        let s = v1();
        let back = SignedRoomState::parse(&s.to_json()).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.hash(), s.hash());
    }

    #[test]
    fn any_change_breaks_the_signature() {
        let s = v1();
        let json = String::from_utf8(s.to_json()).unwrap();
        for (from, to) in [
            ("Book club", "Book clux"),
            ("\"Alice\"", "\"Alicf\""),
            ("\"admin\"", "\"member\""),
            ("\"version\":1", "\"version\":2"),
        ] {
            let tampered = json.replace(from, to);
            assert_ne!(tampered, json);
            let err = SignedRoomState::parse(tampered.as_bytes()).unwrap_err();
            // A member demoted to "member" leaves no admin: refused before the signature.
            assert!(
                matches!(err, RoomError::BadSignature | RoomError::Invalid(_)),
                "{from}: {err:?}"
            );
        }
        // Signed by Alice but claiming Bob as signer.
        let forged = json.replace(&alice().call_id().to_string(), &bob().call_id().to_string());
        assert!(SignedRoomState::parse(forged.as_bytes()).is_err());
    }

    #[test]
    fn limits_are_checked_when_signing_and_parsing() {
        let mut s = RoomState::create(room(), "x", alice().call_id(), "A", 0);
        s.name = "n".repeat(MAX_ROOM_NAME_BYTES + 1);
        assert!(matches!(
            s.clone().sign(&alice()),
            Err(RoomError::Invalid(_))
        ));
        s.name = "bad\u{202e}name".into();
        assert!(matches!(
            s.clone().sign(&alice()),
            Err(RoomError::Invalid(_))
        ));
        s.name = String::new();
        assert!(matches!(
            s.clone().sign(&alice()),
            Err(RoomError::Invalid(_))
        ));
        s.name = "ok".into();
        s.members[0].role = Role::Member;
        assert!(matches!(
            s.clone().sign(&alice()),
            Err(RoomError::Invalid(_))
        ));
        s.members[0].role = Role::Admin;
        // Duplicate members are refused (canonical order is strictly ascending).
        s.members.push(s.members[0].clone());
        assert!(matches!(
            s.clone().sign(&alice()),
            Err(RoomError::Invalid(_))
        ));
        s.members.pop();
        s.version = 2;
        assert!(matches!(
            s.clone().sign(&alice()),
            Err(RoomError::Invalid(_))
        ));
    }

    #[test]
    fn upsert_keeps_members_sorted_and_unique() {
        let mut s = RoomState::create(room(), "x", alice().call_id(), "A", 0);
        for id in [bob(), carol(), bob()] {
            s.upsert(Member {
                id: id.call_id(),
                name: "m".into(),
                role: Role::Member,
            });
        }
        assert_eq!(s.members.len(), 3);
        s.check().unwrap();
        assert!(s.remove(&carol().call_id()));
        assert!(!s.remove(&carol().call_id()));
    }

    #[test]
    fn too_many_members_are_refused() {
        let mut s = RoomState::create(room(), "x", alice().call_id(), "A", 0);
        for i in 0..MAX_ROOM_MEMBERS as u8 {
            s.upsert(Member {
                id: Identity::from_seed([i.wrapping_add(100); 32]).call_id(),
                name: String::new(),
                role: Role::Member,
            });
        }
        assert_eq!(s.members.len(), MAX_ROOM_MEMBERS + 1);
        assert!(matches!(s.sign(&alice()), Err(RoomError::Invalid(_))));
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
            let _ = SignedRoomState::parse(&bytes);
        }

        #[test]
        fn parse_never_panics_on_mutated_states(pos in 0usize..2000, byte in any::<u8>()) {
            let mut json = v1().to_json();
            let i = pos % json.len();
            json[i] = byte;
            let _ = SignedRoomState::parse(&json);
        }
    }
}
