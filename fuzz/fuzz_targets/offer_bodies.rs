//! libFuzzer entry point: `cargo +nightly fuzz run offer_bodies` (see `call_fuzz::offer_bodies`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| call_fuzz::offer_bodies(data));
