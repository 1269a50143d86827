//! How a [`super::Session`] is set up: ICE servers, relay policy, which addresses to gather.

use std::time::Duration;

/// A STUN or TURN server for ICE. Its `Debug` output hides the credential.
#[derive(Clone, Default)]
pub struct IceServer {
    /// URLs such as `turn:127.0.0.1:3478?transport=udp`.
    pub urls: Vec<String>,
    /// TURN username (TURN REST style: `expiry:ID`).
    pub username: String,
    /// TURN password.
    pub credential: String,
}

impl std::fmt::Debug for IceServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IceServer")
            .field("urls", &self.urls)
            .field("username", &self.username)
            .field("credential", &"<redacted>")
            .finish()
    }
}

/// Which local addresses become ICE host candidates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CandidateScope {
    /// Only loopback addresses: for local calls, tests and demos; no packet leaves the machine.
    LoopbackOnly,
    /// Every interface, as a real call between machines needs.
    All,
}

/// Settings of one peer connection.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// STUN/TURN servers.
    pub ice_servers: Vec<IceServer>,
    /// Use only TURN relay candidates (hides our addresses from the peer).
    pub relay_only: bool,
    /// Which local addresses to offer.
    pub candidate_scope: CandidateScope,
    /// No traffic for this long marks ICE disconnected.
    pub ice_disconnected_timeout: Duration,
    /// No traffic for this long after disconnection marks ICE failed.
    pub ice_failed_timeout: Duration,
    /// Add the outgoing audio track. `false` for chat-only sessions: the offer then carries no
    /// audio m-line, and [`super::Session::send_audio`] sends nothing.
    pub audio: bool,
    /// Add an H.264 video m-section. `None` (the default) offers none; a session without video
    /// still accepts a peer's offer with video and talks audio only.
    pub video: Option<VideoConfig>,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            ice_servers: Vec::new(),
            relay_only: false,
            candidate_scope: CandidateScope::All,
            ice_disconnected_timeout: Duration::from_secs(3),
            ice_failed_timeout: Duration::from_secs(6),
            audio: true,
            video: None,
        }
    }
}

/// Which way video flows on the session's one video m-section.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VideoDirection {
    /// Send and receive video (`a=sendrecv`).
    SendRecv,
    /// Only send (`a=sendonly`): the peer's video, if any, is not asked for.
    SendOnly,
    /// Only receive (`a=recvonly`): no camera on this side.
    RecvOnly,
}

impl VideoDirection {
    /// Whether this side sends video.
    pub fn sends(self) -> bool {
        matches!(self, VideoDirection::SendRecv | VideoDirection::SendOnly)
    }
}

/// The H.264 video track of a session (see `docs/protocol.md` §18.5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VideoConfig {
    /// Send, receive, or both.
    pub direction: VideoDirection,
    /// Sent packets kept for retransmission on NACK.
    pub history: usize,
    /// Largest RTP payload the packetizer produces (bytes). 1200 keeps the SRTP packet under
    /// common tunnel MTUs.
    pub max_payload: usize,
    /// Deterministic loss for tests and demos: every `n`-th video packet is kept in the
    /// history but not sent the first time, so only a NACK brings it to the peer. `None` in
    /// real calls.
    pub drop_every_nth: Option<u32>,
}

impl Default for VideoConfig {
    fn default() -> Self {
        Self {
            direction: VideoDirection::SendRecv,
            history: super::history::DEFAULT_HISTORY,
            max_payload: 1200,
            drop_every_nth: None,
        }
    }
}
