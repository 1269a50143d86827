//! Loss-based limit (classic GCC, libwebrtc's `SendSideBandwidthEstimation`): under 2 % loss
//! the limit grows 8 %/s and lets go once the delay-based rate is below it; 2–10 % holds; above
//! 10 % it cuts by half the loss fraction, at most once per 300 ms + RTT. Random loss below
//! 10 % therefore never drives the rate down: the point of "does not collapse".

use std::time::{Duration, Instant};

use super::inter_arrival::signed_ms;

const LOW_LOSS: f64 = 0.02;
const HIGH_LOSS: f64 = 0.10;
const INCREASE_PER_S: f64 = 0.08;
const DECREASE_INTERVAL: Duration = Duration::from_millis(300);
/// A loss fraction from transport feedback is only computed over at least this many packets...
const MIN_PACKETS: u32 = 20;
/// ...and this much time, unless `FULL_PACKETS` arrived first (1 s of RTCP-RR-like averaging).
const MIN_SPAN: Duration = Duration::from_secs(1);
const FULL_PACKETS: u32 = 100;

/// Loss-based limit state; rates in bit/s.
#[derive(Debug, Default)]
pub(crate) struct LossBased {
    /// `None`: loss is low and the delay-based rate alone decides.
    limit: Option<f64>,
    lost: u32,
    total: u32,
    window_start: Option<Instant>,
    last_update: Option<Instant>,
    last_decrease: Option<Instant>,
    last_fraction: Option<f64>,
}

impl LossBased {
    /// The current limit, if loss imposes one.
    pub fn limit(&self) -> Option<f64> {
        self.limit
    }

    /// The last loss fraction computed (0.0–1.0).
    pub fn last_fraction(&self) -> Option<f64> {
        self.last_fraction
    }

    /// Counts transport-feedback outcomes; applies a loss fraction once a window is full.
    pub fn on_packets(&mut self, lost: u32, total: u32, now: Instant, current: f64, rtt: Duration) {
        let start = *self.window_start.get_or_insert(now);
        self.lost = self.lost.saturating_add(lost);
        self.total = self.total.saturating_add(total);
        let span_done = signed_ms(now, start) >= MIN_SPAN.as_secs_f64() * 1000.0;
        if self.total >= FULL_PACKETS || (self.total >= MIN_PACKETS && span_done) {
            let fraction = f64::from(self.lost) / f64::from(self.total);
            self.lost = 0;
            self.total = 0;
            self.window_start = Some(now);
            self.apply(fraction, now, current, rtt, true);
        }
    }

    /// Starts limiting at `rate` if no limit is set (the receiver-report-only path, where this
    /// limit is the whole estimate).
    pub fn seed(&mut self, rate: f64) {
        self.limit.get_or_insert(rate);
    }

    /// Applies one loss fraction (from transport feedback or an RTCP receiver report).
    /// `current` is the delay-based rate (the configured maximum on the receiver-report-only
    /// path, with `release` false so the limit keeps being the estimate).
    pub fn apply(
        &mut self,
        fraction: f64,
        now: Instant,
        current: f64,
        rtt: Duration,
        release: bool,
    ) {
        let fraction = if fraction.is_finite() {
            fraction.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self.last_fraction = Some(fraction);
        let elapsed_s = match self.last_update {
            Some(last) => (signed_ms(now, last) / 1000.0).clamp(0.0, 1.0),
            None => 0.0,
        };
        self.last_update = Some(now);
        if fraction <= LOW_LOSS {
            if let Some(l) = self.limit {
                let grown = l * (1.0 + INCREASE_PER_S).powf(elapsed_s) + 1000.0 * elapsed_s;
                // Once the delay-based rate is the tighter one, loss no longer limits.
                self.limit = if grown < current {
                    Some(grown)
                } else {
                    (!release).then_some(current)
                };
            }
        } else if fraction <= HIGH_LOSS {
            self.limit = Some(self.limit.unwrap_or(current).min(current.max(1.0)));
        } else {
            let due = self.last_decrease.is_none_or(|d| {
                signed_ms(now, d) >= (DECREASE_INTERVAL + rtt).as_secs_f64() * 1000.0
            });
            if due {
                let base = self.limit.unwrap_or(current).min(current);
                self.limit = Some(base * (1.0 - 0.5 * fraction));
                self.last_decrease = Some(now);
            }
        }
    }
}
