//! Rooms among several members, each with its own book and store, envelopes moved by hand
//! (what the server would route), including what a server or a stranger might send.

use std::sync::Arc;
use std::time::{Duration, Instant};

use signaling::envelope::EnvelopeKind;
use signaling::identity::{CallId, Identity};
use signaling::room::{RoomError, RoomId, RoomState};

use super::book::{BookError, Outgoing, RoomBook, RoomEvent};
use super::store::RoomStore;

struct Member {
    identity: Arc<Identity>,
    book: RoomBook,
}

impl Member {
    fn new(seed: u8) -> Member {
        let identity = Arc::new(Identity::from_seed([seed; 32]));
        let book = RoomBook::open(
            identity.clone(),
            RoomStore::open_in_memory().unwrap(),
            Instant::now(),
        )
        .unwrap();
        Member { identity, book }
    }

    fn id(&self) -> CallId {
        self.identity.call_id()
    }

    fn take(&mut self, from: CallId, out: &Outgoing) -> Result<Vec<RoomEvent>, BookError> {
        self.book
            .receive(from, out.kind, &out.body, Instant::now(), 1)
    }
}

/// Delivers every envelope in `out` (sent by `from`) to the member it is addressed to.
fn deliver(
    members: &mut [&mut Member],
    from: CallId,
    out: &[Outgoing],
) -> Vec<(CallId, Vec<RoomEvent>)> {
    let mut events = Vec::new();
    for o in out {
        let m = members
            .iter_mut()
            .find(|m| m.id() == o.to)
            .expect("addressed to a known member");
        events.push((o.to, m.take(from, o).expect("accepted")));
    }
    events
}

fn texts(events: &[(CallId, Vec<RoomEvent>)], to: CallId) -> Vec<String> {
    events
        .iter()
        .filter(|(id, _)| *id == to)
        .flat_map(|(_, evs)| evs.iter())
        .filter_map(|e| match e {
            RoomEvent::Message(m) => Some(m.msg.text.clone()),
            _ => None,
        })
        .collect()
}

/// Alice creates a room and invites Bob and Carol.
fn three() -> (Member, Member, Member, RoomId) {
    let (mut a, mut b, mut c) = (Member::new(1), Member::new(2), Member::new(3));
    let room = a.book.create("Book club", "Alice", 1).unwrap();
    let out = a.book.invite(&room, b.id(), "Bob", false, 2).unwrap();
    let ev = deliver(&mut [&mut b, &mut c], a.id(), &out);
    assert!(matches!(ev[0].1[0], RoomEvent::Joined { .. }));
    let out = a.book.invite(&room, c.id(), "Carol", false, 3).unwrap();
    deliver(&mut [&mut b, &mut c], a.id(), &out);
    for m in [&b, &c] {
        let held = m.book.store().room(&room).unwrap().unwrap();
        assert_eq!(held.current().state.version, 3);
        assert_eq!(held.current().state.members.len(), 3);
    }
    (a, b, c, room)
}

#[test]
fn messages_reach_every_member_once() {
    let (mut a, mut b, mut c, room) = three();
    let (_, out) = a.book.send(&room, "hello all", None, 10).unwrap();
    assert_eq!(out.len(), 2);
    let ev = deliver(&mut [&mut b, &mut c], a.id(), &out);
    assert_eq!(texts(&ev, b.id()), ["hello all"]);
    assert_eq!(texts(&ev, c.id()), ["hello all"]);
    // The same message again (by the other path): nothing new.
    let again = deliver(&mut [&mut b, &mut c], a.id(), &out);
    assert!(texts(&again, b.id()).is_empty());
    for m in [&a, &b, &c] {
        let h = m.book.store().history(&room, 10).unwrap();
        assert_eq!(h.len(), 1, "each history holds the message once");
    }
}

#[test]
fn forged_states_do_not_change_a_room() {
    let (a, mut b, mut c, room) = three();
    let held = b.book.store().room(&room).unwrap().unwrap();
    // A server (or anyone) with its own key adds itself as admin.
    let server = Identity::from_seed([0x55; 32]);
    let mut s = RoomState::next(held.current(), 9);
    s.upsert(signaling::room::Member {
        id: server.call_id(),
        name: "srv".into(),
        role: signaling::room::Role::Admin,
    });
    let forged = Outgoing {
        to: b.id(),
        kind: EnvelopeKind::RoomState,
        body: s.clone().sign(&server).unwrap().to_json(),
    };
    assert!(matches!(
        b.take(server.call_id(), &forged),
        Err(BookError::Room(RoomError::NotAdmin { .. }))
    ));
    // Carol (a member, not admin) signs the same change and sends it to Bob.
    let by_member = Outgoing {
        body: s.sign(&c.identity).unwrap().to_json(),
        ..forged.clone()
    };
    assert!(matches!(
        b.take(c.id(), &by_member),
        Err(BookError::Room(RoomError::NotAdmin { .. }))
    ));
    // Rollback: version 2 re-sent.
    let v2 = held.parent().unwrap().clone();
    let old = Outgoing {
        body: v2.to_json(),
        ..forged.clone()
    };
    assert!(matches!(
        b.take(a.id(), &old),
        Err(BookError::Room(RoomError::Stale { .. }))
    ));
    // Carol cannot invite locally either.
    assert!(matches!(
        c.book.invite(&room, server.call_id(), "x", false, 9),
        Err(BookError::NotAllowed(_))
    ));
    assert_eq!(
        b.book.store().room(&room).unwrap().unwrap().current(),
        held.current()
    );
}

