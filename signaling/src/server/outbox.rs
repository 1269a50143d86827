//! Each connection's outbound queue of `deliver` frames: fair between senders, bounded in bytes
//! per sender, per recipient and globally.
//!
//! Distance from the wire: [`routing`](super::routing) pushes frames here; the connection task
//! pops them and writes them to its socket. A congested recipient never causes a disconnect
//! here: the *sender* whose frame does not fit is refused (`recipient_busy`). Only a socket that
//! stops accepting writes gets its connection closed (by the connection task's write timeout),
//! so flooding a victim cannot knock it offline.
//!
//! Rules for a frame of `len` bytes from `sender` (see `docs/protocol.md` §12.1):
//! 1. a sender that already has frames queued for this recipient may hold at most
//!    `sender_share` bytes of its queue;
//! 2. the recipient's queue holds at most `recipient_max` bytes, except that a sender with
//!    nothing queued is always admitted one frame, so a few flooders cannot lock out a new
//!    caller;
//! 3. all queues of the server together (frames being written included) stay within the global
//!    [`ByteBudget`].
//!
//! Frames leave round-robin by sender, so a flooder's backlog does not delay anyone else's.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use crate::identity::CallId;

/// A byte budget shared by all queues of a server.
#[derive(Debug)]
pub struct ByteBudget {
    used: AtomicUsize,
    max: usize,
}

impl ByteBudget {
    /// A budget of `max` bytes.
    pub fn new(max: usize) -> Self {
        Self {
            used: AtomicUsize::new(0),
            max,
        }
    }

    /// Bytes reserved now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    fn try_reserve(&self, n: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(n).filter(|&total| total <= self.max)
            })
            .is_ok()
    }

    fn release(&self, n: usize) {
        self.used.fetch_sub(n, Ordering::AcqRel);
    }
}

/// Why a frame was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// This sender already holds its share of the recipient's queue.
    SenderShare,
    /// The recipient's queue is full.
    RecipientFull,
    /// The server-wide budget is exhausted.
    ServerFull,
    /// The connection has closed.
    Closed,
}

/// Per-queue bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueLimits {
    /// Bytes one sender may have queued for one recipient (beyond its first frame).
    pub sender_share: usize,
    /// Bytes queued for one recipient (beyond a first frame from each new sender).
    pub recipient_max: usize,
}

#[derive(Debug, Default)]
struct SenderFrames {
    frames: VecDeque<String>,
    bytes: usize,
}

/// The fair queue itself, without locking or waking (sans-IO).
#[derive(Debug)]
pub struct OutboxQueue {
    limits: QueueLimits,
    senders: HashMap<CallId, SenderFrames>,
    /// Senders with queued frames, in round-robin order.
    order: VecDeque<CallId>,
    bytes: usize,
}

impl OutboxQueue {
    /// An empty queue.
    pub fn new(limits: QueueLimits) -> Self {
        Self {
            limits,
            senders: HashMap::new(),
            order: VecDeque::new(),
            bytes: 0,
        }
    }

    /// Bytes queued.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Whether a frame of `len` bytes from `sender` may be queued (rules 1 and 2).
    pub fn admits(&self, sender: &CallId, len: usize) -> Result<(), Refused> {
        let share = self.senders.get(sender).map_or(0, |s| s.bytes);
        if share == 0 {
            return Ok(());
        }
        if share.saturating_add(len) > self.limits.sender_share {
            return Err(Refused::SenderShare);
        }
        if self.bytes.saturating_add(len) > self.limits.recipient_max {
            return Err(Refused::RecipientFull);
        }
        Ok(())
    }

    /// Queues `frame` (the caller has checked [`OutboxQueue::admits`]).
    pub fn push(&mut self, sender: CallId, frame: String) {
        let entry = self.senders.entry(sender).or_default();
        if entry.frames.is_empty() {
            self.order.push_back(sender);
        }
        entry.bytes += frame.len();
        self.bytes += frame.len();
        entry.frames.push_back(frame);
    }

