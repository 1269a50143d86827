//! Codec path: our `media::codec` API next to raw `opus` / `openh264` calls in the same run.
//!
//! Opus: encode and decode of one 20 ms 48 kHz mono frame. H.264: encode and decode of one
//! 640x480 and one 1280x720 test-pattern frame, as P-frames (`_p_`: the normal stream, one IDR
//! then P-frames) and as IDRs (`_idr_`: an IDR forced on every frame on both sides). Criterion reports absolute times; a paired,
//! interleaved measurement at the end prints the ratio ours/raw per operation (robust to a
//! noisy shared machine) and writes it to `target/tmp/codec_ratios.md`.
//!
//! Run: `cargo bench -p benches --bench codec` (about two minutes).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode};
use media::codec::h264::{
    openh264_encoder_config, H264Config, H264Decoder, H264Encoder, I420Frame,
};
use media::codec::opus::{
    EncoderConfig, OpusDecoder, OpusEncoder, FRAME_SAMPLES, MAX_PACKET_BYTES, SAMPLE_RATE,
};
use media::codec::pattern::TestPattern;
use openh264::formats::YUVSlices;

/// Frames cycled through so the codecs do not see one frame over and over.
const OPUS_FRAMES: usize = 50;
const VIDEO_FRAMES: usize = 30;
const SIZES: [(usize, usize); 2] = [(640, 480), (1280, 720)];

/// A speech-like test signal: a vowel-ish harmonic mix whose pitch and level move per frame.
fn speechlike_frames() -> Vec<Vec<i16>> {
    (0..OPUS_FRAMES)
        .map(|n| {
            let f0 = 120.0 + 40.0 * ((n as f64) * 0.3).sin();
            let level = 6_000.0 + 3_000.0 * ((n as f64) * 0.17).cos();
            (0..FRAME_SAMPLES)
                .map(|i| {
                    let t = (n * FRAME_SAMPLES + i) as f64 / f64::from(SAMPLE_RATE);
                    let s: f64 = [(1.0, 1.0), (2.0, 0.6), (3.0, 0.4), (5.0, 0.2), (7.0, 0.1)]
                        .iter()
                        .map(|(h, a)| a * (2.0 * std::f64::consts::PI * f0 * h * t).sin())
                        .sum();
                    (s * level / 2.3) as i16
                })
                .collect()
        })
        .collect()
}

fn raw_opus_encoder(cfg: &EncoderConfig) -> opus::Encoder {
    let mut e = opus::Encoder::new(SAMPLE_RATE, opus::Channels::Mono, opus::Application::Voip)
        .expect("raw opus encoder");
    e.set_bitrate(opus::Bitrate::Bits(cfg.bitrate_bps))
        .expect("bitrate");
    e.set_inband_fec(cfg.fec).expect("fec");
    e.set_packet_loss_perc(i32::from(cfg.expected_loss_pct))
        .expect("loss");
    e.set_dtx(cfg.dtx).expect("dtx");
    e.set_signal(opus::Signal::Voice).expect("signal");
    e
}

fn encoded_packets(frames: &[Vec<i16>]) -> Vec<Vec<u8>> {
    let mut enc = OpusEncoder::new(&EncoderConfig::default()).expect("encoder");
    frames
        .iter()
        .map(|pcm| {
            let mut buf = [0u8; MAX_PACKET_BYTES];
            let n = enc.encode(pcm, &mut buf).expect("encode");
            buf[..n].to_vec()
        })
        .collect()
}

fn raw_h264_encoder(cfg: &H264Config) -> openh264::encoder::Encoder {
    openh264::encoder::Encoder::with_api_config(
        openh264::OpenH264API::from_source(),
        openh264_encoder_config(cfg),
    )
    .expect("raw openh264 encoder")
}

fn raw_slices(f: &I420Frame) -> YUVSlices<'_> {
    YUVSlices::new(
        (f.y(), f.u(), f.v()),
        (f.width(), f.height()),
        (f.width(), f.width() / 2, f.width() / 2),
    )
}

