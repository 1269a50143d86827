//! Audio quality under impairment: the vowel mix, Opus-encoded (FEC on or off), sent through a
//! [`media::netsim`] trace, the adaptive jitter buffer and the decoder, then compared with the
//! original by signal-to-noise ratio and log-spectral distance.
//!
//! Output frames are placed by RTP timestamp, so frames inserted to grow the delay are left out
//! and dropped frames count as silence; the codec's own delay is measured once on the loss-free
//! path and removed.
//!
//! With a WAV directory, [`quality_table`] also writes the reference and every decoded signal
//! (delay removed, 48 kHz mono 16-bit) so a perceptual metric can score them:
//! `scripts/quality-score.sh` runs wideband PESQ (ITU-T P.862.2) on them.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use media::codec::opus::{
    CodecError, EncoderConfig, OpusDecoder, OpusEncoder, FRAME_SAMPLES, MAX_PACKET_BYTES,
};
use media::jitter::audio::{render, AudioJitterBuffer, JitterConfig, Playout};
use media::netsim::evaluate::{arrivals_with, drive, PullClock};
use media::netsim::{Profile, Trace};

use crate::vowels::vowel_mix;

/// FFT size of the log-spectral distance.
const FFT: usize = 512;
/// Highest frequency compared by the log-spectral distance.
const LSD_MAX_HZ: f64 = 4_000.0;

/// Score of one decoded signal against the original.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score {
    /// Signal-to-noise ratio in dB (higher is better).
    pub snr_db: f64,
    /// Mean log-spectral distance over active frames, 0–4 kHz, in dB (lower is better).
    pub lsd_db: f64,
    /// Share of frames concealed.
    pub concealed_rate: f64,
    /// Share of frames recovered from FEC.
    pub fec_rate: f64,
}

/// The test signal repeated to about `seconds`, a whole number of 20 ms frames long.
pub fn test_signal(seconds: u64) -> Vec<i16> {
    let one = vowel_mix();
    let want = (seconds as usize * 48_000).div_ceil(FRAME_SAMPLES) * FRAME_SAMPLES;
    one.iter().copied().cycle().take(want).collect()
}

/// Encodes `signal` into 20 ms Opus packets (32 kbit/s, FEC planned for 10 % loss when `fec`).
pub fn encode(signal: &[i16], fec: bool) -> anyhow::Result<Vec<Bytes>> {
    let mut enc = OpusEncoder::new(&EncoderConfig {
        fec,
        ..EncoderConfig::default()
    })?;
    let mut buf = vec![0u8; MAX_PACKET_BYTES];
    signal
        .chunks_exact(FRAME_SAMPLES)
        .map(|frame| {
            let n = enc.encode(frame, &mut buf)?;
            Ok(Bytes::copy_from_slice(&buf[..n]))
        })
        .collect()
}

/// Decodes `packets` with no network in between (the codec-only reference).
pub fn decode_clean(packets: &[Bytes]) -> anyhow::Result<Vec<i16>> {
    let mut dec = OpusDecoder::new()?;
    let mut out = vec![0i16; packets.len() * FRAME_SAMPLES];
    for (p, frame) in packets.iter().zip(out.chunks_exact_mut(FRAME_SAMPLES)) {
        dec.decode(p, frame)?;
    }
    Ok(out)
}

/// Sends `packets` through `profile` (seeded) and the adaptive buffer, decodes, and returns
/// the output placed by timestamp plus the concealed and FEC frame shares.
pub fn through_network(
    packets: &[Bytes],
    profile: &Profile,
    seed: u64,
    use_fec: bool,
) -> anyhow::Result<(Vec<i16>, f64, f64)> {
    through_network_with(packets, profile, seed, use_fec, Concealment::Classic)
}

/// Which packet-loss concealment decodes lost frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Concealment {
    /// The `media` decoder (libopus classic PLC), as in a live call.
    Classic,
    /// libopus deep PLC (decoder complexity 5); needs the `deep-plc` feature.
    Deep,
}

