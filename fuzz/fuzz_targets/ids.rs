//! libFuzzer entry point: `cargo +nightly fuzz run ids` (see `call_fuzz::ids`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| call_fuzz::ids(data));
