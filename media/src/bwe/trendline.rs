//! Delay-based overuse detector (libwebrtc's `TrendlineEstimator`): the slope of the smoothed,
//! accumulated one-way delay change over the last groups, compared with an adaptive threshold.
//! A rising slope means the bottleneck queue grows, i.e. we send faster than the link drains.

use std::collections::VecDeque;
use std::time::Instant;

use super::inter_arrival::{signed_ms, GroupDelta};

/// Groups in the regression window.
const WINDOW: usize = 20;
/// Exponential smoothing of the accumulated delay.
const SMOOTHING: f64 = 0.9;
/// Scales the slope (ms of delay per ms) into the threshold's units.
const THRESHOLD_GAIN: f64 = 4.0;
/// The slope must stay above the threshold this long (ms) before we call it overuse.
const OVERUSE_TIME_MS: f64 = 10.0;
/// Threshold adaptation speeds: slow up, faster down (libwebrtc's k_up / k_down).
const K_UP: f64 = 0.0087;
const K_DOWN: f64 = 0.039;
const THRESHOLD_START: f64 = 12.5;
const THRESHOLD_MIN: f64 = 6.0;
const THRESHOLD_MAX: f64 = 600.0;
/// Outliers this far past the threshold do not move it (a sudden spike is not the new normal).
const THRESHOLD_OUTLIER: f64 = 15.0;
/// Caps how many deltas weigh on the modified trend.
const MAX_DELTAS: u32 = 60;

/// What the delay signal says about the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BandwidthUsage {
    /// Delay is stable: the rate may grow.
    #[default]
    Normal,
    /// Delay is rising: a queue is building, the rate must drop.
    Overusing,
    /// Delay is falling: a queue is draining, hold the rate until it is empty.
    Underusing,
}

/// Trendline state.
#[derive(Debug)]
pub(crate) struct Trendline {
    window: VecDeque<(f64, f64)>,
    first_arrival: Option<Instant>,
    accumulated_ms: f64,
    smoothed_ms: f64,
    num_deltas: u32,
    threshold: f64,
    last_threshold_update: Option<Instant>,
    prev_trend: f64,
    /// Time spent above the threshold, ms; negative when not overusing.
    time_over_using: f64,
    overuse_count: u32,
    state: BandwidthUsage,
}

impl Default for Trendline {
    fn default() -> Self {
        Trendline {
            window: VecDeque::with_capacity(WINDOW + 1),
            first_arrival: None,
            accumulated_ms: 0.0,
            smoothed_ms: 0.0,
            num_deltas: 0,
            threshold: THRESHOLD_START,
            last_threshold_update: None,
            prev_trend: 0.0,
            time_over_using: -1.0,
            overuse_count: 0,
            state: BandwidthUsage::Normal,
        }
    }
}

impl Trendline {
    /// The current verdict.
    pub fn state(&self) -> BandwidthUsage {
        self.state
    }

    /// Feeds one group delta; returns the updated verdict.
    pub fn update(&mut self, delta: GroupDelta) -> BandwidthUsage {
        let first = *self.first_arrival.get_or_insert(delta.arrival);
        self.num_deltas = self.num_deltas.saturating_add(1).min(MAX_DELTAS);
        self.accumulated_ms += delta.arrival_ms - delta.send_ms;
        self.smoothed_ms = SMOOTHING * self.smoothed_ms + (1.0 - SMOOTHING) * self.accumulated_ms;
        self.window
            .push_back((signed_ms(delta.arrival, first), self.smoothed_ms));
        if self.window.len() > WINDOW {
            self.window.pop_front();
        }
        let mut trend = self.prev_trend;
        if self.window.len() == WINDOW {
            if let Some(slope) = linear_fit_slope(&self.window) {
                trend = slope;
            }
        }
        self.detect(trend, delta.send_ms, delta.arrival);
        self.state
    }

    fn detect(&mut self, trend: f64, send_delta_ms: f64, arrival: Instant) {
        if self.num_deltas < 2 {
            self.state = BandwidthUsage::Normal;
            return;
        }
        let modified = f64::from(self.num_deltas) * trend * THRESHOLD_GAIN;
        if modified > self.threshold {
            if self.time_over_using < 0.0 {
                // First sample above: assume we crossed halfway since the previous one.
                self.time_over_using = send_delta_ms / 2.0;
            } else {
                self.time_over_using += send_delta_ms;
            }
            self.overuse_count += 1;
            if self.time_over_using > OVERUSE_TIME_MS
                && self.overuse_count > 1
                && trend >= self.prev_trend
            {
                self.time_over_using = 0.0;
                self.overuse_count = 0;
                self.state = BandwidthUsage::Overusing;
            }
        } else if modified < -self.threshold {
            self.time_over_using = -1.0;
            self.overuse_count = 0;
            self.state = BandwidthUsage::Underusing;
        } else {
            self.time_over_using = -1.0;
            self.overuse_count = 0;
            self.state = BandwidthUsage::Normal;
        }
        self.prev_trend = trend;
        self.update_threshold(modified, arrival);
    }

    fn update_threshold(&mut self, modified: f64, now: Instant) {
        let last = *self.last_threshold_update.get_or_insert(now);
        let size = modified.abs();
        if !size.is_finite() || size > self.threshold + THRESHOLD_OUTLIER {
            self.last_threshold_update = Some(now);
            return;
        }
        let k = if size < self.threshold { K_DOWN } else { K_UP };
        let dt_ms = signed_ms(now, last).clamp(0.0, 100.0);
        self.threshold = (self.threshold + k * (size - self.threshold) * dt_ms)
            .clamp(THRESHOLD_MIN, THRESHOLD_MAX);
        self.last_threshold_update = Some(now);
    }
}

/// Least-squares slope of y over x; `None` when x does not vary.
fn linear_fit_slope(points: &VecDeque<(f64, f64)>) -> Option<f64> {
    let n = points.len() as f64;
    let (sx, sy) = points
        .iter()
        .fold((0.0, 0.0), |(sx, sy), &(x, y)| (sx + x, sy + y));
    let (mx, my) = (sx / n, sy / n);
    let (num, den) = points.iter().fold((0.0, 0.0), |(num, den), &(x, y)| {
        (num + (x - mx) * (y - my), den + (x - mx) * (x - mx))
    });
    let slope = num / den;
    (den > 0.0 && slope.is_finite()).then_some(slope)
}
