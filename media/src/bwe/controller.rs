//! The congestion controller the engine owns, one per peer: the session's feedback in, the
//! rates for the audio and video encoders out. Sans-IO: every call takes `now`.
//!
//! Feeding: each `SessionEvent::TransportFeedback { results, at }` goes to
//! [`CongestionController::on_transport_feedback`]; each receiver report about our streams
//! (`RtcpFeedback::ReceiverReport`, its block's `fraction_lost`, with the RTT the stats
//! computed) to [`CongestionController::on_receiver_report`], which uses it only while no
//! transport feedback has come (the same losses must not count twice). Reading: after feedback,
//! [`CongestionController::encoder_rate`] says whether and how to reconfigure the video encoder.
//! With several peers sharing one encoder, the encoder runs at [`shared_video_target`] of the
//! peers' video targets (see `docs/decisions.md`).
//!
//! ```ignore
//! // In the call loop, per peer:
//! match event {
//!     SessionEvent::TransportFeedback { results, at } => {
//!         cc.on_transport_feedback(&results, at);
//!         if let Some(r) = cc.encoder_rate(at) {
//!             match r.rung {
//!                 // Same size: just the rate (the next frame is a keyframe).
//!                 Some(rung) => encoder.set_rate(r.bitrate.bps() as u32, rung.fps as f32)?,
//!                 None => { /* pause video until a later EncoderRate has a rung */ }
//!             }
//!         }
//!     }
//!     SessionEvent::Rtcp { kind: RtcpFeedback::ReceiverReport { blocks, .. }, at } => {
//!         for b in &blocks { cc.on_receiver_report(b.fraction_lost, rtt, at); }
//!     }
//!     _ => {}
//! }
//! ```

use std::time::{Duration, Instant};

use super::{split, video_rung, BandwidthEstimator, Bitrate, BweConfig, PacketResult, VideoRung};

/// A decrease of at least this fraction reaches the encoder at once.
const DECREASE_STEP: f64 = 0.10;
/// An increase of at least this fraction reaches the encoder...
const INCREASE_STEP: f64 = 0.15;
/// ...but not sooner than this after the previous change: each change of the openh264 rate
/// costs a keyframe ([`crate::codec::h264::H264Encoder::set_rate`]).
const MIN_INCREASE_INTERVAL: Duration = Duration::from_secs(1);

/// What the controller is set up with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CongestionConfig {
    /// Bounds and start of the estimate (audio and video together).
    pub bwe: BweConfig,
    /// The audio encoder's rate: taken first, so audio is never starved by video.
    pub audio: Bitrate,
    /// The video size and frame rate the user asked for (the top of the ladder).
    pub wanted: VideoRung,
}

impl Default for CongestionConfig {
    fn default() -> Self {
        Self {
            bwe: BweConfig::default(),
            audio: Bitrate::from_kbps(32),
            wanted: VideoRung {
                width: 640,
                height: 480,
                fps: 30,
            },
        }
    }
}

/// A new setting for the video encoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncoderRate {
    /// Video bitrate to give the encoder.
    pub bitrate: Bitrate,
    /// Frame size and rate to encode at; `None`: pause video (keep audio).
    pub rung: Option<VideoRung>,
}

/// Feedback in, target rates out; see the module documentation.
#[derive(Debug)]
pub struct CongestionController {
    bwe: BandwidthEstimator,
    audio: Bitrate,
    wanted: VideoRung,
    /// Whether transport feedback ever came (then receiver reports only inform the RTT).
    transport_feedback: bool,
    /// What [`CongestionController::encoder_rate`] last handed out, and when.
    applied: Option<(EncoderRate, Instant)>,
}

impl CongestionController {
    /// A controller starting at `config.bwe.start`.
    pub fn new(config: CongestionConfig) -> Self {
        Self {
            bwe: BandwidthEstimator::new(config.bwe),
            audio: config.audio,
            wanted: config.wanted,
            transport_feedback: false,
            applied: None,
        }
    }

    /// Feeds the matched results of one transport-wide feedback read at `now`.
    pub fn on_transport_feedback(&mut self, results: &[PacketResult], now: Instant) {
        if results.is_empty() {
            return;
        }
        self.transport_feedback = true;
        self.bwe.on_feedback(results, now);
    }

