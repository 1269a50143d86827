//! `signaling`: the encrypted signaling plane of `call`.
//!
//! [`identity`] is the account (an ed25519 key); [`envelope`] signs, seals, opens and checks
//! messages between identities (sans-IO); [`offer`] binds an SDP's DTLS fingerprint to an identity;
//! [`protocol`] is the client/server wire format; [`server`] routes envelopes and hands out TURN
//! credentials; [`client`] is the async client.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod client;
pub mod envelope;
pub mod host_name;
pub mod identity;
pub mod known_peers;
pub mod offer;
pub mod protocol;
pub mod room;
pub mod server;
#[cfg(test)]
mod test_fixtures;
pub mod turn_credentials;
