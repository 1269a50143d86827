//! `media`: the latency-critical path of `call`.
//!
//! Distance from the wire, outermost first: [`session`] is the one place that touches webrtc-rs
//! (ICE, DTLS, SRTP, data channels); [`jitter`] turns arriving RTP into a steady playout;
//! [`codec`] encodes and decodes Opus and H.264; [`netsim`] impairs packets in tests and benches;
//! [`stats`] is plain data describing a call; [`bwe`] estimates the bandwidth video may use;
//! [`sync`] schedules video frames against the audio playout (lip sync).
#![deny(missing_docs)]
// One audited exception: `codec::h264::set_bitrate_in_place` (the openh264 crate has no safe
// way to change a running encoder's bitrate). Everything else stays safe.
#![deny(unsafe_code)]

pub mod bwe;
pub mod chat;
pub mod codec;
pub mod jitter;
pub mod netsim;
pub mod session;
pub mod stats;
pub mod sync;
