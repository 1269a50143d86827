//! Acknowledged throughput: bytes that arrived over the last 500 ms of arrival time. The delay
//! controller cuts to a fraction of it on overuse and never runs far ahead of it.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::inter_arrival::signed_ms;

const WINDOW: Duration = Duration::from_millis(500);
/// Below this span the rate is too noisy to act on.
const MIN_SPAN: Duration = Duration::from_millis(100);
/// Bounds memory when arrival times are absurd (out-of-order entries are not trimmed early).
const MAX_ENTRIES: usize = 8192;

/// Sliding-window throughput over arrival times.
#[derive(Debug, Default)]
pub(crate) struct Throughput {
    entries: VecDeque<(Instant, u64)>,
    bytes: u64,
    first: Option<Instant>,
    newest: Option<Instant>,
}

impl Throughput {
    /// Records one packet that arrived.
    pub fn on_arrival(&mut self, arrival: Instant, size: usize) {
        let size = size as u64;
        self.first.get_or_insert(arrival);
        let newest = self.newest.map_or(arrival, |n| n.max(arrival));
        self.newest = Some(newest);
        self.entries.push_back((arrival, size));
        self.bytes = self.bytes.saturating_add(size);
        while let Some(&(t, s)) = self.entries.front() {
            let stale = signed_ms(newest, t) > WINDOW.as_secs_f64() * 1000.0;
            if !stale && self.entries.len() <= MAX_ENTRIES {
                break;
            }
            self.entries.pop_front();
            self.bytes = self.bytes.saturating_sub(s);
        }
    }

    /// Bits per second over the window, once at least 100 ms of arrivals were seen.
    pub fn rate(&self) -> Option<f64> {
        let (first, newest) = (self.first?, self.newest?);
        let span_ms = signed_ms(newest, first).min(WINDOW.as_secs_f64() * 1000.0);
        (span_ms >= MIN_SPAN.as_secs_f64() * 1000.0)
            .then(|| self.bytes as f64 * 8.0 / (span_ms / 1000.0))
    }
}
