//! Congestion control of the call's one video encoder: a [`CongestionController`] per peer
//! (fed that peer's transport-wide feedback and receiver reports), and the encoder running at
//! the smallest of their video targets, so the slowest path is not overrun and audio keeps
//! its share on every path. Plain state, fed `(input, now)`: the loop applies what it returns.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use media::bwe::{
    shared_video_target, video_rung, Bitrate, CongestionConfig, CongestionController, PacketResult,
    VideoRung,
};

use super::peer::PeerId;

/// RTT assumed for a receiver report before any RTT was measured.
const DEFAULT_RTT: Duration = Duration::from_millis(100);

/// A new setting for the one video encoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EncoderSetting {
    /// Video bitrate, bits per second.
    pub(crate) bps: u32,
    /// Frame size and rate to send at (at most what was asked); `None`: pause video (the
    /// rate does not carry a picture worth sending; audio goes on).
    pub(crate) rung: Option<VideoRung>,
}

/// The per-peer controllers of one encoder.
pub(crate) struct Congestion {
    config: CongestionConfig,
    peers: BTreeMap<PeerId, CongestionController>,
    /// The setting last handed to the encoder.
    applied: Option<EncoderSetting>,
}

impl Congestion {
    /// Controllers for video of `width`x`height` at `fps` (the top of the ladder).
    pub(crate) fn new(width: u32, height: u32, fps: u32) -> Self {
        Self {
            config: CongestionConfig {
                wanted: VideoRung { width, height, fps },
                ..CongestionConfig::default()
            },
            peers: BTreeMap::new(),
            applied: None,
        }
    }

    /// A peer that receives our video.
    pub(crate) fn add_peer(&mut self, peer: PeerId) {
        self.peers
            .entry(peer)
            .or_insert_with(|| CongestionController::new(self.config));
    }

    /// A peer that left; returns a new encoder rate if it was the slowest.
    pub(crate) fn remove_peer(&mut self, peer: PeerId, now: Instant) -> Option<EncoderSetting> {
        self.peers.remove(&peer)?;
        self.rate_if_changed(now, true)
    }

    /// Transport-wide feedback from `peer`; returns a new encoder bitrate when one is due.
    pub(crate) fn on_feedback(
        &mut self,
        peer: PeerId,
        results: &[PacketResult],
        now: Instant,
    ) -> Option<EncoderSetting> {
        let controller = self.peers.get_mut(&peer)?;
        controller.on_transport_feedback(results, now);
        let due = controller.encoder_rate(now).is_some();
        self.rate_if_changed(now, due)
    }

    /// A receiver report block from `peer` about our stream (`rtt`: the latest measured).
    pub(crate) fn on_receiver_report(
        &mut self,
        peer: PeerId,
        fraction_lost: u8,
        rtt: Option<Duration>,
        now: Instant,
    ) -> Option<EncoderSetting> {
        let controller = self.peers.get_mut(&peer)?;
        controller.on_receiver_report(fraction_lost, rtt.unwrap_or(DEFAULT_RTT), now);
        let due = controller.encoder_rate(now).is_some();
        self.rate_if_changed(now, due)
    }

    /// The smallest video target, when some peer's controller said a change is worth it (its
    /// own hysteresis: each change of the openh264 rate costs a keyframe).
    fn rate_if_changed(&mut self, now: Instant, due: bool) -> Option<EncoderSetting> {
        if !due {
            return None;
        }
        let target = shared_video_target(self.peers.values().map(|c| c.video_target(now)))?;
        // Never hand the encoder less than openh264 accepts (H264Encoder refuses < 10 kbit/s).
        let bps = target.bps().max(Bitrate::from_kbps(10).bps());
        let setting = EncoderSetting {
            bps: u32::try_from(bps).unwrap_or(u32::MAX),
            rung: video_rung(target, self.config.wanted),
        };
        if self.applied == Some(setting) {
            return None;
        }
        self.applied = Some(setting);
        Some(setting)
    }

    /// The estimate for audio and video together on the slowest path (W3C
    /// `availableOutgoingBitrate`), bits per second.
    pub(crate) fn available_outgoing_bitrate(&self, now: Instant) -> Option<u64> {
        self.peers.values().map(|c| c.target(now).bps()).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` packets numbered from `first`, sent 5 ms apart from `from`, all received 20 ms
    /// later (plus `queue_growth` per packet) or all lost.
    fn feedback(
        first: u64,
        from: Instant,
        n: u64,
        lost: bool,
        queue_growth: Duration,
    ) -> Vec<PacketResult> {
        (0..n)
            .map(|i| {
                let sent = from + Duration::from_millis(5 * i);
                PacketResult {
                    seq: first + i,
                    size: 1200,
                    send_time: sent,
                    arrival: (!lost)
                        .then(|| sent + Duration::from_millis(20) + queue_growth * i as u32),
                }
            })
            .collect()
    }

    #[test]
    fn the_encoder_follows_the_slowest_peer_and_recovers_when_it_leaves() {
        let t0 = Instant::now();
        let mut cc = Congestion::new(640, 480, 30);
        let (fast, slow) = (PeerId(0), PeerId(1));
        cc.add_peer(fast);
        cc.add_peer(slow);
        let first = cc.on_feedback(fast, &feedback(0, t0, 20, false, Duration::ZERO), t0);
        assert!(first.is_some(), "the first feedback sets a rate");
        // The slow peer loses everything for a while: the shared rate drops.
        let mut now = t0;
        let mut lowest = first.unwrap().bps;
        for k in 0..20 {
            now = t0 + Duration::from_millis(100 * (k + 1));
            let seq = 20 * (k + 1);
            if let Some(set) =
                cc.on_feedback(slow, &feedback(seq, now, 20, true, Duration::ZERO), now)
            {
                lowest = lowest.min(set.bps);
                if set.bps < 100_000 {
                    assert!(
                        set.rung.is_none_or(|r| r.width < 640),
                        "a low rate does not carry 640x480: {set:?}"
                    );
                }
            }
            cc.on_feedback(fast, &feedback(seq, now, 20, false, Duration::ZERO), now);
        }
        let first = first.unwrap();
        assert!(lowest < first.bps, "{lowest} < {}", first.bps);
        assert_eq!(first.rung.map(|r| (r.width, r.height)), Some((640, 480)));
        // Without the slow peer the rate is the fast one's again.
        let after = cc
            .remove_peer(slow, now)
            .expect("a new rate once the slowest left");
        assert!(after.bps > lowest, "{} > {lowest}", after.bps);
        assert!(cc.available_outgoing_bitrate(now).is_some());
    }

    #[test]
    fn unknown_peers_and_repeats_change_nothing() {
        let t0 = Instant::now();
        let mut cc = Congestion::new(320, 240, 15);
        assert_eq!(
            cc.on_feedback(PeerId(9), &feedback(0, t0, 5, false, Duration::ZERO), t0),
            None
        );
        assert_eq!(cc.on_receiver_report(PeerId(9), 0, None, t0), None);
        assert_eq!(cc.available_outgoing_bitrate(t0), None);
    }
}