fn pattern_frames(w: usize, h: usize) -> Vec<I420Frame> {
    let mut p = TestPattern::new(w, h);
    (0..VIDEO_FRAMES).map(|_| p.next_frame()).collect()
}

/// The encoded stream of `frames`: the first frame an IDR and the rest P-frames, or (`all_idr`)
/// every frame an IDR.
fn encoded_stream(w: usize, h: usize, frames: &[I420Frame], all_idr: bool) -> Vec<Vec<u8>> {
    let mut enc = H264Encoder::new(H264Config {
        width: w,
        height: h,
        ..H264Config::default()
    })
    .expect("encoder");
    frames
        .iter()
        .enumerate()
        .map(|(i, f)| enc.encode(f, all_idr || i == 0).expect("encode").data)
        .collect()
}

/// One benchmarked operation in two flavours, as closures that run one iteration each.
struct Pair {
    name: String,
    /// Length of the input cycle in frames.
    cycle: u32,
    ours: Box<dyn FnMut()>,
    raw: Box<dyn FnMut()>,
}

fn opus_pairs() -> Vec<Pair> {
    let frames = speechlike_frames();
    let packets = encoded_packets(&frames);
    let cfg = EncoderConfig::default();

    let mut ours_enc = OpusEncoder::new(&cfg).expect("encoder");
    let mut raw_enc = raw_opus_encoder(&cfg);
    let (f1, f2) = (frames.clone(), frames);
    let (mut i1, mut i2) = (0, 0);
    let mut b1 = [0u8; MAX_PACKET_BYTES];
    let mut b2 = [0u8; MAX_PACKET_BYTES];
    let encode = Pair {
        name: "opus_encode_20ms".into(),
        cycle: OPUS_FRAMES as u32,
        ours: Box::new(move || {
            i1 = (i1 + 1) % OPUS_FRAMES;
            black_box(
                ours_enc
                    .encode(black_box(&f1[i1]), &mut b1)
                    .expect("encode"),
            );
        }),
        raw: Box::new(move || {
            i2 = (i2 + 1) % OPUS_FRAMES;
            black_box(raw_enc.encode(black_box(&f2[i2]), &mut b2).expect("encode"));
        }),
    };

    let mut ours_dec = OpusDecoder::new().expect("decoder");
    let mut raw_dec = opus::Decoder::new(SAMPLE_RATE, opus::Channels::Mono).expect("decoder");
    let (p1, p2) = (packets.clone(), packets);
    let (mut j1, mut j2) = (0, 0);
    let mut o1 = [0i16; FRAME_SAMPLES];
    let mut o2 = [0i16; FRAME_SAMPLES];
    let decode = Pair {
        name: "opus_decode_20ms".into(),
        cycle: OPUS_FRAMES as u32,
        ours: Box::new(move || {
            j1 = (j1 + 1) % OPUS_FRAMES;
            black_box(
                ours_dec
                    .decode(black_box(&p1[j1]), &mut o1)
                    .expect("decode"),
            );
        }),
        raw: Box::new(move || {
            j2 = (j2 + 1) % OPUS_FRAMES;
            black_box(
                raw_dec
                    .decode(black_box(&p2[j2]), &mut o2, false)
                    .expect("decode"),
            );
        }),
    };
    vec![encode, decode]
}

/// Which frames a video pair encodes or decodes.
#[derive(Clone, Copy)]
enum FrameKind {
    /// The normal stream: one IDR, then P-frames (decode: one IDR in every 30 frames).
    P,
    /// An IDR forced on every frame, on both sides (what answering a PLI costs).
    Idr,
}

impl FrameKind {
    fn label(self) -> &'static str {
        match self {
            FrameKind::P => "p",
            FrameKind::Idr => "idr",
        }
    }
}