    /// Feeds a receiver report block about our stream: `fraction_lost` as on the wire (in
    /// 1/256) and the round-trip time. Ignored once transport feedback flows (it already
    /// counts every loss).
    pub fn on_receiver_report(&mut self, fraction_lost: u8, rtt: Duration, now: Instant) {
        if self.transport_feedback {
            return;
        }
        self.bwe
            .on_loss_report(f64::from(fraction_lost) / 256.0, rtt, now);
    }

    /// The rate for audio and video together.
    pub fn target(&self, now: Instant) -> Bitrate {
        self.bwe.target(now)
    }

    /// The rate left for video once audio has its share (zero when the estimate does not even
    /// cover audio).
    pub fn video_target(&self, now: Instant) -> Bitrate {
        split(self.target(now), self.audio)
    }

    /// The frame size and rate the video target carries; `None`: pause video.
    pub fn video_rung(&self, now: Instant) -> Option<VideoRung> {
        video_rung(self.video_target(now), self.wanted)
    }

    /// A new encoder setting when the video target moved enough to be worth a change (the
    /// first call always answers): decreases of 10 % and more at once, increases of 15 % and
    /// more at most once a second, any change of frame size, frame rate or pause at once.
    /// `None`: keep the encoder as it is.
    pub fn encoder_rate(&mut self, now: Instant) -> Option<EncoderRate> {
        let bitrate = self.video_target(now);
        let next = EncoderRate {
            bitrate,
            rung: video_rung(bitrate, self.wanted),
        };
        let change = match self.applied {
            None => true,
            Some((prev, _)) if prev.rung != next.rung => true,
            Some((prev, at)) => {
                let (old, new) = (prev.bitrate.as_f64(), bitrate.as_f64());
                new <= old * (1.0 - DECREASE_STEP)
                    || (new >= old * (1.0 + INCREASE_STEP)
                        && now.saturating_duration_since(at) >= MIN_INCREASE_INTERVAL)
            }
        };
        if !change {
            return None;
        }
        self.applied = Some((next, now));
        Some(next)
    }

    /// The estimator inside, for stats (delay- and loss-based parts, acknowledged rate).
    pub fn estimator(&self) -> &BandwidthEstimator {
        &self.bwe
    }
}

