//! How a [`super::Session`] is set up: ICE servers, relay policy, which addresses to gather.

use std::time::Duration;

/// A STUN or TURN server for ICE.
#[derive(Clone, Debug, Default)]
pub struct IceServer {
    /// URLs such as `turn:127.0.0.1:3478?transport=udp`.
    pub urls: Vec<String>,
    /// TURN username (TURN REST style: `expiry:ID`).
    pub username: String,
    /// TURN password.
    pub credential: String,
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
        }
    }
}
