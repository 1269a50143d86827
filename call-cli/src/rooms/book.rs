//! What a member does with rooms, as plain state: create, invite, remove, leave and send give
//! the envelopes to send ([`Outgoing`]); what arrives is checked against the room state held
//! ([`RoomBook::receive`]) and kept in the [`RoomStore`]. No sockets: the signaling client (or
//! a test) moves the envelopes. Time is an argument.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use signaling::envelope::EnvelopeKind;
use signaling::identity::{CallId, Identity};
use signaling::room::{
    HeldRoom, Member, MessageId, Role, RoomError, RoomId, RoomInbox, RoomMessage, RoomState,
    SignedRoomMessage, SignedRoomState, Taken,
};

use super::store::{RoomStore, StoreError};

/// Most rooms a member holds; invitations beyond it are refused (a stranger with free
/// identities cannot grow the database without bound).
pub const MAX_ROOMS: usize = 256;

/// One envelope to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// To whom.
    pub to: CallId,
    /// `room_state` or `room_message`.
    pub kind: EnvelopeKind,
    /// The plaintext (a signed state or message, JSON).
    pub body: Vec<u8>,
}

/// What happened to the rooms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomEvent {
    /// Invited to a room (its first state arrived).
    Joined {
        /// Which.
        room: RoomId,
        /// Who invited.
        by: CallId,
    },
    /// A newer state was taken.
    Updated {
        /// Which.
        room: RoomId,
        /// Its version now.
        version: u64,
    },
    /// A newer state no longer lists this member.
    Removed {
        /// Which.
        room: RoomId,
    },
    /// A message to show, in its sender's order.
    Message(SignedRoomMessage),
}

/// Why a room action or an arrival was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BookError {
    /// A signed state or message was refused.
    #[error(transparent)]
    Room(#[from] RoomError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No room with that ID is held.
    #[error("no room {0} here: `call room list` shows the rooms you are in")]
    UnknownRoom(RoomId),
    /// A local action needs a right this member lacks.
    #[error("{0}")]
    NotAllowed(String),
    /// Too many rooms.
    #[error("already in {MAX_ROOMS} rooms: leave one first")]
    TooManyRooms,
    /// An envelope whose signed content names someone else than its sender.
    #[error("{what} from {from} is signed by {signer}: refused")]
    WrongSender {
        /// What.
        what: &'static str,
        /// The envelope's sender.
        from: CallId,
        /// The signer inside.
        signer: CallId,
    },
}

/// A member's rooms: the store plus, per room, the inbox that orders incoming messages.
pub struct RoomBook {
    me: Arc<Identity>,
    store: RoomStore,
    inboxes: HashMap<RoomId, RoomInbox>,
}

impl RoomBook {
    /// The book of `me`, over `store`. Messages that were waiting for an earlier one when the
    /// last run ended wait again (from `now`).
    pub fn open(me: Arc<Identity>, store: RoomStore, now: Instant) -> Result<Self, BookError> {
        let mut book = RoomBook {
            me,
            store,
            inboxes: HashMap::new(),
        };
        for held in book.store.rooms()? {
            let room = held.current().state.room;
            let mut inbox = RoomInbox::resume(book.store.released(&room)?);
            for waiting in book.store.waiting(&room)? {
                inbox.push(waiting.message, now);
            }
            book.inboxes.insert(room, inbox);
        }
        Ok(book)
    }

    /// The store (for listing rooms and history).
    pub fn store(&self) -> &RoomStore {
        &self.store
    }

    fn held(&self, room: &RoomId) -> Result<HeldRoom, BookError> {
        self.store.room(room)?.ok_or(BookError::UnknownRoom(*room))
    }

    /// Creates a room with this member as its only admin.
    pub fn create(&mut self, name: &str, my_name: &str, now_ms: u64) -> Result<RoomId, BookError> {
        if self.store.rooms()?.len() >= MAX_ROOMS {
            return Err(BookError::TooManyRooms);
        }
        let room = RoomId::random();
        let state =
            RoomState::create(room, name, self.me.call_id(), my_name, now_ms).sign(&self.me)?;
        let held = HeldRoom::first(state, &self.me.call_id())?;
        self.store.save_room(&held, now_ms)?;
        self.inboxes.insert(room, RoomInbox::new());
        Ok(room)
    }

