//! The video pipelines on virtual time: pattern → encode → packetize → (loss) → frame buffer →
//! decode, with the burned-in markers telling which frames came through.

use super::*;
use media::codec::pattern::TestPattern;
use media::jitter::video::FramePacketizer;
use rand::{Rng, SeedableRng};

const W: usize = 320;
const H: usize = 240;
const FPS: u32 = 30;
const FRAME: Duration = Duration::from_micros(1_000_000 / 30);
/// Unix time of `t0` in these tests.
const UNIX0: u64 = 1_700_000_000_000_000;

/// Sender side: pattern, send pipeline and packetizer, on virtual time from `t0`.
struct Sender {
    pattern: TestPattern,
    pipeline: VideoSendPipeline,
    packetizer: FramePacketizer,
    timestamp: u32,
    t0: Instant,
}

impl Sender {
    fn new(t0: Instant) -> Self {
        let cfg = H264Config {
            width: W,
            height: H,
            bitrate_bps: default_bitrate(W, H, FPS),
            fps: FPS as f32,
        };
        Self {
            pattern: TestPattern::new(W, H),
            pipeline: VideoSendPipeline::new(cfg).unwrap(),
            packetizer: FramePacketizer::new(1000, 1200).unwrap(),
            timestamp: 90_000,
            t0,
        }
    }

    /// Captures frame `n` at `t0 + n/30 s` and returns its packets (none if skipped).
    fn frame(&mut self, n: u32) -> (Instant, Vec<VideoPacket>) {
        let at = self.t0 + FRAME * n;
        let capture_us = UNIX0 + (at - self.t0).as_micros() as u64;
        let picture = self.pattern.next_frame_at(capture_us);
        self.pipeline.push(&picture, at).unwrap();
        let mut packets = Vec::new();
        while let Some(enc) = self.pipeline.poll() {
            packets.extend(
                self.packetizer
                    .packetize(&enc.data, self.timestamp)
                    .unwrap(),
            );
            self.timestamp = self
                .timestamp
                .wrapping_add((enc.duration.as_secs_f64() * 90_000.0).round() as u32);
        }
        (at, packets)
    }
}

fn rtp(p: &VideoPacket, arrival: Instant) -> ReceivedRtp {
    ReceivedRtp {
        seq: p.seq,
        timestamp: p.timestamp,
        ssrc: 42,
        marker: p.marker,
        payload: p.payload.clone(),
        arrival,
    }
}

/// Everything the receiver shows and asks for.
#[derive(Default)]
struct Seen {
    frames: Vec<u32>,
    latencies: Vec<Duration>,
    nacks: Vec<u16>,
    keyframe_requests: u32,
}

fn drain(rx: &mut VideoReceivePipeline, now: Instant, seen: &mut Seen) {
    while let Some(d) = rx.poll_frame(now) {
        assert_eq!((d.frame.width(), d.frame.height()), (W, H));
        if let Some(m) = d.marker {
            seen.frames.push(m.frame);
        }
        seen.latencies.extend(d.glass_to_glass);
    }
    while let Some(f) = rx.poll_feedback(now) {
        match f {
            VideoFeedback::Nack(seqs) => seen.nacks.extend(seqs),
            VideoFeedback::KeyframeRequest => seen.keyframe_requests += 1,
        }
    }
}

