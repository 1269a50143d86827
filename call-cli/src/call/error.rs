//! Why a call did not happen or ended badly: one clear line for the user.

use signaling::identity::CallId;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// The signaling server could not be reached or refused us.
    #[error("signaling: {0}")]
    Signaling(String),
    /// A local audio device or file could not be opened.
    #[error("audio: {0}")]
    Audio(#[from] native::AudioError),
    /// A local video device or file could not be opened.
    #[error("video: {0}")]
    Video(#[from] native::VideoError),
    /// The codec failed.
    #[error("codec: {0}")]
    Codec(#[from] media::codec::opus::CodecError),
    /// webrtc-rs failed or the connection could not be established.
    #[error("{0}")]
    Session(#[from] media::session::SessionError),
    /// The peer's offer or answer failed verification: the call is refused.
    #[error("call refused: {0}")]
    Verification(String),
    /// The peer declined.
    #[error("the peer declined the call: {0}")]
    Rejected(String),
    /// The signaling server says nobody with that ID is connected to it.
    #[error("{0} is not connected to the signaling server (is the peer running `call listen` on the same server?)")]
    PeerNotOnline(CallId),
    /// No answer in time.
    #[error("no answer within {0:.0} s (is the peer running `call listen` on the same server?)")]
    NoAnswer(f64),
    /// No valid answer in time, and messages that were not one were ignored meanwhile.
    #[error("no valid answer within {secs:.0} s; ignored {ignored} message(s) that were not a valid answer from the peer for this call (last: {last})")]
    NoValidAnswer {
        /// The connect timeout, seconds.
        secs: f64,
        /// How many messages were ignored.
        ignored: usize,
        /// Why the last one was ignored.
        last: String,
    },
    /// The peer is in another call and answered `busy`.
    #[error("{0} is busy (in another call)")]
    Busy(CallId),
    /// Trust on first use: the key saved for a name changed.
    #[error("the key saved for `{name}` changed (was {previous}, now {new}); verify the new safety number by voice, then pass --accept-changed-key")]
    KeyChanged {
        /// The name.
        name: String,
        /// The key saved before.
        previous: CallId,
        /// The key offered now.
        new: CallId,
    },
    /// A room's call could not start (unknown room, not a member, the room store failed).
    #[error("room: {0}")]
    Room(String),
    /// Writing the stats file or similar.
    #[error("{0}")]
    Io(String),
}

/// The error code (`docs/protocol.md` §6 and §13) of a signaling client error, for logs; `-`
/// for errors without one (connection failures).
pub(crate) fn client_error_code(e: &signaling::client::ClientError) -> &'static str {
    use signaling::client::ClientError;
    match e {
        ClientError::Envelope(e) => e.code(),
        ClientError::Server { code, .. } => code.as_str(),
        ClientError::Frame(f) => f.code().as_str(),
        _ => "-",
    }
}
