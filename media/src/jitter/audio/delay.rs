//! Target-delay estimation: how much playout delay the network currently needs.
//!
//! For every packet the estimator computes the *relative arrival delay*: its transit time
//! (arrival time minus the media time its RTP timestamp stands for) minus the smallest transit
//! seen over a sliding history window (the "fastest packet", as in NetEq). Relative delays feed
//! (1) a histogram with exponential forgetting, whose upper quantile (default 0.95) describes the
//! body of the jitter distribution, and (2) a peak hold: the largest relative delay in a shorter
//! sliding window, which covers the tail that a 0.95 quantile alone would lose (the role of
//! NetEq's delay peak detector). The target is the larger of the two plus a fixed headroom for
//! delays beyond anything seen yet; it rises at once when the
//! network gets worse (fast attack) and falls at a bounded rate when it improves (slow decay),
//! always within `[min_delay, max_delay]`. The very first packet sets the target outright
//! (there is nothing to decay from yet), so playout can start at once.
//!
//! All times are signed microseconds on the buffer's own time line; nothing here reads a clock.

use std::collections::VecDeque;

/// Upper bound on entries in each sliding-window deque, whatever the packet rate.
const MAX_WINDOW_ENTRIES: usize = 4096;

/// Parameters of [`DelayEstimator`], in microseconds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DelayParams {
    pub(crate) quantile: f64,
    pub(crate) forget: f64,
    pub(crate) bucket_us: i64,
    pub(crate) min_us: i64,
    pub(crate) max_us: i64,
    pub(crate) initial_us: i64,
    pub(crate) history_us: i64,
    pub(crate) peak_hold_us: i64,
    pub(crate) decay_per_s_us: i64,
    pub(crate) headroom_us: i64,
}

/// Relative-delay statistics and the resulting target delay.
#[derive(Debug, Clone)]
pub(crate) struct DelayEstimator {
    p: DelayParams,
    /// Histogram weights of relative delays; the last bucket collects everything above.
    hist: Vec<f64>,
    /// Increasing transits with their arrival times: the front is the window minimum.
    min_window: VecDeque<(i64, i64)>,
    /// Decreasing relative delays with their arrival times: the front is the window maximum.
    peak_window: VecDeque<(i64, i64)>,
    target_us: i64,
    last_arrival_us: Option<i64>,
    /// Whether any packet has set the target (before that it is `initial_us`).
    measured: bool,
}

impl DelayEstimator {
    pub(crate) fn new(p: DelayParams) -> Self {
        let buckets = (p.max_us / p.bucket_us.max(1)).max(1) as usize + 2;
        Self {
            p,
            hist: vec![0.0; buckets],
            min_window: VecDeque::new(),
            peak_window: VecDeque::new(),
            target_us: p.initial_us.clamp(p.min_us, p.max_us),
            last_arrival_us: None,
            measured: false,
        }
    }

    /// Forgets the timing history (new stream) but keeps the current target as a starting point.
    pub(crate) fn reset_history(&mut self) {
        self.hist.iter_mut().for_each(|w| *w = 0.0);
        self.min_window.clear();
        self.peak_window.clear();
        self.last_arrival_us = None;
    }

    /// Smallest transit in the history window, if any packet was seen.
    pub(crate) fn min_transit_us(&self) -> Option<i64> {
        self.min_window.front().map(|&(_, t)| t)
    }

    /// Current target delay above the fastest packet.
    pub(crate) fn target_us(&self) -> i64 {
        self.target_us
    }

