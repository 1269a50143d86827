//! Trust-on-first-use store of known peers.
