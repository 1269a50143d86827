//! Targets for the two receive buffers that take every media packet a peer sends: the audio
//! jitter buffer's `insert` (with `pull` between) and the video frame buffer (§18.2, §18.5).
//! The input is a program: a configuration, then operations (insert a packet, let time pass,
//! pull or poll), so the fuzzer explores orders of arrival, loss, duplicates and wrap-around.

use std::time::{Duration, Instant};

use bytes::Bytes;
use media::jitter::audio::{AudioJitterBuffer, AudioPacket, JitterConfig, Playout};
use media::jitter::video::{
    Feedback, InsertOutcome, VideoBufferConfig, VideoFrameBuffer, VideoPacket, START_CODE,
};

use crate::fixtures::epoch;
use crate::input::Input;

/// Operations per input at most (keeps one run short whatever the input).
const MAX_OPS: usize = 2048;
/// Outputs drained after one operation at most (a bug that loops forever fails loudly).
const MAX_DRAIN: usize = 4096;

/// `AudioJitterBuffer` with a fuzzed configuration (clamped by `new`) under inserts, pulls
/// and passing time: it holds at most `max_packets`, counts every insert, each pull bumps
/// exactly one counter, the target stays within the maximum delay, and within one stream
/// (no resync, not idle) the frames it plays, recovers or conceals strictly advance.
pub fn audio_jitter(data: &[u8]) {
    let mut input = Input::new(data);
    let cfg = JitterConfig {
        clock_rate: [48_000, 8_000, 16_000, 90_000][usize::from(input.u8() % 4)],
        frame: Duration::from_millis(u64::from(input.u8() % 130)),
        min_delay: Duration::from_millis(u64::from(input.u8())),
        max_delay: Duration::from_millis(u64::from(input.u16() % 12_000)),
        max_packets: usize::from(input.u8()),
        use_fec: input.bool(),
        dtx_max_payload: usize::from(input.u8() % 4),
        ..JitterConfig::default()
    };
    let mut buffer = AudioJitterBuffer::new(cfg);
    let max_packets = buffer.config().max_packets;
    let max_delay = buffer.config().max_delay;
    let frame_ts = buffer.config().clock_rate / 50;
    let mut now = epoch();
    let (mut seq, mut ts) = (input.u16(), input.u32());
    let mut inserted = 0u64;
    let mut pulls = 0u64;
    let mut last: Option<(u64, u32)> = None;
    for _ in 0..MAX_OPS {
        if input.is_empty() {
            break;
        }
        let op = input.u8();
        match op % 4 {
            0 | 1 => {
                // Mostly the next packet, sometimes a jump of any size either way.
                let step = i16::from(input.u8() as i8);
                seq = seq.wrapping_add(step as u16);
                ts = if op & 0x80 != 0 {
                    input.u32()
                } else {
                    ts.wrapping_add(frame_ts.wrapping_mul(step as u32))
                };
                let ssrc = u32::from((op >> 5) & 1);
                let payload = Bytes::copy_from_slice(input.bytes(usize::from((op >> 2) & 7)));
                buffer.insert(
                    AudioPacket {
                        seq,
                        timestamp: ts,
                        ssrc,
                        payload,
                    },
                    now,
                );
                inserted += 1;
                assert!(buffer.len() <= max_packets);
            }
            2 => {
                let out = buffer.pull(now);
                pulls += 1;
                now += Duration::from_millis(20);
                check_playout(&buffer, &out, &mut last);
            }
            _ => now += Duration::from_millis(u64::from(input.u8()) * 4),
        }
        let stats = buffer.stats();
        assert_eq!(stats.received, inserted);
        assert_eq!(
            stats.empty
                + stats.decoded
                + stats.fec_recovered
                + stats.concealed
                + stats.expanded
                + stats.dtx,
            pulls
        );
        assert!(stats.buffered <= max_packets);
        assert!(buffer.target_delay() <= max_delay);
    }
}

