//! Generated audio for machines without a microphone or speaker: a sine tone source, a
//! silence source and a sink that discards. All are unpaced and deterministic: the caller
//! decides when to pull or push a frame.

use crate::error::AudioError;
use crate::{AudioSink, AudioSource, StreamCounters, SAMPLE_RATE};

/// Amplitude of generated tones: -12 dBFS (10^(-12/20) of full scale).
pub const SINE_AMPLITUDE: f64 = 0.251_188_643;

/// A sine tone at a fixed frequency, 48 kHz mono, about -12 dBFS, phase-continuous across frames.
#[derive(Debug, Clone)]
pub struct SineSource {
    hz: f32,
    phase: f64,
    increment: f64,
}

impl SineSource {
    /// A tone at `hz` (the spec parser ensures 0 < hz < 24000).
    pub fn new(hz: f32) -> Self {
        Self {
            hz,
            phase: 0.0,
            increment: std::f64::consts::TAU * f64::from(hz) / f64::from(SAMPLE_RATE),
        }
    }
}

impl AudioSource for SineSource {
    fn read_frame(&mut self, frame: &mut [i16]) -> Result<bool, AudioError> {
        let peak = SINE_AMPLITUDE * 32767.0;
        for s in frame.iter_mut() {
            *s = (self.phase.sin() * peak).round() as i16;
            self.phase += self.increment;
            if self.phase >= std::f64::consts::TAU {
                self.phase -= std::f64::consts::TAU;
            }
        }
        Ok(true)
    }

    fn describe(&self) -> String {
        format!("sine {} Hz at -12 dBFS", self.hz)
    }
}

/// Digital silence, forever.
#[derive(Debug, Clone, Default)]
pub struct SilenceSource;

impl AudioSource for SilenceSource {
    fn read_frame(&mut self, frame: &mut [i16]) -> Result<bool, AudioError> {
        frame.fill(0);
        Ok(true)
    }

    fn describe(&self) -> String {
        "silence".to_owned()
    }
}

/// A sink that discards audio (`--audio-out null`) and only counts frames.
#[derive(Debug, Clone, Default)]
pub struct NullSink {
    frames: u64,
}

impl NullSink {
    /// Frames written so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }
}

impl AudioSink for NullSink {
    fn write_frame(&mut self, _frame: &[i16]) -> Result<(), AudioError> {
        self.frames += 1;
        Ok(())
    }

    fn finish(&mut self) -> Result<(), AudioError> {
        Ok(())
    }

    fn describe(&self) -> String {
        "null (discarding audio)".to_owned()
    }

    fn counters(&self) -> StreamCounters {
        StreamCounters::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FRAME_SAMPLES;

    /// Power at `hz` by the Goertzel algorithm.
    fn goertzel(samples: &[i16], hz: f64) -> f64 {
        media::codec::pcm::tone_power(samples, f64::from(SAMPLE_RATE), hz)
    }

    fn frames(source: &mut dyn AudioSource, n: usize) -> Vec<i16> {
        let mut out = Vec::new();
        let mut frame = [0i16; FRAME_SAMPLES];
        for _ in 0..n {
            assert!(source.read_frame(&mut frame).unwrap());
            out.extend_from_slice(&frame);
        }
        out
    }

    #[test]
    fn sine_dominant_frequency_and_level() {
        for hz in [440.0f32, 1000.0, 3150.0] {
            let samples = frames(&mut SineSource::new(hz), 50);
            let target = goertzel(&samples, f64::from(hz));
            // Scan 100 Hz .. 8 kHz in 50 Hz steps: the target bin must dominate.
            for probe in (2..160).map(|k| f64::from(k) * 50.0) {
                if (probe - f64::from(hz)).abs() > 60.0 {
                    assert!(
                        goertzel(&samples, probe) * 100.0 < target,
                        "{hz} Hz vs {probe} Hz"
                    );
                }
            }
            let peak = samples.iter().map(|s| s.unsigned_abs()).max().unwrap();
            // -12 dBFS peak is about 8231.
            assert!((8100..=8300).contains(&peak), "peak {peak}");
        }
    }

    #[test]
    fn sine_is_phase_continuous_and_deterministic() {
        // Reading 960 at a time gives the same samples as reading odd-sized chunks.
        let whole = frames(&mut SineSource::new(440.0), 10);
        let mut chunked = Vec::new();
        let mut src = SineSource::new(440.0);
        let mut buf = [0i16; 7];
        while chunked.len() < whole.len() {
            src.read_frame(&mut buf).unwrap();
            chunked.extend_from_slice(&buf);
        }
        assert_eq!(&chunked[..whole.len()], &whole[..]);
        // No jump at frame boundaries: consecutive samples differ by at most the max slope.
        let max_step = (std::f64::consts::TAU * 440.0 / 48_000.0 * 8231.0).ceil() as i32 + 1;
        for pair in whole.windows(2) {
            assert!((i32::from(pair[1]) - i32::from(pair[0])).abs() <= max_step);
        }
    }

    #[test]
    fn silence_and_null() {
        let mut frame = [5i16; FRAME_SAMPLES];
        assert!(SilenceSource.read_frame(&mut frame).unwrap());
        assert!(frame.iter().all(|&s| s == 0));
        let mut sink = NullSink::default();
        for _ in 0..3 {
            sink.write_frame(&frame).unwrap();
        }
        assert_eq!(sink.frames(), 3);
        sink.finish().unwrap();
        sink.finish().unwrap();
        assert!(sink.describe().contains("null"));
    }
}
