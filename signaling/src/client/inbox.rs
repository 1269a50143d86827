//! The bounded queue between the client's socket task and the application's `recv`.
//!
//! The socket task must never wait on the application: while a call is being set up the
//! application may not read events for a while (it is asking for TURN credentials), and a
//! socket task blocked on a full queue would stop answering those very requests. So pushing
//! never waits. When the queue is full, the oldest event of the *sender with the most queued
//! events* is dropped and counted: a flood from a few identities pushes out its own envelopes,
//! not the answer a call is waiting for.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use tokio::sync::Notify;

/// Who an event came from, for fair dropping: a sender's key, or the server itself.
pub(crate) type Origin = Option<[u8; 32]>;

struct State<T> {
    queue: VecDeque<(Origin, T)>,
    closed: bool,
}

/// A multi-producer, single-consumer queue whose `push` never waits (see the module docs).
pub(crate) struct Inbox<T> {
    state: Mutex<State<T>>,
    notify: Notify,
    capacity: usize,
    dropped: AtomicU64,
}

impl<T> Inbox<T> {
    /// An empty queue holding at most `capacity` events (at least 1).
    pub(crate) fn new(capacity: usize) -> Inbox<T> {
        Inbox {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                closed: false,
            }),
            notify: Notify::new(),
            capacity: capacity.max(1),
            dropped: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<T>> {
        // A panic while holding this lock cannot leave the queue inconsistent (every
        // operation is a single push or pop), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `event`; never waits. Returns `true` when an older event was dropped for it.
    pub(crate) fn push(&self, origin: Origin, event: T) -> bool {
        let mut state = self.lock();
        let mut dropped = false;
        if state.queue.len() >= self.capacity {
            let victim = busiest_origin(&state.queue);
            if let Some(i) = state.queue.iter().position(|(o, _)| *o == victim) {
                state.queue.remove(i);
                self.dropped.fetch_add(1, Ordering::Relaxed);
                dropped = true;
            }
        }
        state.queue.push_back((origin, event));
        drop(state);
        self.notify.notify_one();
        dropped
    }

    /// No more events will come; `recv` returns `None` once the queue is drained.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.notify.notify_one();
    }

    /// Events dropped so far because the queue was full.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// The next event, waiting for one; `None` once closed and drained.
    pub(crate) async fn recv(&self) -> Option<T> {
        loop {
            let notified = self.notify.notified();
            {
                let mut state = self.lock();
                if let Some((_, event)) = state.queue.pop_front() {
                    return Some(event);
                }
                if state.closed {
                    return None;
                }
            }
            notified.await;
        }
    }
}

/// The origin with the most queued events (ties: the one whose first event is oldest).
/// O(queue length); runs only when the queue is full.
fn busiest_origin<T>(queue: &VecDeque<(Origin, T)>) -> Origin {
    // origin -> (count, index of its first event)
    let mut counts: HashMap<Origin, (usize, usize)> = HashMap::new();
    for (i, (origin, _)) in queue.iter().enumerate() {
        counts.entry(*origin).or_insert((0, i)).0 += 1;
    }
    counts
        .into_iter()
        .max_by_key(|(_, (n, first))| (*n, std::cmp::Reverse(*first)))
        .and_then(|(o, _)| o)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(inbox: &Inbox<u32>) -> Vec<u32> {
        let mut out = Vec::new();
        inbox.close();
        while let Some(e) = futures::executor::block_on(inbox.recv()) {
            out.push(e);
        }
        out
    }

    #[test]
    fn a_flooding_sender_pushes_out_its_own_events() {
        let inbox = Inbox::new(4);
        let (flooder, peer) = (Some([1; 32]), Some([2; 32]));
        inbox.push(peer, 100);
        for i in 0..10 {
            inbox.push(flooder, i);
        }
        assert_eq!(inbox.dropped(), 7);
        // The peer's event survived; the flooder's newest ones are queued.
        assert_eq!(drain(&inbox), vec![100, 7, 8, 9]);
    }

    proptest::proptest! {
        /// Nothing is lost without being counted, the bound holds, and order is kept.
        #[test]
        fn bounded_and_every_drop_counted(
            cap in 1usize..10,
            origins in proptest::collection::vec(0u8..4, 0..100),
        ) {
            let inbox = Inbox::new(cap);
            for (i, o) in origins.iter().enumerate() {
                inbox.push(Some([*o; 32]), i as u32);
                proptest::prop_assert!(inbox.lock().queue.len() <= cap);
            }
            let left = drain(&inbox);
            proptest::prop_assert_eq!(left.len() as u64 + inbox.dropped(), origins.len() as u64);
            proptest::prop_assert!(left.windows(2).all(|w| w[0] < w[1]));
            // The newest event is never the one dropped.
            if let Some(last) = origins.len().checked_sub(1) {
                proptest::prop_assert_eq!(left.last().copied(), Some(last as u32));
            }
        }
    }

    #[test]
    fn push_never_waits_and_counts_drops() {
        let inbox = Inbox::new(2);
        for i in 0..1000 {
            inbox.push(Some([(i % 7) as u8; 32]), i);
        }
        assert_eq!(inbox.dropped(), 998);
        assert_eq!(drain(&inbox).len(), 2);
        let inbox: Inbox<u32> = Inbox::new(0);
        inbox.push(None, 1);
        inbox.push(None, 2);
        assert_eq!(drain(&inbox), vec![2]);
    }
}
