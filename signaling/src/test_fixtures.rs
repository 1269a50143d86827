//! Fixed identities and times shared by the unit tests (the same seeds as the worked example in
//! `docs/protocol.md`).

use crate::identity::Identity;

/// The time every test treats as "now", unix seconds.
pub const NOW: u64 = 1_700_000_000;

/// `N` bytes counting up from `start`: deterministic seeds and nonces.
pub fn seq<const N: usize>(start: u8) -> [u8; N] {
    let mut out = [0u8; N];
    for (i, b) in out.iter_mut().enumerate() {
        *b = start.wrapping_add(i as u8);
    }
    out
}

/// Alice: seed 00 01 .. 1f.
pub fn alice() -> Identity {
    Identity::from_seed(seq(0x00))
}

/// Bob: seed 20 21 .. 3f.
pub fn bob() -> Identity {
    Identity::from_seed(seq(0x20))
}

/// Carol, a third party: seed 80 81 .. 9f.
pub fn carol() -> Identity {
    Identity::from_seed(seq(0x80))
}

/// `docs/protocol.md`, which the tests hold to the code.
pub const PROTOCOL_DOC: &str = include_str!("../../docs/protocol.md");

/// Asserts that error `codes` are pairwise distinct and each is documented (as `` `code` ``) in
/// `docs/protocol.md`.
pub fn assert_codes_distinct_and_documented(codes: &[&str]) {
    let distinct: std::collections::BTreeSet<_> = codes.iter().collect();
    assert_eq!(
        distinct.len(),
        codes.len(),
        "duplicate error codes in {codes:?}"
    );
    for code in codes {
        assert!(
            PROTOCOL_DOC.contains(&format!("`{code}`")),
            "{code} undocumented"
        );
    }
}