/// [`through_network`] with a choice of concealment.
pub fn through_network_with(
    packets: &[Bytes],
    profile: &Profile,
    seed: u64,
    use_fec: bool,
    concealment: Concealment,
) -> anyhow::Result<(Vec<i16>, f64, f64)> {
    let trace = Trace::synthesize(
        profile,
        seed,
        Duration::from_millis(20) * packets.len() as u32,
    );
    let seq0 = trace.records.first().map_or(0, |r| r.seq);
    let ts0 = trace.records.first().map_or(0, |r| r.timestamp);
    let arrivals = arrivals_with(&trace, |r| {
        packets
            .get(usize::from(r.seq.wrapping_sub(seq0)))
            .cloned()
            .unwrap_or_default()
    });
    let mut buf = AudioJitterBuffer::new(JitterConfig {
        use_fec,
        ..JitterConfig::default()
    });
    let mut classic = OpusDecoder::new()?;
    #[cfg(feature = "deep-plc")]
    let mut deep = crate::deep_plc::DeepPlcDecoder::new()?;
    #[cfg(not(feature = "deep-plc"))]
    anyhow::ensure!(
        concealment == Concealment::Classic,
        "deep PLC needs the benches crate's `deep-plc` feature"
    );
    let mut decode = |playout: &Playout, frame: &mut [i16]| -> Result<(), CodecError> {
        match concealment {
            #[cfg(feature = "deep-plc")]
            Concealment::Deep => {
                deep.render(playout, frame);
                Ok(())
            }
            _ => render(&mut classic, playout, frame).map(|_| ()),
        }
    };
    let mut out = vec![0i16; packets.len() * FRAME_SAMPLES];
    let mut frame = vec![0i16; FRAME_SAMPLES];
    let (mut frames, mut concealed, mut fec) = (0u64, 0u64, 0u64);
    let mut error = None;
    drive(
        &arrivals,
        &mut buf,
        PullClock::default(),
        Instant::now(),
        |_, playout| {
            if let Err(e) = decode(playout, &mut frame) {
                error.get_or_insert(e);
                return;
            }
            let Some(ts) = playout.timestamp() else {
                return;
            };
            let index = (ts.wrapping_sub(ts0) / FRAME_SAMPLES as u32) as usize;
            let Some(dst) = out.get_mut(index * FRAME_SAMPLES..(index + 1) * FRAME_SAMPLES) else {
                return; // before the stream or concealment after its end
            };
            frames += 1;
            match playout {
                Playout::Packet { .. } => dst.copy_from_slice(&frame),
                Playout::Fec { .. } => {
                    fec += 1;
                    dst.copy_from_slice(&frame);
                }
                Playout::Conceal { .. } => {
                    concealed += 1;
                    dst.copy_from_slice(&frame);
                }
                // Inserted frames are not placed: the timeline keeps the sender's frames only.
                Playout::Expand { .. } => concealed += 1,
                Playout::Dtx { .. } | Playout::Empty => {}
            }
        },
    );
    if let Some(e) = error {
        return Err(e.into());
    }
    let rate = |n: u64| n as f64 / frames.max(1) as f64;
    Ok((out, rate(concealed), rate(fec)))
}

/// Codec delay in samples: the lag (0..2000) maximising the correlation of `decoded` with
/// `reference`.
pub fn codec_delay(reference: &[i16], decoded: &[i16]) -> usize {
    let len = reference.len().min(48_000);
    (0..2000)
        .max_by(|&a, &b| {
            let corr = |lag: usize| -> f64 {
                (0..len.saturating_sub(lag))
                    .map(|i| {
                        f64::from(reference[i]) * f64::from(*decoded.get(i + lag).unwrap_or(&0))
                    })
                    .sum()
            };
            corr(a).total_cmp(&corr(b))
        })
        .unwrap_or(0)
}

/// Scores `decoded` (delayed by `lag` samples) against `reference`.
pub fn score(reference: &[i16], decoded: &[i16], lag: usize) -> (f64, f64) {
    let n = reference.len().min(decoded.len().saturating_sub(lag));
    let r: Vec<f64> = reference[..n].iter().map(|&s| f64::from(s)).collect();
    let d: Vec<f64> = decoded[lag..lag + n]
        .iter()
        .map(|&s| f64::from(s))
        .collect();
    let signal: f64 = r.iter().map(|x| x * x).sum();
    let noise: f64 = r.iter().zip(&d).map(|(a, b)| (a - b) * (a - b)).sum();
    let snr = 10.0 * (signal / noise.max(1e-9)).log10();
    (snr, log_spectral_distance(&r, &d))
}

