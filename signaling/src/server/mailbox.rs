//! The offline mailbox: sealed envelopes of the mailbox kinds (room states and room messages)
//! for call IDs that are not connected, kept **in memory only** until the recipient logs in or
//! the time-to-live passes (§12.2 of `docs/protocol.md`). Lost on restart by design: the server
//! writes nothing to disk. It cannot read what it holds (the bodies are sealed to the recipient).
//!
//! Sans-IO: time is an argument (Unix seconds). Bounded per recipient (count and bytes), per
//! sender within a recipient (so the frames of one sender always fit the recipient's outbox
//! share when they are delivered), and server-wide (bytes); what does not fit is refused to the
//! sender and counted.

use std::collections::{HashMap, VecDeque};

use crate::identity::CallId;

/// Limits of the mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailboxLimits {
    /// How long an envelope waits, seconds (default 24 h).
    pub ttl_secs: u64,
    /// Envelopes kept per recipient.
    pub per_recipient_count: usize,
    /// Bytes kept per recipient.
    pub per_recipient_bytes: usize,
    /// Bytes one sender may have kept for one recipient.
    pub per_sender_bytes: usize,
    /// Bytes kept for everyone (frame bytes plus [`ENTRY_OVERHEAD`] per envelope and per recipient).
    pub total_bytes: usize,
}

impl Default for MailboxLimits {
    fn default() -> Self {
        Self {
            ttl_secs: 24 * 3600,
            per_recipient_count: 256,
            per_recipient_bytes: 1024 * 1024,
            per_sender_bytes: 256 * 1024,
            total_bytes: 64 * 1024 * 1024,
        }
    }
}

/// Bytes counted per kept envelope and per recipient on top of the frame itself (the map
/// entry, queue slot and string header), so many tiny envelopes cannot exceed the budget.
pub const ENTRY_OVERHEAD: usize = 128;

/// Why an envelope was not kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailboxRefused {
    /// The recipient's mailbox (count or bytes), or the sender's share of it, is full.
    RecipientFull,
    /// The server's mailbox budget is spent.
    ServerFull,
}

/// What the mailbox holds, for logs and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MailboxStats {
    /// Recipients with something kept.
    pub recipients: usize,
    /// Envelopes kept.
    pub envelopes: usize,
    /// Bytes counted against [`MailboxLimits::total_bytes`].
    pub bytes: usize,
    /// Envelopes refused because a bound was reached.
    pub refused: u64,
    /// Envelopes dropped because they waited longer than the TTL.
    pub expired: u64,
}

struct Kept {
    from: CallId,
    frame: String,
    expires: u64,
}

#[derive(Default)]
struct Box_ {
    queue: VecDeque<Kept>,
    bytes: usize,
}

impl Box_ {
    fn sender_bytes(&self, from: &CallId) -> usize {
        self.queue
            .iter()
            .filter(|k| k.from == *from)
            .map(|k| k.frame.len())
            .sum()
    }
}

/// The mailbox of a server.
pub struct Mailbox {
    limits: MailboxLimits,
    boxes: HashMap<CallId, Box_>,
    bytes: usize,
    envelopes: usize,
    refused: u64,
    expired: u64,
    next_sweep: u64,
}

impl Mailbox {
    /// An empty mailbox.
    pub fn new(limits: MailboxLimits) -> Self {
        Self {
            limits,
            boxes: HashMap::new(),
            bytes: 0,
            envelopes: 0,
            refused: 0,
            expired: 0,
            next_sweep: 0,
        }
    }

    /// Keeps `frame` (a `deliver` frame) from `from` for `to`, at `now` (Unix seconds).
    pub fn push(
        &mut self,
        from: CallId,
        to: CallId,
        frame: String,
        now: u64,
    ) -> Result<(), MailboxRefused> {
        if now >= self.next_sweep {
            self.expire(now);
            self.next_sweep = now + 60;
        }
        let cost = frame.len() + ENTRY_OVERHEAD;
        let new_box = !self.boxes.contains_key(&to);
        let box_cost = if new_box { ENTRY_OVERHEAD } else { 0 };
        if self.bytes + cost + box_cost > self.limits.total_bytes {
            self.refused += 1;
            return Err(MailboxRefused::ServerFull);
        }
        let b = self.boxes.entry(to).or_default();
        if b.queue.len() >= self.limits.per_recipient_count
            || b.bytes + frame.len() > self.limits.per_recipient_bytes
            || b.sender_bytes(&from) + frame.len() > self.limits.per_sender_bytes
        {
            if b.queue.is_empty() {
                self.boxes.remove(&to);
            }
            self.refused += 1;
            return Err(MailboxRefused::RecipientFull);
        }
        b.bytes += frame.len();
        b.queue.push_back(Kept {
            from,
            frame,
            expires: now.saturating_add(self.limits.ttl_secs),
        });
        self.bytes += cost + box_cost;
        self.envelopes += 1;
        Ok(())
    }

    /// Everything kept for `to` that has not expired, oldest first, as `(from, frame)`; the
    /// recipient's mailbox is emptied.
    pub fn take(&mut self, to: &CallId, now: u64) -> Vec<(CallId, String)> {
        let Some(b) = self.boxes.remove(to) else {
            return Vec::new();
        };
        self.bytes -= ENTRY_OVERHEAD;
        let mut out = Vec::with_capacity(b.queue.len());
        for k in b.queue {
            self.bytes -= k.frame.len() + ENTRY_OVERHEAD;
            self.envelopes -= 1;
            if k.expires > now {
                out.push((k.from, k.frame));
            } else {
                self.expired += 1;
            }
        }
        out
    }

