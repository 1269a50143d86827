//! The fixed identities and clock the targets use: Alice and Bob of `docs/protocol.md` §9
//! (seeds `00 01 … 1f` and `20 21 … 3f`), so the protocol's test vectors verify and open, and
//! a process-wide `Instant` origin for the sans-IO cores that take one.

use std::sync::OnceLock;
use std::time::Instant;

use signaling::identity::{CallId, Identity};

/// Unix time of the protocol's worked examples (§9, §17).
pub const NOW: u64 = 1_700_000_000;

fn seeded(first: u8) -> Identity {
    let mut seed = [0u8; 32];
    for (i, b) in seed.iter_mut().enumerate() {
        // i < 32, so the sum stays below 64.
        *b = first + i as u8;
    }
    Identity::from_seed(seed)
}

/// Alice: seed `00 01 … 1f`.
pub fn alice() -> &'static Identity {
    static ALICE: OnceLock<Identity> = OnceLock::new();
    ALICE.get_or_init(|| seeded(0))
}

/// Bob: seed `20 21 … 3f`.
pub fn bob() -> &'static Identity {
    static BOB: OnceLock<Identity> = OnceLock::new();
    BOB.get_or_init(|| seeded(0x20))
}

/// Alice's call ID.
pub fn alice_id() -> CallId {
    alice().call_id()
}

/// Bob's call ID.
pub fn bob_id() -> CallId {
    bob().call_id()
}

/// The origin of virtual time: every `Instant` a target makes is this plus an offset taken
/// from the input, so a run depends on the input alone.
pub fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}
