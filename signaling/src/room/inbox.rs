//! Receiving room messages in order (§21.4): sans-IO, fed `(message, now)`, polled with `now`.
//! Drops second copies (a message may come over the call's data channel and through the
//! server), releases each sender's messages in `seq` order, and waits at most
//! [`GAP_WAIT`] for a missing one before skipping it, so one lost message never blocks a room.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use super::message::SignedRoomMessage;
use crate::identity::CallId;

/// How long a message waits for an earlier one from the same sender.
pub const GAP_WAIT: Duration = Duration::from_secs(2);
/// Messages held back per sender; beyond it the oldest gap is skipped.
pub const MAX_HELD_PER_SENDER: usize = 256;

/// What became of an offered message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// New: it is (or will be) released by [`RoomInbox::poll`].
    Accepted,
    /// Already seen (same sender and seq): dropped.
    Duplicate,
}

#[derive(Default)]
struct Sender {
    /// Highest seq released; `None` before the first.
    released: Option<u64>,
    held: BTreeMap<u64, (SignedRoomMessage, Instant)>,
}

/// One room's incoming messages. The caller checks that the sender is a member before
/// offering (so the number of senders is bounded by the room's member limit).
#[derive(Default)]
pub struct RoomInbox {
    senders: HashMap<CallId, Sender>,
    /// Released early by the per-sender bound, handed out by the next poll.
    ready: Vec<(SignedRoomMessage, Instant)>,
}

impl RoomInbox {
    /// An inbox that has released nothing yet.
    pub fn new() -> RoomInbox {
        RoomInbox::default()
    }

    /// An inbox that continues after `released` (per sender, from the history store), so
    /// messages seen before a restart are duplicates after it.
    pub fn resume(released: impl IntoIterator<Item = (CallId, u64)>) -> RoomInbox {
        RoomInbox {
            senders: released
                .into_iter()
                .map(|(id, seq)| {
                    (
                        id,
                        Sender {
                            released: Some(seq),
                            held: BTreeMap::new(),
                        },
                    )
                })
                .collect(),
            ready: Vec::new(),
        }
    }

    /// Offers a (parsed, membership-checked) message that arrived at `now`.
    pub fn push(&mut self, msg: SignedRoomMessage, now: Instant) -> Arrival {
        let sender = self.senders.entry(msg.msg.sender).or_default();
        let seq = msg.msg.seq;
        if sender.released.is_some_and(|r| seq <= r) || sender.held.contains_key(&seq) {
            return Arrival::Duplicate;
        }
        sender.held.insert(seq, (msg, now));
        if sender.held.len() > MAX_HELD_PER_SENDER {
            // Skip the oldest gap rather than grow: the lowest held message is released now.
            if let Some((lowest, held)) = sender.held.pop_first() {
                sender.released = Some(lowest);
                self.ready.push(held);
            }
        }
        Arrival::Accepted
    }

    /// The messages due at `now`, each sender's in `seq` order: the next in sequence at once,
    /// later ones once they have waited [`GAP_WAIT`] (the missing ones are skipped). A sender's
    /// first message is taken at once if its seq is 1, else after the wait (an earlier one
    /// may still be on its way).
    pub fn poll(&mut self, now: Instant) -> Vec<SignedRoomMessage> {
        let mut out: Vec<_> = self.ready.drain(..).map(|(m, _)| m).collect();
        let mut senders: Vec<_> = self.senders.keys().copied().collect();
        senders.sort();
        for id in senders {
            let Some(sender) = self.senders.get_mut(&id) else {
                continue;
            };
            while let Some(entry) = sender.held.first_entry() {
                let seq = *entry.key();
                let next = sender.released.map_or(1, |r| r + 1);
                let waited = now.saturating_duration_since(entry.get().1) >= GAP_WAIT;
                if seq != next && !waited {
                    break;
                }
                out.push(entry.remove().0);
                sender.released = Some(seq);
            }
        }
        out
    }

    /// When [`RoomInbox::poll`] next has something to release, if anything is held.
    pub fn poll_timeout(&self) -> Option<Instant> {
        // Released early: due since it arrived.
        let ready = self.ready.iter().map(|(_, at)| *at).min();
        ready.into_iter().chain(self.earliest_held()).min()
    }

    fn earliest_held(&self) -> Option<Instant> {
        self.senders
            .values()
            .filter_map(|s| s.held.values().map(|(_, at)| *at + GAP_WAIT).min())
            .min()
    }

