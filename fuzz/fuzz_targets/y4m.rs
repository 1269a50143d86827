//! libFuzzer entry point: `cargo +nightly fuzz run y4m` (see `call_fuzz::y4m`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| call_fuzz::y4m(data));