    /// Signs the next state of `room` made by `edit`, takes it, and returns it for `to`.
    fn change(
        &mut self,
        room: &RoomId,
        now_ms: u64,
        edit: impl FnOnce(&mut RoomState) -> Result<(), BookError>,
    ) -> Result<(SignedRoomState, HeldRoom), BookError> {
        let mut held = self.held(room)?;
        let mut next = RoomState::next(held.current(), now_ms);
        edit(&mut next)?;
        let signed = next.sign(&self.me)?;
        held.offer(signed.clone())?;
        self.store.save_room(&held, now_ms)?;
        Ok((signed, held))
    }

    fn require_admin(&self, room: &RoomId) -> Result<(), BookError> {
        if self
            .held(room)?
            .current()
            .state
            .is_admin(&self.me.call_id())
        {
            Ok(())
        } else {
            Err(BookError::NotAllowed(
                "only an admin of the room can do that: ask one (`call room show` lists them)"
                    .into(),
            ))
        }
    }

    /// Adds (or renames, or changes the role of) a member; the new state goes to every member.
    pub fn invite(
        &mut self,
        room: &RoomId,
        id: CallId,
        name: &str,
        admin: bool,
        now_ms: u64,
    ) -> Result<Vec<Outgoing>, BookError> {
        self.require_admin(room)?;
        let role = if admin { Role::Admin } else { Role::Member };
        let (signed, _) = self.change(room, now_ms, |s| {
            s.upsert(Member {
                id,
                name: name.to_owned(),
                role,
            });
            Ok(())
        })?;
        Ok(self.state_to(&signed, &[]))
    }

    /// Removes a member; the new state goes to every remaining member and to the removed one
    /// (so it knows), and nothing later is sealed to it.
    pub fn remove(
        &mut self,
        room: &RoomId,
        id: CallId,
        now_ms: u64,
    ) -> Result<Vec<Outgoing>, BookError> {
        self.require_admin(room)?;
        let (signed, _) = self.change(room, now_ms, |s| {
            if s.remove(&id) {
                Ok(())
            } else {
                Err(BookError::NotAllowed(format!(
                    "{id} is not a member of this room"
                )))
            }
        })?;
        Ok(self.state_to(&signed, &[id]))
    }

    /// Leaves: a state without this member goes to the others, and the room is forgotten here.
    pub fn leave(&mut self, room: &RoomId, now_ms: u64) -> Result<Vec<Outgoing>, BookError> {
        let me = self.me.call_id();
        let held = self.held(room)?;
        let state = &held.current().state;
        let out = if state.member(&me).is_some() {
            let others_admin = state
                .members
                .iter()
                .any(|m| m.id != me && m.role == Role::Admin);
            if state.is_admin(&me) && !others_admin && state.members.len() > 1 {
                return Err(BookError::NotAllowed(
                    "you are the room's only admin: make someone else admin first (`call room invite ROOM ID --admin`)".into(),
                ));
            }
            if state.members.len() == 1 {
                Vec::new()
            } else {
                let mut next = RoomState::next(held.current(), now_ms);
                next.remove(&me);
                let signed = next.sign(&self.me)?;
                self.state_to(&signed, &[])
            }
        } else {
            Vec::new()
        };
        self.store.delete_room(room)?;
        self.inboxes.remove(room);
        Ok(out)
    }

    /// `state` for every member except this one, plus `extra`.
    fn state_to(&self, state: &SignedRoomState, extra: &[CallId]) -> Vec<Outgoing> {
        let me = self.me.call_id();
        let body = state.to_json();
        state
            .state
            .members
            .iter()
            .map(|m| m.id)
            .chain(extra.iter().copied())
            .filter(|id| *id != me)
            .map(|to| Outgoing {
                to,
                kind: EnvelopeKind::RoomState,
                body: body.clone(),
            })
            .collect()
    }

