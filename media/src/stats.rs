//! Call statistics as plain data, and the sans-IO receive-side accounting that fills them.
//!
//! [`ReceiveCounter`] follows RFC 3550 (appendix A.1 and A.8): extended sequence numbers for
//! expected/lost counts and the interarrival jitter estimate. The call loop feeds it every RTP
//! packet with its arrival time; webrtc-rs supplies the round-trip time, labelled with its
//! [`RttSource`].

use std::time::{Duration, Instant};

use serde::Serialize;

/// A snapshot of one call's statistics, printed live and written by `--stats-json`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CallStats {
    /// Seconds since the call connected.
    pub elapsed_s: f64,
    /// Round-trip time, milliseconds; [`CallStats::rtt_source`] says how it was measured.
    pub rtt_ms: Option<f64>,
    /// Where [`CallStats::rtt_ms`] came from.
    pub rtt_source: Option<RttSource>,
    /// Local candidate type in use ("host", "relay").
    pub candidate_type: Option<String>,
    /// Audio packets sent.
    pub packets_sent: u64,
    /// Audio packets received.
    pub packets_received: u64,
    /// Audio packets lost (expected minus received, RFC 3550).
    pub packets_lost: i64,
    /// Fraction of expected packets lost, 0..1.
    pub loss_fraction: f64,
    /// RFC 3550 interarrival jitter, milliseconds.
    pub jitter_ms: f64,
    /// Send bitrate over the last interval, kbit/s (RTP payload).
    pub send_kbps: f64,
    /// Receive bitrate over the last interval, kbit/s (RTP payload).
    pub recv_kbps: f64,
    /// Level of the audio we play, dBFS (RMS of the last frame).
    pub audio_level_dbfs: f32,
    /// Audio frames decoded normally.
    pub frames_decoded: u64,
    /// Audio frames recovered from in-band FEC.
    pub frames_fec: u64,
    /// Audio frames concealed (PLC).
    pub frames_concealed: u64,
    /// Current jitter-buffer delay, milliseconds.
    pub jitter_buffer_ms: f64,
    /// Target jitter-buffer delay, milliseconds.
    pub jitter_target_ms: f64,
    /// Fraction of packets that arrived too late to be played, 0..1.
    pub late_loss_rate: f64,
    /// Time from the start of dialing (or of answering) to the first decoded audio frame, ms.
    pub first_audio_ms: Option<f64>,
    /// Chat frames of a type this version does not know, ignored (docs/protocol.md §19.4).
    pub chat_frames_ignored: u64,
    /// Chat frames dropped as malformed or over a limit (docs/protocol.md §19.4).
    pub chat_frames_malformed: u64,
    /// The video we send; `None` when this side sends no video.
    pub video_sent: Option<VideoSendStats>,
    /// The video we receive; `None` when the call carries no video towards us.
    pub video_received: Option<VideoReceiveStats>,
}

/// Figures of the local video track (one encoder, whatever the number of peers). Names follow
/// W3C webrtc-stats `RTCOutboundRtpStreamStats` where one exists (camelCase in JSON).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VideoSendStats {
    /// Frames captured and handed to the encoder.
    pub frames_captured: u64,
    /// Frames the encoder produced (rate control may skip some).
    pub frames_encoded: u64,
    /// Encoded frames handed to at least one peer's session.
    pub frames_sent: u64,
    /// IDR frames encoded (the first, periodic ones, and answers to PLI/FIR).
    pub key_frames_encoded: u64,
    /// Width of the last encoded frame, pixels.
    pub frame_width: u32,
    /// Height of the last encoded frame, pixels.
    pub frame_height: u32,
    /// Frames encoded in the last second.
    pub frames_per_second: f64,
    /// Seconds spent encoding, in total.
    pub total_encode_time: f64,
    /// Mean encode time per encoded frame, milliseconds.
    pub encode_ms_per_frame: f64,
    /// Keyframe requests received (PLI).
    pub pli_count: u64,
    /// Full intra requests received (FIR).
    pub fir_count: u64,
    /// NACK messages received.
    pub nack_count: u64,
    /// Packets sent again in answer to NACKs.
    pub retransmitted_packets_sent: u64,
    /// Bitrate the encoder is asked for, bits per second.
    pub target_bitrate: u32,
    /// Congestion control's estimate of what the slowest path to a peer carries, audio and
    /// video together, bits per second (W3C `availableOutgoingBitrate`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub available_outgoing_bitrate: Option<u64>,
}

