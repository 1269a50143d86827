//! libFuzzer entry point: `cargo +nightly fuzz run video_buffer` (see `call_fuzz::video_buffer`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| call_fuzz::video_buffer(data));
