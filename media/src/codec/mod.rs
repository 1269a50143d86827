//! Audio and video codecs behind our own small API, so the rest of the engine never sees libopus or openh264 directly.

mod error;
pub mod h264;
pub mod marker;
pub mod opus;
pub mod pattern;
pub mod pcm;

pub use error::CodecError;
