//! Media pipelines, sans-IO: fed `(input, now)`, polled for output. No clock, socket or task in
//! here, so tests drive them on virtual time. Each kind of track has the same two halves: a send
//! pipeline per local track (source frames in, encoded frames out, shared by every peer) and a
//! receive pipeline per remote track (packets + arrival in, frames for the sink out, feedback for
//! the sender polled by the call loop).

mod audio;
mod video;

pub use audio::{AudioReceivePipeline, AudioSendPipeline, EncodedAudio, AUDIO_FRAME};
pub use video::{
    default_bitrate, DecodedVideo, EncodedVideo, VideoFeedback, VideoReceivePipeline,
    VideoSendPipeline, KEYFRAME_WAIT,
};
