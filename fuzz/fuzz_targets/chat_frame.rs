//! libFuzzer entry point: `cargo +nightly fuzz run chat_frame` (see `call_fuzz::chat_frame`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| call_fuzz::chat_frame(data));
