//! One call, from signaling to hang-up: the wiring between the signaling client, the media
//! session, the codec, the jitter buffer and the audio devices.
//!
//! [`dial`] and [`listen`] do the signed offer/answer exchange ([`setup`]), then hand the
//! connected session to [`media_loop`], which runs until either side hangs up.

pub mod backoff;
mod chat_log;
mod dial_inbox;
mod error;
mod listen_inbox;
mod live_line;
mod media_loop;
mod options;
mod peer_name;
mod playout;
mod setup;

pub use chat_log::{MAX_CHAT_KEPT, MAX_CHAT_KEPT_BYTES};
pub use dial_inbox::BUSY_REASON;
pub use error::CallError;
pub use options::{CallOptions, CallReport, ChatInput, EndReason, IncomingDecision};
pub use setup::{dial, listen};

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
