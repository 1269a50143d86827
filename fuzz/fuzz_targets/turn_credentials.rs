//! libFuzzer entry point: `cargo +nightly fuzz run turn_credentials` (see `call_fuzz::turn_credentials`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| call_fuzz::turn_credentials(data));
