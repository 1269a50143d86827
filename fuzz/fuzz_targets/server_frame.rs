//! libFuzzer entry point: `cargo +nightly fuzz run server_frame` (see `call_fuzz::server_frame`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| call_fuzz::server_frame(data));