/// Figures of one remote video track. Names follow W3C webrtc-stats
/// `RTCInboundRtpStreamStats` where one exists (camelCase in JSON).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VideoReceiveStats {
    /// Video RTP packets received.
    pub packets_received: u64,
    /// Complete frames the frame buffer released to the decoder.
    pub frames_received: u64,
    /// Frames decoded into a picture.
    pub frames_decoded: u64,
    /// Keyframes decoded.
    pub key_frames_decoded: u64,
    /// Frames dropped: incomplete, undecodable, or waiting for a keyframe.
    pub frames_dropped: u64,
    /// Frames decoded in the last second.
    pub frames_per_second: f64,
    /// Width of the last decoded picture, pixels.
    pub frame_width: u32,
    /// Height of the last decoded picture, pixels.
    pub frame_height: u32,
    /// Seconds spent decoding, in total.
    pub total_decode_time: f64,
    /// Mean decode time per decoded frame, milliseconds.
    pub decode_ms_per_frame: f64,
    /// Video freezes (W3C definition: a gap between pictures above
    /// max(3 × the mean frame interval, the mean + 150 ms)).
    pub freeze_count: u64,
    /// Seconds spent frozen, in total.
    pub total_freezes_duration: f64,
    /// Keyframe requests (PLI) sent.
    pub pli_count: u64,
    /// NACK messages sent.
    pub nack_count: u64,
    /// Decoder errors (each asks for a keyframe).
    pub decode_errors: u64,
    /// Median glass-to-glass latency, milliseconds: the capture time burned into the picture
    /// (the `pattern` source) to the end of decoding; `None` without such pictures.
    pub glass_to_glass_p50_ms: Option<f64>,
    /// 95th percentile glass-to-glass latency, milliseconds.
    pub glass_to_glass_p95_ms: Option<f64>,
}

/// How a round-trip time was measured, from the most to the least preferred.
///
/// Transport measurements (RTCP, ICE) see the network path; the data-channel ping also includes
/// the peer's SCTP stack and event loop (an aiortc peer on loopback answered it in 400–750 ms
/// while RTCP said under a millisecond), so it is only a fallback.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RttSource {
    /// A ping/pong on the chat data channel (SCTP over DTLS), timed by the call loop.
    DataChannel,
    /// ICE consent/connectivity checks on the selected candidate pair (STUN round trips).
    Ice,
    /// RTCP receiver reports about our audio: arrival time minus LSR minus DLSR (RFC 3550 6.4.1).
    Rtcp,
}

impl RttSource {
    /// Short label for a terminal line.
    pub fn label(self) -> &'static str {
        match self {
            RttSource::DataChannel => "dc",
            RttSource::Ice => "ice",
            RttSource::Rtcp => "rtcp",
        }
    }
}

/// One round-trip time measurement and how it was taken.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rtt {
    /// The round-trip time.
    pub value: Duration,
    /// How it was measured.
    pub source: RttSource,
}

impl CallStats {
    /// Records an RTT measurement unless a preferred source has already given one: a transport
    /// measurement replaces a data-channel one, never the other way round.
    pub fn offer_rtt(&mut self, rtt: Rtt) {
        if self.rtt_source.is_some_and(|current| current > rtt.source) {
            return;
        }
        self.rtt_ms = Some(rtt.value.as_secs_f64() * 1e3);
        self.rtt_source = Some(rtt.source);
    }

    /// The RTT with its source, as shown on the live line: `3.3 ms (rtcp)`, or `-`.
    pub fn rtt_text(&self) -> String {
        match (self.rtt_ms, self.rtt_source) {
            (Some(r), Some(src)) => format!("{r:.1} ms ({})", src.label()),
            (Some(r), None) => format!("{r:.1} ms"),
            _ => "-".into(),
        }
    }

    /// One line for a terminal.
    pub fn line(&self) -> String {
        let rtt = self.rtt_text();
        format!(
            "[{:>5.1}s] rtt {rtt} | rx {} pkts, lost {} ({:.1}%), jitter {:.1} ms | {:.1} kbps up, {:.1} kbps down | level {:.1} dBFS | buffer {:.0}/{:.0} ms | fec {} plc {}",
            self.elapsed_s,
            self.packets_received,
            self.packets_lost,
            self.loss_fraction * 100.0,
            self.jitter_ms,
            self.send_kbps,
            self.recv_kbps,
            self.audio_level_dbfs,
            self.jitter_buffer_ms,
            self.jitter_target_ms,
            self.frames_fec,
            self.frames_concealed,
        ) + &self.video_text()
    }

