//! The call engine: what tests, benches and any front end drive.
//!
//! [`Call::dial`] or [`Call::listen`] returns a connected [`Call`] and its [`CallEvents`]; the
//! caller reads events and sends commands ([`Call::send_chat`], [`Call::hang_up`]), then
//! [`Call::finished`] gives the report. Inside, one task moves events between the sans-IO
//! [`pipeline`]s (one send pipeline per local track, shared by all peers; one receive pipeline per
//! remote track), the peers' sessions ([`peer`]) and the signaling client.

pub mod call;
mod call_loop;
mod congestion;
mod lip_sync;
pub mod mix;
mod pair_setup;
pub mod peer;
pub mod pipeline;
mod video;

pub use call::{Call, CallCommand, CallEvent, CallEvents, MediaEnds};
pub use peer::PeerId;
pub use pipeline::{
    AudioReceivePipeline, AudioSendPipeline, DecodedVideo, EncodedAudio, EncodedVideo,
    VideoFeedback, VideoReceivePipeline, VideoSendPipeline, AUDIO_FRAME,
};
