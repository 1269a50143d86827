//! libFuzzer entry point: `cargo +nightly fuzz run envelope` (see `call_fuzz::envelope`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| call_fuzz::envelope(data));