#[test]
fn an_invitation_must_come_from_its_signer() {
    let (_a, b, _c, room) = three();
    let held = b.book.store().room(&room).unwrap().unwrap();
    let mut d = Member::new(4);
    // Bob hands Dave a state Alice signed: refused before anything else is looked at, since
    // an invitation must come from its signer (else anyone could replay an old invitation).
    let out = Outgoing {
        to: d.id(),
        kind: EnvelopeKind::RoomState,
        body: held.current().to_json(),
    };
    assert!(matches!(
        d.take(b.id(), &out),
        Err(BookError::WrongSender { .. })
    ));
    assert!(d.book.store().rooms().unwrap().is_empty());
}

#[test]
fn a_removed_member_gets_the_removal_and_nothing_after_it() {
    let (mut a, mut b, mut c, room) = three();
    let out = a.book.remove(&room, c.id(), 20).unwrap();
    assert!(
        out.iter().any(|o| o.to == c.id()),
        "the removed member is told"
    );
    let ev = deliver(&mut [&mut b, &mut c], a.id(), &out);
    assert!(ev
        .iter()
        .any(|(to, evs)| *to == c.id() && evs.contains(&RoomEvent::Removed { room })));
    let (_, out) = a.book.send(&room, "after", None, 21).unwrap();
    assert!(
        out.iter().all(|o| o.to != c.id()),
        "nothing is sealed to Carol"
    );
    // Carol's messages are no longer taken by the others, and she cannot send.
    assert!(matches!(
        c.book.send(&room, "still here?", None, 22),
        Err(BookError::NotAllowed(_))
    ));
    let forged = signaling::room::RoomMessage {
        room,
        sender: c.id(),
        seq: 99,
        ts_ms: 0,
        reply_to: None,
        text: "sneaky".into(),
    }
    .sign(&c.identity)
    .unwrap();
    assert!(matches!(
        b.book.receive_message(forged, Instant::now(), 1),
        Err(BookError::NotAllowed(_))
    ));
}

#[test]
fn leaving_needs_no_admin_and_the_last_admin_must_hand_over() {
    let (mut a, mut b, mut c, room) = three();
    assert!(matches!(
        a.book.leave(&room, 30),
        Err(BookError::NotAllowed(_))
    ));
    let out = b.book.leave(&room, 31).unwrap();
    assert!(b.book.store().room(&room).unwrap().is_none());
    let ev = deliver(&mut [&mut a, &mut c], b.id(), &out);
    assert_eq!(ev.len(), 2);
    for m in [&a, &c] {
        let held = m.book.store().room(&room).unwrap().unwrap();
        assert!(held.current().state.member(&b.id()).is_none());
    }
}

#[test]
fn out_of_order_messages_are_released_in_order_after_the_gap() {
    let (mut a, mut b, _c, room) = three();
    let (_, first) = a.book.send(&room, "one", None, 1).unwrap();
    let (_, second) = a.book.send(&room, "two", None, 2).unwrap();
    let to_b = |out: &[Outgoing]| out.iter().find(|o| o.to == b.id()).unwrap().clone();
    let (first, second) = (to_b(&first), to_b(&second));
    let t = Instant::now();
    let ev = b
        .book
        .receive(a.id(), second.kind, &second.body, t, 1)
        .unwrap();
    assert!(ev.is_empty(), "two waits for one");
    let ev = b
        .book
        .receive(a.id(), first.kind, &first.body, t, 1)
        .unwrap();
    let got: Vec<_> = ev
        .iter()
        .filter_map(|e| match e {
            RoomEvent::Message(m) => Some(m.msg.text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(got, ["one", "two"]);
    assert!(b.book.poll(t + Duration::from_secs(5)).unwrap().is_empty());
}

#[test]
fn rooms_and_history_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rooms.sqlite3");
    let me = Arc::new(Identity::from_seed([1; 32]));
    let room = {
        let mut book =
            RoomBook::open(me.clone(), RoomStore::open(&path).unwrap(), Instant::now()).unwrap();
        let room = book.create("Persist", "Me", 1).unwrap();
        book.send(&room, "kept", None, 2).unwrap();
        room
    };
    let mut book = RoomBook::open(me, RoomStore::open(&path).unwrap(), Instant::now()).unwrap();
    let history = book.store().history(&room, 10).unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].message.msg.text, "kept");
    // The seq continues: the next message is seq 2, not a reused 1.
    let (msg, _) = book.send(&room, "next", None, 3).unwrap();
    assert_eq!(msg.msg.seq, 2);
}