/// Mean log-spectral distance (dB) over frames whose reference energy is within 40 dB of the
/// loudest frame, 0–4 kHz (the band of the test signal), Hann-windowed 512-point frames with 50 % overlap.
fn log_spectral_distance(r: &[f64], d: &[f64]) -> f64 {
    let window: Vec<f64> = (0..FFT)
        .map(|i| 0.5 - 0.5 * (std::f64::consts::TAU * i as f64 / FFT as f64).cos())
        .collect();
    let bins = (LSD_MAX_HZ / 48_000.0 * FFT as f64) as usize;
    let spectrum = |x: &[f64]| -> Vec<f64> {
        let mut re: Vec<f64> = x.iter().zip(&window).map(|(a, w)| a * w).collect();
        let mut im = vec![0.0; FFT];
        fft(&mut re, &mut im);
        (1..=bins).map(|k| re[k] * re[k] + im[k] * im[k]).collect()
    };
    let mut frames = Vec::new();
    let mut start = 0;
    while start + FFT <= r.len() {
        let energy: f64 = r[start..start + FFT].iter().map(|x| x * x).sum();
        frames.push((start, energy));
        start += FFT / 2;
    }
    let loudest = frames.iter().map(|f| f.1).fold(0.0, f64::max);
    let eps = 1e-3 * loudest / FFT as f64;
    let mut total = 0.0;
    let mut count = 0;
    for &(start, energy) in &frames {
        if energy < loudest * 1e-4 {
            continue;
        }
        let pr = spectrum(&r[start..start + FFT]);
        let pd = spectrum(&d[start..start + FFT]);
        let mean_sq: f64 = pr
            .iter()
            .zip(&pd)
            .map(|(a, b)| (10.0 * ((a + eps) / (b + eps)).log10()).powi(2))
            .sum::<f64>()
            / bins as f64;
        total += mean_sq.sqrt();
        count += 1;
    }
    total / f64::from(count.max(1))
}

/// In-place iterative radix-2 FFT; `re.len()` must be a power of two.
fn fft(re: &mut [f64], im: &mut [f64]) {
    let n = re.len();
    let mut j = 0;
    for i in 1..n {
        let mut bit = n >> 1;
        while j & bit != 0 {
            j ^= bit;
            bit >>= 1;
        }
        j |= bit;
        if i < j {
            re.swap(i, j);
            im.swap(i, j);
        }
    }
    let mut len = 2;
    while len <= n {
        let ang = -std::f64::consts::TAU / len as f64;
        for start in (0..n).step_by(len) {
            for k in 0..len / 2 {
                let (s, c) = (ang * k as f64).sin_cos();
                let (a, b) = (start + k, start + k + len / 2);
                let (tr, ti) = (re[b] * c - im[b] * s, re[b] * s + im[b] * c);
                re[b] = re[a] - tr;
                im[b] = im[a] - ti;
                re[a] += tr;
                im[a] += ti;
            }
        }
        len <<= 1;
    }
}

/// File name (without `.wav`) of one row's decoded signal: `codec-only_fec-on`, `loss5_fec-off`.
pub fn wav_name(profile: &str, fec: bool) -> String {
    let profile = if profile.starts_with("none") {
        "codec-only"
    } else {
        profile
    };
    let profile = profile.replace(' ', "_");
    format!("{profile}_fec-{}", if fec { "on" } else { "off" })
}

/// Loss profiles also run with deep PLC (feature `deep-plc`): rows named `<profile> deep-PLC`.
pub const DEEP_PLC_PROFILES: [&str; 4] = ["loss5", "loss10", "loss20", "bursty"];

/// Name of the reference signal's WAV file in the WAV directory.
pub const REFERENCE_WAV: &str = "reference.wav";

/// Writes `pcm` (48 kHz mono) to `path` as 16-bit PCM WAV.
fn write_wav(path: &Path, pcm: &[i16]) -> anyhow::Result<()> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 48_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec)?;
    for &s in pcm {
        w.write_sample(s)?;
    }
    w.finalize()?;
    Ok(())
}

