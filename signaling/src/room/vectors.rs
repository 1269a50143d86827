//! The worked example of §21.7 in `docs/protocol.md`, held to the code byte for byte.

use super::*;
use crate::test_fixtures::{alice, bob, PROTOCOL_DOC};

/// Room a0 a1 … af; Alice (seed 00…1f) creates "Book club" at 1 700 000 000 000 ms and, at
/// version 2 (+1 s), adds Bob (seed 20…3f) as a member; then Bob writes "hi" (seq 1).
pub(crate) fn example() -> (SignedRoomState, SignedRoomState, SignedRoomMessage) {
    let room = RoomId::from_bytes(std::array::from_fn(|i| 0xa0 + i as u8));
    let v1 = RoomState::create(
        room,
        "Book club",
        alice().call_id(),
        "Alice",
        1_700_000_000_000,
    )
    .sign(&alice())
    .unwrap();
    let mut s = RoomState::next(&v1, 1_700_000_001_000);
    s.upsert(Member {
        id: bob().call_id(),
        name: "Bob".into(),
        role: Role::Member,
    });
    let v2 = s.sign(&alice()).unwrap();
    let msg = RoomMessage {
        room,
        sender: bob().call_id(),
        seq: 1,
        ts_ms: 1_700_000_002_000,
        reply_to: None,
        text: "hi".into(),
    }
    .sign(&bob())
    .unwrap();
    (v1, v2, msg)
}

/// Alice (session 11…11) and Bob (session 22…22) in the example room.
fn pair_token_example() -> crate::offer::CallToken {
    let room = RoomId::from_bytes(std::array::from_fn(|i| 0xa0 + i as u8));
    pair_token(
        &room,
        (&alice().call_id(), &CallSession([0x11; 16])),
        (&bob().call_id(), &CallSession([0x22; 16])),
    )
}

fn hex(bytes: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(bytes)
}

#[test]
fn protocol_doc_room_vectors() {
    let (v1, v2, msg) = example();
    let values = [
        ("room id", v1.state.room.to_string()),
        ("v1 json", String::from_utf8(v1.to_json()).unwrap()),
        ("v1 signed bytes", hex(&v1.state.signed_bytes(&v1.signer))),
        ("v1 hash", hex(&v1.hash().0)),
        ("v2 json", String::from_utf8(v2.to_json()).unwrap()),
        ("message json", String::from_utf8(msg.to_json()).unwrap()),
        ("message id", msg.id().to_string()),
        ("pair token", pair_token_example().to_string()),
        (
            "room_call join",
            String::from_utf8(
                RoomCallBody {
                    room: v1.state.room,
                    session: CallSession([0x11; 16]),
                    op: RoomCallOp::Join,
                }
                .to_json(),
            )
            .unwrap(),
        ),
    ];
    let mut missing = Vec::new();
    for (what, value) in &values {
        if !PROTOCOL_DOC.contains(value.as_str()) {
            missing.push(format!("{what}:\n{value}"));
        }
    }
    assert!(
        missing.is_empty(),
        "not in docs/protocol.md §21.7:\n{}",
        missing.join("\n")
    );
    // And they parse back.
    assert_eq!(SignedRoomState::parse(&v2.to_json()).unwrap(), v2);
    assert_eq!(SignedRoomMessage::parse(&msg.to_json()).unwrap(), msg);
}

#[test]
fn room_error_codes_are_distinct_and_documented() {
    let codes: Vec<&str> = [
        RoomError::Malformed(String::new()),
        RoomError::TooLarge { size: 0, max: 0 },
        RoomError::Invalid(String::new()),
        RoomError::BadSignature,
        RoomError::WrongRoom,
        RoomError::Stale { held: 0, got: 0 },
        RoomError::NotAdmin {
            signer: alice().call_id(),
        },
        RoomError::NotAMember,
    ]
    .iter()
    .map(RoomError::code)
    .chain([
        RoomIdError::BadLength { got: 0 }.code(),
        RoomIdError::BadCharacter { ch: 'x' }.code(),
        RoomIdError::BadChecksum.code(),
    ])
    .collect();
    crate::test_fixtures::assert_codes_distinct_and_documented(&codes);
}
