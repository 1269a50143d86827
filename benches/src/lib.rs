//! Benchmarks and report binaries for the `call` engine.
