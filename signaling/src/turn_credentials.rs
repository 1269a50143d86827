//! TURN REST-style credentials (sans-IO).
//!
//! The signaling server hands authenticated clients short-lived TURN credentials in the style of
//! the "TURN REST API" draft (draft-uberti-behave-turn-rest-00, as implemented by coturn's
//! `use-auth-secret`):
//!
//! - `username = "<expiry unix seconds>:<CallId>"`
//! - `password = base64(HMAC-SHA1(secret, username))` (standard alphabet, padded)
//!
//! The embedded TURN server ([`crate::server`]) and any coturn configured with the same
//! `static-auth-secret` accept them. Time is an argument everywhere here (`now` in unix seconds).

use std::fmt;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha1::Sha1;
use zeroize::Zeroizing;

type HmacSha1 = Hmac<Sha1>;

/// Default lifetime of issued credentials, in seconds.
pub const DEFAULT_CREDENTIAL_TTL_SECS: u64 = 600;
/// Default maximum lifetime the TURN server accepts (expiry may be at most `now + max_ttl`).
pub const DEFAULT_MAX_TTL_SECS: u64 = 86_400;
/// Longest accepted username (the CallId text form is 58 characters).
pub const MAX_USERNAME_LEN: usize = 256;

/// The shared secret between the credential issuer and the TURN server.
///
/// Zeroized on drop; its `Debug` output is redacted.
#[derive(Clone)]
pub struct TurnSecret(Zeroizing<Vec<u8>>);

impl TurnSecret {
    /// Wraps secret bytes (for coturn compatibility: the bytes of its `static-auth-secret`).
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Self, TurnCredentialError> {
        let bytes = bytes.into();
        if bytes.is_empty() {
            return Err(TurnCredentialError::EmptySecret);
        }
        Ok(Self(Zeroizing::new(bytes)))
    }

    /// A fresh random 32-byte secret (good for a single process that issues and checks).
    pub fn random() -> Self {
        let mut bytes = Zeroizing::new(vec![0u8; 32]);
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    fn mac(&self) -> HmacSha1 {
        // HMAC accepts keys of any length, so this cannot fail.
        HmacSha1::new_from_slice(&self.0).expect("HMAC-SHA1 accepts any key length")
    }
}

impl fmt::Debug for TurnSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TurnSecret(<redacted>)")
    }
}

/// Credentials for one client, as served in the `turn_credentials` frame.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TurnCredentials {
    /// TURN URLs, e.g. `turn:127.0.0.1:3478?transport=udp`.
    pub urls: Vec<String>,
    /// `"<expiry unix seconds>:<CallId>"`.
    pub username: String,
    /// `base64(HMAC-SHA1(secret, username))`.
    pub password: String,
    /// Lifetime in seconds from the time of issue.
    pub ttl: u64,
}

impl fmt::Debug for TurnCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TurnCredentials")
            .field("urls", &self.urls)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("ttl", &self.ttl)
            .finish()
    }
}

/// Why a TURN username/password was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TurnCredentialError {
    /// The shared secret is empty.
    #[error(
        "the TURN secret is empty: give a non-empty secret or let the server pick a random one"
    )]
    EmptySecret,
    /// The username is not `"<expiry>:<id>"`.
    #[error("malformed TURN username: expected \"<expiry unix seconds>:<call id>\"")]
    MalformedUsername,
    /// The expiry lies in the past.
    #[error("TURN credentials expired at {expiry} (now {now}): fetch fresh ones from the signaling server")]
    Expired {
        /// Expiry from the username.
        expiry: u64,
        /// The time of the check.
        now: u64,
    },
    /// The expiry lies further in the future than the server's maximum TTL allows.
    #[error("TURN credentials expire at {expiry}, beyond the allowed maximum {max}: the issuer's TTL exceeds this server's max TTL")]
    BeyondMaxTtl {
        /// Expiry from the username.
        expiry: u64,
        /// Latest acceptable expiry (`now + max_ttl`).
        max: u64,
    },
    /// The password is not the HMAC of the username under our secret.
    #[error("TURN password does not match the username (wrong secret or tampered username)")]
    BadPassword,
    /// A requested TTL is zero or larger than the maximum.
    #[error(
        "TURN credential TTL {ttl} s is invalid: it must be between 1 and the max TTL {max_ttl} s"
    )]
    BadTtl {
        /// The requested TTL.
        ttl: u64,
        /// The maximum TTL.
        max_ttl: u64,
    },
}

