//! Rooms on this member's side: [`book`] (what a member does with rooms: create, invite,
//! remove, leave, send, and the checks on what arrives) over [`store`] (where rooms and history
//! are kept, SQLite); [`mesh`] plans who offers to whom in a room's conference call; [`net`] moves their envelopes through the signaling server; [`cli`],
//! [`chat`] and [`join`] are the `call room` commands. The signed room state and message rules are
//! `signaling::room`'s.

pub mod book;
pub mod chat;
pub mod cli;
pub mod join;
pub mod mesh;
pub mod net;
pub mod store;
#[cfg(test)]
mod tests;

pub use book::{BookError, Outgoing, RoomBook, RoomEvent, MAX_ROOMS};
pub use store::{RoomStore, StoreError, StoredMessage, SCHEMA_VERSION};
