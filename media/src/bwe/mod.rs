//! Bandwidth estimation for sending video, sans-IO, in the spirit of Google Congestion Control.
//!
//! Distance from the wire: the session shell turns transport-wide congestion-control feedback
//! (RTCP `TransportLayerCc`, matched with the send times it recorded) into [`PacketResult`]s
//! (`SessionEvent::TransportFeedback`). The engine owns one [`CongestionController`] per peer
//! and hands it those and, while there are none, receiver-report loss; the controller feeds
//! the [`BandwidthEstimator`], gives audio its share first with [`split`], asks [`video_rung`]
//! what frame size and rate the rest carries, and says when the encoder should change.
//!
//! Inside: burst grouping (`inter_arrival`) feeds a delay trendline (`trendline`) whose
//! verdict drives an AIMD controller (`aimd`); a loss-based limit (`loss`) caps it; the
//! target is the smaller of the two within the configured bounds. Time is an argument.

mod aimd;
mod bitrate;
mod controller;
mod inter_arrival;
mod loss;
mod split;
mod throughput;
mod trendline;

#[cfg(test)]
mod tests;

use std::time::{Duration, Instant};

pub use bitrate::Bitrate;
pub use controller::{shared_video_target, CongestionConfig, CongestionController, EncoderRate};
pub use split::{split, video_rung, VideoRung, VIDEO_PAUSE_BELOW};
pub use trendline::BandwidthUsage;

use aimd::AimdRateControl;
use inter_arrival::{signed_ms, InterArrival};
use loss::LossBased;
use throughput::Throughput;
use trendline::Trendline;

/// Without any feedback for this long the path is presumed congested or gone...
const FEEDBACK_TIMEOUT: Duration = Duration::from_millis(1500);
/// ...and the target is multiplied by this for every further second without feedback.
const TIMEOUT_DECAY_PER_S: f64 = 0.8;

/// Bounds and starting point of the estimate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BweConfig {
    /// Never below this (it should at least carry audio).
    pub min: Bitrate,
    /// Never above this.
    pub max: Bitrate,
    /// Before any feedback.
    pub start: Bitrate,
    /// Multiplicative increase per second while far from any known link capacity (0.2 = 20 %/s).
    /// libwebrtc uses 8 %/s plus active probing; without probes 20 %/s recovers a lifted cap
    /// from 0.5 to 1.5 Mbit/s in about 6 s.
    pub increase_per_second: f64,
}

impl Default for BweConfig {
    fn default() -> Self {
        BweConfig {
            min: Bitrate::from_kbps(50),
            max: Bitrate::from_kbps(4000),
            start: Bitrate::from_kbps(600),
            increase_per_second: 0.2,
        }
    }
}

/// What transport feedback says about one sent packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketResult {
    /// Transport-wide sequence number, unwrapped to 64 bits by the shell.
    pub seq: u64,
    /// Bytes on the wire (RTP header and payload).
    pub size: usize,
    /// When the shell handed the packet to the transport.
    pub send_time: Instant,
    /// When the receiver got it (its clock offset does not matter, only differences do);
    /// `None` when it was reported lost.
    pub arrival: Option<Instant>,
}

/// The GCC-style estimator: feed it feedback and time, read the target.
#[derive(Debug)]
pub struct BandwidthEstimator {
    min: Bitrate,
    max: Bitrate,
    inter_arrival: InterArrival,
    trendline: Trendline,
    aimd: AimdRateControl,
    loss: LossBased,
    throughput: Throughput,
    highest_seq: Option<u64>,
    last_feedback: Option<Instant>,
    /// Whether any transport feedback came; until then receiver reports alone steer.
    transport_feedback: bool,
    rtt: Duration,
    /// Reused to sort each batch by sequence number without allocating.
    scratch: Vec<PacketResult>,
}

impl BandwidthEstimator {
    /// A fresh estimator; a config with `min > max` is read as `min = max`.
    pub fn new(config: BweConfig) -> Self {
        let max = config.max;
        let min = config.min.min(max);
        let increase = if config.increase_per_second.is_finite() {
            config.increase_per_second.clamp(0.0, 1.0)
        } else {
            BweConfig::default().increase_per_second
        };
        BandwidthEstimator {
            min,
            max,
            inter_arrival: InterArrival::default(),
            trendline: Trendline::default(),
            aimd: AimdRateControl::new(config.start.as_f64(), min.as_f64(), max.as_f64(), increase),
            loss: LossBased::default(),
            throughput: Throughput::default(),
            highest_seq: None,
            last_feedback: None,
            transport_feedback: false,
            rtt: Duration::from_millis(200),
            scratch: Vec::new(),
        }
    }

