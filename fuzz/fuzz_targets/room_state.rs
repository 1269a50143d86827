//! libFuzzer entry point: `cargo +nightly fuzz run room_state` (see `call_fuzz::room_state`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| call_fuzz::room_state(data));