    /// Writes a message to the room: stored here first (with a seq that is never reused), then
    /// one envelope per other member.
    pub fn send(
        &mut self,
        room: &RoomId,
        text: &str,
        reply_to: Option<MessageId>,
        now_ms: u64,
    ) -> Result<(SignedRoomMessage, Vec<Outgoing>), BookError> {
        let me = self.me.call_id();
        let held = self.held(room)?;
        if held.current().state.member(&me).is_none() {
            return Err(BookError::NotAllowed(
                "you are no longer a member of this room".into(),
            ));
        }
        let seq = self.store.next_seq(room)?;
        let msg = RoomMessage {
            room: *room,
            sender: me,
            seq,
            ts_ms: now_ms,
            reply_to,
            text: text.to_owned(),
        }
        .sign(&self.me)?;
        self.store.add_message(&msg, now_ms)?;
        self.store.mark_released(&msg)?;
        let body = msg.to_json();
        let out = held
            .current()
            .state
            .members
            .iter()
            .filter(|m| m.id != me)
            .map(|m| Outgoing {
                to: m.id,
                kind: EnvelopeKind::RoomMessage,
                body: body.clone(),
            })
            .collect();
        Ok((msg, out))
    }

    /// An envelope of a room kind from `from` (authenticated by the envelope). Returns what
    /// changed; refusals are errors the caller logs (they never end anything).
    pub fn receive(
        &mut self,
        from: CallId,
        kind: EnvelopeKind,
        plaintext: &[u8],
        now: Instant,
        now_ms: u64,
    ) -> Result<Vec<RoomEvent>, BookError> {
        match kind {
            EnvelopeKind::RoomState => self.receive_state(from, plaintext, now_ms),
            EnvelopeKind::RoomMessage => {
                let msg = SignedRoomMessage::parse(plaintext)?;
                if msg.msg.sender != from {
                    return Err(BookError::WrongSender {
                        what: "a room message",
                        from,
                        signer: msg.msg.sender,
                    });
                }
                self.receive_message(msg, now, now_ms)
            }
            _ => Ok(Vec::new()),
        }
    }

    fn receive_state(
        &mut self,
        from: CallId,
        plaintext: &[u8],
        now_ms: u64,
    ) -> Result<Vec<RoomEvent>, BookError> {
        let state = SignedRoomState::parse(plaintext)?;
        let room = state.state.room;
        let me = self.me.call_id();
        match self.store.room(&room)? {
            Some(mut held) => {
                let was_member = held.current().state.member(&me).is_some();
                if held.offer(state)? == Taken::Unchanged {
                    return Ok(Vec::new());
                }
                self.store.save_room(&held, now_ms)?;
                let now_member = held.current().state.member(&me).is_some();
                Ok(vec![if was_member && !now_member {
                    RoomEvent::Removed { room }
                } else {
                    RoomEvent::Updated {
                        room,
                        version: held.current().state.version,
                    }
                }])
            }
            None => {
                // An invitation: only its signer may hand it over, so a member cannot forward
                // an old state to re-add someone who left.
                if state.signer != from {
                    return Err(BookError::WrongSender {
                        what: "a room invitation",
                        from,
                        signer: state.signer,
                    });
                }
                if self.store.rooms()?.len() >= MAX_ROOMS {
                    return Err(BookError::TooManyRooms);
                }
                let held = HeldRoom::first(state, &me)?;
                self.store.save_room(&held, now_ms)?;
                self.inboxes.insert(room, RoomInbox::new());
                Ok(vec![RoomEvent::Joined { room, by: from }])
            }
        }
    }

    /// A verified message (from the server or a call's data channel): kept if its sender is a
    /// member of the state held, released in the sender's order.
    pub fn receive_message(
        &mut self,
        msg: SignedRoomMessage,
        now: Instant,
        now_ms: u64,
    ) -> Result<Vec<RoomEvent>, BookError> {
        let room = msg.msg.room;
        let held = self.held(&room)?;
        if held.current().state.member(&msg.msg.sender).is_none() {
            return Err(BookError::NotAllowed(format!(
                "a message from {}, who is not a member of room {room}, was dropped",
                msg.msg.sender
            )));
        }
        if !self.store.add_message(&msg, now_ms)? {
            return Ok(Vec::new());
        }
        self.inboxes.entry(room).or_default().push(msg, now);
        self.poll(now)
    }

    /// Messages whose wait for an earlier one is over.
    pub fn poll(&mut self, now: Instant) -> Result<Vec<RoomEvent>, BookError> {
        let mut out = Vec::new();
        for inbox in self.inboxes.values_mut() {
            for msg in inbox.poll(now) {
                self.store.mark_released(&msg)?;
                out.push(RoomEvent::Message(msg));
            }
        }
        Ok(out)
    }

    /// When [`RoomBook::poll`] next has something.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.inboxes
            .values()
            .filter_map(RoomInbox::poll_timeout)
            .min()
    }
}