    /// Highest seq released per sender (what to store to [`RoomInbox::resume`] later).
    pub fn released(&self) -> impl Iterator<Item = (CallId, u64)> + '_ {
        self.senders
            .iter()
            .filter_map(|(id, s)| s.released.map(|r| (*id, r)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::room::message::RoomMessage;
    use crate::room::RoomId;
    use crate::test_fixtures::{alice, bob};
    use proptest::prelude::*;

    fn msg(who: &crate::identity::Identity, seq: u64) -> SignedRoomMessage {
        RoomMessage {
            room: RoomId::from_bytes([3; 16]),
            sender: who.call_id(),
            seq,
            ts_ms: seq,
            reply_to: None,
            text: format!("m{seq}"),
        }
        .sign(who)
        .unwrap()
    }

    fn seqs(v: &[SignedRoomMessage]) -> Vec<u64> {
        v.iter().map(|m| m.msg.seq).collect()
    }

    #[test]
    fn in_order_messages_pass_at_once_and_copies_are_dropped() {
        let t = Instant::now();
        let mut inbox = RoomInbox::new();
        for seq in 1..=3 {
            assert_eq!(inbox.push(msg(&alice(), seq), t), Arrival::Accepted);
        }
        assert_eq!(inbox.push(msg(&alice(), 2), t), Arrival::Duplicate);
        assert_eq!(seqs(&inbox.poll(t)), [1, 2, 3]);
        // The copy by the other path, after release.
        assert_eq!(inbox.push(msg(&alice(), 3), t), Arrival::Duplicate);
        assert!(inbox.poll(t).is_empty());
        assert_eq!(inbox.poll_timeout(), None);
    }

    #[test]
    fn a_gap_waits_then_is_skipped_and_a_late_fill_is_in_order() {
        let t = Instant::now();
        let mut inbox = RoomInbox::new();
        inbox.push(msg(&alice(), 1), t);
        inbox.push(msg(&alice(), 3), t);
        assert_eq!(seqs(&inbox.poll(t)), [1]);
        // 2 arrives within the wait: 2 and 3 in order.
        inbox.push(msg(&alice(), 2), t + Duration::from_millis(500));
        assert_eq!(seqs(&inbox.poll(t + Duration::from_millis(500))), [2, 3]);
        // 5 without 4: released after GAP_WAIT, and a late 4 is then a duplicate.
        inbox.push(msg(&alice(), 5), t);
        assert_eq!(inbox.poll_timeout(), Some(t + GAP_WAIT));
        assert!(inbox
            .poll(t + GAP_WAIT - Duration::from_millis(1))
            .is_empty());
        assert_eq!(seqs(&inbox.poll(t + GAP_WAIT)), [5]);
        assert_eq!(
            inbox.push(msg(&alice(), 4), t + GAP_WAIT),
            Arrival::Duplicate
        );
    }

    #[test]
    fn senders_are_independent_and_resume_continues() {
        let t = Instant::now();
        let mut inbox = RoomInbox::resume([(alice().call_id(), 10)]);
        assert_eq!(inbox.push(msg(&alice(), 10), t), Arrival::Duplicate);
        inbox.push(msg(&alice(), 11), t);
        inbox.push(msg(&bob(), 1), t);
        let out = inbox.poll(t);
        assert_eq!(out.len(), 2);
        let mut released: Vec<_> = inbox.released().collect();
        released.sort();
        let mut want = vec![(alice().call_id(), 11), (bob().call_id(), 1)];
        want.sort();
        assert_eq!(released, want);
    }

    #[test]
    fn a_flood_of_out_of_order_messages_is_bounded() {
        let t = Instant::now();
        let mut inbox = RoomInbox::new();
        // seq 1 never comes; 2..=600 arrive.
        for seq in 2..=600 {
            inbox.push(msg(&alice(), seq), t);
            let held: usize = inbox.senders.values().map(|s| s.held.len()).sum();
            assert!(held <= MAX_HELD_PER_SENDER);
        }
        let out = inbox.poll(t);
        assert!(!out.is_empty());
        assert!(seqs(&out).windows(2).all(|w| w[0] < w[1]));
    }

    proptest! {
        /// Any arrival order with duplicates: each seq is released at most once, in increasing
        /// order per sender, and after the wait everything distinct has been released or skipped.
        #[test]
        fn release_is_ordered_and_once(order in prop::collection::vec(1u64..40, 1..80)) {
            let t = Instant::now();
            let mut inbox = RoomInbox::new();
            let mut released = Vec::new();
            for (i, seq) in order.iter().enumerate() {
                let now = t + Duration::from_millis(10 * i as u64);
                inbox.push(msg(&alice(), *seq), now);
                released.extend(seqs(&inbox.poll(now)));
            }
            released.extend(seqs(&inbox.poll(t + Duration::from_secs(60))));
            prop_assert!(released.windows(2).all(|w| w[0] < w[1]));
            prop_assert!(inbox.poll_timeout().is_none());
        }
    }
}
