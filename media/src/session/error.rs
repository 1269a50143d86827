//! Errors of the webrtc-rs shell.

use std::time::Duration;

/// What went wrong in a peer connection.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// webrtc-rs refused an operation.
    #[error("webrtc: could not {what}: {source}")]
    WebRtc {
        /// What we were doing.
        what: &'static str,
        /// The underlying error.
        #[source]
        source: webrtc::Error,
    },
    /// No local description after gathering (should not happen; report a bug).
    #[error("no local SDP after ICE gathering")]
    NoLocalDescription,
    /// ICE or DTLS failed.
    #[error("connection failed: ICE or DTLS could not be established (check that the peer and TURN server are reachable)")]
    ConnectionFailed,
    /// ICE connected but the DTLS handshake failed: with webrtc-rs checking the certificate
    /// against the signed SDP, this is what a swapped fingerprint looks like.
    #[error("call refused: the DTLS handshake failed, the peer's certificate does not match the fingerprint in its signed SDP (possible man-in-the-middle)")]
    DtlsFailed,
    /// The connection was closed before it was up.
    #[error("connection closed before it was established")]
    Closed,
    /// Not connected within the timeout.
    #[error("not connected within {0:?} (peer or TURN server unreachable? try --relay-only or a longer --connect-timeout)")]
    ConnectTimeout(Duration),
    /// DTLS finished without a peer certificate.
    #[error("the peer presented no DTLS certificate")]
    NoRemoteCertificate,
    /// The certificate presented in DTLS is not the one in the peer's signed SDP.
    #[error("call refused: DTLS certificate fingerprint {presented} does not match the signed fingerprint {signed} (possible man-in-the-middle)")]
    FingerprintMismatch {
        /// Fingerprint from the signed SDP.
        signed: String,
        /// Fingerprint of the certificate presented in the handshake.
        presented: String,
    },
    /// The chat data channel is not open (yet, or any more).
    #[error("the chat channel is not open")]
    ChatNotOpen,
    /// Video was asked for but the session was created without a sending video track.
    #[error("this session sends no video (set SessionConfig::video with a sending direction)")]
    NoVideoTrack,
    /// A keyframe request or NACK before any video arrived from the peer: its SSRC is unknown.
    #[error("no video received from the peer yet; retry once its first packet has arrived")]
    NoRemoteVideo,
    /// The video settings cannot work.
    #[error("invalid video settings: {0}")]
    VideoConfig(String),
    /// An access unit could not be packetized.
    #[error("cannot packetize the access unit: {0} (pass an Annex-B H.264 access unit)")]
    BadAccessUnit(String),
    /// A lock was poisoned by a panic in another task (a bug; restart the call).
    #[error("internal lock poisoned by an earlier panic")]
    Poisoned,
}

impl SessionError {
    pub(crate) fn webrtc(what: &'static str) -> impl FnOnce(webrtc::Error) -> SessionError {
        move |source| SessionError::WebRtc { what, source }
    }
}