    /// The next frame, round-robin by sender.
    pub fn pop(&mut self) -> Option<String> {
        let sender = self.order.pop_front()?;
        let entry = self.senders.get_mut(&sender)?;
        let frame = entry.frames.pop_front()?;
        entry.bytes -= frame.len();
        self.bytes -= frame.len();
        if entry.frames.is_empty() {
            self.senders.remove(&sender);
        } else {
            self.order.push_back(sender);
        }
        Some(frame)
    }

    /// Drops everything; returns the bytes freed and the number of frames dropped.
    fn clear(&mut self) -> (usize, usize) {
        let frames = self.senders.values().map(|s| s.frames.len()).sum();
        self.senders.clear();
        self.order.clear();
        (std::mem::take(&mut self.bytes), frames)
    }
}

/// A frame taken from an [`Outbox`]; its bytes stay counted in the global budget until it is
/// dropped (after the write).
#[derive(Debug)]
pub struct Outgoing {
    /// The frame text.
    pub text: String,
    len: usize,
    budget: Arc<ByteBudget>,
}

impl Drop for Outgoing {
    fn drop(&mut self) {
        self.budget.release(self.len);
    }
}

struct State {
    queue: OutboxQueue,
    closed: bool,
}

/// One connection's outbox: an [`OutboxQueue`] behind a lock, with a wake-up for the
/// connection task and the global budget.
pub struct Outbox {
    state: Mutex<State>,
    ready: Notify,
    budget: Arc<ByteBudget>,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox").finish_non_exhaustive()
    }
}