/// A lost packet is NACKed; its retransmission completes the frame and every frame is shown,
/// in order, with the glass-to-glass latency of the path (20 ms here).
#[test]
fn a_lost_packet_is_nacked_and_every_frame_arrives_in_order() {
    let t0 = Instant::now();
    let mut tx = Sender::new(t0);
    let mut rx = VideoReceivePipeline::new(t0, UNIX0).unwrap();
    let mut seen = Seen::default();
    let delay = Duration::from_millis(20);
    let mut lost = None;
    for n in 0..30 {
        let (at, packets) = tx.frame(n);
        let arrival = at + delay;
        for p in &packets {
            // The first packet of frame 10 is lost.
            if n == 10 && lost.is_none() {
                lost = Some(p.clone());
                continue;
            }
            rx.push(&rtp(p, arrival), arrival);
        }
        drain(&mut rx, arrival, &mut seen);
        // A timer wake-up 10 ms later (past the reordering grace): the NACK goes out and the
        // sender's retransmission is back at once.
        let later = arrival + Duration::from_millis(10);
        drain(&mut rx, later, &mut seen);
        if let Some(p) = lost.as_ref().filter(|p| seen.nacks.contains(&p.seq)) {
            rx.push(&rtp(p, later), later);
            drain(&mut rx, later, &mut seen);
            lost = None;
            assert_eq!(seen.nacks.len(), 1, "the lost packet is asked for once");
        }
    }
    assert!(lost.is_none(), "the lost packet was never asked for");
    assert_eq!(seen.frames, (0..30).collect::<Vec<_>>());
    assert_eq!(seen.keyframe_requests, 0);
    let stats = rx.stats(t0 + FRAME * 30);
    assert_eq!(stats.frames_decoded, 30);
    assert_eq!(stats.nack_count, 1);
    assert_eq!(
        (stats.frame_width, stats.frame_height),
        (W as u32, H as u32)
    );
    // Frames 10 and 11 waited for the retransmission; the others took the path delay.
    assert_eq!(stats.glass_to_glass_p50_ms, Some(20.0));
    assert!(seen.latencies.iter().all(|&l| l >= delay));
    assert_eq!(stats.freeze_count, 0);
    assert_eq!(tx.pipeline.stats().key_frames_encoded, 1);
}

/// Without the first IDR nothing decodes: a keyframe is asked for within [`KEYFRAME_WAIT`] of the
/// first packet; the sender's next frame is an IDR and pictures follow.
#[test]
fn a_missing_idr_brings_a_keyframe_request_and_then_pictures() {
    let t0 = Instant::now();
    let mut tx = Sender::new(t0);
    let mut rx = VideoReceivePipeline::new(t0, UNIX0).unwrap();
    let mut seen = Seen::default();
    let mut asked_at = None;
    for n in 0..40 {
        if seen.keyframe_requests > 0 && asked_at.is_none() {
            asked_at = Some(n);
            tx.pipeline.request_keyframe();
        }
        let (at, packets) = tx.frame(n);
        if n > 0 {
            for p in &packets {
                rx.push(&rtp(p, at), at);
            }
        }
        drain(&mut rx, at, &mut seen);
    }
    let asked_at = asked_at.expect("a keyframe was requested");
    // Frame 1 arrived first; the request comes at the latest 300 ms (9 frames) later (the frame
    // buffer asks as soon as it holds complete frames that cannot be decoded).
    assert!((2..=12).contains(&asked_at), "asked after frame {asked_at}");
    assert_eq!(seen.frames.first(), Some(&asked_at));
    assert_eq!(seen.frames.len(), 40 - asked_at as usize);
    assert_eq!(tx.pipeline.stats().key_frames_encoded, 2);
    let stats = rx.stats(t0 + FRAME * 40);
    assert!(stats.pli_count >= 1);
    assert!(stats.frames_dropped > 0);
}

/// Random payloads, random sequence numbers and marker bits do not panic and do not stop a
/// real stream that follows from decoding.
#[test]
fn garbage_payloads_do_not_panic_and_a_real_stream_recovers() {
    let t0 = Instant::now();
    let mut rng = rand::rngs::StdRng::seed_from_u64(8);
    let mut rx = VideoReceivePipeline::new(t0, UNIX0).unwrap();
    let mut seen = Seen::default();
    for i in 0..2000u32 {
        let len = rng.gen_range(0..1400);
        let mut payload = vec![0u8; len];
        rng.fill(&mut payload[..]);
        let now = t0 + Duration::from_millis(u64::from(i));
        let pkt = ReceivedRtp {
            seq: rng.gen(),
            timestamp: rng.gen(),
            ssrc: 1,
            marker: rng.gen(),
            payload: Bytes::from(payload),
            arrival: now,
        };
        rx.push(&pkt, now);
        drain(&mut rx, now, &mut seen);
    }
    // A real sender starts (new stream, far away in sequence space): its pictures decode.
    let later = t0 + Duration::from_secs(3);
    let mut tx = Sender::new(later);
    for n in 0..20 {
        let (at, packets) = tx.frame(n);
        for p in &packets {
            rx.push(&rtp(p, at), at);
        }
        drain(&mut rx, at, &mut seen);
        if seen.keyframe_requests > 0 {
            tx.pipeline.request_keyframe();
        }
    }
    assert!(
        seen.frames.len() >= 10,
        "only {} real frames decoded",
        seen.frames.len()
    );
}

