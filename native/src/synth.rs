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
