//! Targets for the bodies of room envelopes and room chat frames (§21): signed room states,
//! signed room messages and `room_call` bodies.
//!
//! A mutated signed body almost never carries a valid signature, so the state and message
//! targets also take the input as the *unsigned* fields (the same JSON without `signer` and
//! `sig`), sign them as Alice and feed the result back through the parser: that way the
//! checks behind the signature (limits, member order, roles, the held-room rule, the inbox)
//! see fuzzed values too.

use std::time::Duration;

use signaling::room::{
    HeldRoom, Member, MessageId, RoomCallBody, RoomError, RoomId, RoomInbox, RoomMessage,
    RoomState, SignedRoomMessage, SignedRoomState, StateHash, Taken,
};

use crate::fixtures::{alice, alice_id, bob_id, epoch};

/// The fields of a room state before signing (§21.2 without `signer` and `sig`).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct UnsignedState {
    room: RoomId,
    version: u64,
    #[serde(default)]
    prev_hex: Option<String>,
    ts_ms: u64,
    name: String,
    members: Vec<Member>,
}

/// The fields of a room message before signing (§21.4 without `sender` and `sig`).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct UnsignedMessage {
    room: RoomId,
    seq: u64,
    ts_ms: u64,
    #[serde(default)]
    reply_to: Option<String>,
    text: String,
}

/// `SignedRoomState::parse`: a parsed state re-encodes and parses back to itself with the
/// same hash. The input read as unsigned fields and signed by Alice parses exactly when it
/// passes `RoomState::check`; Bob takes it as his first state only when he is a member and
/// Alice an admin, and takes the same state again as unchanged and its next version (signed by Alice, an admin)
/// as an update.
pub fn room_state(data: &[u8]) {
    if let Ok(state) = SignedRoomState::parse(data) {
        let again = SignedRoomState::parse(&state.to_json()).expect("own JSON parses");
        assert_eq!(again.hash(), state.hash());
        assert_eq!(again, state);
    }
    let Ok(unsigned) = serde_json::from_slice::<UnsignedState>(data) else {
        return;
    };
    let prev = unsigned
        .prev_hex
        .and_then(|hex| hex.parse::<MessageId>().ok())
        .map_or(StateHash::default(), |id| {
            let mut hash = [0u8; 32];
            hash[..16].copy_from_slice(&id.0);
            StateHash(hash)
        });
    let state = RoomState {
        room: unsigned.room,
        version: unsigned.version,
        prev,
        ts_ms: unsigned.ts_ms,
        name: unsigned.name,
        members: unsigned.members,
    };
    let checked = state.check();
    let signed = match state.sign(alice()) {
        Ok(signed) => signed,
        Err(err) => {
            assert!(checked.is_err(), "sign refused a state check passes: {err}");
            return;
        }
    };
    assert_eq!(checked, Ok(()));
    assert_eq!(
        SignedRoomState::parse(&signed.to_json()).as_ref(),
        Ok(&signed)
    );
    match HeldRoom::first(signed.clone(), &bob_id()) {
        Ok(mut held) => {
            assert!(signed.state.member(&bob_id()).is_some());
            assert!(signed.state.is_admin(&alice_id()));
            assert_eq!(held.offer(signed.clone()), Ok(Taken::Unchanged));
            let next = RoomState::next(&signed, signed.state.ts_ms.saturating_add(1));
            if let Ok(next) = next.sign(alice()) {
                if next.state.version > signed.state.version {
                    assert_eq!(held.offer(next.clone()), Ok(Taken::Updated));
                    assert_eq!(held.current(), &next);
                }
            }
        }
        Err(RoomError::NotAMember) => assert!(signed.state.member(&bob_id()).is_none()),
        Err(_) => {}
    }
}

/// `SignedRoomMessage::parse`: round trip with a stable ID. The input read as unsigned
/// fields and signed by Alice parses back; offered to an inbox twice it is taken once and
/// released once.
pub fn room_message(data: &[u8]) {
    if let Ok(msg) = SignedRoomMessage::parse(data) {
        let again = SignedRoomMessage::parse(&msg.to_json()).expect("own JSON parses");
        assert_eq!(again.id(), msg.id());
        assert_eq!(again, msg);
    }
    let Ok(unsigned) = serde_json::from_slice::<UnsignedMessage>(data) else {
        return;
    };
    let message = RoomMessage {
        room: unsigned.room,
        sender: alice_id(),
        seq: unsigned.seq,
        ts_ms: unsigned.ts_ms,
        reply_to: unsigned
            .reply_to
            .and_then(|id| id.parse::<MessageId>().ok()),
        text: unsigned.text,
    };
    let Ok(signed) = message.sign(alice()) else {
        return;
    };
    let parsed = SignedRoomMessage::parse(&signed.to_json()).expect("a signed message parses");
    assert_eq!(parsed.id(), signed.id());
    let mut inbox = RoomInbox::new();
    let at = epoch();
    assert_ne!(
        inbox.push(parsed.clone(), at),
        inbox.push(parsed.clone(), at)
    );
    let later = at + Duration::from_secs(3600);
    let released = inbox.poll(later);
    assert_eq!(released, vec![parsed]);
    assert!(inbox.poll(later).is_empty());
}

/// `RoomCallBody::parse`: round trip.
pub fn room_call(data: &[u8]) {
    if let Ok(body) = RoomCallBody::parse(data) {
        assert_eq!(RoomCallBody::parse(&body.to_json()), Ok(body));
    }
}