    /// Feeds one batch of transport feedback received at `now`. Order within the batch does not
    /// matter; packets already reported (duplicates, late re-reports) are ignored.
    pub fn on_feedback(&mut self, packets: &[PacketResult], now: Instant) {
        self.apply_timeout(now);
        self.scratch.clear();
        self.scratch.extend_from_slice(packets);
        self.scratch.sort_unstable_by_key(|p| p.seq);
        let (mut lost, mut total) = (0u32, 0u32);
        for p in &self.scratch {
            if self.highest_seq.is_some_and(|h| p.seq <= h) {
                continue;
            }
            self.highest_seq = Some(p.seq);
            total = total.saturating_add(1);
            match p.arrival {
                None => lost = lost.saturating_add(1),
                Some(arrival) => {
                    self.throughput.on_arrival(arrival, p.size);
                    if let Some(delta) = self.inter_arrival.on_packet(p.send_time, arrival) {
                        self.trendline.update(delta);
                    }
                    if let Some(rtt) = now.checked_duration_since(p.send_time) {
                        // The newest packet's age bounds the RTT from above (feedback waits
                        // up to one interval); good enough to pace decreases.
                        self.rtt = rtt.min(Duration::from_secs(10));
                    }
                }
            }
        }
        if total == 0 {
            return;
        }
        self.transport_feedback = true;
        self.aimd.set_rtt(self.rtt);
        let acked = self.throughput.rate();
        let usage = self.trendline.state();
        if usage != BandwidthUsage::Overusing || self.aimd.time_to_reduce_further(now, acked) {
            self.aimd.update(usage, acked, now);
        }
        let current = self.target_f64();
        self.loss.on_packets(lost, total, now, current, self.rtt);
    }

    /// Feeds an RTCP receiver report: `fraction_lost` (0.0–1.0, the report's 8-bit field / 256)
    /// and the round-trip time the shell computed from it. For paths without transport feedback:
    /// until transport feedback arrives, the loss rule alone moves the target (up to `max`).
    /// Once transport feedback flows, do not also pass receiver reports: the same losses would
    /// count twice.
    pub fn on_loss_report(&mut self, fraction_lost: f64, rtt: Duration, now: Instant) {
        self.apply_timeout(now);
        self.rtt = rtt.min(Duration::from_secs(10));
        self.aimd.set_rtt(self.rtt);
        if self.transport_feedback {
            let current = self.target_f64();
            self.loss.apply(fraction_lost, now, current, self.rtt, true);
        } else {
            self.loss.seed(self.aimd.target());
            self.loss
                .apply(fraction_lost, now, self.max.as_f64(), self.rtt, false);
        }
    }

    /// The rate the sender should use now (audio and video together).
    pub fn target(&self, now: Instant) -> Bitrate {
        let decay = self.timeout_decay(now);
        Bitrate::from_f64(self.target_f64() * decay).clamp(self.min, self.max)
    }

    /// The delay-based part alone (for stats).
    pub fn delay_based(&self) -> Bitrate {
        Bitrate::from_f64(self.aimd.target())
    }

    /// The loss-based limit, when loss imposes one (for stats).
    pub fn loss_based(&self) -> Option<Bitrate> {
        self.loss.limit().map(Bitrate::from_f64)
    }

    /// The last loss fraction measured (0.0–1.0), if any.
    pub fn loss_fraction(&self) -> Option<f64> {
        self.loss.last_fraction()
    }

    /// The throughput the receiver acknowledged over the last 500 ms, if known.
    pub fn acknowledged(&self) -> Option<Bitrate> {
        self.throughput.rate().map(Bitrate::from_f64)
    }

    /// What the delay trendline currently says.
    pub fn usage(&self) -> BandwidthUsage {
        self.trendline.state()
    }

    fn target_f64(&self) -> f64 {
        let delay = self.aimd.target();
        match self.loss.limit() {
            Some(l) if !self.transport_feedback => l,
            Some(l) => l.min(delay),
            None => delay,
        }
    }

    /// Factor for the time since the last feedback beyond the timeout (1.0 within it).
    fn timeout_decay(&self, now: Instant) -> f64 {
        let Some(last) = self.last_feedback else {
            return 1.0;
        };
        let silent_s = (signed_ms(now, last) - FEEDBACK_TIMEOUT.as_secs_f64() * 1000.0) / 1000.0;
        if silent_s <= 0.0 {
            return 1.0;
        }
        TIMEOUT_DECAY_PER_S.powf(silent_s.floor() + 1.0)
    }

    /// Makes a timeout decay permanent when feedback resumes, then notes this feedback's time.
    fn apply_timeout(&mut self, now: Instant) {
        let decay = self.timeout_decay(now);
        if decay < 1.0 {
            self.aimd.scale(decay);
        }
        if self.last_feedback.is_none_or(|l| now > l) {
            self.last_feedback = Some(now);
        }
    }
}
