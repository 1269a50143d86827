//! A/V offset under 30 ms jitter: one sender's audio and video over two seeded netsim links,
//! audio through the real adaptive jitter buffer, video scheduled by [`AvSync`].

use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{ms, ntp_at};
use crate::jitter::audio::{AudioJitterBuffer, AudioPacket};
use crate::netsim::{Impairment, Profile};
use crate::sync::{AvSync, SyncStream};

/// Result of one two-stream run: A/V offsets of frames shown after both streams had two
/// sender reports, in µs (video capture time minus the capture time of the audio playing when
/// the frame went on screen).
struct AvRun {
    offsets_us: Vec<i64>,
    final_extra: Duration,
}

/// The sender's audio device clock runs 80 ppm fast against its wall (NTP) clock, its camera
/// clock 60 ppm slow: the RTP clocks are not exactly 48 and 90 kHz, which the maps must fit.
const AUDIO_RATE_ERROR: f64 = 1.0 + 80e-6;
const VIDEO_RATE_ERROR: f64 = 1.0 - 60e-6;

/// 60 s of one sender's audio (20 ms Opus-like packets) and video (30 fps, one packet per
/// frame) over two seeded links with `jitter30` jitter and the given base delays; sender
/// reports every second per stream over the same links, scattered by ±2 ms (audio) and ±8 ms
/// (video) around the true clock line. Audio goes through the adaptive jitter
/// buffer pulled every 20 ms; video frames are decoded 8 ms after arrival and shown at
/// `video_frame_ready`'s instant.
fn av_run(seed: u64, audio_delay: Duration, video_delay: Duration) -> AvRun {
    #[derive(Debug)]
    enum Ev {
        Audio(AudioPacket),
        VideoReady(u32, i64),
        Sr(SyncStream, u64, u32),
        Pull,
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let a0: u32 = rng.gen();
    // Video starts 10 s before its RTP wrap, so the run crosses it.
    let v0: u32 = u32::MAX - 900_000;
    let profile = |base| Profile {
        base_delay: base,
        ..Profile::by_name("jitter30").expect("built-in profile")
    };
    let mut audio_link = Impairment::new(profile(audio_delay), seed);
    let mut video_link = Impairment::new(profile(video_delay), seed + 1);
    let mut rtcp_link = Impairment::new(profile(audio_delay.max(video_delay)), seed + 2);
    let total_us = 60_000_000i64;
    let mut events: Vec<(i64, u32, Ev)> = Vec::new();
    let at_us = |d: Duration| i64::try_from(d.as_micros()).expect("small");
    // Events at the same instant: packets and reports first, then decoded frames, then pulls.
    for k in 0..(total_us / 20_000) {
        let send = (k as f64 * 20_000.0 / AUDIO_RATE_ERROR) as i64;
        let pkt = AudioPacket {
            seq: k as u16,
            timestamp: a0.wrapping_add(960 * k as u32),
            ssrc: 1,
            payload: Bytes::from_static(&[0xAB; 80]),
        };
        for t in audio_link
            .apply(Duration::from_micros(send as u64), 100)
            .arrivals()
        {
            events.push((at_us(t), 0, Ev::Audio(pkt.clone())));
        }
        events.push((send + 7_000, 2, Ev::Pull));
    }
    for j in 0..(total_us / 33_333) {
        let send = (j as f64 * 1e6 / 30.0 / VIDEO_RATE_ERROR) as i64;
        let ts = v0.wrapping_add(3_000 * j as u32);
        if let Some(t) = video_link
            .apply(Duration::from_micros(send as u64), 1_200)
            .first
        {
            events.push((at_us(t) + 8_000, 1, Ev::VideoReady(ts, send)));
        }
    }
    for s in 0..(total_us / 1_000_000) {
        for (stream, phase) in [(SyncStream::Audio, 300_000), (SyncStream::Video, 650_000)] {
            let send = s * 1_000_000 + phase;
            // Real reports scatter: the RTP time is extrapolated from the last packet sent, so
            // send jitter (and for video the encoding time) moves it by a few ms either way.
            let scatter_us = match stream {
                SyncStream::Audio => rng.gen_range(-2_000.0..2_000.0),
                SyncStream::Video => rng.gen_range(-8_000.0..8_000.0),
            };
            let at = send as f64 + scatter_us;
            let rtp = match stream {
                SyncStream::Audio => a0.wrapping_add((at * 0.048 * AUDIO_RATE_ERROR) as u32),
                SyncStream::Video => v0.wrapping_add((at * 0.090 * VIDEO_RATE_ERROR) as u32),
            };
            if let Some(t) = rtcp_link
                .apply(Duration::from_micros(send as u64), 60)
                .first
            {
                events.push((at_us(t), 0, Ev::Sr(stream, ntp_at(send), rtp)));
            }
        }
    }
    events.sort_by_key(|(t, order, _)| (*t, *order));

    let origin = Instant::now();
    let instant = |us: i64| origin + Duration::from_micros(us as u64);
    let mut buf = AudioJitterBuffer::default();
    let mut sync = AvSync::default();
    // (pull time µs, capture time µs of the audio it started) for the ground truth.
    let mut played: Vec<(i64, i64)> = Vec::new();
    // (shown at µs, capture µs) of frames shown after two reports per stream.
    let mut shown: Vec<(i64, i64)> = Vec::new();
    for (t, _, ev) in events {
        match ev {
            Ev::Audio(p) => buf.insert(p, instant(t)),
            Ev::Sr(stream, ntp, rtp) => {
                let ssrc = if stream == SyncStream::Audio { 1 } else { 2 };
                sync.handle_sender_report(stream, ssrc, ntp, rtp)
                    .expect("honest report");
            }
            Ev::Pull => {
                buf.pull(instant(t));
                if let Some(ts) = buf.playout_timestamp() {
                    sync.audio_played(ts, instant(t));
                    let ticks = f64::from(ts.wrapping_sub(a0));
                    let capture = (ticks / 0.048 / AUDIO_RATE_ERROR) as i64;
                    played.push((t, capture));
                }
                buf.set_extra_delay(sync.audio_extra_delay());
            }
            Ev::VideoReady(ts, capture) => {
                let reports = |s| sync.clock_map(s).reports();
                let counted = reports(SyncStream::Audio) >= 2 && reports(SyncStream::Video) >= 2;
                let at = sync.video_frame_ready(ts, instant(t));
                let show = at.map_or(t, |a| {
                    t.max(i64::try_from(a.duration_since(origin).as_micros()).expect("small"))
                });
                if counted {
                    shown.push((show, capture));
                }
            }
        }
    }
    let offsets_us = shown
        .into_iter()
        .filter_map(|(show, capture)| {
            let i = played.partition_point(|&(p, _)| p <= show).checked_sub(1)?;
            let (p, audio_capture) = played[i];
            Some(capture - (audio_capture + (show - p)))
        })
        .collect();
    AvRun {
        offsets_us,
        final_extra: sync.audio_extra_delay(),
    }
}

fn percentile_ms(sorted_abs: &[i64], p: f64) -> f64 {
    let rank = ((p * sorted_abs.len() as f64).ceil() as usize).clamp(1, sorted_abs.len());
    sorted_abs[rank - 1] as f64 / 1_000.0
}

/// Issue 8: "the receiver schedules video against audio playout, kept within 45 ms (ITU-R
/// BT.1359 detectability) under 30 ms jitter", with video faster and slower than audio.
/// `cargo test -p media --lib sync::tests::av_netsim -- --nocapture` prints the figures.
#[test]
fn av_offset_stays_within_45_ms_under_30_ms_jitter() {
    for (audio, video) in [(ms(60), ms(20)), (ms(20), ms(90))] {
        let mut all = Vec::new();
        for seed in [11, 12, 13] {
            let run = av_run(seed, audio, video);
            assert!(
                run.offsets_us.len() > 1_500,
                "frames shown: {}",
                run.offsets_us.len()
            );
            if video > audio {
                assert!(
                    run.final_extra > Duration::ZERO,
                    "slow video holds audio back"
                );
            }
            all.extend(run.offsets_us);
        }
        let mut abs: Vec<i64> = all.iter().map(|o| o.abs()).collect();
        abs.sort_unstable();
        let (p50, p95, max) = (
            percentile_ms(&abs, 0.50),
            percentile_ms(&abs, 0.95),
            percentile_ms(&abs, 1.0),
        );
        let off = abs.iter().filter(|&&o| o > 1_000).count();
        println!(
            "A/V offset, audio {audio:?} / video {video:?} base delay, jitter30, 3 seeds, {} frames: \
             |offset| p50 {p50:.1} ms, p95 {p95:.1} ms, max {max:.1} ms; {off} frames off by > 1 ms",
            abs.len()
        );
        assert!(max <= 45.0, "A/V offset reached {max:.1} ms");
    }
}