/// Issues and checks credentials under one secret with one maximum lifetime.
#[derive(Debug, Clone)]
pub struct CredentialPolicy {
    secret: TurnSecret,
    ttl: u64,
    max_ttl: u64,
}

impl CredentialPolicy {
    /// A policy issuing credentials valid for `ttl` seconds and accepting expiries up to
    /// `now + max_ttl`. Fails when `ttl` is 0 or exceeds `max_ttl`.
    pub fn new(secret: TurnSecret, ttl: u64, max_ttl: u64) -> Result<Self, TurnCredentialError> {
        if ttl == 0 || ttl > max_ttl {
            return Err(TurnCredentialError::BadTtl { ttl, max_ttl });
        }
        Ok(Self {
            secret,
            ttl,
            max_ttl,
        })
    }

    /// The lifetime of issued credentials in seconds.
    pub fn ttl(&self) -> u64 {
        self.ttl
    }

    /// The largest accepted distance between now and a credential's expiry, in seconds.
    pub fn max_ttl(&self) -> u64 {
        self.max_ttl
    }

    /// Issues credentials for `id` (the authenticated CallId's text form) at unix time `now`.
    pub fn issue(&self, id: &str, now: u64, urls: Vec<String>) -> TurnCredentials {
        let username = format!("{}:{id}", now.saturating_add(self.ttl));
        let password = self.password_for(&username);
        TurnCredentials {
            urls,
            username,
            password,
            ttl: self.ttl,
        }
    }

    /// `base64(HMAC-SHA1(secret, username))`.
    pub fn password_for(&self, username: &str) -> String {
        let mut mac = self.secret.mac();
        mac.update(username.as_bytes());
        BASE64.encode(mac.finalize().into_bytes())
    }

    /// Checks the username's expiry against `now` and the max TTL; returns the expiry.
    pub fn check_username(&self, username: &str, now: u64) -> Result<u64, TurnCredentialError> {
        let expiry = parse_username(username)?.0;
        if expiry < now {
            return Err(TurnCredentialError::Expired { expiry, now });
        }
        let max = now.saturating_add(self.max_ttl);
        if expiry > max {
            return Err(TurnCredentialError::BeyondMaxTtl { expiry, max });
        }
        Ok(expiry)
    }

    /// Full check of a username/password pair (expiry window and HMAC, constant-time compare).
    pub fn verify(
        &self,
        username: &str,
        password: &str,
        now: u64,
    ) -> Result<(), TurnCredentialError> {
        self.check_username(username, now)?;
        let given = BASE64
            .decode(password.as_bytes())
            .map_err(|_| TurnCredentialError::BadPassword)?;
        let mut mac = self.secret.mac();
        mac.update(username.as_bytes());
        mac.verify_slice(&given)
            .map_err(|_| TurnCredentialError::BadPassword)
    }

    /// The long-term credential key the TURN server needs for `username` in `realm`
    /// (`MD5(username:realm:password)`), after checking the expiry window.
    pub fn auth_key(
        &self,
        username: &str,
        realm: &str,
        now: u64,
    ) -> Result<Vec<u8>, TurnCredentialError> {
        self.check_username(username, now)?;
        let password = self.password_for(username);
        Ok(turn::auth::generate_auth_key(username, realm, &password))
    }
}

