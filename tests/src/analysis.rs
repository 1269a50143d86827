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
pub use media::codec::pcm::tone_power as goertzel_power;

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
