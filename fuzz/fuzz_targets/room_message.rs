//! libFuzzer entry point: `cargo +nightly fuzz run room_message` (see `call_fuzz::room_message`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| call_fuzz::room_message(data));
