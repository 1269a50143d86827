//! The one error type of [`crate::codec`]: every failure names the codec operation and what to do.

/// What went wrong inside an encoder or decoder.
///
/// Errors only allocate on the failure path, so the steady-state encode/decode loop stays
/// allocation-free.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// libopus refused an operation (bad packet, bad argument, internal error).
    #[error("opus {op} failed: {source}")]
    Opus {
        /// The operation that failed, e.g. "decode" or "set bitrate".
        op: &'static str,
        /// The libopus error.
        #[source]
        source: opus::Error,
    },
    /// The PCM frame handed to the encoder is not one Opus frame long.
    #[error(
        "pcm frame has {got} samples; Opus needs 2.5, 5, 10, 20, 40 or 60 ms \
         (120, 240, 480, 960, 1920 or 2880 samples of 48 kHz mono), usually {expected}"
    )]
    FrameSize {
        /// The usual frame size (20 ms).
        expected: usize,
        /// The number of samples given.
        got: usize,
    },
    /// An output buffer is too small for the frame or packet being produced.
    #[error(
        "output buffer holds {got} samples or bytes but {needed} are needed; pass a larger buffer"
    )]
    OutputTooSmall {
        /// The minimum size needed.
        needed: usize,
        /// The size given.
        got: usize,
    },
    /// An empty packet was passed to a decode call.
    #[error("empty packet: a lost packet is concealed with conceal() or recovered with decode_fec(), not decoded")]
    EmptyPacket,
    /// A codec setting is out of range.
    #[error("invalid codec configuration: {0}")]
    InvalidConfig(String),
    /// openh264 refused an operation.
    #[error("h264 {op} failed: {source}")]
    H264 {
        /// The operation that failed, e.g. "encode" or "decode".
        op: &'static str,
        /// The openh264 error.
        #[source]
        source: openh264::Error,
    },
    /// A video frame does not match the dimensions the encoder was configured for.
    #[error(
        "frame is {got_width}x{got_height} but the encoder was configured for {width}x{height}"
    )]
    FrameDimensions {
        /// Configured width.
        width: usize,
        /// Configured height.
        height: usize,
        /// Frame width.
        got_width: usize,
        /// Frame height.
        got_height: usize,
    },
}
