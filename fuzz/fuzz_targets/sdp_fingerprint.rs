//! libFuzzer entry point: `cargo +nightly fuzz run sdp_fingerprint` (see `call_fuzz::sdp_fingerprint`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| call_fuzz::sdp_fingerprint(data));
