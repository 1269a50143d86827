//! A room message that came on a member's chat channel (a `room_msg` frame, docs/protocol.md
//! §19.6): the checks that decide whether it goes on to the room book, as a plain function of
//! the call's room, the peer whose DTLS-bound session carried it, and the frame's payload. The
//! book then does what it does for an envelope from that member (membership, duplicates,
//! per-sender order, history).

use signaling::identity::CallId;
use signaling::room::{RoomError, RoomId, SignedRoomMessage};

/// Why a `room_msg` frame went no further.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RoomFrameRefused {
    /// The frame came in a 1:1 call: ignored and counted as a frame of unknown type.
    #[error("a room message outside a room's call")]
    NotInRoomCall,
    /// The signed message does not parse or verify.
    #[error("an unreadable room message: {0}")]
    Unreadable(#[from] RoomError),
    /// A message for another room than the call's.
    #[error("a message for room {got} in the call of room {call}")]
    OtherRoom {
        /// The message's room.
        got: RoomId,
        /// The call's room.
        call: RoomId,
    },
    /// Signed by someone else than the peer that sent it: members do not relay.
    #[error("a message by {sender} sent by {carrier}: members do not relay others' messages")]
    NotTheSender {
        /// Who signed it.
        sender: CallId,
        /// Whose session carried it.
        carrier: CallId,
    },
}

/// The verified message in a `room_msg` frame that `carrier`'s session delivered during the
/// call of `call_room` (`None`: not a room's call).
pub(crate) fn check(
    call_room: Option<RoomId>,
    carrier: CallId,
    msg: &[u8],
) -> Result<SignedRoomMessage, RoomFrameRefused> {
    let call = call_room.ok_or(RoomFrameRefused::NotInRoomCall)?;
    let signed = SignedRoomMessage::parse(msg)?;
    if signed.msg.room != call {
        return Err(RoomFrameRefused::OtherRoom {
            got: signed.msg.room,
            call,
        });
    }
    if signed.msg.sender != carrier {
        return Err(RoomFrameRefused::NotTheSender {
            sender: signed.msg.sender,
            carrier,
        });
    }
    Ok(signed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use media::chat::ChatFrame;
    use signaling::identity::Identity;
    use signaling::room::RoomMessage;

    /// The `room_msg` vector of docs/protocol.md §19.5.
    fn doc_vector() -> Vec<u8> {
        let doc = include_str!("../../../../docs/protocol.md");
        let start = doc
            .find("`{\"t\":\"room_msg\",\"msg\":{\"room\"")
            .expect("§19.5 has the room_msg vector");
        let rest = &doc[start + 1..];
        rest.as_bytes()[..rest.find('`').unwrap()].to_vec()
    }

    fn seq_seed(first: u8) -> Identity {
        Identity::from_seed(std::array::from_fn(|i| first + i as u8))
    }

    fn room() -> RoomId {
        "ucq2fi5euwtkpkfjvkv2zlnov5hlfsph".parse().unwrap()
    }

    fn payload(frame: &[u8]) -> Vec<u8> {
        match ChatFrame::parse(frame).unwrap() {
            ChatFrame::RoomMsg { msg } => msg.as_bytes().to_vec(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_doc_vector_is_bobs_message() {
        let bob = seq_seed(0x20).call_id();
        let msg = check(Some(room()), bob, &payload(&doc_vector())).unwrap();
        assert_eq!(msg.msg.text, "hi");
        assert_eq!(msg.id().to_string(), "cd521faa3a550e288c0b283cd2c9db3a");
    }

    #[test]
    fn a_message_signed_by_another_member_is_refused() {
        // Alice's session carries Bob's (validly signed) message: a relay, refused.
        let alice = seq_seed(0x00).call_id();
        let bob = seq_seed(0x20).call_id();
        match check(Some(room()), alice, &payload(&doc_vector())) {
            Err(RoomFrameRefused::NotTheSender { sender, carrier }) => {
                assert_eq!((sender, carrier), (bob, alice));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn outside_a_rooms_call_the_frame_is_ignored() {
        let bob = seq_seed(0x20).call_id();
        assert!(matches!(
            check(None, bob, &payload(&doc_vector())),
            Err(RoomFrameRefused::NotInRoomCall)
        ));
    }

    #[test]
    fn another_rooms_message_and_a_forgery_are_refused() {
        let bob = seq_seed(0x20);
        let other_room = RoomId::from_bytes([7; 16]);
        let elsewhere = RoomMessage {
            room: other_room,
            sender: bob.call_id(),
            seq: 1,
            ts_ms: 0,
            reply_to: None,
            text: "hi".into(),
        }
        .sign(&bob)
        .unwrap();
        assert!(matches!(
            check(Some(room()), bob.call_id(), &elsewhere.to_json()),
            Err(RoomFrameRefused::OtherRoom { .. })
        ));
        let forged = String::from_utf8(payload(&doc_vector()))
            .unwrap()
            .replace("\"hi\"", "\"ho\"");
        assert!(matches!(
            check(Some(room()), bob.call_id(), forged.as_bytes()),
            Err(RoomFrameRefused::Unreadable(RoomError::BadSignature))
        ));
    }
}
