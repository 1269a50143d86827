//! libFuzzer entry point: `cargo +nightly fuzz run send_fast_path` (see `call_fuzz::send_fast_path`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| call_fuzz::send_fast_path(data));
