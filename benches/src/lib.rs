//! Benchmarks and report binaries for the `call` engine.

pub mod audio_quality;
pub mod fixed_delay;
pub mod vowels;
