//! libFuzzer entry point: `cargo +nightly fuzz run room_call` (see `call_fuzz::room_call`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| call_fuzz::room_call(data));
