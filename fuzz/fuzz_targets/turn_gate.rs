//! libFuzzer entry point: `cargo +nightly fuzz run turn_gate` (see `call_fuzz::turn_gate`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| call_fuzz::turn_gate(data));
