//! libFuzzer entry point: `cargo +nightly fuzz run h264_depacketize` (see `call_fuzz::h264_depacketize`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| call_fuzz::h264_depacketize(data));
