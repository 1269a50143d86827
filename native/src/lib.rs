//! `native`: audio and video sources and sinks behind small traits: real devices (cpal, nokhwa)
//! and files or generated signals for machines without hardware.
//!
//! This crate is the edge of the pipeline, furthest from the wire: the media session pulls a
//! 20 ms, 48 kHz mono i16 frame from an [`AudioSource`] every 20 ms, encodes it with Opus and
//! sends it; on receive it decodes and pushes frames into an [`AudioSink`]. Video sources give
//! I420 frames to the H.264 encoder; decoded pictures go to a [`VideoSink`] (Y4M file, null or a
//! window). The caller paces: file and generated sources are unpaced
//! and deterministic, device sources deliver what the device captured (silence on underrun).
//!
//! Devices run their callback streams on a dedicated thread owned by the source or sink;
//! dropping it stops and joins that thread, so nothing is left running.
#![deny(missing_docs)]
// The only unsafe code is the one FFI call that silences ALSA's stderr noise (device.rs).
#![deny(unsafe_code)]

pub mod convert;
pub mod device;
pub mod error;
pub mod sample_queue;
pub mod spec;
pub mod synth;
pub mod video;
pub mod wav;

pub use device::{list_audio_devices, DeviceInfo};
pub use error::{AudioError, Direction, VideoError};
pub use sample_queue::StreamCounters;
pub use spec::{AudioInSpec, AudioOutSpec, CameraSelector, VideoInSpec, VideoOutSpec};
pub use synth::{NullSink, SilenceSource, SineSource};
pub use video::{
    list_cameras, open_video_sink, open_video_source, VideoFrame, VideoSink, VideoSinkCounters,
    VideoSource,
};
pub use wav::{WavSink, WavSource};

/// Sample rate of every frame crossing this crate's traits, in Hz.
pub const SAMPLE_RATE: u32 = 48_000;
/// Samples in one 20 ms mono frame at [`SAMPLE_RATE`].
pub const FRAME_SAMPLES: usize = 960;

/// A source of 48 kHz mono i16 audio, pulled one frame at a time by the caller.
pub trait AudioSource: Send {
    /// Fill `frame` (normally [`FRAME_SAMPLES`] mono i16 at 48 kHz; any length works).
    /// `Ok(false)` means end of stream (files); `frame` is then left unspecified.
    fn read_frame(&mut self, frame: &mut [i16]) -> Result<bool, AudioError>;
    /// One line saying what this source is, for logs and the terminal.
    fn describe(&self) -> String;
    /// Underrun/overflow counters (all zero for sources that cannot underrun).
    fn counters(&self) -> StreamCounters {
        StreamCounters::default()
    }
}

/// A sink of 48 kHz mono i16 audio, pushed one frame at a time by the caller.
pub trait AudioSink: Send {
    /// Take one frame (normally [`FRAME_SAMPLES`] mono i16 at 48 kHz).
    fn write_frame(&mut self, frame: &[i16]) -> Result<(), AudioError>;
    /// Flush and close (finalizes a WAV header, stops a device). Idempotent.
    fn finish(&mut self) -> Result<(), AudioError>;
    /// One line saying what this sink is, for logs and the terminal.
    fn describe(&self) -> String;
    /// Underrun/overflow counters (all zero for sinks that cannot underrun).
    fn counters(&self) -> StreamCounters {
        StreamCounters::default()
    }
}

/// Open the audio source a spec names. Device errors say how to run without a device.
pub fn open_source(spec: &AudioInSpec) -> Result<Box<dyn AudioSource>, AudioError> {
    Ok(match spec {
        AudioInSpec::Device(name) => Box::new(device::DeviceSource::open(name.as_deref())?),
        AudioInSpec::File(path) => Box::new(WavSource::open(path, false)?),
        AudioInSpec::Sine(hz) => Box::new(SineSource::new(*hz)),
        AudioInSpec::Silence => Box::new(SilenceSource),
    })
}

/// Open the audio sink a spec names. Device errors say how to run without a device.
pub fn open_sink(spec: &AudioOutSpec) -> Result<Box<dyn AudioSink>, AudioError> {
    Ok(match spec {
        AudioOutSpec::Device(name) => Box::new(device::DeviceSink::open(name.as_deref())?),
        AudioOutSpec::File(path) => Box::new(WavSink::create(path)?),
        AudioOutSpec::Null => Box::new(NullSink::default()),
    })
}