/// Scores for every profile with FEC on and off, plus the codec-only reference (profile
/// `none`), in table order. With `wav_dir`, also writes [`REFERENCE_WAV`] and one
/// [`wav_name`]`.wav` per row there, aligned to the reference.
pub fn quality_table(
    seconds: u64,
    seed: u64,
    wav_dir: Option<&Path>,
) -> anyhow::Result<Vec<(String, bool, Score)>> {
    let signal = test_signal(seconds);
    if let Some(dir) = wav_dir {
        std::fs::create_dir_all(dir)?;
        write_wav(&dir.join(REFERENCE_WAV), &signal)?;
    }
    // Decoded output with the codec delay removed, cut to the reference's length.
    let aligned = |decoded: &[i16], lag: usize| -> Vec<i16> {
        let mut v: Vec<i16> = decoded.iter().skip(lag).copied().collect();
        v.resize(signal.len(), 0);
        v
    };
    let mut rows = Vec::new();
    let mut encoded: HashMap<bool, Vec<Bytes>> = HashMap::new();
    let mut lag = 0;
    for fec in [true, false] {
        let packets = encode(&signal, fec)?;
        let clean = decode_clean(&packets)?;
        if fec {
            lag = codec_delay(&signal, &clean);
        }
        let (snr_db, lsd_db) = score(&signal, &clean, lag);
        let profile = "none (codec only)".to_owned();
        if let Some(dir) = wav_dir {
            let path = dir.join(format!("{}.wav", wav_name(&profile, fec)));
            write_wav(&path, &aligned(&clean, lag))?;
        }
        rows.push((
            profile,
            fec,
            Score {
                snr_db,
                lsd_db,
                concealed_rate: 0.0,
                fec_rate: 0.0,
            },
        ));
        encoded.insert(fec, packets);
    }
    let mut runs: Vec<(String, Profile, Concealment)> = Profile::all()
        .into_iter()
        .map(|p| (p.name.clone(), p, Concealment::Classic))
        .collect();
    if cfg!(feature = "deep-plc") {
        for name in DEEP_PLC_PROFILES {
            if let Some(p) = Profile::by_name(name) {
                runs.push((format!("{name} deep-PLC"), p, Concealment::Deep));
            }
        }
    }
    for (name, profile, concealment) in runs {
        for fec in [true, false] {
            let packets = &encoded[&fec];
            let (out, concealed_rate, fec_rate) =
                through_network_with(packets, &profile, seed, fec, concealment)?;
            let (snr_db, lsd_db) = score(&signal, &out, lag);
            if let Some(dir) = wav_dir {
                let path = dir.join(format!("{}.wav", wav_name(&name, fec)));
                write_wav(&path, &aligned(&out, lag))?;
            }
            rows.push((
                name.clone(),
                fec,
                Score {
                    snr_db,
                    lsd_db,
                    concealed_rate,
                    fec_rate,
                },
            ));
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fft_finds_a_tone() {
        let mut re: Vec<f64> = (0..64)
            .map(|i| (std::f64::consts::TAU * 5.0 * i as f64 / 64.0).cos())
            .collect();
        let mut im = vec![0.0; 64];
        fft(&mut re, &mut im);
        assert!((re[5] - 32.0).abs() < 1e-9 && im[5].abs() < 1e-9);
        assert!(re[6].abs() < 1e-9);
    }

    /// Every table row has its WAV, aligned to and as long as the reference, so a perceptual
    /// scorer compares like with like.
    #[test]
    fn wav_files_match_the_table() {
        let dir = std::env::temp_dir().join(format!("call-quality-wavs-{}", std::process::id()));
        let rows = quality_table(1, 7, Some(&dir)).unwrap();
        let read = |name: &str| {
            let r = hound::WavReader::open(dir.join(name)).unwrap();
            assert_eq!((r.spec().sample_rate, r.spec().channels), (48_000, 1));
            r.into_samples::<i16>()
                .map(Result::unwrap)
                .collect::<Vec<_>>()
        };
        let reference = read(REFERENCE_WAV);
        assert_eq!(reference, test_signal(1));
        for (profile, fec, _) in &rows {
            let decoded = read(&format!("{}.wav", wav_name(profile, *fec)));
            assert_eq!(decoded.len(), reference.len(), "{profile} fec {fec}");
        }
        // The codec-only decode is aligned: scored at lag 0 it matches the table's SNR.
        let clean = read(&format!("{}.wav", wav_name("none (codec only)", false)));
        let (snr, _) = score(&reference, &clean, 0);
        assert!(
            (snr - rows[1].2.snr_db).abs() < 0.5,
            "{snr} vs {}",
            rows[1].2.snr_db
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn identical_signals_score_perfectly() {
        let s = test_signal(1);
        let (snr, lsd) = score(&s, &s, 0);
        assert!(snr > 100.0);
        assert!(lsd < 1e-6);
    }
}
