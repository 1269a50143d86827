//! Stateless TURN nonces (sans-IO): a timestamp and an HMAC of it and the client's address.
//!
//! The `turn` crate keeps every nonce it hands out in a map it never sweeps (pion/turn#361), so
//! spoofed unauthenticated requests grow memory without limit. [`NonceKey`] issues nonces that
//! carry their own proof instead: `hex8(t) || hex32(HMAC-SHA256(key, "call-turn-nonce" || t ||
//! ip || port)[..16])`, where `t` is whole seconds since the key was made (u32, big-endian) and
//! `ip` the 4 or 16 address bytes. Checking needs only the key, so nothing is stored per request.
//! The key is random per process: a restart makes old nonces stale (438), and clients retry.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How long a nonce is accepted (the `turn` crate's own nonce lifetime, RFC 5766 §4).
pub const NONCE_LIFETIME: Duration = Duration::from_secs(3600);
/// Length of a nonce in characters: 8 hex digits of time, 32 of MAC.
pub const NONCE_LEN: usize = 40;
const DOMAIN: &[u8] = b"call-turn-nonce";
const MAC_BYTES: usize = 16;

/// Why a nonce is not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NonceError {
    /// Not 40 lowercase hex digits.
    #[error("the nonce is not one this server issued (wrong length or not hex)")]
    Malformed,
    /// The MAC does not match this source address (or another key made it).
    #[error("the nonce was issued to another address or by another server run")]
    BadMac,
    /// Older than [`NONCE_LIFETIME`] or dated in the future.
    #[error("the nonce has expired; retry with the fresh one in the 438 answer")]
    Expired,
}

/// The secret behind stateless nonces, and the instant its clock starts.
#[derive(Clone)]
pub struct NonceKey {
    key: [u8; 32],
    epoch: Instant,
    lifetime: Duration,
}

impl std::fmt::Debug for NonceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NonceKey").finish_non_exhaustive()
    }
}

impl NonceKey {
    /// A key whose timestamps count from `epoch`, accepting nonces for [`NONCE_LIFETIME`].
    pub fn new(key: [u8; 32], epoch: Instant) -> Self {
        Self {
            key,
            epoch,
            lifetime: NONCE_LIFETIME,
        }
    }

    /// A random key starting at `epoch`.
    pub fn random(epoch: Instant) -> Self {
        Self::new(rand::random(), epoch)
    }

    /// The nonce for a client at `src`, issued at `now`.
    pub fn issue(&self, src: SocketAddr, now: Instant) -> String {
        let t = self.seconds(now);
        let mac = self.mac(t, src);
        format!("{t:08x}{}", hex(&mac))
    }

