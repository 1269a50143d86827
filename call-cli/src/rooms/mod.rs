//! Rooms on this member's side: the store of rooms and history ([`store`]). The signed room
//! state and message rules are `signaling::room`'s; this is where they are kept.

pub mod store;

pub use store::{RoomStore, StoreError, StoredMessage, SCHEMA_VERSION};
