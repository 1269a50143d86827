//! Sample-format conversion between whatever a file or device delivers and the engine's
//! 48 kHz mono i16 frames: downmix by averaging channels, linear-interpolation resampling,
//! and float <-> i16 with clamping.
//!
//! Linear interpolation is a deliberate simplification: it is cheap, allocation-free and
//! stateful across calls (no clicks at frame edges), but it does not low-pass filter, so
//! downsampling content above the target Nyquist frequency aliases. Voice at 44.1/48 kHz is
//! unaffected in practice; use a proper resampler offline for music.

/// Convert a float sample in [-1, 1] to i16, rounding and clamping out-of-range values.
pub fn f32_to_i16(x: f32) -> i16 {
    let scaled = (x * 32768.0).round();
    if scaled.is_nan() {
        0
    } else {
        scaled.clamp(-32768.0, 32767.0) as i16
    }
}

/// Convert an i16 sample to a float in [-1, 1).
pub fn i16_to_f32(x: i16) -> f32 {
    f32::from(x) / 32768.0
}

/// Average one interleaved multi-channel frame down to mono.
pub fn downmix(frame: &[f32]) -> f32 {
    if frame.is_empty() {
        0.0
    } else {
        frame.iter().sum::<f32>() / frame.len() as f32
    }
}

/// Streaming linear-interpolation resampler, push style: feed input samples one at a time and
/// it emits the output samples that fall before the newest input. State carries over between
/// calls, so a stream split into arbitrary chunks resamples exactly as if processed at once.
#[derive(Debug, Clone)]
pub struct LinearResampler {
    /// Input samples per output sample.
    step: f64,
    /// Position of the next output sample, in input samples after `prev`.
    pos: f64,
    /// The previous input sample, once one has arrived.
    prev: Option<f32>,
    passthrough: bool,
}

impl LinearResampler {
    /// A resampler from `from_hz` to `to_hz`. Both must be non-zero (callers validate rates).
    pub fn new(from_hz: u32, to_hz: u32) -> Self {
        let from = from_hz.max(1);
        let to = to_hz.max(1);
        Self {
            step: f64::from(from) / f64::from(to),
            pos: 0.0,
            prev: None,
            passthrough: from == to,
        }
    }

    /// Feed one input sample; `emit` is called for every output sample it completes.
    pub fn push(&mut self, x: f32, mut emit: impl FnMut(f32)) {
        if self.passthrough {
            emit(x);
            return;
        }
        let Some(prev) = self.prev else {
            self.prev = Some(x);
            return;
        };
        while self.pos < 1.0 {
            emit(prev + (x - prev) * self.pos as f32);
            self.pos += self.step;
        }
        self.pos -= 1.0;
        self.prev = Some(x);
    }
}

/// Streaming linear-interpolation resampler, pull style (for playback callbacks): asks its
/// `next` closure for 48 kHz input samples as needed and produces one device-rate sample per call.
#[derive(Debug, Clone)]
pub struct PullResampler {
    step: f64,
    pos: f64,
    prev: f32,
    cur: f32,
}

impl PullResampler {
    /// A resampler producing `to_hz` output from `from_hz` input. Rates must be non-zero.
    pub fn new(from_hz: u32, to_hz: u32) -> Self {
        Self {
            step: f64::from(from_hz.max(1)) / f64::from(to_hz.max(1)),
            // Start at 1.0 so the first call pulls the first input sample.
            pos: 1.0,
            prev: 0.0,
            cur: 0.0,
        }
    }

    /// Produce the next output sample, pulling input samples through `next`.
    pub fn next_sample(&mut self, mut next: impl FnMut() -> f32) -> f32 {
        while self.pos >= 1.0 {
            self.prev = self.cur;
            self.cur = next();
            self.pos -= 1.0;
        }
        let out = self.prev + (self.cur - self.prev) * self.pos as f32;
        self.pos += self.step;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(from: u32, to: u32, input: &[f32]) -> Vec<f32> {
        let mut r = LinearResampler::new(from, to);
        let mut out = Vec::new();
        for &x in input {
            r.push(x, |y| out.push(y));
        }
        out
    }

    #[test]
    fn i16_round_trip_is_exact() {
        for x in [i16::MIN, -12345, -1, 0, 1, 4242, i16::MAX] {
            assert_eq!(f32_to_i16(i16_to_f32(x)), x);
        }
        assert_eq!(f32_to_i16(2.0), i16::MAX);
        assert_eq!(f32_to_i16(-2.0), i16::MIN);
        assert_eq!(f32_to_i16(f32::NAN), 0);
    }

    #[test]
    fn same_rate_passes_through() {
        let input: Vec<f32> = (0..100).map(|i| i as f32).collect();
        assert_eq!(run(48_000, 48_000, &input), input);
    }

    #[test]
    fn upsample_length_and_ramp() {
        // A ramp stays a ramp under linear interpolation.
        let input: Vec<f32> = (0..44_100).map(|i| i as f32).collect();
        let out = run(44_100, 48_000, &input);
        assert!((out.len() as i64 - 48_000).abs() <= 2, "{}", out.len());
        let step = 44_100.0 / 48_000.0;
        for (i, y) in out.iter().enumerate().take(1000) {
            assert!((y - (i as f64 * step) as f32).abs() < 1e-2, "{i}: {y}");
        }
    }

    #[test]
    fn downsample_length() {
        let input = vec![0.5f32; 96_000];
        let out = run(96_000, 48_000, &input);
        assert!((out.len() as i64 - 48_000).abs() <= 2);
        assert!(out.iter().all(|&y| (y - 0.5).abs() < 1e-6));
    }

    #[test]
    fn pull_resampler_rates() {
        let mut r = PullResampler::new(48_000, 44_100);
        let mut pulled = 0u32;
        for _ in 0..44_100 {
            r.next_sample(|| {
                pulled += 1;
                0.25
            });
        }
        assert!((i64::from(pulled) - 48_000).abs() <= 2, "{pulled}");
    }

    #[test]
    fn downmix_averages() {
        assert_eq!(downmix(&[1.0, 0.0]), 0.5);
        assert_eq!(downmix(&[]), 0.0);
    }
}
