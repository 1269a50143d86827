//! Deterministic speech-like test signal: a vowel mix for audio-quality measurements.
//!
//! Five vowels (/a/ /e/ /i/ /o/ /u/), each 400 ms of voice followed by 100 ms of silence: a
//! band-limited glottal source (harmonics of a 110–135 Hz pitch with 3 Hz vibrato, 1/k
//! amplitudes) through three formant resonators, with 20 ms fades, peak -6 dBFS, 48 kHz mono.
//! No randomness, so every run and machine produces the same samples (up to the last bit of
//! libm's `sin`). `cargo run -p benches --bin gen-vowels` writes it to `benches/assets/vowels.wav`.

use std::f64::consts::{PI, TAU};

/// Sample rate of the signal.
pub const SAMPLE_RATE: u32 = 48_000;

/// Formant frequencies (F1, F2, F3) in Hz of the five vowels, in playing order.
const VOWELS: [[f64; 3]; 5] = [
    [730.0, 1090.0, 2440.0],
    [530.0, 1840.0, 2480.0],
    [270.0, 2290.0, 3010.0],
    [570.0, 840.0, 2410.0],
    [300.0, 870.0, 2240.0],
];
/// Formant bandwidths in Hz.
const BANDWIDTHS: [f64; 3] = [90.0, 110.0, 170.0];
const VOICED_S: f64 = 0.4;
const PAUSE_S: f64 = 0.1;
const FADE_S: f64 = 0.02;

/// One pass of the vowel mix (2.5 s).
pub fn vowel_mix() -> Vec<i16> {
    let fs = f64::from(SAMPLE_RATE);
    let mut out = Vec::new();
    let mut phase = 0.0f64;
    for (v, formants) in VOWELS.iter().enumerate() {
        let voiced = (VOICED_S * fs) as usize;
        let mut filters: Vec<Resonator> = formants
            .iter()
            .zip(BANDWIDTHS)
            .map(|(&f, b)| Resonator::new(f, b, fs))
            .collect();
        for n in 0..voiced {
            let t = n as f64 / fs;
            let f0 = 110.0 + 5.0 * v as f64 + 8.0 * (TAU * 3.0 * t).sin();
            phase = (phase + f0 / fs).fract();
            let harmonics = (4000.0 / f0) as usize;
            let mut x = 0.0;
            for k in 1..=harmonics {
                x += (TAU * k as f64 * phase).sin() / k as f64;
            }
            let y = filters.iter_mut().fold(x, |acc, r| r.step(acc));
            let fade = fade(t, VOICED_S);
            out.push(y * fade);
        }
        out.extend(std::iter::repeat_n(0.0, (PAUSE_S * fs) as usize));
    }
    let peak = out.iter().fold(0.0f64, |m, s| m.max(s.abs())).max(1e-9);
    let gain = 0.5 * f64::from(i16::MAX) / peak;
    out.iter().map(|s| (s * gain).round() as i16).collect()
}

/// Raised-cosine fade in and out over [`FADE_S`] at the edges of a `len`-second segment.
fn fade(t: f64, len: f64) -> f64 {
    let edge = t.min(len - t).max(0.0);
    if edge >= FADE_S {
        1.0
    } else {
        0.5 - 0.5 * (PI * edge / FADE_S).cos()
    }
}

/// Two-pole resonator with unit gain at its centre frequency.
struct Resonator {
    a1: f64,
    a2: f64,
    gain: f64,
    y1: f64,
    y2: f64,
}

impl Resonator {
    fn new(freq: f64, bandwidth: f64, fs: f64) -> Self {
        let r = (-PI * bandwidth / fs).exp();
        let theta = TAU * freq / fs;
        Self {
            a1: 2.0 * r * theta.cos(),
            a2: -r * r,
            gain: (1.0 - r) * (1.0 - 2.0 * r * (2.0 * theta).cos() + r * r).sqrt(),
            y1: 0.0,
            y2: 0.0,
        }
    }

    fn step(&mut self, x: f64) -> f64 {
        let y = self.gain * x + self.a1 * self.y1 + self.a2 * self.y2;
        self.y2 = self.y1;
        self.y1 = y;
        y
    }
}

/// A 16-bit mono PCM WAV file of `samples` at [`SAMPLE_RATE`].
pub fn wav_bytes(samples: &[i16]) -> Vec<u8> {
    let data_len = (samples.len() * 2) as u32;
    let mut b = Vec::with_capacity(44 + samples.len() * 2);
    b.extend_from_slice(b"RIFF");
    b.extend_from_slice(&(36 + data_len).to_le_bytes());
    b.extend_from_slice(b"WAVEfmt ");
    b.extend_from_slice(&16u32.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes()); // PCM
    b.extend_from_slice(&1u16.to_le_bytes()); // mono
    b.extend_from_slice(&SAMPLE_RATE.to_le_bytes());
    b.extend_from_slice(&(SAMPLE_RATE * 2).to_le_bytes());
    b.extend_from_slice(&2u16.to_le_bytes());
    b.extend_from_slice(&16u16.to_le_bytes());
    b.extend_from_slice(b"data");
    b.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        b.extend_from_slice(&s.to_le_bytes());
    }
    b
}

/// Samples of a WAV written by [`wav_bytes`] (44-byte header, 16-bit mono), or `None` if the
/// bytes are not such a file.
pub fn wav_samples(bytes: &[u8]) -> Option<Vec<i16>> {
    if bytes.len() < 44 || &bytes[..4] != b"RIFF" || &bytes[8..16] != b"WAVEfmt " {
        return None;
    }
    if &bytes[36..40] != b"data" || bytes[22..24] != [1, 0] || bytes[34..36] != [16, 0] {
        return None;
    }
    Some(
        bytes[44..]
            .chunks_exact(2)
            .map(|c| i16::from_le_bytes([c[0], c[1]]))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_is_deterministic_and_speech_like() {
        let a = vowel_mix();
        assert_eq!(a, vowel_mix());
        assert_eq!(a.len(), 5 * 24_000);
        let peak = a.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0);
        assert!((16_000..=16_384).contains(&peak), "peak {peak}");
        // Pauses are silent.
        assert!(a[20_000..24_000].iter().all(|&s| s == 0));
    }

    #[test]
    fn checked_in_wav_matches_the_generator() {
        let bytes = include_bytes!("../assets/vowels.wav");
        let file = wav_samples(bytes).expect("valid wav");
        let generated = vowel_mix();
        assert_eq!(file.len(), generated.len());
        let worst = file
            .iter()
            .zip(&generated)
            .map(|(a, b)| (i32::from(*a) - i32::from(*b)).abs())
            .max()
            .unwrap_or(0);
        assert!(
            worst <= 1,
            "regenerate with `cargo run -p benches --bin gen-vowels`"
        );
    }
}
