//! Tests of the video frame buffer: behaviour on clean, lossy, reordered and hostile input.

use super::*;
use proptest::prelude::*;
use std::collections::BTreeMap;

const FRAME_TICKS: u32 = 3000; // 30 fps at 90 kHz
const MS: Duration = Duration::from_millis(1);

/// A synthetic access unit: keyframes are SPS + PPS + IDR, others one non-IDR slice.
fn access_unit(index: u32, keyframe: bool, size: usize) -> Vec<u8> {
    let body = |t: u8, n: usize| -> Vec<u8> {
        std::iter::once(0x60 | t)
            .chain((0..n).map(|i| ((i as u32 * 31 + index * 7) % 251 + 1) as u8))
            .collect()
    };
    let nals = if keyframe {
        vec![body(NAL_SPS, 10), body(NAL_PPS, 4), body(NAL_IDR, size * 3)]
    } else {
        vec![body(1, size)]
    };
    nals.iter()
        .flat_map(|n| START_CODE.iter().chain(n.iter()).copied())
        .collect()
}

/// `count` frames, a keyframe every `gop`, packetized with 200-byte payloads.
fn stream(first_seq: u16, first_ts: u32, count: u32, gop: u32) -> Vec<(Vec<u8>, Vec<VideoPacket>)> {
    let mut p = FramePacketizer::new(first_seq, 200).unwrap();
    (0..count)
        .map(|i| {
            let au = access_unit(i, i % gop == 0, 400 + (i as usize * 37) % 500);
            let pkts = p
                .packetize(&au, first_ts.wrapping_add(i * FRAME_TICKS))
                .unwrap();
            (au, pkts)
        })
        .collect()
}

fn drain(buf: &mut VideoFrameBuffer, now: Instant) -> Vec<AssembledFrame> {
    std::iter::from_fn(|| buf.poll_frame(now)).collect()
}

#[test]
fn clean_stream_releases_each_frame_on_its_last_packet() {
    let t0 = Instant::now();
    let mut buf = VideoFrameBuffer::default();
    let frames = stream(65_500, u32::MAX - 10 * FRAME_TICKS, 40, 30);
    for (i, (au, pkts)) in frames.iter().enumerate() {
        let now = t0 + 33 * MS * i as u32;
        for (j, p) in pkts.iter().enumerate() {
            buf.insert(p.clone(), now);
            let out = drain(&mut buf, now);
            if j + 1 < pkts.len() {
                assert!(out.is_empty(), "frame {i} released before its last packet");
            } else {
                assert_eq!(out.len(), 1, "frame {i} not released on its last packet");
                assert_eq!(&out[0].data, au);
                assert_eq!(out[0].keyframe, i % 30 == 0);
                assert_eq!(out[0].timestamp, pkts[0].timestamp);
                assert_eq!(out[0].completed_at, now, "no added delay");
            }
        }
        assert_eq!(buf.poll_feedback(now), None);
    }
    let s = buf.stats();
    assert_eq!(s.frames_assembled, 40);
    assert_eq!(s.keyframes_assembled, 2);
    assert_eq!((s.frames_dropped, s.pli_sent, s.nack_messages), (0, 0, 0));
    assert_eq!(
        (s.buffered_packets, s.buffered_bytes, s.missing_packets),
        (0, 0, 0)
    );
    assert_eq!(buf.poll_timeout(), None);
}

