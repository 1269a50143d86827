//! Sample-format helpers for 16-bit PCM: audio level for the stats line and level meters.

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

#[cfg(test)]
mod tests {
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