/// The rows must measure what they are named after: both encoders give IDRs after the first
/// frame exactly when forced (a silently ignored force would make the IDR rows P rows).
fn frame_kinds_check(cfg: &H264Config, frames: &[I420Frame], idr: bool) {
    use openh264::encoder::FrameType;
    let mut ours = H264Encoder::new(cfg.clone()).expect("encoder");
    let mut raw = raw_h264_encoder(cfg);
    for (i, f) in frames.iter().take(4).enumerate() {
        let ours_key = ours.encode(f, idr).expect("encode").keyframe;
        if idr {
            raw.force_intra_frame();
        }
        let raw_key = matches!(
            raw.encode(&raw_slices(f)).expect("encode").frame_type(),
            FrameType::IDR | FrameType::I
        );
        let want = idr || i == 0;
        assert_eq!((ours_key, raw_key), (want, want), "frame {i}, idr {idr}");
    }
}

fn h264_pairs(w: usize, h: usize, kind: FrameKind) -> Vec<Pair> {
    let cfg = H264Config {
        width: w,
        height: h,
        ..H264Config::default()
    };
    let idr = matches!(kind, FrameKind::Idr);
    let frames = pattern_frames(w, h);
    let stream = encoded_stream(w, h, &frames, idr);
    frame_kinds_check(&cfg, &frames, idr);

    let mut ours_enc = H264Encoder::new(cfg.clone()).expect("encoder");
    let mut raw_enc = raw_h264_encoder(&cfg);
    let (f1, f2) = (frames.clone(), frames);
    let (mut i1, mut i2) = (0, 0);
    let (mut out1, mut out2) = (Vec::new(), Vec::new());
    let encode = Pair {
        name: format!("h264_encode_{}_{w}x{h}", kind.label()),
        cycle: VIDEO_FRAMES as u32,
        ours: Box::new(move || {
            i1 = (i1 + 1) % VIDEO_FRAMES;
            black_box(
                ours_enc
                    .encode_into(&f1[i1], idr, &mut out1)
                    .expect("encode"),
            );
        }),
        raw: Box::new(move || {
            i2 = (i2 + 1) % VIDEO_FRAMES;
            if idr {
                raw_enc.force_intra_frame();
            }
            let bs = raw_enc.encode(&raw_slices(&f2[i2])).expect("encode");
            out2.clear();
            bs.write_vec(&mut out2);
            black_box(&out2);
        }),
    };

    let mut ours_dec = H264Decoder::new().expect("decoder");
    let mut raw_dec = openh264::decoder::Decoder::new().expect("decoder");
    let (s1, s2) = (stream.clone(), stream);
    let (mut j1, mut j2) = (VIDEO_FRAMES - 1, VIDEO_FRAMES - 1);
    let decode = Pair {
        name: format!("h264_decode_{}_{w}x{h}", kind.label()),
        cycle: VIDEO_FRAMES as u32,
        ours: Box::new(move || {
            j1 = (j1 + 1) % VIDEO_FRAMES;
            black_box(ours_dec.decode_view(&s1[j1]).expect("decode").is_some());
        }),
        raw: Box::new(move || {
            j2 = (j2 + 1) % VIDEO_FRAMES;
            black_box(raw_dec.decode(&s2[j2]).expect("decode").is_some());
        }),
    };
    vec![encode, decode]
}

fn criterion_runs(c: &mut Criterion, pairs: &mut [Pair], flat: bool) {
    for pair in pairs {
        let mut group = c.benchmark_group(&pair.name);
        if flat {
            group.sampling_mode(SamplingMode::Flat);
        }
        group.bench_function("ours", |b| b.iter(&mut pair.ours));
        group.bench_function("raw", |b| b.iter(&mut pair.raw));
        group.finish();
    }
}

/// Median per-iteration time of `f` over a block of `iters` calls.
fn block(f: &mut dyn FnMut(), iters: u32) -> Duration {
    let t = Instant::now();
    for _ in 0..iters {
        f();
    }
    t.elapsed() / iters
}

