//! libFuzzer entry point: `cargo +nightly fuzz run audio_jitter` (see `call_fuzz::audio_jitter`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| call_fuzz::audio_jitter(data));