#[test]
fn reordering_within_the_nack_delay_sends_no_nack() {
    let t0 = Instant::now();
    let mut buf = VideoFrameBuffer::default();
    let frames = stream(100, 0, 3, 30);
    let mut pkts: Vec<VideoPacket> = frames.iter().flat_map(|f| f.1.clone()).collect();
    pkts.swap(3, 5);
    pkts.swap(8, 9);
    let mut out = Vec::new();
    for p in pkts {
        buf.insert(p, t0);
        assert_eq!(buf.poll_feedback(t0 + 2 * MS), None);
        out.extend(drain(&mut buf, t0));
    }
    assert_eq!(
        out.iter().map(|f| &f.data).collect::<Vec<_>>(),
        frames.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    assert!(buf.stats().packets_reordered >= 2);
}

#[test]
fn lost_packet_is_nacked_and_the_retransmission_completes_the_frame() {
    let t0 = Instant::now();
    let mut buf = VideoFrameBuffer::default();
    let frames = stream(0, 0, 4, 30);
    let lost = frames[1].1[1].clone();
    let mut out = Vec::new();
    for (_, pkts) in &frames {
        for p in pkts {
            if p.seq != lost.seq {
                buf.insert(p.clone(), t0);
                out.extend(drain(&mut buf, t0));
            }
        }
    }
    assert_eq!(out.len(), 1, "only the frame before the gap is released");
    assert_eq!(buf.poll_feedback(t0), None, "nack waits for reordering");
    assert_eq!(buf.poll_timeout(), Some(t0 + 5 * MS));
    assert_eq!(
        buf.poll_feedback(t0 + 5 * MS),
        Some(Feedback::Nack(vec![lost.seq]))
    );
    assert_eq!(buf.poll_feedback(t0 + 6 * MS), None, "rate limited");
    buf.insert(lost, t0 + 40 * MS);
    out.extend(drain(&mut buf, t0 + 40 * MS));
    assert_eq!(out.len(), 4);
    for (f, (au, _)) in out.iter().zip(&frames) {
        assert_eq!(&f.data, au);
    }
    assert_eq!(buf.stats().packets_recovered, 1);
    assert_eq!(buf.poll_feedback(t0 + 200 * MS), None);
}

#[test]
fn unrecoverable_loss_retries_a_bounded_number_of_times_then_plis_and_resumes_at_keyframe() {
    let t0 = Instant::now();
    let mut buf = VideoFrameBuffer::default();
    let frames = stream(0, 0, 12, 8); // keyframes at 0 and 8
    let lost_seq = frames[2].1[0].seq;
    let mut out = Vec::new();
    for (_, pkts) in &frames[..6] {
        for p in pkts {
            if p.seq != lost_seq {
                buf.insert(p.clone(), t0);
            }
        }
    }
    out.extend(drain(&mut buf, t0));
    assert_eq!(out.len(), 2);
    let mut nacks = 0;
    let mut pli_at = None;
    let mut now = t0;
    while now < t0 + Duration::from_secs(2) {
        match buf.poll_feedback(now) {
            Some(Feedback::Nack(list)) => {
                assert_eq!(list, vec![lost_seq]);
                nacks += 1;
            }
            Some(Feedback::Pli) => {
                pli_at.get_or_insert(now);
            }
            None => now = buf.poll_timeout().unwrap_or(now + 50 * MS).max(now + MS),
        }
        out.extend(drain(&mut buf, now));
    }
    assert_eq!(nacks, 3, "three NACKs, then give up");
    let pli_at = pli_at.expect("a PLI after giving up");
    assert!(pli_at <= t0 + 500 * MS, "gave up at {:?}", pli_at - t0);
    assert!(
        buf.stats().pli_sent >= 2,
        "PLI repeats while no keyframe comes"
    );
    assert_eq!(out.len(), 2, "nothing decodable without the lost packet");
    for (_, pkts) in &frames[6..] {
        for p in pkts {
            buf.insert(p.clone(), now);
        }
    }
    let rest = drain(&mut buf, now);
    assert_eq!(rest.len(), 4, "keyframe 8 and the frames after it");
    assert!(rest[0].keyframe);
    assert_eq!(rest[0].data, frames[8].0);
    let s = buf.stats();
    assert!(!s.waiting_for_keyframe);
    assert_eq!(s.frames_dropped, 6, "frames 2..=7 dropped");
    assert_eq!(s.gave_up, 1);
}

#[test]
fn complete_keyframe_ahead_of_a_blocked_frame_is_released_at_once() {
    let t0 = Instant::now();
    let mut buf = VideoFrameBuffer::default();
    let frames = stream(10, 0, 6, 4);
    let lost_seq = frames[1].1[0].seq;
    let mut out = Vec::new();
    for (_, pkts) in &frames {
        for p in pkts {
            if p.seq != lost_seq {
                buf.insert(p.clone(), t0);
                out.extend(drain(&mut buf, t0));
            }
        }
    }
    assert_eq!(
        out.len(),
        1,
        "within the reordering grace the buffer still waits"
    );
    out.extend(drain(&mut buf, t0 + 5 * MS));
    let ts: Vec<u32> = out.iter().map(|f| f.timestamp).collect();
    assert_eq!(ts, vec![0, 4 * FRAME_TICKS, 5 * FRAME_TICKS]);
    assert_eq!(buf.stats().frames_dropped, 3);
    assert_eq!(
        buf.poll_feedback(t0 + 10 * MS),
        None,
        "nothing to ask for any more"
    );
}

#[test]
fn stream_starting_with_delta_frames_asks_for_a_keyframe() {
    let t0 = Instant::now();
    let mut buf = VideoFrameBuffer::default();
    let frames = stream(0, 0, 12, 10);
    for (_, pkts) in &frames[1..3] {
        for p in pkts {
            buf.insert(p.clone(), t0);
        }
    }
    assert!(drain(&mut buf, t0).is_empty());
    assert_eq!(buf.poll_feedback(t0), Some(Feedback::Pli));
    assert_eq!(buf.poll_feedback(t0 + MS), None, "PLI is rate limited");
    for (_, pkts) in &frames[10..] {
        for p in pkts {
            buf.insert(p.clone(), t0 + 100 * MS);
        }
    }
    let out = drain(&mut buf, t0 + 100 * MS);
    assert_eq!(out.len(), 2);
    assert!(out[0].keyframe);
    assert_eq!(buf.poll_feedback(t0 + Duration::from_secs(1)), None);
}

#[test]
fn keyframe_at_stream_start_needs_no_pli() {
    let t0 = Instant::now();
    let mut buf = VideoFrameBuffer::default();
    let frames = stream(0, 0, 1, 10);
    let pkts = &frames[0].1;
    buf.insert(pkts[0].clone(), t0);
    assert_eq!(buf.poll_feedback(t0 + 10 * MS), None);
    for p in &pkts[1..] {
        buf.insert(p.clone(), t0 + 10 * MS);
    }
    assert_eq!(drain(&mut buf, t0 + 10 * MS).len(), 1);
    assert_eq!(buf.poll_feedback(t0 + Duration::from_secs(5)), None);
}

#[test]
fn duplicates_and_late_packets_are_dropped() {
    let t0 = Instant::now();
    let mut buf = VideoFrameBuffer::default();
    let frames = stream(0, 0, 2, 10);
    let first = frames[0].1[0].clone();
    assert_eq!(buf.insert(first.clone(), t0), InsertOutcome::Stored);
    assert_eq!(buf.insert(first.clone(), t0), InsertOutcome::Duplicate);
    let mut out = Vec::new();
    for (_, pkts) in &frames {
        for p in pkts {
            buf.insert(p.clone(), t0);
            out.extend(drain(&mut buf, t0));
        }
    }
    assert_eq!(out.len(), 2);
    assert_eq!(buf.insert(first, t0), InsertOutcome::Late);
    assert!(drain(&mut buf, t0).is_empty());
    let s = buf.stats();
    assert_eq!(s.packets_duplicate, 2);
    assert_eq!(s.packets_late, 1);
}

#[test]
fn malformed_frame_is_dropped_and_a_keyframe_requested() {
    let t0 = Instant::now();
    let mut buf = VideoFrameBuffer::default();
    let frames = stream(0, 0, 3, 10);
    let mut out = Vec::new();
    for (i, (_, pkts)) in frames.iter().enumerate() {
        for (j, p) in pkts.iter().enumerate() {
            let mut p = p.clone();
            if i == 1 && j == 0 {
                p.payload = Bytes::from_static(&[0x1F, 1, 2]);
                assert!(matches!(buf.insert(p, t0), InsertOutcome::Malformed(_)));
            } else {
                buf.insert(p, t0);
            }
            out.extend(drain(&mut buf, t0));
        }
    }
    assert_eq!(out.len(), 1);
    assert_eq!(buf.poll_feedback(t0), Some(Feedback::Pli));
    assert!(buf.stats().waiting_for_keyframe);
    assert_eq!(buf.stats().packets_malformed, 1);
}

#[test]
fn memory_stays_bounded_without_markers() {
    let t0 = Instant::now();
    let cfg = VideoBufferConfig {
        max_packets: 64,
        max_bytes: 10_000,
        ..VideoBufferConfig::default()
    };
    let mut buf = VideoFrameBuffer::new(cfg);
    for i in 0..5_000u32 {
        let payload = Bytes::from(vec![0x41; 1 + (i as usize % 700)]);
        buf.insert(
            VideoPacket {
                seq: i as u16,
                timestamp: i / 3,
                marker: false,
                payload,
            },
            t0 + MS * i,
        );
        let _ = buf.poll_frame(t0 + MS * i);
        while buf.poll_feedback(t0 + MS * i).is_some() {}
        let s = buf.stats();
        assert!(s.buffered_packets <= 64 && s.missing_packets <= 64, "{s:?}");
        assert!(s.buffered_bytes <= 10_000 + 700, "{s:?}");
    }
}

#[test]
fn sequence_jump_resets_the_stream() {
    let t0 = Instant::now();
    let mut buf = VideoFrameBuffer::default();
    for (_, pkts) in stream(0, 0, 2, 10) {
        for p in pkts {
            buf.insert(p, t0);
        }
    }
    assert_eq!(drain(&mut buf, t0).len(), 2);
    // The sender restarts with new numbering and an older timestamp.
    for (_, pkts) in stream(30_000, 5, 2, 10) {
        for p in pkts {
            buf.insert(p, t0);
        }
    }
    let out = drain(&mut buf, t0);
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].timestamp, 5);
    assert_eq!(buf.stats().resets, 1);
}

