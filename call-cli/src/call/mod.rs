//! One call, from signaling to hang-up: the wiring between the signaling client, the media
//! session, the codec, the jitter buffer and the audio devices.
//!
//! [`dial`] and [`listen`] are the terminal front end over [`crate::engine::Call`]; the signed
//! offer/answer exchange is in `setup`, the connected call in [`crate::engine`].

pub mod backoff;
mod chat_log;
mod dial_inbox;
mod error;
pub(crate) mod front;
mod listen_inbox;
pub(crate) mod live_line;
mod options;
mod peer_name;
pub(crate) mod setup;
mod video_flow;

pub use chat_log::{MAX_CHAT_KEPT, MAX_CHAT_KEPT_BYTES};
pub use dial_inbox::BUSY_REASON;
pub use error::CallError;
pub use front::{dial, listen};
pub use options::{CallOptions, CallReport, ChatInput, EndReason, IncomingDecision, VideoOptions};
pub use video_flow::{sdp_video_flow, VideoFlow};

pub(crate) use chat_log::ChatLog;
pub(crate) use error::client_error_code;
pub(crate) use listen_inbox::{answer_busy, verified_offer};

use std::time::{SystemTime, UNIX_EPOCH};

/// Wall-clock Unix seconds: the shell reads the clock, the signaling cores take it as input.
pub(crate) fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Wall-clock Unix milliseconds, for chat timestamps.
pub(crate) fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
