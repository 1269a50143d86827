//! Shared pieces of the end-to-end tests in `tests/tests/`: signal analysis of what a call
//! delivered, process resource counts, and a tampering WebSocket relay that sits between a client
//! and the signaling server like a malicious server would.

pub mod analysis;
pub mod pair;
pub mod resources;
pub mod tamper;