    /// The video part of [`CallStats::line`]: ` | video up 30 fps 640x480 | down 29 fps
    /// 640x480, dropped 0, freezes 0, g2g 41 ms`, or nothing without video.
    pub fn video_text(&self) -> String {
        let mut text = String::new();
        if let Some(s) = &self.video_sent {
            text += &format!(
                " | video up {:.0} fps {}x{}",
                s.frames_per_second, s.frame_width, s.frame_height
            );
        }
        if let Some(r) = &self.video_received {
            text += &format!(
                " | video down {:.0} fps {}x{}, dropped {}, freezes {}",
                r.frames_per_second,
                r.frame_width,
                r.frame_height,
                r.frames_dropped,
                r.freeze_count
            );
            if let Some(g2g) = r.glass_to_glass_p50_ms {
                text += &format!(", g2g {g2g:.0} ms");
            }
        }
        text
    }
}

/// Receive-side RTP accounting for one stream (RFC 3550 A.1, A.8).
#[derive(Clone, Debug)]
pub struct ReceiveCounter {
    clock_rate: u32,
    /// Extended (cycle-counting) sequence numbers are 64-bit: a peer that jumps ahead by
    /// almost half the sequence space on every packet would overflow 32 bits after ~131,000
    /// packets; 64 bits take longer than any call lasts.
    base_seq: Option<u64>,
    max_ext_seq: u64,
    received: u64,
    bytes: u64,
    jitter: f64,
    last_transit: Option<i64>,
    origin: Option<Instant>,
}

impl ReceiveCounter {
    /// A counter for a stream with RTP clock `clock_rate` Hz.
    pub fn new(clock_rate: u32) -> Self {
        Self {
            clock_rate,
            base_seq: None,
            max_ext_seq: 0,
            received: 0,
            bytes: 0,
            jitter: 0.0,
            last_transit: None,
            origin: None,
        }
    }

    /// Accounts one packet that arrived at `arrival`.
    pub fn on_packet(&mut self, seq: u16, rtp_ts: u32, payload_len: usize, arrival: Instant) {
        self.received = self.received.saturating_add(1);
        self.bytes = self.bytes.saturating_add(payload_len as u64);
        match self.base_seq {
            None => {
                self.base_seq = Some(u64::from(seq));
                self.max_ext_seq = u64::from(seq);
            }
            Some(_) => {
                let max16 = self.max_ext_seq as u16;
                let delta = seq.wrapping_sub(max16);
                if delta != 0 && delta < 0x8000 {
                    // Newer than anything seen (at most half the sequence space ahead, RFC 3550
                    // A.1), possibly across a wrap: advance by the 16-bit distance.
                    self.max_ext_seq = self.max_ext_seq.saturating_add(u64::from(delta));
                }
            }
        }
        let origin = *self.origin.get_or_insert(arrival);
        let arrival_units =
            (arrival.duration_since(origin).as_secs_f64() * f64::from(self.clock_rate)) as i64;
        let transit = arrival_units.saturating_sub(i64::from(rtp_ts));
        if let Some(last) = self.last_transit {
            let d = transit.saturating_sub(last).unsigned_abs() as f64;
            self.jitter += (d - self.jitter) / 16.0;
        }
        self.last_transit = Some(transit);
    }

    /// Packets received so far (duplicates included, as RFC 3550 counts them).
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Payload bytes received so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Packets expected from the first to the highest sequence number seen.
    pub fn expected(&self) -> u64 {
        match self.base_seq {
            None => 0,
            // max_ext_seq never moves below base_seq, so the subtraction cannot wrap.
            Some(base) => self.max_ext_seq.saturating_sub(base).saturating_add(1),
        }
    }

    /// Cumulative packets lost (may be negative with duplicates, as in RFC 3550).
    pub fn lost(&self) -> i64 {
        let clamp = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        clamp(self.expected()).saturating_sub(clamp(self.received))
    }

