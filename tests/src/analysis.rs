//! What arrived: WAV contents and their dominant frequency.

use std::path::Path;

/// Reads a 16-bit WAV file written by the call's file sink.
pub fn read_wav(path: &Path) -> Vec<i16> {
    let mut reader = hound::WavReader::open(path).expect("the sink wrote a readable WAV file");
    reader
        .samples::<i16>()
        .map(|s| s.expect("valid sample"))
        .collect()
}

/// Power at `freq` Hz (Goertzel).
pub fn goertzel_power(samples: &[i16], rate: f64, freq: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * freq / rate;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s0 = f64::from(x) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    s1 * s1 + s2 * s2 - coeff * s1 * s2
}

/// The strongest frequency between 50 Hz and 4 kHz, in 10 Hz steps.
pub fn dominant_frequency(samples: &[i16], rate: f64) -> f64 {
    (5..=400)
        .map(|k| f64::from(k) * 10.0)
        .map(|f| (f, goertzel_power(samples, rate, f)))
        .fold(
            (0.0, f64::MIN),
            |best, cur| if cur.1 > best.1 { cur } else { best },
        )
        .0
}
