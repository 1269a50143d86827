//! Async signaling client.
