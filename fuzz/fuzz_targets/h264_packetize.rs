//! libFuzzer entry point: `cargo +nightly fuzz run h264_packetize` (see `call_fuzz::h264_packetize`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| call_fuzz::h264_packetize(data));
