//! axum WebSocket signaling server with embedded TURN.

pub mod peer_policy;
pub mod turn;
