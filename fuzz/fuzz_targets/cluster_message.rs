//! libFuzzer entry point: `cargo +nightly fuzz run cluster_message` (see `call_fuzz::cluster_message`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| call_fuzz::cluster_message(data));
