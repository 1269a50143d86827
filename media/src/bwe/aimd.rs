//! Delay-based rate controller (libwebrtc's `AimdRateControl`): grows the rate while the
//! trendline says `Normal`, cuts it to a fraction of the measured throughput on `Overusing`,
//! holds on `Underusing`. Near the last known link capacity it grows additively (about one
//! packet per response time), far from it multiplicatively.

use std::time::{Duration, Instant};

use super::inter_arrival::signed_ms;
use super::trendline::BandwidthUsage;

/// On overuse the new rate is this fraction of the measured throughput.
const BETA: f64 = 0.85;
/// Added to the RTT to get the time the controller needs to see the effect of a change.
const RESPONSE_EXTRA: Duration = Duration::from_millis(100);
/// The rate may not run ahead of the measured throughput by more than this factor (+10 kbit/s).
const THROUGHPUT_HEADROOM: f64 = 1.5;
/// Additive increase never below this, bit/s per second.
const MIN_ADDITIVE_BPS_PER_S: f64 = 4000.0;
/// Frame rate assumed when sizing the additive step (libwebrtc's choice too).
const ASSUMED_FPS: f64 = 30.0;
/// Largest packet the additive step assumes, bytes.
const MTU_PAYLOAD: f64 = 1200.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RateState {
    Hold,
    Increase,
    Decrease,
}

/// Running estimate of the bottleneck capacity, learned from throughput at overuse, in kbit/s.
#[derive(Debug, Default)]
struct LinkCapacity {
    estimate_kbps: Option<f64>,
    /// Normalised variance (libwebrtc's units), kept within [0.4, 2.5].
    variance: f64,
}

impl LinkCapacity {
    fn update(&mut self, sample_kbps: f64) {
        const ALPHA: f64 = 0.05;
        let est = match self.estimate_kbps {
            None => sample_kbps,
            Some(e) => (1.0 - ALPHA) * e + ALPHA * sample_kbps,
        };
        let err = est - sample_kbps;
        self.variance =
            ((1.0 - ALPHA) * self.variance + ALPHA * err * err / est.max(1.0)).clamp(0.4, 2.5);
        self.estimate_kbps = Some(est);
    }

    fn deviation_kbps(&self, est: f64) -> f64 {
        (self.variance * est).sqrt()
    }

    fn upper_bps(&self) -> Option<f64> {
        self.estimate_kbps
            .map(|e| (e + 3.0 * self.deviation_kbps(e)) * 1000.0)
    }

    fn lower_bps(&self) -> Option<f64> {
        self.estimate_kbps
            .map(|e| (e - 3.0 * self.deviation_kbps(e)).max(0.0) * 1000.0)
    }

    fn reset(&mut self) {
        self.estimate_kbps = None;
    }
}

/// AIMD state; rates in bit/s as floats.
#[derive(Debug)]
pub(crate) struct AimdRateControl {
    target: f64,
    min: f64,
    max: f64,
    multiplicative_per_s: f64,
    state: RateState,
    last_change: Option<Instant>,
    last_decrease: Option<Instant>,
    capacity: LinkCapacity,
    rtt: Duration,
}

impl AimdRateControl {
    pub fn new(start: f64, min: f64, max: f64, multiplicative_per_s: f64) -> Self {
        AimdRateControl {
            target: start.clamp(min, max),
            min,
            max,
            multiplicative_per_s,
            state: RateState::Hold,
            last_change: None,
            last_decrease: None,
            capacity: LinkCapacity::default(),
            rtt: Duration::from_millis(200),
        }
    }

    pub fn target(&self) -> f64 {
        self.target
    }

    pub fn set_rtt(&mut self, rtt: Duration) {
        self.rtt = rtt.min(Duration::from_secs(10));
    }

    /// Multiplies the target (feedback timeout), within [min, max].
    pub fn scale(&mut self, factor: f64) {
        self.target = (self.target * factor).clamp(self.min, self.max);
    }

    /// Whether an overuse verdict should cut the rate again now: once per RTT (10–200 ms), or
    /// at once when the throughput collapsed below half the target.
    pub fn time_to_reduce_further(&self, now: Instant, acked: Option<f64>) -> bool {
        let interval = self
            .rtt
            .clamp(Duration::from_millis(10), Duration::from_millis(200));
        let Some(last) = self.last_decrease else {
            return true;
        };
        if signed_ms(now, last) >= interval.as_secs_f64() * 1000.0 {
            return true;
        }
        acked.is_some_and(|a| a < self.target / 2.0)
    }

    /// Applies one verdict with the throughput measured so far.
    pub fn update(&mut self, usage: BandwidthUsage, acked: Option<f64>, now: Instant) {
        match usage {
            BandwidthUsage::Normal if self.state == RateState::Hold => {
                self.state = RateState::Increase;
            }
            BandwidthUsage::Normal => {}
            BandwidthUsage::Overusing => self.state = RateState::Decrease,
            BandwidthUsage::Underusing => self.state = RateState::Hold,
        }
        let elapsed_s = match self.last_change {
            Some(last) => (signed_ms(now, last) / 1000.0).clamp(0.0, 1.0),
            None => 0.0,
        };
        let mut next = self.target;
        match self.state {
            RateState::Hold => {}
            RateState::Increase => {
                if let (Some(a), Some(upper)) = (acked, self.capacity.upper_bps()) {
                    if a > upper {
                        // We are past what we learnt the link carries: it changed; explore again.
                        self.capacity.reset();
                    }
                }
                next += if self.capacity.estimate_kbps.is_some() {
                    self.additive_step(elapsed_s)
                } else {
                    self.multiplicative_step(elapsed_s)
                };
                if let Some(a) = acked {
                    // Do not run far ahead of what actually gets through (an app-limited sender
                    // would otherwise inflate the estimate forever); never lower it here though.
                    let cap = THROUGHPUT_HEADROOM * a + 10_000.0;
                    next = next.min(cap.max(self.target));
                }
            }
            RateState::Decrease => {
                let measured = acked.unwrap_or(self.target);
                let mut cut = BETA * measured;
                if cut > self.target {
                    // Throughput above the target (a burst): cut from the learnt capacity instead.
                    if let Some(e) = self.capacity.estimate_kbps {
                        cut = BETA * e * 1000.0;
                    }
                }
                next = cut.min(self.target);
                if let (Some(a), Some(lower)) = (acked, self.capacity.lower_bps()) {
                    if a < lower {
                        // Far below what the link used to carry: the old capacity is stale.
                        self.capacity.reset();
                    }
                }
                if let Some(a) = acked {
                    self.capacity.update(a / 1000.0);
                }
                self.state = RateState::Hold;
                self.last_decrease = Some(now);
            }
        }
        if next.is_finite() {
            self.target = next.clamp(self.min, self.max);
        }
        self.last_change = Some(now);
    }

    /// About one average packet per response time (RTT + 100 ms), scaled by elapsed time.
    fn additive_step(&self, elapsed_s: f64) -> f64 {
        let frame_bytes = self.target / 8.0 / ASSUMED_FPS;
        let packets = (frame_bytes / MTU_PAYLOAD).ceil().max(1.0);
        let packet_bits = frame_bytes / packets * 8.0;
        let response_s = (self.rtt + RESPONSE_EXTRA).as_secs_f64();
        (packet_bits / response_s).max(MIN_ADDITIVE_BPS_PER_S) * elapsed_s
    }

    fn multiplicative_step(&self, elapsed_s: f64) -> f64 {
        let factor = (1.0 + self.multiplicative_per_s).powf(elapsed_s) - 1.0;
        (self.target * factor).max(1000.0 * elapsed_s)
    }
}
