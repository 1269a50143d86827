//! libFuzzer entry point: `cargo +nightly fuzz run wav` (see `call_fuzz::wav`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| call_fuzz::wav(data));