    /// Interarrival jitter.
    pub fn jitter(&self) -> Duration {
        Duration::from_secs_f64(self.jitter / f64::from(self.clock_rate))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_loss_across_wraparound() {
        let t0 = Instant::now();
        let mut c = ReceiveCounter::new(48_000);
        let mut seq = 65_530u16;
        for i in 0..20u32 {
            if i != 7 && i != 8 {
                c.on_packet(
                    seq,
                    i * 960,
                    100,
                    t0 + Duration::from_millis(u64::from(i) * 20),
                );
            }
            seq = seq.wrapping_add(1);
        }
        assert_eq!(c.expected(), 20);
        assert_eq!(c.received(), 18);
        assert_eq!(c.lost(), 2);
    }

    #[test]
    fn jitter_is_zero_for_perfect_pacing_and_grows_with_variation() {
        let t0 = Instant::now();
        let mut even = ReceiveCounter::new(48_000);
        let mut uneven = ReceiveCounter::new(48_000);
        for i in 0..100u32 {
            let at = t0 + Duration::from_millis(u64::from(i) * 20);
            even.on_packet(i as u16, i * 960, 10, at);
            let wobble = if i % 2 == 0 { 0 } else { 10 };
            uneven.on_packet(i as u16, i * 960, 10, at + Duration::from_millis(wobble));
        }
        assert!(even.jitter() < Duration::from_micros(100));
        assert!(uneven.jitter() > Duration::from_millis(5));
    }

    #[test]
    fn transport_rtt_wins_over_data_channel_and_is_labelled() {
        let mut s = CallStats::default();
        let ms = |v| Duration::from_micros(v);
        s.offer_rtt(Rtt {
            value: ms(500_000),
            source: RttSource::DataChannel,
        });
        assert_eq!(s.rtt_source, Some(RttSource::DataChannel));
        s.offer_rtt(Rtt {
            value: ms(1_500),
            source: RttSource::Rtcp,
        });
        // A later, slower data-channel ping does not hide the RTCP measurement.
        s.offer_rtt(Rtt {
            value: ms(600_000),
            source: RttSource::DataChannel,
        });
        assert_eq!(s.rtt_source, Some(RttSource::Rtcp));
        assert_eq!(s.rtt_ms, Some(1.5));
        assert!(s.line().contains("rtt 1.5 ms (rtcp)"), "{}", s.line());
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["rtt_source"], "rtcp");
    }

    /// Regression (issue 7 item 13): jumps of just under half the sequence space used to
    /// overflow the 32-bit extended sequence number (a panic in debug builds, a bogus count in
    /// release) after about 131,000 packets.
    #[test]
    fn many_large_forward_jumps_do_not_overflow() {
        let t0 = Instant::now();
        let mut c = ReceiveCounter::new(48_000);
        let jump = 0x7FFFu16;
        let packets = 140_000u64;
        let mut seq = 0u16;
        for _ in 0..packets {
            c.on_packet(seq, 0, 1, t0);
            seq = seq.wrapping_add(jump);
        }
        let expected = (packets - 1) * u64::from(jump) + 1;
        assert_eq!(c.expected(), expected);
        assert_eq!(c.lost(), (expected - packets) as i64);
    }

    #[test]
    fn reordered_packet_does_not_move_highest_backwards() {
        let t0 = Instant::now();
        let mut c = ReceiveCounter::new(48_000);
        c.on_packet(10, 0, 1, t0);
        c.on_packet(12, 1920, 1, t0);
        c.on_packet(11, 960, 1, t0);
        assert_eq!(c.expected(), 3);
        assert_eq!(c.lost(), 0);
    }

    proptest::proptest! {
        /// Any packet sequence (forward jumps, reordering, duplicates, wild timestamps and
        /// arrival times) is counted without panicking, and the extended highest sequence number
        /// equals the sum of the forward 16-bit steps, as a model computes it independently.
        #[test]
        fn arbitrary_streams_never_overflow(
            first in proptest::prelude::any::<u16>(),
            steps in proptest::collection::vec(
                (proptest::prelude::any::<u16>(), proptest::prelude::any::<u32>(), 0u64..10_000_000),
                0..400,
            ),
        ) {
            let t0 = Instant::now();
            let mut c = ReceiveCounter::new(48_000);
            c.on_packet(first, 0, 0, t0);
            let (mut model_max, mut model_last16) = (0u64, first);
            for (i, &(step, ts, at_us)) in steps.iter().enumerate() {
                let seq = model_last16.wrapping_add(step);
                // Quadruple every step on odd packets so large jumps repeat often.
                let seq = if i % 2 == 1 { seq.wrapping_add(step.wrapping_mul(3)) } else { seq };
                let delta = seq.wrapping_sub(model_last16);
                if delta != 0 && delta < 0x8000 {
                    model_max += u64::from(delta);
                    model_last16 = seq;
                }
                c.on_packet(seq, ts, usize::MAX, t0 + Duration::from_micros(at_us));
                let _ = c.jitter();
            }
            proptest::prop_assert_eq!(c.expected(), model_max + 1);
            proptest::prop_assert_eq!(c.received(), steps.len() as u64 + 1);
            proptest::prop_assert_eq!(c.lost(), (model_max + 1) as i64 - (steps.len() as i64 + 1));
        }
    }
}