    /// Records one packet's arrival time and media time; returns its relative delay.
    pub(crate) fn update(&mut self, arrival_us: i64, media_us: i64) -> i64 {
        let transit = arrival_us.saturating_sub(media_us);
        while self.min_window.back().is_some_and(|&(_, t)| t >= transit) {
            self.min_window.pop_back();
        }
        self.min_window.push_back((arrival_us, transit));
        while self.min_window.len() > 1
            && (self.min_window.len() > MAX_WINDOW_ENTRIES
                || self
                    .min_window
                    .front()
                    .is_some_and(|&(a, _)| a < arrival_us - self.p.history_us))
        {
            self.min_window.pop_front();
        }
        let min = self.min_transit_us().unwrap_or(transit);
        let rel = transit.saturating_sub(min).max(0);

        let last = self.hist.len() - 1;
        let bucket = usize::try_from(rel / self.p.bucket_us.max(1)).map_or(last, |b| b.min(last));
        let f = self.p.forget;
        self.hist.iter_mut().for_each(|w| *w *= f);
        self.hist[bucket] += 1.0 - f;

        while self.peak_window.back().is_some_and(|&(_, r)| r <= rel) {
            self.peak_window.pop_back();
        }
        self.peak_window.push_back((arrival_us, rel));
        while self.peak_window.len() > 1
            && (self.peak_window.len() > MAX_WINDOW_ENTRIES
                || self
                    .peak_window
                    .front()
                    .is_some_and(|&(a, _)| a < arrival_us - self.p.peak_hold_us))
        {
            self.peak_window.pop_front();
        }

        let mut raw = self.quantile_us();
        if self.p.peak_hold_us > 0 {
            raw = raw.max(self.peak_window.front().map_or(0, |&(_, r)| r));
        }
        raw = raw.saturating_add(self.p.headroom_us);
        let elapsed = self
            .last_arrival_us
            .map_or(0, |l| arrival_us.saturating_sub(l).max(0));
        self.last_arrival_us = Some(
            self.last_arrival_us
                .map_or(arrival_us, |l| l.max(arrival_us)),
        );
        if raw >= self.target_us || !self.measured {
            self.measured = true;
            self.target_us = raw;
        } else {
            let step = self.p.decay_per_s_us.saturating_mul(elapsed) / 1_000_000;
            self.target_us -= step.min(self.target_us - raw);
        }
        self.target_us = self.target_us.clamp(self.p.min_us, self.p.max_us);
        rel
    }

    /// Upper edge of the histogram bucket holding the configured quantile.
    fn quantile_us(&self) -> i64 {
        let total: f64 = self.hist.iter().sum();
        if total <= 0.0 {
            return 0;
        }
        let want = total * self.p.quantile;
        let mut acc = 0.0;
        for (i, w) in self.hist.iter().enumerate() {
            acc += w;
            if acc >= want {
                return (i as i64 + 1) * self.p.bucket_us;
            }
        }
        self.hist.len() as i64 * self.p.bucket_us
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> DelayParams {
        DelayParams {
            quantile: 0.95,
            forget: 0.996,
            bucket_us: 2_000,
            min_us: 20_000,
            max_us: 200_000,
            initial_us: 60_000,
            history_us: 10_000_000,
            peak_hold_us: 10_000_000,
            decay_per_s_us: 10_000,
            headroom_us: 0,
        }
    }

    #[test]
    fn steady_stream_decays_to_min() {
        let mut e = DelayEstimator::new(params());
        for k in 0..3_000 {
            e.update(k * 20_000 + 30_000, k * 20_000);
        }
        assert_eq!(e.target_us(), 20_000);
    }

    #[test]
    fn spike_raises_target_at_once_and_decays_slowly() {
        let mut e = DelayEstimator::new(params());
        for k in 0..500 {
            e.update(k * 20_000 + 30_000, k * 20_000);
        }
        e.update(500 * 20_000 + 150_000, 500 * 20_000);
        assert!(e.target_us() >= 120_000, "fast attack: {}", e.target_us());
        for k in 501..600 {
            e.update(k * 20_000 + 30_000, k * 20_000);
        }
        assert!(e.target_us() >= 100_000, "slow decay: {}", e.target_us());
    }

    #[test]
    fn target_never_exceeds_cap() {
        let mut e = DelayEstimator::new(params());
        for k in 0..100 {
            e.update(k * 20_000 + (k % 7) * 900_000, k * 20_000);
            assert!(e.target_us() <= 200_000);
        }
    }
}
