//! Benchmarks and report binaries for the `call` engine.

pub mod audio_quality;
pub mod burst;
#[cfg(feature = "deep-plc")]
pub mod deep_plc;
pub mod fixed_delay;
pub mod load;
pub mod proc_cpu;
pub mod room_scale;
pub mod tool;
pub mod vowels;