/// A keyframe request makes exactly the next frame an IDR; a new bitrate waits for it.
#[test]
fn keyframe_requests_and_bitrate_changes_reach_the_encoder() {
    let t0 = Instant::now();
    let mut tx = Sender::new(t0);
    let keyframes = |tx: &mut Sender, from: u32, to: u32| {
        (from..to)
            .map(|n| {
                tx.frame(n);
                tx.pipeline.stats().key_frames_encoded
            })
            .last()
            .unwrap()
    };
    assert_eq!(keyframes(&mut tx, 0, 5), 1);
    let start = tx.pipeline.cfg.bitrate_bps;
    // Rate changes reach the running encoder with the next frame, without a keyframe.
    tx.pipeline.set_bitrate(start / 2);
    assert_eq!(tx.pipeline.stats().target_bitrate, start / 2);
    assert_eq!(keyframes(&mut tx, 5, 10), 1, "a rate change adds no IDR");
    assert_eq!(tx.pipeline.cfg.bitrate_bps, start / 2);
    tx.pipeline.set_bitrate(start * 2);
    assert_eq!(keyframes(&mut tx, 10, 12), 1);
    assert_eq!(tx.pipeline.cfg.bitrate_bps, start * 2);
    // A keyframe request does.
    tx.pipeline.request_keyframe();
    assert_eq!(keyframes(&mut tx, 12, 13), 2);
    assert_eq!(keyframes(&mut tx, 13, 20), 2);
    let s = tx.pipeline.stats();
    assert_eq!(s.frames_captured, 20);

    assert_eq!((s.frame_width, s.frame_height), (W as u32, H as u32));
}

/// A gap of half a second in a 30 fps stream is one freeze (W3C rule).
#[test]
fn a_long_gap_counts_as_one_freeze() {
    let t0 = Instant::now();
    let mut tx = Sender::new(t0);
    let mut rx = VideoReceivePipeline::new(t0, UNIX0).unwrap();
    let mut seen = Seen::default();
    for n in 0..30 {
        let (at, packets) = tx.frame(n);
        // Frames 15..=29 arrive 500 ms late (held up, then in a burst).
        let arrival = if n >= 15 {
            at + Duration::from_millis(500)
        } else {
            at
        };
        for p in &packets {
            rx.push(&rtp(p, arrival), arrival);
        }
        drain(&mut rx, arrival, &mut seen);
    }
    let stats = rx.stats(t0 + Duration::from_secs(2));
    assert_eq!(stats.frames_decoded, 30);
    assert_eq!(stats.freeze_count, 1);
    assert!(stats.total_freezes_duration >= 0.5);
}

/// Packets that never make a picture (here half a keyframe): a keyframe request goes out
/// [`KEYFRAME_WAIT`] after the first packet, not before, and again every [`KEYFRAME_WAIT`].
#[test]
fn no_picture_within_the_wait_brings_a_keyframe_request() {
    let t0 = Instant::now();
    let mut rx = VideoReceivePipeline::new(t0, UNIX0).unwrap();
    // The first FU-A fragment of an IDR slice; the rest never comes.
    let start = VideoPacket {
        seq: 7,
        timestamp: 90_000,
        marker: false,
        payload: Bytes::from_static(&[0x7c, 0x85, 0x88, 0x84, 0x00, 0x33]),
    };
    rx.push(&rtp(&start, t0), t0);
    let mut seen = Seen::default();
    drain(
        &mut rx,
        t0 + KEYFRAME_WAIT - Duration::from_millis(1),
        &mut seen,
    );
    assert_eq!(seen.keyframe_requests, 0);
    assert_eq!(rx.poll_timeout(), Some(t0 + KEYFRAME_WAIT));
    drain(&mut rx, t0 + KEYFRAME_WAIT, &mut seen);
    assert_eq!(seen.keyframe_requests, 1);
    drain(&mut rx, t0 + KEYFRAME_WAIT * 2, &mut seen);
    assert_eq!(seen.keyframe_requests, 2);
    assert!(seen.frames.is_empty());
}
