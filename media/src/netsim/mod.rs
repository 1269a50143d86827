//! Seeded network impairment: a deterministic model for tests and benches, trace files, and a
//! UDP relay that puts the same model in front of a live call.
//!
//! Distance from the wire: [`model`] is pure logic (send time in, arrival times out);
//! [`trace`] records and replays packet arrival traces; [`evaluate`] drives any
//! [`crate::jitter::audio::PlayoutBuffer`] over a trace on virtual time; [`relay`] is the tokio
//! shell around the model, the only part here that touches sockets and clocks.

pub mod evaluate;
pub mod model;
pub mod relay;
pub mod trace;

pub use model::{Delivery, Impairment, JitterModel, LossModel, Profile, PROFILE_NAMES};
pub use relay::{ImpairmentRelay, RelayError, RelayHandle, RelayStats};
pub use trace::{Trace, TraceError, TraceRecord, TraceRecorder};
