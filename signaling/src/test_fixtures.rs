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

/// An envelope from Alice to Bob whose JSON is exactly `size` bytes, validly encrypted and
/// signed, so it opens for Bob at `now = envelope.ts` (whatever the size: the plaintext limit
/// of `seal` is bypassed). Varies the kind and the number of digits of `ts` to hit the size.
pub fn envelope_of_exactly(size: usize) -> crate::envelope::Envelope {
    envelope_of_exactly_at(size, 1)
}

/// [`envelope_of_exactly`], preferring `ts = now` (another kind, then other timestamps if no
/// kind gives the size with that many digits).
pub fn envelope_of_exactly_at(size: usize, now: u64) -> crate::envelope::Envelope {
    use crate::envelope::{Envelope, EnvelopeKind};
    use crypto_box::aead::Aead;
    let (a, b) = (alice(), bob());
    let nonce = seq::<24>(0x40);
    let timestamps = std::iter::once(now).chain((0..19u32).map(|d| 10u64.pow(d)));
    for ts in timestamps {
        for kind in EnvelopeKind::ALL {
            let mut env = Envelope::seal_with_nonce(&a, &b.call_id(), kind, b"", ts, nonce)
                .expect("an empty plaintext seals");
            // The JSON without the body's base64 (16 bytes of tag = 24 characters).
            let base = env.to_json().len() - 24;
            let Some(b64_len) = size.checked_sub(base) else {
                continue;
            };
            if b64_len % 4 != 0 || b64_len < 24 {
                continue;
            }
            let plaintext = vec![b'x'; b64_len / 4 * 3 - 16];
            let cbox = crypto_box::SalsaBox::new(&b.call_id().to_x25519(), &a.to_x25519());
            env.body = cbox
                .encrypt(&nonce.into(), plaintext.as_slice())
                .expect("encryption of a test plaintext");
            env.sig = a.sign(&env.signed_bytes());
            assert_eq!(env.to_json().len(), size);
            return env;
        }
    }
    panic!("no envelope of exactly {size} bytes");
}