impl Outbox {
    /// An empty outbox drawing on `budget`.
    pub fn new(limits: QueueLimits, budget: Arc<ByteBudget>) -> Self {
        Self {
            state: Mutex::new(State {
                queue: OutboxQueue::new(limits),
                closed: false,
            }),
            ready: Notify::new(),
            budget,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Every critical section leaves the queue and its counters consistent before anything
        // that could panic, so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `frame` from `sender` without waiting, or says why not.
    pub fn push(&self, sender: CallId, frame: String) -> Result<(), Refused> {
        let len = frame.len();
        let mut state = self.lock();
        if state.closed {
            return Err(Refused::Closed);
        }
        state.queue.admits(&sender, len)?;
        if !self.budget.try_reserve(len) {
            return Err(Refused::ServerFull);
        }
        state.queue.push(sender, frame);
        drop(state);
        self.ready.notify_one();
        Ok(())
    }

    /// Waits for the next frame. Cancel-safe: a frame is only taken by a call that returns it.
    pub async fn next(&self) -> Outgoing {
        loop {
            let notified = self.ready.notified();
            if let Some(text) = self.lock().queue.pop() {
                let len = text.len();
                return Outgoing {
                    text,
                    len,
                    budget: self.budget.clone(),
                };
            }
            notified.await;
        }
    }

    /// Refuses further frames and frees the queued ones (the connection is closing); returns
    /// how many frames were dropped unsent.
    pub fn close(&self) -> usize {
        let mut state = self.lock();
        state.closed = true;
        let (freed, frames) = state.queue.clear();
        drop(state);
        self.budget.release(freed);
        frames
    }

    /// Bytes queued (not counting a frame being written).
    pub fn queued_bytes(&self) -> usize {
        self.lock().queue.bytes()
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        let (freed, _) = self.lock().queue.clear();
        self.budget.release(freed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;

    fn id(n: u8) -> CallId {
        Identity::from_seed([n; 32]).call_id()
    }

    fn frame(tag: u8, len: usize) -> String {
        let mut s = String::from(char::from(b'a' + tag));
        s.extend(std::iter::repeat_n('.', len - 1));
        s
    }

    const LIMITS: QueueLimits = QueueLimits {
        sender_share: 300,
        recipient_max: 500,
    };

    fn push(q: &mut OutboxQueue, sender: CallId, f: String) -> Result<(), Refused> {
        q.admits(&sender, f.len())?;
        q.push(sender, f);
        Ok(())
    }

    #[test]
    fn a_flooder_fills_only_its_share_and_others_still_get_in() {
        let mut q = OutboxQueue::new(LIMITS);
        let (flooder, other) = (id(1), id(2));
        assert_eq!(push(&mut q, flooder, frame(0, 100)), Ok(()));
        assert_eq!(push(&mut q, flooder, frame(0, 100)), Ok(()));
        assert_eq!(push(&mut q, flooder, frame(0, 100)), Ok(()));
        assert_eq!(
            push(&mut q, flooder, frame(0, 1)),
            Err(Refused::SenderShare)
        );
        assert_eq!(push(&mut q, other, frame(1, 100)), Ok(()));
        assert_eq!(q.bytes(), 400);
    }

    #[test]
    fn a_full_recipient_still_admits_one_frame_from_a_new_sender() {
        let mut q = OutboxQueue::new(LIMITS);
        for n in 1..=2 {
            push(&mut q, id(n), frame(n, 250)).unwrap();
        }
        assert_eq!(q.bytes(), 500);
        assert_eq!(
            push(&mut q, id(1), frame(1, 10)),
            Err(Refused::RecipientFull)
        );
        // A sender with nothing queued always gets one frame in, even a large one.
        assert_eq!(push(&mut q, id(3), frame(3, 400)), Ok(()));
        assert_eq!(push(&mut q, id(3), frame(3, 1)), Err(Refused::SenderShare));
    }

    #[test]
    fn frames_leave_round_robin_by_sender() {
        let mut q = OutboxQueue::new(QueueLimits {
            sender_share: 1000,
            recipient_max: 1000,
        });
        for _ in 0..3 {
            push(&mut q, id(1), frame(0, 10)).unwrap();
        }
        push(&mut q, id(2), frame(1, 10)).unwrap();
        let order: Vec<char> = std::iter::from_fn(|| q.pop())
            .map(|f| f.chars().next().unwrap())
            .collect();
        assert_eq!(order, ['a', 'b', 'a', 'a']);
        assert_eq!(q.bytes(), 0);
        assert!(q.senders.is_empty() && q.order.is_empty());
    }

    #[test]
    fn the_global_budget_is_shared_and_released() {
        let budget = Arc::new(ByteBudget::new(250));
        let limits = QueueLimits {
            sender_share: 1000,
            recipient_max: 1000,
        };
        let a = Outbox::new(limits, budget.clone());
        let b = Outbox::new(limits, budget.clone());
        a.push(id(1), frame(0, 100)).unwrap();
        b.push(id(1), frame(0, 100)).unwrap();
        assert_eq!(b.push(id(2), frame(0, 100)), Err(Refused::ServerFull));
        assert_eq!(budget.used(), 200);
        let out = futures::executor::block_on(a.next());
        assert_eq!(out.text.len(), 100);
        // Still counted while being written.
        assert_eq!(budget.used(), 200);
        drop(out);
        assert_eq!(budget.used(), 100);
        assert_eq!(b.close(), 1, "the one unsent frame is reported");
        assert_eq!(budget.used(), 0);
        assert_eq!(b.close(), 0);
        assert_eq!(b.push(id(2), frame(0, 1)), Err(Refused::Closed));
        a.push(id(1), frame(0, 50)).unwrap();
        drop(a);
        assert_eq!(budget.used(), 0);
    }

    proptest::proptest! {
        #[test]
        fn accounting_stays_exact_and_bounded(
            ops in proptest::collection::vec((0u8..5, 1usize..200, proptest::bool::ANY), 0..300)
        ) {
            let budget = Arc::new(ByteBudget::new(2000));
            let ob = Outbox::new(LIMITS, budget.clone());
            let mut held = Vec::new();
            for (sender, len, pop) in ops {
                if pop {
                    let next = futures::FutureExt::now_or_never(ob.next());
                    if let Some(out) = next { held.push(out) }
                    if held.len() > 2 { held.remove(0); }
                } else {
                    let _ = ob.push(id(sender), frame(sender, len));
                }
                let in_flight: usize = held.iter().map(|o| o.text.len()).sum();
                proptest::prop_assert_eq!(budget.used(), ob.queued_bytes() + in_flight);
                // Five senders: at most a first frame each beyond the recipient bound.
                proptest::prop_assert!(ob.queued_bytes() <= LIMITS.recipient_max + 5 * 200);
            }
            drop(held);
            drop(ob);
            proptest::prop_assert_eq!(budget.used(), 0);
        }
    }
}
