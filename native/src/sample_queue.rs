//! A bounded FIFO of 48 kHz mono samples between a device callback thread and the engine.
//! Capture: the callback pushes, `read_frame` pops (silence and an underrun count when short).
//! Playback: `write_frame` pushes, the callback pops. On overflow the oldest samples are dropped
//! and counted, so latency stays bounded when one side runs faster than the other.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};

/// Counters of a device stream, for stats and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamCounters {
    /// Frames (or callbacks) that found too few samples and were padded with silence.
    pub underruns: u64,
    /// Samples dropped because the queue was full (oldest first).
    pub dropped_samples: u64,
    /// Errors the device reported while running.
    pub stream_errors: u64,
}

#[derive(Debug, Default)]
struct Inner {
    samples: VecDeque<i16>,
    counters: StreamCounters,
}

/// The bounded sample queue shared (in an `Arc`) by a device thread and its source or sink.
#[derive(Debug)]
pub struct SampleQueue {
    capacity: usize,
    inner: Mutex<Inner>,
}

impl SampleQueue {
    /// A queue holding at most `capacity` samples (at least 1).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            capacity,
            inner: Mutex::new(Inner {
                samples: VecDeque::with_capacity(capacity),
                counters: StreamCounters::default(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the deque inconsistent for our use
        // (every operation is a plain push/pop), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Append samples, dropping the oldest ones when full.
    pub fn push_all(&self, samples: impl IntoIterator<Item = i16>) {
        let mut inner = self.lock();
        for s in samples {
            if inner.samples.len() >= self.capacity {
                inner.samples.pop_front();
                inner.counters.dropped_samples += 1;
            }
            inner.samples.push_back(s);
        }
    }

    /// Run `f` with a push function (drops the oldest sample when full). Used by capture
    /// callbacks to push resampler output without allocating.
    pub fn with_pusher<R>(&self, f: impl FnOnce(&mut dyn FnMut(i16)) -> R) -> R {
        let mut inner = self.lock();
        let capacity = self.capacity;
        let mut push = |s: i16| {
            if inner.samples.len() >= capacity {
                inner.samples.pop_front();
                inner.counters.dropped_samples += 1;
            }
            inner.samples.push_back(s);
        };
        f(&mut push)
    }

    /// Fill `out` from the front of the queue; pad with silence and count an underrun if short.
    /// Returns how many real samples were copied.
    pub fn pop_into(&self, out: &mut [i16]) -> usize {
        let mut inner = self.lock();
        let n = out.len().min(inner.samples.len());
        for (slot, s) in out.iter_mut().zip(inner.samples.drain(..n)) {
            *slot = s;
        }
        if n < out.len() {
            out[n..].fill(0);
            inner.counters.underruns += 1;
        }
        n
    }

    /// Run `f` with a pop function that yields samples or `None` when empty; counts one
    /// underrun if any pop came up empty. Used by playback callbacks to pop without allocating.
    pub fn with_popper<R>(&self, f: impl FnOnce(&mut dyn FnMut() -> Option<i16>) -> R) -> R {
        let mut inner = self.lock();
        let mut starved = false;
        let r = {
            let mut pop = || {
                let s = inner.samples.pop_front();
                starved |= s.is_none();
                s
            };
            f(&mut pop)
        };
        if starved {
            inner.counters.underruns += 1;
        }
        r
    }

    /// Count an error reported by the device.
    pub fn note_stream_error(&self) {
        self.lock().counters.stream_errors += 1;
    }

    /// Samples currently queued.
    pub fn len(&self) -> usize {
        self.lock().samples.len()
    }

    /// Whether the queue is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A snapshot of the counters.
    pub fn counters(&self) -> StreamCounters {
        self.lock().counters
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn underrun_pads_with_silence() {
        let q = SampleQueue::new(10);
        q.push_all([1, 2, 3]);
        let mut out = [9i16; 5];
        assert_eq!(q.pop_into(&mut out), 3);
        assert_eq!(out, [1, 2, 3, 0, 0]);
        assert_eq!(q.counters().underruns, 1);
        let mut out = [0i16; 2];
        q.push_all([4, 5]);
        assert_eq!(q.pop_into(&mut out), 2);
        assert_eq!(q.counters().underruns, 1);
    }

    #[test]
    fn overflow_drops_oldest() {
        let q = SampleQueue::new(4);
        q.push_all(1..=6);
        assert_eq!(q.len(), 4);
        assert_eq!(q.counters().dropped_samples, 2);
        let mut out = [0i16; 4];
        q.pop_into(&mut out);
        assert_eq!(out, [3, 4, 5, 6]);
    }

    #[test]
    fn popper_counts_starvation_once() {
        let q = SampleQueue::new(4);
        q.push_all([7]);
        let got: Vec<i16> = q.with_popper(|pop| (0..3).map(|_| pop().unwrap_or(0)).collect());
        assert_eq!(got, [7, 0, 0]);
        assert_eq!(q.counters().underruns, 1);
    }
}