#[test]
fn real_h264_survives_packetization_reordering_and_nack() {
    use crate::codec::h264::{H264Config, H264Decoder, H264Encoder};
    use crate::codec::pattern::TestPattern;
    let (w, h) = (320, 240);
    let mut enc = H264Encoder::new(H264Config {
        width: w,
        height: h,
        ..H264Config::default()
    })
    .unwrap();
    let mut dec = H264Decoder::new().unwrap();
    let mut pattern = TestPattern::new(w, h);
    let mut packetizer = FramePacketizer::new(65_000, 1200).unwrap();
    let mut buf = VideoFrameBuffer::default();
    let t0 = Instant::now();
    let mut held_back: Option<VideoPacket> = None;
    let mut decoded = 0;
    for i in 0..20u32 {
        let now = t0 + 33 * MS * i;
        let frame = pattern.next_frame();
        let encoded = enc.encode(&frame, false).unwrap();
        let mut pkts = packetizer
            .packetize(&encoded.data, i * FRAME_TICKS)
            .unwrap();
        if pkts.len() > 2 {
            pkts.swap(0, 1);
        }
        if i == 5 {
            held_back = Some(pkts.remove(0)); // "lost", answered by NACK below
        }
        for p in pkts {
            buf.insert(p, now);
        }
        while let Some(fb) = buf.poll_feedback(now + 10 * MS) {
            if let (Feedback::Nack(list), Some(p)) = (&fb, &held_back) {
                assert_eq!(list, &vec![p.seq]);
                buf.insert(held_back.take().unwrap(), now + 20 * MS);
            }
        }
        while let Some(f) = buf.poll_frame(now + 20 * MS) {
            let pic = dec
                .decode(&f.data)
                .unwrap()
                .expect("a picture per access unit");
            assert_eq!((pic.width(), pic.height()), (w, h));
            decoded += 1;
        }
    }
    assert_eq!(decoded, 20);
    assert_eq!(buf.stats().packets_recovered, 1);
}

