//! Challenge-response authentication of a connection (sans-IO).
//!
//! The server sends a [`Challenge`] (random nonce, its name, its time); the client signs
//! [`auth_message`] with its identity key; [`Challenge::verify`] checks the signature with
//! `verify_strict` and the time window. A challenge can be answered once: the first attempt
//! consumes it, so a captured answer is worthless on any other connection or a second try.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use ed25519_dalek::Signature;

use crate::identity::{verify_strict, CallId};
use crate::protocol::{
    auth_message, encode_nonce, ServerFrame, CHALLENGE_NONCE_LEN, MAX_AUTH_SKEW_SECS,
};

/// Why an `auth` frame was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The challenge was already answered (single use).
    #[error("the challenge was already used: reconnect to get a fresh one")]
    ChallengeUsed,
    /// `sig` is not base64 of 64 bytes.
    #[error("auth signature is not base64 of 64 bytes")]
    MalformedSignature,
    /// The signature does not verify for the claimed ID.
    #[error(
        "auth signature does not verify for the claimed call ID (wrong key, server name or nonce)"
    )]
    BadSignature,
    /// The challenge is older than the allowed window.
    #[error("the challenge is {age} s old (limit {MAX_AUTH_SKEW_SECS} s): reconnect")]
    Stale {
        /// Age in seconds.
        age: u64,
    },
    /// The challenge is dated in the future (server clock jumped back).
    #[error("the challenge is dated {ahead} s in the future: reconnect")]
    FromFuture {
        /// Seconds ahead.
        ahead: u64,
    },
}

/// One connection's challenge.
#[derive(Debug, Clone)]
pub struct Challenge {
    server: String,
    nonce: [u8; CHALLENGE_NONCE_LEN],
    ts: u64,
    used: bool,
}

impl Challenge {
    /// A challenge from server `server` with a fresh random `nonce`, issued at unix time `ts`.
    pub fn new(server: impl Into<String>, nonce: [u8; CHALLENGE_NONCE_LEN], ts: u64) -> Self {
        Self {
            server: server.into(),
            nonce,
            ts,
            used: false,
        }
    }

    /// The `challenge` frame to send.
    pub fn frame(&self) -> ServerFrame {
        ServerFrame::Challenge {
            server: self.server.clone(),
            nonce: encode_nonce(&self.nonce),
            ts: self.ts,
        }
    }

    /// Checks an `auth` answer at unix time `now`; consumes the challenge whatever the outcome.
    pub fn verify(&mut self, id: &CallId, sig: &str, now: u64) -> Result<CallId, AuthError> {
        if std::mem::replace(&mut self.used, true) {
            return Err(AuthError::ChallengeUsed);
        }
        if now >= self.ts {
            let age = now - self.ts;
            if age > MAX_AUTH_SKEW_SECS {
                return Err(AuthError::Stale { age });
            }
        } else {
            let ahead = self.ts - now;
            if ahead > MAX_AUTH_SKEW_SECS {
                return Err(AuthError::FromFuture { ahead });
            }
        }
        let bytes: [u8; 64] = BASE64
            .decode(sig.as_bytes())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(AuthError::MalformedSignature)?;
        let sig = Signature::from_bytes(&bytes);
        verify_strict(id, &auth_message(&self.server, &self.nonce, self.ts), &sig)
            .map_err(|_| AuthError::BadSignature)?;
        Ok(*id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;
    use crate::protocol::{answer_challenge, ClientFrame};

    const NOW: u64 = 1_700_000_000;

    fn answer(identity: &Identity, server: &str, nonce: [u8; 32], ts: u64) -> (CallId, String) {
        match answer_challenge(identity, server, &nonce, ts) {
            ClientFrame::Auth { id, sig } => (id, sig),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn valid_answer_is_accepted_once() {
        let me = Identity::from_seed([1; 32]);
        let mut c = Challenge::new("srv", [5; 32], NOW);
        let (id, sig) = answer(&me, "srv", [5; 32], NOW);
        assert_eq!(c.verify(&id, &sig, NOW + 1), Ok(me.call_id()));
        assert_eq!(c.verify(&id, &sig, NOW + 1), Err(AuthError::ChallengeUsed));
    }

    #[test]
    fn wrong_server_name_nonce_or_ts_fails() {
        let me = Identity::from_seed([1; 32]);
        for (server, nonce, ts) in [
            ("other", [5; 32], NOW),
            ("srv", [6; 32], NOW),
            ("srv", [5; 32], NOW + 1),
        ] {
            let mut c = Challenge::new("srv", [5; 32], NOW);
            let (id, sig) = answer(&me, server, nonce, ts);
            assert_eq!(c.verify(&id, &sig, NOW), Err(AuthError::BadSignature));
        }
    }

    #[test]
    fn someone_elses_id_fails() {
        let me = Identity::from_seed([1; 32]);
        let victim = Identity::from_seed([2; 32]).call_id();
        let mut c = Challenge::new("srv", [5; 32], NOW);
        let (_, sig) = answer(&me, "srv", [5; 32], NOW);
        assert_eq!(c.verify(&victim, &sig, NOW), Err(AuthError::BadSignature));
    }

    #[test]
    fn stale_or_future_challenge_fails() {
        let me = Identity::from_seed([1; 32]);
        let (id, sig) = answer(&me, "srv", [5; 32], NOW);
        let mut c = Challenge::new("srv", [5; 32], NOW);
        assert_eq!(
            c.verify(&id, &sig, NOW + 61),
            Err(AuthError::Stale { age: 61 })
        );
        let mut c = Challenge::new("srv", [5; 32], NOW);
        assert_eq!(
            c.verify(&id, &sig, NOW - 61),
            Err(AuthError::FromFuture { ahead: 61 })
        );
        let mut c = Challenge::new("srv", [5; 32], NOW);
        assert!(c.verify(&id, &sig, NOW + 60).is_ok());
    }

    #[test]
    fn malformed_signature_fails() {
        let me = Identity::from_seed([1; 32]).call_id();
        for sig in ["", "!!!", "AAAA"] {
            let mut c = Challenge::new("srv", [5; 32], NOW);
            assert_eq!(c.verify(&me, sig, NOW), Err(AuthError::MalformedSignature));
        }
    }
}