/// What [`paired`] measured for one pair.
struct Paired {
    /// Median per-iteration time of ours and of raw.
    ours: Duration,
    raw: Duration,
    /// Median of the per-round ratios ours/raw.
    ratio: f64,
    /// Ratio of the 10th-percentile block times: load on a shared machine only ever adds time,
    /// so the fastest blocks are the least disturbed (a second, independent estimate).
    ratio_fast: f64,
    rounds: usize,
}

/// Rounds at least, however long they take: the median of fewer per-round ratios moved by
/// ±6 % between runs on the loaded machine (720p IDR blocks are ~200 ms, 9 rounds).
const MIN_ROUNDS: usize = 31;

/// Interleaves blocks of ours and raw (alternating which goes first). Pairing adjacent blocks
/// cancels the slow load changes of a shared machine.
fn paired(pair: &mut Pair, budget: Duration) -> Paired {
    // Blocks of at least 5 ms and at least one full cycle of input frames, so ours and raw
    // see the same content mix in every block whatever their position in the cycle.
    let one = block(&mut pair.ours, 3).max(Duration::from_nanos(1));
    let iters = (Duration::from_millis(5).as_nanos() / one.as_nanos())
        .clamp(u128::from(pair.cycle), 100_000) as u32;
    let (mut ours, mut raw, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    let start = Instant::now();
    let mut round = 0u32;
    while start.elapsed() < budget || ours.len() < MIN_ROUNDS {
        let (o, r) = if round % 2 == 0 {
            let o = block(&mut pair.ours, iters);
            (o, block(&mut pair.raw, iters))
        } else {
            let r = block(&mut pair.raw, iters);
            (block(&mut pair.ours, iters), r)
        };
        round += 1;
        ours.push(o);
        raw.push(r);
        ratios.push(o.as_secs_f64() / r.as_secs_f64().max(1e-12));
    }
    ours.sort();
    raw.sort();
    ratios.sort_by(f64::total_cmp);
    let p10 = |v: &[Duration]| v[v.len() / 10].as_secs_f64();
    Paired {
        ours: ours[ours.len() / 2],
        raw: raw[raw.len() / 2],
        ratio: ratios[ratios.len() / 2],
        ratio_fast: p10(&ours) / p10(&raw).max(1e-12),
        rounds: ours.len(),
    }
}

fn main() {
    let mut opus = opus_pairs();
    let mut video: Vec<Pair> = SIZES
        .iter()
        .flat_map(|&(w, h)| [FrameKind::P, FrameKind::Idr].map(|k| (w, h, k)))
        .flat_map(|(w, h, k)| h264_pairs(w, h, k))
        .collect();

    let mut c = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    criterion_runs(&mut c, &mut opus, false);
    criterion_runs(&mut c, &mut video, true);
    c.final_summary();

    let mut table = String::from(
        "| operation | ours | raw | ours/raw (median of rounds) | ours/raw (fastest 10 %) | rounds |\n|---|---:|---:|---:|---:|---:|\n",
    );
    for pair in opus.iter_mut().chain(video.iter_mut()) {
        let m = paired(pair, Duration::from_millis(2500));
        table.push_str(&format!(
            "| {} | {:.2} µs | {:.2} µs | {:.3} | {:.3} | {} |\n",
            pair.name,
            m.ours.as_secs_f64() * 1e6,
            m.raw.as_secs_f64() * 1e6,
            m.ratio,
            m.ratio_fast,
            m.rounds,
        ));
    }
    println!("\nPaired interleaved measurement (ours and raw in alternating blocks of >= 5 ms and one input cycle; times are medians; ratios: median of the per-round ratios, and ratio of the 10th-percentile block times):\n\n{table}");
    let path = concat!(env!("CARGO_TARGET_TMPDIR"), "/codec_ratios.md");
    if let Err(e) = std::fs::write(path, &table) {
        eprintln!("could not write {path}: {e}");
    } else {
        println!("written to {path}");
    }
}