    /// Checks that `nonce` was issued to `src` by this key and has not expired at `now`.
    pub fn check(&self, nonce: &str, src: SocketAddr, now: Instant) -> Result<(), NonceError> {
        if nonce.len() != NONCE_LEN
            || !nonce
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(NonceError::Malformed);
        }
        let t = u32::from_str_radix(&nonce[..8], 16).map_err(|_| NonceError::Malformed)?;
        let mut tag = [0u8; MAC_BYTES];
        for (i, byte) in tag.iter_mut().enumerate() {
            let at = 8 + 2 * i;
            *byte =
                u8::from_str_radix(&nonce[at..at + 2], 16).map_err(|_| NonceError::Malformed)?;
        }
        self.mac_state(t, src)
            .verify_truncated_left(&tag)
            .map_err(|_| NonceError::BadMac)?;
        let age = self
            .seconds(now)
            .checked_sub(t)
            .ok_or(NonceError::Expired)?;
        if u64::from(age) >= self.lifetime.as_secs() {
            return Err(NonceError::Expired);
        }
        Ok(())
    }

    fn seconds(&self, now: Instant) -> u32 {
        // A server running for 136 years wraps; nonces then read as expired, never as valid.
        u32::try_from(now.saturating_duration_since(self.epoch).as_secs()).unwrap_or(u32::MAX)
    }

    fn mac_state(&self, t: u32, src: SocketAddr) -> Hmac<Sha256> {
        // Invariant: HMAC accepts keys of any length, so this cannot fail.
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(DOMAIN);
        mac.update(&t.to_be_bytes());
        match src.ip() {
            IpAddr::V4(ip) => mac.update(&ip.octets()),
            IpAddr::V6(ip) => mac.update(&ip.octets()),
        }
        mac.update(&src.port().to_be_bytes());
        mac
    }

    fn mac(&self, t: u32, src: SocketAddr) -> [u8; MAC_BYTES] {
        let full = self.mac_state(t, src).finalize().into_bytes();
        let mut out = [0u8; MAC_BYTES];
        out.copy_from_slice(&full[..MAC_BYTES]);
        out
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn src() -> SocketAddr {
        "192.0.2.1:4000".parse().unwrap()
    }

    #[test]
    fn test_vector() {
        let t0 = Instant::now();
        let key = NonceKey::new([7u8; 32], t0);
        let nonce = key.issue(src(), t0 + Duration::from_secs(300));
        // HMAC-SHA256(key = 32 × 0x07, "call-turn-nonce" 0000012c c0000201 0fa0)[..16], checked
        // with Python: hmac.new(bytes([7]*32), msg, hashlib.sha256).hexdigest()[:32]
        assert_eq!(nonce, "0000012cbf2fe74b64b3ba1d067b87a5aa85f244");
    }

    #[test]
    fn issued_nonce_checks_for_its_source_until_it_expires() {
        let t0 = Instant::now();
        let key = NonceKey::new([1u8; 32], t0);
        let nonce = key.issue(src(), t0);
        assert_eq!(nonce.len(), NONCE_LEN);
        assert_eq!(key.check(&nonce, src(), t0), Ok(()));
        assert_eq!(
            key.check(&nonce, src(), t0 + NONCE_LIFETIME - Duration::from_secs(1)),
            Ok(())
        );
        assert_eq!(
            key.check(&nonce, src(), t0 + NONCE_LIFETIME),
            Err(NonceError::Expired)
        );
        let other_port: SocketAddr = "192.0.2.1:4001".parse().unwrap();
        assert_eq!(key.check(&nonce, other_port, t0), Err(NonceError::BadMac));
        let other_key = NonceKey::new([2u8; 32], t0);
        assert_eq!(other_key.check(&nonce, src(), t0), Err(NonceError::BadMac));
    }

    #[test]
    fn future_and_malformed_nonces_are_refused() {
        let t0 = Instant::now();
        let key = NonceKey::new([1u8; 32], t0);
        let later = key.issue(src(), t0 + Duration::from_secs(10));
        assert_eq!(key.check(&later, src(), t0), Err(NonceError::Expired));
        for bad in ["", "zz", &"0".repeat(39), &"0".repeat(41), &"G".repeat(40)] {
            assert_eq!(
                key.check(bad, src(), t0),
                Err(NonceError::Malformed),
                "{bad}"
            );
        }
        let upper = key.issue(src(), t0).to_uppercase();
        assert_eq!(key.check(&upper, src(), t0), Err(NonceError::Malformed));
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics_and_never_passes(text in ".{0,64}", port: u16) {
            let t0 = Instant::now();
            let key = NonceKey::new([9u8; 32], t0);
            let from = SocketAddr::from(([198, 51, 100, 1], port));
            prop_assert!(key.check(&text, from, t0).is_err());
        }

        #[test]
        fn a_flipped_digit_is_refused(pos in 0usize..NONCE_LEN, port: u16) {
            let t0 = Instant::now();
            let key = NonceKey::new([9u8; 32], t0);
            let from = SocketAddr::from(([198, 51, 100, 1], port));
            let mut nonce = key.issue(from, t0).into_bytes();
            nonce[pos] = if nonce[pos] == b'0' { b'1' } else { b'0' };
            let nonce = String::from_utf8(nonce).unwrap();
            prop_assert!(key.check(&nonce, from, t0).is_err());
        }
    }
}
