//! Rooms: persistent groups with a signed member list (§21 of `docs/protocol.md`).
//!
//! [`RoomId`] names a room; [`RoomState`] is its name and members at one version, signed by a
//! member ([`SignedRoomState`]); [`HeldRoom`] is the rule by which a member takes a newer state
//! (admins only, no rollback, a deterministic winner when two admins edit at once).
//! [`SignedRoomMessage`] is one member's signed text to the room, and [`RoomInbox`] puts the
//! messages that arrive (by two paths, in any order) into each sender's order, once. Sans-IO:
//! storage and transport are the client's.

mod call;
mod error;
mod held;
mod id;
mod inbox;
mod message;
mod state;

pub use call::{offers_to, pair_token, CallSession, RoomCallBody, RoomCallOp, PAIR_TOKEN_DOMAIN};
pub use error::RoomError;
pub use held::{HeldRoom, Taken};
pub use id::{RoomId, RoomIdError, ROOM_ID_LEN, ROOM_ID_TEXT_LEN};
pub use inbox::{Arrival, RoomInbox, GAP_WAIT, MAX_HELD_PER_SENDER};
pub use message::{
    MessageId, RoomMessage, SignedRoomMessage, MAX_ROOM_TEXT_BYTES, MESSAGE_ID_LEN,
    ROOM_MESSAGE_SIG_DOMAIN,
};
pub use state::{
    Member, Role, RoomState, SignedRoomState, StateHash, MAX_MEMBER_NAME_BYTES, MAX_ROOM_MEMBERS,
    MAX_ROOM_NAME_BYTES, ROOM_STATE_SIG_DOMAIN,
};

#[cfg(test)]
mod vectors;
