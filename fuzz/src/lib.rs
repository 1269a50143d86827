//! Fuzz targets for every parser of untrusted input in `call` (issue 11, "Fuzzing").
//!
//! Each target is a plain function `fn(&[u8])` that hands the bytes to one parser's public
//! entry point and checks what must hold whatever the input: no panic, limits respected, and
//! where the format allows it a round trip (parse → encode → parse gives the same value).
//! The functions build and run on stable; two thin drivers call them:
//! - `fuzz_targets/*.rs`: libFuzzer entry points for `cargo +nightly fuzz run <target>`
//!   (feature `libfuzzer`, see `scripts/fuzz.sh`);
//! - `tests/corpus.rs`: feeds every file of `corpus/<target>/` and `regressions/<target>/`
//!   to its target, so `cargo test --workspace` (and `./scripts/test.sh`) replays them.
//!
//! [`TARGETS`] is the one list both use.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod chat_frames;
mod cluster;
mod fast_path;
mod files;
pub mod fixtures;
mod h264;
pub mod input;
mod jitter;
mod rooms;
mod signaling_frames;
mod turn;

pub use chat_frames::chat_frame;
pub use cluster::cluster_message;
pub use fast_path::send_fast_path;
pub use files::{wav, y4m};
pub use h264::{h264_depacketize, h264_packetize};
pub use jitter::{audio_jitter, video_buffer};
pub use rooms::{room_call, room_message, room_state};
pub use signaling_frames::{
    client_frame, envelope, ids, offer_bodies, sdp_fingerprint, sealed_for_bob, server_frame,
};
pub use turn::{turn_credentials, turn_gate};

/// A fuzz target: its name (the folder of its corpus, the name of its libFuzzer binary) and
/// the function that runs one input.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    /// Name as used by `cargo fuzz run` and under `corpus/` and `regressions/`.
    pub name: &'static str,
    /// Runs one input; panics when an invariant breaks.
    pub run: fn(&[u8]),
}

/// Every target, in the order of the README's table.
pub const TARGETS: [Target; 20] = [
    Target {
        name: "envelope",
        run: envelope,
    },
    Target {
        name: "client_frame",
        run: client_frame,
    },
    Target {
        name: "server_frame",
        run: server_frame,
    },
    Target {
        name: "ids",
        run: ids,
    },
    Target {
        name: "offer_bodies",
        run: offer_bodies,
    },
    Target {
        name: "sdp_fingerprint",
        run: sdp_fingerprint,
    },
    Target {
        name: "chat_frame",
        run: chat_frame,
    },
    Target {
        name: "room_state",
        run: room_state,
    },
    Target {
        name: "room_message",
        run: room_message,
    },
    Target {
        name: "room_call",
        run: room_call,
    },
    Target {
        name: "h264_depacketize",
        run: h264_depacketize,
    },
    Target {
        name: "h264_packetize",
        run: h264_packetize,
    },
    Target {
        name: "video_buffer",
        run: video_buffer,
    },
    Target {
        name: "audio_jitter",
        run: audio_jitter,
    },
    Target {
        name: "wav",
        run: wav,
    },
    Target {
        name: "y4m",
        run: y4m,
    },
    Target {
        name: "turn_credentials",
        run: turn_credentials,
    },
    Target {
        name: "turn_gate",
        run: turn_gate,
    },
    Target {
        name: "cluster_message",
        run: cluster_message,
    },
    Target {
        name: "send_fast_path",
        run: send_fast_path,
    },
];

/// The target called `name`, if there is one.
pub fn target(name: &str) -> Option<Target> {
    TARGETS.iter().copied().find(|t| t.name == name)
}
