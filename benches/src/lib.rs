//! Benchmarks and report binaries for the `call` engine.

pub mod fixed_delay;
pub mod vowels;