/// The rate of one video encoder shared by several peers: the smallest of their video
/// targets, so the slowest path is not overrun (`None` with no peers).
pub fn shared_video_target(targets: impl IntoIterator<Item = Bitrate>) -> Option<Bitrate> {
    targets.into_iter().min()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn controller(start_kbps: u64) -> CongestionController {
        CongestionController::new(CongestionConfig {
            bwe: BweConfig {
                start: Bitrate::from_kbps(start_kbps),
                ..BweConfig::default()
            },
            ..CongestionConfig::default()
        })
    }

    /// One feedback of `n` packets sent 5 ms apart from `t`, all received (`lost` = every
    /// packet lost instead) with a constant 20 ms delay.
    fn feedback(first: u64, n: u64, t: Instant, lost: bool) -> Vec<PacketResult> {
        (0..n)
            .map(|k| {
                let send_time = t + Duration::from_millis(5 * k);
                PacketResult {
                    seq: first + k,
                    size: 1200,
                    send_time,
                    arrival: (!lost).then(|| send_time + Duration::from_millis(20)),
                }
            })
            .collect()
    }

    #[test]
    fn audio_takes_its_share_first() {
        let c = controller(600);
        let now = Instant::now();
        assert_eq!(c.target(now), Bitrate::from_kbps(600));
        assert_eq!(c.video_target(now), Bitrate::from_kbps(568));
        let c = CongestionController::new(CongestionConfig {
            bwe: BweConfig {
                min: Bitrate::from_kbps(20),
                start: Bitrate::from_kbps(30),
                ..BweConfig::default()
            },
            ..CongestionConfig::default()
        });
        assert_eq!(c.video_target(now), Bitrate::from_bps(0));
        assert_eq!(
            c.video_rung(now),
            None,
            "video pauses, audio keeps its 32 kbit/s"
        );
    }

    #[test]
    fn receiver_reports_steer_only_until_transport_feedback_comes() {
        let t0 = Instant::now();
        let mut c = controller(1000);
        // 30 % loss in receiver reports pulls the target down...
        for s in 1..=3 {
            c.on_receiver_report(77, Duration::from_millis(50), t0 + Duration::from_secs(s));
        }
        let after_rr = c.target(t0 + Duration::from_secs(3));
        assert!(after_rr < Bitrate::from_kbps(1000), "{after_rr:?}");
        // ...but once transport feedback flows, the same reports change nothing.
        let mut c = controller(1000);
        let t = t0 + Duration::from_millis(100);
        c.on_transport_feedback(&feedback(0, 20, t0, false), t);
        let before = c.target(t);
        for s in 1..=3 {
            c.on_receiver_report(77, Duration::from_millis(50), t + Duration::from_millis(s));
        }
        assert_eq!(c.target(t + Duration::from_millis(3)), before);
    }

    #[test]
    fn heavy_reported_loss_lowers_the_video_target() {
        let t0 = Instant::now();
        let mut c = controller(1000);
        let mut seq = 0;
        for round in 0..20u64 {
            let t = t0 + Duration::from_millis(100 * round);
            // Every second feedback loses everything: 50 % loss.
            let fb = feedback(seq, 20, t, round % 2 == 1);
            seq += 20;
            c.on_transport_feedback(&fb, t + Duration::from_millis(120));
        }
        let now = t0 + Duration::from_secs(2);
        assert!(
            c.video_target(now) < Bitrate::from_kbps(700),
            "{:?}",
            c.video_target(now)
        );
    }

    #[test]
    fn encoder_rate_has_hysteresis() {
        let t0 = Instant::now();
        let mut c = controller(600);
        let first = c.encoder_rate(t0).expect("the first call sets the encoder");
        assert_eq!(first.bitrate, Bitrate::from_kbps(568));
        assert_eq!(c.encoder_rate(t0), None, "nothing moved");
        // Feedback at a steady rate: the target creeps up, in small steps the encoder skips...
        let mut seq = 0;
        let mut changes = Vec::new();
        for round in 0..100u64 {
            let t = t0 + Duration::from_millis(50 * round);
            c.on_transport_feedback(&feedback(seq, 10, t, false), t + Duration::from_millis(50));
            seq += 10;
            if let Some(r) = c.encoder_rate(t + Duration::from_millis(50)) {
                changes.push((t, r.bitrate));
            }
        }
        // ...and changes at most once a second, each by 15 % or more.
        assert!(!changes.is_empty(), "5 s of clean feedback raise the rate");
        let mut prev = (t0, first.bitrate);
        for &(t, r) in &changes {
            assert!(
                t.duration_since(prev.0) >= Duration::from_millis(950),
                "{changes:?}"
            );
            assert!(r.as_f64() >= prev.1.as_f64() * 1.15, "{changes:?}");
            prev = (t, r);
        }
    }

    proptest::proptest! {
        /// Whatever feedback and reports arrive, in whatever order and timing, the target stays
        /// within the bounds, video never gets more than what audio leaves, and a rung is
        /// given exactly when video is not paused.
        #[test]
        fn rates_stay_within_bounds(
            steps in proptest::collection::vec(
                (0u64..400, proptest::option::of(0u8..=255), proptest::collection::vec(
                    (0u64..50, 0usize..1500, 0u64..200, proptest::option::of(0u64..500)), 0..30)),
                0..60),
        ) {
            let t0 = Instant::now();
            let mut c = controller(600);
            let config = CongestionConfig::default();
            let mut now = t0;
            let mut seq = 0u64;
            for (dt, rr, packets) in steps {
                now += Duration::from_millis(dt);
                if let Some(lost) = rr {
                    c.on_receiver_report(lost, Duration::from_millis(dt), now);
                }
                let results: Vec<PacketResult> = packets
                    .iter()
                    .map(|&(gap, size, age, delay)| {
                        seq += gap;
                        let send_time = now.checked_sub(Duration::from_millis(age)).unwrap_or(now);
                        PacketResult {
                            seq,
                            size,
                            send_time,
                            arrival: delay.map(|d| send_time + Duration::from_millis(d)),
                        }
                    })
                    .collect();
                c.on_transport_feedback(&results, now);
                let target = c.target(now);
                proptest::prop_assert!(target >= config.bwe.min && target <= config.bwe.max);
                proptest::prop_assert!(c.video_target(now) <= target);
                if let Some(r) = c.encoder_rate(now) {
                    proptest::prop_assert_eq!(r.rung.is_some(), r.bitrate >= super::super::VIDEO_PAUSE_BELOW);
                }
            }
        }
    }

    #[test]
    fn shared_encoder_runs_at_the_slowest_peer() {
        let rates = [700, 300, 900].map(Bitrate::from_kbps);
        assert_eq!(shared_video_target(rates), Some(Bitrate::from_kbps(300)));
        assert_eq!(shared_video_target([]), None);
    }
}