/// Splits `"<expiry>:<id>"` into its parts.
pub fn parse_username(username: &str) -> Result<(u64, &str), TurnCredentialError> {
    if username.len() > MAX_USERNAME_LEN {
        return Err(TurnCredentialError::MalformedUsername);
    }
    let (expiry, id) = username
        .split_once(':')
        .ok_or(TurnCredentialError::MalformedUsername)?;
    if expiry.is_empty() || !expiry.bytes().all(|b| b.is_ascii_digit()) || id.is_empty() {
        return Err(TurnCredentialError::MalformedUsername);
    }
    let expiry = expiry
        .parse::<u64>()
        .map_err(|_| TurnCredentialError::MalformedUsername)?;
    Ok((expiry, id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NOW: u64 = 1_700_000_000;

    fn policy() -> CredentialPolicy {
        CredentialPolicy::new(TurnSecret::new(b"north".to_vec()).unwrap(), 600, 3600).unwrap()
    }

    #[test]
    fn issued_credentials_verify() {
        let p = policy();
        let c = p.issue("abc", NOW, vec!["turn:127.0.0.1:3478?transport=udp".into()]);
        assert_eq!(c.username, format!("{}:abc", NOW + 600));
        assert_eq!(c.ttl, 600);
        p.verify(&c.username, &c.password, NOW).unwrap();
        p.verify(&c.username, &c.password, NOW + 600).unwrap();
    }

    #[test]
    fn known_vector_matches_coturn_formula() {
        // echo -n "1700000600:abc" | openssl dgst -sha1 -hmac north -binary | base64
        let p = policy();
        let pw = p.password_for("1700000600:abc");
        let mut mac = HmacSha1::new_from_slice(b"north").unwrap();
        mac.update(b"1700000600:abc");
        assert_eq!(pw, BASE64.encode(mac.finalize().into_bytes()));
        assert_eq!(pw.len(), 28);
    }

    #[test]
    fn expired_is_refused() {
        let p = policy();
        let c = p.issue("abc", NOW, vec![]);
        assert_eq!(
            p.verify(&c.username, &c.password, NOW + 601),
            Err(TurnCredentialError::Expired {
                expiry: NOW + 600,
                now: NOW + 601
            })
        );
        assert!(p.auth_key(&c.username, "r", NOW + 601).is_err());
    }

    #[test]
    fn beyond_max_ttl_is_refused() {
        let p = policy();
        let username = format!("{}:abc", NOW + 3601);
        let password = p.password_for(&username);
        assert!(matches!(
            p.verify(&username, &password, NOW),
            Err(TurnCredentialError::BeyondMaxTtl { .. })
        ));
        assert!(p.auth_key(&username, "r", NOW).is_err());
        let username = format!("{}:abc", NOW + 3600);
        let password = p.password_for(&username);
        p.verify(&username, &password, NOW).unwrap();
    }

    #[test]
    fn bad_hmac_is_refused() {
        let p = policy();
        let c = p.issue("abc", NOW, vec![]);
        let other =
            CredentialPolicy::new(TurnSecret::new(b"south".to_vec()).unwrap(), 600, 3600).unwrap();
        let forged = other.password_for(&c.username);
        assert_eq!(
            p.verify(&c.username, &forged, NOW),
            Err(TurnCredentialError::BadPassword)
        );
        assert_eq!(
            p.verify(&c.username, "not base64!", NOW),
            Err(TurnCredentialError::BadPassword)
        );
        // Tampered username (someone else's ID) with the original password.
        let tampered = c.username.replace("abc", "abd");
        assert_eq!(
            p.verify(&tampered, &c.password, NOW),
            Err(TurnCredentialError::BadPassword)
        );
        // Different auth keys for wrong secrets.
        assert_ne!(
            p.auth_key(&c.username, "r", NOW).unwrap(),
            turn::auth::generate_auth_key(&c.username, "r", &forged)
        );
        assert_eq!(
            p.auth_key(&c.username, "r", NOW).unwrap(),
            turn::auth::generate_auth_key(&c.username, "r", &c.password)
        );
    }

    #[test]
    fn malformed_usernames_are_refused() {
        let p = policy();
        for u in [
            "",
            "abc",
            ":abc",
            "123:",
            "-5:abc",
            "+5:abc",
            "1 2:abc",
            "99999999999999999999999:abc",
        ] {
            assert_eq!(
                p.check_username(u, NOW),
                Err(TurnCredentialError::MalformedUsername),
                "{u:?}"
            );
        }
        let long = format!("{}:{}", NOW + 10, "a".repeat(MAX_USERNAME_LEN));
        assert_eq!(
            p.check_username(&long, NOW),
            Err(TurnCredentialError::MalformedUsername)
        );
    }

    #[test]
    fn bad_ttl_and_empty_secret() {
        assert!(TurnSecret::new(Vec::new()).is_err());
        let s = TurnSecret::random();
        assert!(CredentialPolicy::new(s.clone(), 0, 10).is_err());
        assert!(CredentialPolicy::new(s.clone(), 11, 10).is_err());
        assert!(CredentialPolicy::new(s, 10, 10).is_ok());
    }

    #[test]
    fn secrets_and_passwords_are_redacted_in_debug() {
        let p = policy();
        let c = p.issue("abc", NOW, vec![]);
        let dbg = format!("{p:?} {c:?}");
        assert!(!dbg.contains("north"));
        assert!(!dbg.contains(&c.password));
    }

    proptest! {
        #[test]
        fn username_parser_never_panics(s in ".{0,300}") {
            let _ = policy().check_username(&s, NOW);
            let _ = policy().verify(&s, &s, NOW);
        }
    }
}
