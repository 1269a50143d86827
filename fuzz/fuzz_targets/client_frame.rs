//! libFuzzer entry point: `cargo +nightly fuzz run client_frame` (see `call_fuzz::client_frame`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| call_fuzz::client_frame(data));