/// Frames played, recovered or concealed advance within a stream; `last` is the resync count
/// and timestamp of the previous one.
fn check_playout(buffer: &AudioJitterBuffer, out: &Playout, last: &mut Option<(u64, u32)>) {
    let resyncs = buffer.stats().resyncs;
    let ts = match out {
        Playout::Packet { timestamp, .. }
        | Playout::Fec { timestamp, .. }
        | Playout::Conceal { timestamp } => *timestamp,
        Playout::Empty => {
            *last = None;
            return;
        }
        Playout::Expand { .. } | Playout::Dtx { .. } => return,
    };
    if let Some((was_resyncs, was_ts)) = *last {
        if was_resyncs == resyncs {
            assert!(
                ts.wrapping_sub(was_ts) as i32 > 0,
                "played {ts} after {was_ts} in one stream"
            );
        }
    }
    *last = Some((resyncs, ts));
}

/// `VideoFrameBuffer` with a fuzzed (small) window under inserts of arbitrary payloads,
/// passing time and RTT changes: memory stays within the window and the byte budget, frames
/// come out as Annex-B with strictly increasing timestamps within a stream, NACKs are
/// non-empty and bounded, and every call returns.
pub fn video_buffer(data: &[u8]) {
    let mut input = Input::new(data);
    let cfg = VideoBufferConfig {
        max_packets: usize::from(input.u8() % 128),
        max_bytes: 64 * usize::from(input.u8()),
        nack_max_retries: input.u8() % 5,
        ..VideoBufferConfig::default()
    };
    let max_packets = cfg.max_packets.max(1);
    let max_bytes = cfg.max_bytes;
    let mut buffer = VideoFrameBuffer::new(cfg);
    let mut now = epoch();
    let (mut seq, mut ts) = (input.u16(), input.u32());
    let mut last_frame: Option<(u64, u32)> = None;
    for _ in 0..MAX_OPS {
        if input.is_empty() {
            break;
        }
        let op = input.u8();
        match op % 4 {
            0 | 1 => {
                let step = i16::from(input.u8() as i8);
                seq = seq.wrapping_add(step as u16);
                if op & 0x80 != 0 {
                    ts = ts.wrapping_add(3000 * u32::from(input.u8() % 4));
                }
                let marker = op & 0x40 != 0;
                let payload = Bytes::copy_from_slice(input.short_slice());
                let outcome = buffer.insert(
                    VideoPacket {
                        seq,
                        timestamp: ts,
                        marker,
                        payload,
                    },
                    now,
                );
                let stats = buffer.stats();
                if let InsertOutcome::Stored | InsertOutcome::Malformed(_) = outcome {
                    assert!(stats.buffered_packets <= max_packets);
                    assert!(stats.buffered_bytes <= max_bytes);
                }
            }
            2 => now += Duration::from_millis(u64::from(input.u8())),
            _ => buffer.set_rtt(Duration::from_millis(u64::from(input.u8()))),
        }
        drain(&mut buffer, now, &mut last_frame);
    }
}

fn drain(buffer: &mut VideoFrameBuffer, now: Instant, last_frame: &mut Option<(u64, u32)>) {
    for _ in 0..MAX_DRAIN {
        let Some(frame) = buffer.poll_frame(now) else {
            break;
        };
        assert!(frame.data.starts_with(&START_CODE));
        let resets = buffer.stats().resets;
        if let Some((was_resets, was_ts)) = *last_frame {
            if was_resets == resets {
                assert!(
                    frame.timestamp.wrapping_sub(was_ts) as i32 > 0,
                    "frame {} released after {was_ts}",
                    frame.timestamp
                );
            }
        }
        *last_frame = Some((resets, frame.timestamp));
    }
    for _ in 0..MAX_DRAIN {
        match buffer.poll_feedback(now) {
            None => break,
            Some(Feedback::Nack(seqs)) => assert!(!seqs.is_empty() && seqs.len() <= 256),
            Some(Feedback::Pli) => {}
        }
    }
    let _ = buffer.poll_timeout();
}
