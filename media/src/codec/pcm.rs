//! Sample-format helpers for 16-bit PCM: audio level for the stats line and level meters, and
//! the power at one frequency (how tests, benches and the mix checks find a member's tone).

/// The level of a PCM buffer in dBFS (0 dBFS is a full-scale square wave; a full-scale sine is
/// about -3 dBFS). Silence and empty buffers give [`SILENCE_DBFS`].
pub fn rms_dbfs(pcm: &[i16]) -> f32 {
    if pcm.is_empty() {
        return SILENCE_DBFS;
    }
    let sum_sq: f64 = pcm.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    let rms = (sum_sq / pcm.len() as f64).sqrt() / 32768.0;
    if rms <= 0.0 {
        return SILENCE_DBFS;
    }
    (20.0 * rms.log10()).max(f64::from(SILENCE_DBFS)) as f32
}

/// The floor reported by [`rms_dbfs`] for digital silence.
pub const SILENCE_DBFS: f32 = -120.0;

/// The power of `samples` (at `sample_rate` Hz) at `freq` Hz, by the Goertzel algorithm: one
/// bin of a DFT, in arbitrary units; compare it with other frequencies' of the same samples.
pub fn tone_power(samples: &[i16], sample_rate: f64, freq: f64) -> f64 {
    let w = std::f64::consts::TAU * freq / sample_rate;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s0 = f64::from(x) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    s1 * s1 + s2 * s2 - coeff * s1 * s2
}

#[cfg(test)]
mod tests {
    use super::tone_power;

    #[test]
    fn tone_power_finds_the_tone_and_not_its_neighbours() {
        let sine: Vec<i16> = (0..48_000)
            .map(|n| {
                let t = f64::from(n) / 48_000.0;
                (8000.0 * (std::f64::consts::TAU * 700.0 * t).sin()) as i16
            })
            .collect();
        let at = tone_power(&sine, 48_000.0, 700.0);
        for other in [400.0, 650.0, 750.0, 1000.0] {
            assert!(tone_power(&sine, 48_000.0, other) < at * 1e-4, "{other} Hz");
        }
    }

    use super::*;

    #[test]
    fn silence_and_empty_are_floor() {
        assert_eq!(rms_dbfs(&[]), SILENCE_DBFS);
        assert_eq!(rms_dbfs(&[0; 960]), SILENCE_DBFS);
    }

    #[test]
    fn full_scale_square_is_zero_and_sine_is_minus_three() {
        let square: Vec<i16> = (0..960)
            .map(|i| if i % 2 == 0 { i16::MAX } else { i16::MIN })
            .collect();
        assert!(rms_dbfs(&square).abs() < 0.01);
        let sine: Vec<i16> = (0..960)
            .map(|i| {
                ((i as f64 * 2.0 * std::f64::consts::PI * 440.0 / 48_000.0).sin() * 32767.0) as i16
            })
            .collect();
        assert!((rms_dbfs(&sine) + 3.01).abs() < 0.1, "{}", rms_dbfs(&sine));
    }
}