/// Unwraps 32-bit RTP timestamps for monotonicity checks.
struct TsUnwrap(Option<i64>);
impl TsUnwrap {
    fn unwrap(&mut self, ts: u32) -> i64 {
        let v = match self.0 {
            None => i64::from(ts),
            Some(prev) => prev + i64::from(ts.wrapping_sub(prev as u32) as i32),
        };
        self.0 = Some(v);
        v
    }
}

fn arb_payload() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..20),
        (1u8..24, proptest::collection::vec(1u8..=255, 1..20)).prop_map(|(t, mut b)| {
            b.insert(0, 0x60 | t);
            b
        }),
        (
            any::<bool>(),
            any::<bool>(),
            prop_oneof![Just(1u8), Just(5u8)],
            proptest::collection::vec(any::<u8>(), 1..20)
        )
            .prop_map(|(s, e, t, mut b)| {
                b.insert(0, if s { 0x80 } else { 0 } | if e { 0x40 } else { 0 } | t);
                b.insert(0, 0x7C);
                b
            }),
        Just(vec![0x78, 0, 2, 0x67, 1, 0, 2, 0x68, 2]),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Hostile input: arbitrary numbering, timestamps, markers, payloads and timing.
    #[test]
    fn arbitrary_packets_never_panic_repeat_or_grow(
        base in any::<u16>(),
        ts_base in any::<u32>(),
        packets in proptest::collection::vec(
            (-40i32..200, 0u32..12, any::<bool>(), arb_payload(), 0u64..40, any::<bool>()), 1..300),
    ) {
        let cfg = VideoBufferConfig { max_packets: 128, max_bytes: 2_000, ..VideoBufferConfig::default() };
        let mut buf = VideoFrameBuffer::new(cfg);
        let mut now = Instant::now();
        let mut unwrap = TsUnwrap(None);
        let mut last_ts: Option<i64> = None;
        let mut resets = 0;
        for (dseq, dts, marker, payload, dt, jump) in packets {
            now += Duration::from_millis(dt);
            let seq = if jump { base.wrapping_add(30_000).wrapping_add(dseq as u16) } else { base.wrapping_add(dseq as u16) };
            let p = VideoPacket { seq, timestamp: ts_base.wrapping_add(dts * FRAME_TICKS), marker, payload: Bytes::from(payload) };
            buf.insert(p, now);
            if buf.stats().resets != resets {
                resets = buf.stats().resets;
                last_ts = None;
                unwrap = TsUnwrap(None);
            }
            while let Some(f) = buf.poll_frame(now) {
                let ts = unwrap.unwrap(f.timestamp);
                if let Some(last) = last_ts {
                    prop_assert!(ts > last, "timestamps must increase: {} after {}", ts, last);
                }
                last_ts = Some(ts);
            }
            while let Some(fb) = buf.poll_feedback(now) {
                if let Feedback::Nack(list) = fb {
                    prop_assert!(!list.is_empty() && list.len() <= 256);
                }
            }
            if let Some(t) = buf.poll_timeout() {
                let _ = t;
            }
            let s = buf.stats();
            prop_assert!(s.buffered_packets <= 128 && s.missing_packets <= 128);
            prop_assert!(s.buffered_bytes <= 2_000 + 20);
        }
    }

    /// A real stream under reordering, duplication and loss (with some NACK answers): every
    /// released frame is exactly one sent access unit, in order, never twice; without loss all
    /// frames arrive.
    #[test]
    fn impaired_stream_yields_exact_frames_in_order(
        first_seq in any::<u16>(),
        first_ts in any::<u32>(),
        count in 1u32..40,
        gop in 1u32..12,
        swaps in proptest::collection::vec((0usize..400, 1usize..4), 0..30),
        dups in proptest::collection::vec(0usize..400, 0..10),
        losses in proptest::collection::vec(0usize..400, 0..4),
        answer_nacks in any::<bool>(),
    ) {
        let frames = stream(first_seq, first_ts, count, gop);
        let sent: BTreeMap<u32, &Vec<u8>> = frames.iter().map(|(au, p)| (p[0].timestamp, au)).collect();
        let mut pkts: Vec<VideoPacket> = frames.iter().flat_map(|f| f.1.clone()).collect();
        let n = pkts.len();
        for (at, d) in swaps {
            let (a, b) = (at % n, (at % n + d).min(n - 1));
            pkts.swap(a, b);
        }
        for d in dups {
            let p = pkts[d % n].clone();
            pkts.insert((d * 7) % n, p);
        }
        // Loss of the stream's first packet or of its last frame is undetectable (no gap is
        // seen), so losses hit packets in between.
        let lossy = n - frames.last().map_or(0, |f| f.1.len());
        let lost: Vec<u16> = if lossy <= 1 { Vec::new() } else {
            losses.iter().map(|l| frames.iter().flat_map(|f| f.1.iter()).nth(1 + l % (lossy - 1)).unwrap().seq).collect()
        };
        let by_seq: BTreeMap<u16, VideoPacket> = frames.iter().flat_map(|f| f.1.iter()).map(|p| (p.seq, p.clone())).collect();

        let mut buf = VideoFrameBuffer::default();
        let mut now = Instant::now();
        let mut out = Vec::new();
        // 50 µs apart: reordering by up to 90 positions stays within the 5 ms grace.
        for p in pkts {
            now += MS / 20;
            if !lost.contains(&p.seq) {
                buf.insert(p, now);
            }
            // Feedback first, as a session would: a retransmission answering the NACK arrives
            // before the buffer considers jumping ahead.
            while let Some(fb) = buf.poll_feedback(now) {
                if let (Feedback::Nack(list), true) = (fb, answer_nacks) {
                    for s in list {
                        buf.insert(by_seq[&s].clone(), now);
                    }
                }
            }
            out.extend(std::iter::from_fn(|| buf.poll_frame(now)));
        }
        // Let timers run out.
        for _ in 0..50 {
            now += 20 * MS;
            while let Some(fb) = buf.poll_feedback(now) {
                if let (Feedback::Nack(list), true) = (fb, answer_nacks) {
                    for s in list {
                        buf.insert(by_seq[&s].clone(), now);
                    }
                }
            }
            out.extend(std::iter::from_fn(|| buf.poll_frame(now)));
        }
        let mut unwrap = TsUnwrap(None);
        let mut last = None;
        for f in &out {
            prop_assert_eq!(Some(&&f.data), sent.get(&f.timestamp), "released frame differs from sent one");
            let ts = unwrap.unwrap(f.timestamp);
            prop_assert!(last.is_none_or(|l| ts > l));
            last = Some(ts);
        }
        // With answered NACKs every frame arrives, unless a complete later keyframe makes
        // waiting pointless (the buffer then jumps ahead, by design).
        if answer_nacks {
            prop_assert_eq!(buf.stats().gave_up, 0);
            prop_assert_eq!(out.last().map(|f| f.timestamp), frames.last().map(|f| f.1[0].timestamp));
        }
        if lost.is_empty() || (answer_nacks && gop >= count) {
            prop_assert_eq!(out.len(), count as usize, "all frames must arrive: {:?}", buf.stats());
        }
    }
}