    /// Drops every envelope that waited longer than the TTL.
    pub fn expire(&mut self, now: u64) {
        let mut freed = 0;
        let mut gone = 0;
        self.boxes.retain(|_, b| {
            while b.queue.front().is_some_and(|k| k.expires <= now) {
                if let Some(k) = b.queue.pop_front() {
                    b.bytes -= k.frame.len();
                    freed += k.frame.len() + ENTRY_OVERHEAD;
                    gone += 1;
                }
            }
            if b.queue.is_empty() {
                freed += ENTRY_OVERHEAD;
                false
            } else {
                true
            }
        });
        self.bytes -= freed;
        self.envelopes -= gone;
        self.expired += gone as u64;
    }

    /// What it holds now.
    pub fn stats(&self) -> MailboxStats {
        MailboxStats {
            recipients: self.boxes.len(),
            envelopes: self.envelopes,
            bytes: self.bytes,
            refused: self.refused,
            expired: self.expired,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;
    use proptest::prelude::*;

    fn id(n: u8) -> CallId {
        Identity::from_seed([n; 32]).call_id()
    }

    fn small() -> MailboxLimits {
        MailboxLimits {
            ttl_secs: 100,
            per_recipient_count: 4,
            per_recipient_bytes: 40,
            per_sender_bytes: 25,
            total_bytes: 2_000,
        }
    }

    #[test]
    fn kept_in_order_until_taken_once() {
        let mut m = Mailbox::new(MailboxLimits::default());
        for text in ["a", "b", "c"] {
            m.push(id(1), id(2), text.into(), 10).unwrap();
        }
        assert_eq!(m.stats().envelopes, 3);
        let got: Vec<_> = m.take(&id(2), 11).into_iter().map(|(_, f)| f).collect();
        assert_eq!(got, ["a", "b", "c"]);
        assert!(m.take(&id(2), 11).is_empty());
        assert_eq!(m.stats(), MailboxStats::default());
    }

    #[test]
    fn expired_envelopes_are_dropped_and_counted() {
        let mut m = Mailbox::new(small());
        m.push(id(1), id(2), "old".into(), 0).unwrap();
        m.push(id(1), id(2), "new".into(), 50).unwrap();
        let got: Vec<_> = m.take(&id(2), 100).into_iter().map(|(_, f)| f).collect();
        assert_eq!(got, ["new"]);
        assert_eq!(m.stats().expired, 1);
        m.push(id(1), id(3), "x".into(), 200).unwrap();
        m.expire(300);
        assert_eq!(m.stats().envelopes, 0);
        assert_eq!(m.stats().bytes, 0);
        assert_eq!(m.stats().expired, 2);
    }

    #[test]
    fn per_recipient_and_per_sender_bounds_refuse_and_count() {
        let mut m = Mailbox::new(small());
        // One sender: 25 bytes of share.
        m.push(id(1), id(9), "x".repeat(20), 0).unwrap();
        assert_eq!(
            m.push(id(1), id(9), "x".repeat(6), 0),
            Err(MailboxRefused::RecipientFull)
        );
        // Another sender still gets in, up to the recipient's 40 bytes.
        m.push(id(2), id(9), "y".repeat(20), 0).unwrap();
        assert_eq!(
            m.push(id(3), id(9), "z".into(), 0),
            Err(MailboxRefused::RecipientFull)
        );
        // Other recipients are not affected.
        m.push(id(3), id(8), "z".into(), 0).unwrap();
        assert_eq!(m.stats().refused, 2);
        // Count bound.
        let mut m = Mailbox::new(small());
        for n in 0..4 {
            m.push(id(n), id(9), "k".into(), 0).unwrap();
        }
        assert_eq!(
            m.push(id(5), id(9), "k".into(), 0),
            Err(MailboxRefused::RecipientFull)
        );
    }

    #[test]
    fn the_server_budget_bounds_many_recipients() {
        let mut m = Mailbox::new(small());
        let mut kept = 0;
        for n in 0..50u8 {
            if m.push(id(1), id(n.wrapping_add(100)), "e".repeat(10), 0)
                .is_ok()
            {
                kept += 1;
            }
        }
        assert!(kept > 0 && kept < 50, "kept {kept}");
        assert!(m.stats().bytes <= small().total_bytes);
        assert!(m.push(id(1), id(7), "e".into(), 0) == Err(MailboxRefused::ServerFull));
    }

    proptest! {
        /// Any sequence of pushes, takes and sweeps keeps the accounting exact and the budget held.
        #[test]
        fn accounting_is_exact(ops in prop::collection::vec((0u8..4, 0u8..6, 0usize..30, 0u64..300), 1..120)) {
            let mut m = Mailbox::new(small());
            let mut now = 0;
            for (op, who, len, dt) in ops {
                now += dt / 10;
                match op {
                    0 | 1 => { let _ = m.push(id(who), id(who / 2 + 50), "p".repeat(len), now); }
                    2 => { let _ = m.take(&id(who / 2 + 50), now); }
                    _ => m.expire(now),
                }
                let s = m.stats();
                prop_assert!(s.bytes <= small().total_bytes);
                let envs: usize = m.boxes.values().map(|b| b.queue.len()).sum();
                prop_assert_eq!(envs, s.envelopes);
                let bytes: usize = m.boxes.values().map(|b| b.bytes + ENTRY_OVERHEAD + b.queue.len() * ENTRY_OVERHEAD).sum();
                prop_assert_eq!(bytes, s.bytes);
                prop_assert!(m.boxes.values().all(|b| !b.queue.is_empty()));
            }
        }
    }
}
