//! Jitter buffers: sans-IO cores fed `(packet, arrival)` and polled with `now`.

pub mod audio;
pub mod video;
