//! Signed SDP offers/answers binding a DTLS fingerprint to an identity.
//!
//! These are the plaintexts carried inside envelopes (one layer inside [`crate::envelope`]):
//! a [`SignedSdp`] for `offer`/`answer`, a [`CandidateBody`] for `candidate`, a [`HangupBody`]
//! for `hangup`/`reject`. The envelope already authenticates the sender; the separate signature
//! on the SDP binds the DTLS certificate fingerprint to both IDs, the call, the role and an
//! expiry, so that a signed SDP cannot be replayed into another call or direction, and the
//! media layer can check the certificate the DTLS handshake presents against
//! [`SignedSdp::fingerprint`]. Sans-IO: `now` is an argument.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use ed25519_dalek::Signature;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::envelope::MAX_PLAINTEXT_BYTES;
use crate::identity::{verify_strict, CallId, Identity};

/// Domain-separation prefix of the SDP signature (see [`SignedSdp::signed_bytes`]).
pub const SDP_SIG_DOMAIN: &[u8] = b"call-sdp/v1";
/// Largest SDP accepted or signed, bytes (leaves room for the other fields in one envelope).
pub const MAX_SDP_BYTES: usize = 40 * 1024;
/// Largest `reason` in a [`HangupBody`], bytes.
pub const MAX_REASON_BYTES: usize = 256;
/// The fingerprint hash that is signed and checked against the DTLS certificate.
pub const FINGERPRINT_HASH: &str = "sha-256";
/// Other `a=fingerprint` hashes (RFC 8122 / IANA names) an SDP may carry next to the sha-256
/// one, with their digest lengths in bytes. They are checked for shape and otherwise ignored:
/// stock WebRTC stacks emit them, and the binding rests on sha-256 alone.
pub const OTHER_FINGERPRINT_HASHES: [(&str, usize); 4] = [
    ("sha-1", 20),
    ("sha-224", 28),
    ("sha-384", 48),
    ("sha-512", 64),
];
/// How long a signed SDP is meant to live: `call` signs with `expires = now + SDP_TTL_SECS`.
pub const SDP_TTL_SECS: u64 = 60;
/// A receiver refuses `expires` later than `now + MAX_SDP_EXPIRY_SECS` (2 × [`SDP_TTL_SECS`]):
/// a signed SDP must not stay usable for longer than a call set-up.
pub const MAX_SDP_EXPIRY_SECS: u64 = 2 * SDP_TTL_SECS;

/// The `reason` values `call` sends in [`HangupBody`]; receivers accept any printable text.
pub mod reason {
    /// The call ended normally (either side hung up).
    pub const HANG_UP: &str = "hang-up";
    /// The callee (or its user) declined the call.
    pub const DECLINED: &str = "declined";
    /// The callee is already in a call.
    pub const BUSY: &str = "busy";
    /// The caller gave up waiting for an answer.
    pub const TIMEOUT: &str = "timeout";
}

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Why a signed SDP (or another envelope body) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OfferError {
    /// The signature does not verify for `from`.
    #[error("SDP signature does not verify: the offer/answer was forged or altered")]
    BadSignature,
    /// Signed by someone other than the peer we are calling / expecting.
    #[error("SDP is signed by {got}, not by the expected peer {expected}: refusing the call")]
    WrongSigner {
        /// The peer we expected.
        expected: CallId,
        /// Who signed.
        got: CallId,
    },
    /// Addressed to another ID.
    #[error("SDP is addressed to another call ID")]
    WrongRecipient,
    /// An offer where an answer was expected, or the reverse.
    #[error("SDP has role {got}, expected {expected}")]
    WrongRole {
        /// Expected role.
        expected: Role,
        /// Role found.
        got: Role,
    },
    /// Belongs to another call.
    #[error("SDP belongs to call {got}, expected {expected}")]
    WrongCall {
        /// Expected call token.
        expected: CallToken,
        /// Call token found.
        got: CallToken,
    },
    /// Past its expiry.
    #[error("SDP expired {ago} s ago: the peer took too long, or a clock is wrong")]
    Expired {
        /// Seconds since expiry.
        ago: u64,
    },
    /// `expires` is further ahead than [`MAX_SDP_EXPIRY_SECS`].
    #[error("SDP expires {ahead} s from now, more than the {MAX_SDP_EXPIRY_SECS} s allowed: a clock is wrong, or the SDP was made to be replayed later")]
    ExpiresTooLate {
        /// Seconds between now and `expires`.
        ahead: u64,
    },
    /// A hang-up or reject `reason` with control or format characters.
    #[error("hang-up reason contains a control or format character (U+{0:04X}); only printable text is accepted")]
    UnprintableReason(u32),
    /// The SDP's `a=fingerprint` differs from the signed fingerprint.
    #[error("the SDP's DTLS fingerprint differs from the signed fingerprint: refusing the call")]
    FingerprintMismatch,
    /// The SDP has no sha-256 `a=fingerprint` line.
    #[error("SDP has no sha-256 a=fingerprint line (DTLS with a sha-256 fingerprint is required)")]
    NoFingerprint,
    /// The SDP has several distinct sha-256 fingerprints.
    #[error("SDP has {0} distinct sha-256 a=fingerprint values; exactly one is allowed")]
    MultipleFingerprints(usize),
    /// A fingerprint with a hash that is neither sha-256 nor one of [`OTHER_FINGERPRINT_HASHES`].
    #[error("SDP fingerprint uses hash {0:?}; only sha-256 (plus sha-1/224/384/512 lines next to it) is accepted")]
    UnsupportedFingerprintHash(String),
    /// Not valid JSON of the expected shape, or a malformed field.
    #[error("malformed signaling body: {0}")]
    Malformed(String),
    /// Over the size limit.
    #[error("signaling body of {size} bytes exceeds the {max}-byte limit")]
    TooLarge {
        /// Size found.
        size: usize,
        /// Limit.
        max: usize,
    },
}

impl OfferError {
    /// Stable machine-readable code, for logs and docs (`docs/protocol.md`).
    pub fn code(&self) -> &'static str {
        match self {
            OfferError::BadSignature => "sdp_bad_signature",
            OfferError::WrongSigner { .. } => "sdp_wrong_signer",
            OfferError::WrongRecipient => "sdp_wrong_recipient",
            OfferError::WrongRole { .. } => "sdp_wrong_role",
            OfferError::WrongCall { .. } => "sdp_wrong_call",
            OfferError::Expired { .. } => "sdp_expired",
            OfferError::ExpiresTooLate { .. } => "sdp_expires_too_late",
            OfferError::UnprintableReason(_) => "body_unprintable_reason",
            OfferError::FingerprintMismatch => "sdp_fingerprint_mismatch",
            OfferError::NoFingerprint => "sdp_no_fingerprint",
            OfferError::MultipleFingerprints(_) => "sdp_multiple_fingerprints",
            OfferError::UnsupportedFingerprintHash(_) => "sdp_unsupported_fingerprint_hash",
            OfferError::Malformed(_) => "body_malformed",
            OfferError::TooLarge { .. } => "body_too_large",
        }
    }
}

fn short(s: &str) -> String {
    const MAX: usize = 120;
    if s.chars().count() <= MAX {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(MAX).collect();
        t.push('…');
        t
    }
}

/// Direction of a signed SDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Sent by the caller.
    Offer,
    /// Sent by the callee.
    Answer,
}

impl Role {
    /// Wire name: `"offer"` or `"answer"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Offer => "offer",
            Role::Answer => "answer",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Identifies one call attempt (16 random bytes, lowercase hex on the wire). Chosen by the
/// caller; every envelope body of the call carries it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallToken([u8; 16]);

impl CallToken {
    /// A fresh random token (OS randomness).
    pub fn random() -> CallToken {
        let mut b = [0u8; 16];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut b);
        CallToken(b)
    }

    /// The token with these bytes.
    pub fn from_bytes(bytes: [u8; 16]) -> CallToken {
        CallToken(bytes)
    }

    /// The 16 bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Display for CallToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&data_encoding::HEXLOWER.encode(&self.0))
    }
}

impl fmt::Debug for CallToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CallToken({self})")
    }
}

impl FromStr for CallToken {
    type Err = OfferError;

    fn from_str(s: &str) -> Result<CallToken, OfferError> {
        let bytes = data_encoding::HEXLOWER_PERMISSIVE
            .decode(s.as_bytes())
            .map_err(|_| OfferError::Malformed("call_id is not hex".into()))?;
        let arr: [u8; 16] = bytes
            .try_into()
            .map_err(|_| OfferError::Malformed("call_id is not 16 bytes (32 hex digits)".into()))?;
        Ok(CallToken(arr))
    }
}

impl serde::Serialize for CallToken {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for CallToken {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s: std::borrow::Cow<'de, str> = serde::Deserialize::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

mod sig_base64 {
    use super::*;

    pub fn serialize<S: serde::Serializer>(sig: &Signature, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&B64.encode(sig.to_bytes()))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Signature, D::Error> {
        let text: std::borrow::Cow<'de, str> = serde::Deserialize::deserialize(d)?;
        let bytes = B64
            .decode(text.as_bytes())
            .map_err(|_| serde::de::Error::custom("`sig` is not canonical padded base64"))?;
        let arr: [u8; 64] = bytes
            .try_into()
            .map_err(|_| serde::de::Error::custom("`sig` is not 64 bytes"))?;
        Ok(Signature::from_bytes(&arr))
    }
}

/// An SDP offer or answer signed by its author, bound to both IDs, one call, a role and an
/// expiry. Serializes to the JSON of `docs/protocol.md`.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedSdp {
    /// The call this SDP belongs to.
    pub call_id: CallToken,
    /// Offer or answer.
    pub role: Role,
    /// Author (signer).
    pub from: CallId,
    /// Intended peer.
    pub to: CallId,
    /// Unix seconds after which the SDP is refused.
    pub expires: u64,
    /// The SDP's DTLS fingerprint, normalized: `"sha-256 AB:CD:…"` (uppercase hex).
    pub fingerprint: String,
    /// The SDP itself.
    pub sdp: String,
    /// Ed25519 signature by `from` over [`SignedSdp::signed_bytes`].
    #[serde(with = "sig_base64")]
    pub sig: Signature,
}

impl fmt::Debug for SignedSdp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedSdp")
            .field("call_id", &self.call_id)
            .field("role", &self.role)
            .field("from", &self.from)
            .field("to", &self.to)
            .field("expires", &self.expires)
            .field("fingerprint", &self.fingerprint)
            .field("sdp_len", &self.sdp.len())
            .finish_non_exhaustive()
    }
}

impl SignedSdp {
    /// Signs `sdp` for `peer`. The fingerprint is taken from the SDP's `a=fingerprint` lines
    /// (exactly one distinct sha-256 value, else an error).
    pub fn sign(
        me: &Identity,
        peer: &CallId,
        call_id: CallToken,
        role: Role,
        sdp: &str,
        expires_unix: u64,
    ) -> Result<SignedSdp, OfferError> {
        if sdp.len() > MAX_SDP_BYTES {
            return Err(OfferError::TooLarge {
                size: sdp.len(),
                max: MAX_SDP_BYTES,
            });
        }
        let fingerprint = sdp_fingerprint(sdp)?;
        Ok(SignedSdp::sign_parts(
            me,
            peer,
            call_id,
            role,
            sdp,
            expires_unix,
            fingerprint,
        ))
    }

    fn sign_parts(
        me: &Identity,
        peer: &CallId,
        call_id: CallToken,
        role: Role,
        sdp: &str,
        expires_unix: u64,
        fingerprint: String,
    ) -> SignedSdp {
        let mut s = SignedSdp {
            call_id,
            role,
            from: me.call_id(),
            to: *peer,
            expires: expires_unix,
            fingerprint,
            sdp: sdp.to_owned(),
            sig: Signature::from_bytes(&[0u8; 64]),
        };
        s.sig = me.sign(&s.signed_bytes());
        s
    }

    /// The exact bytes the signature covers:
    /// `"call-sdp/v1" || call_id:16 || len(role):u8 || role (ASCII) || from:32 || to:32 ||
    /// expires:u64be || len(fingerprint):u8 || fingerprint (ASCII) || SHA-256(sdp):32`.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let role = self.role.as_str().as_bytes();
        let fp = self.fingerprint.as_bytes();
        let mut out = Vec::with_capacity(SDP_SIG_DOMAIN.len() + 16 + 1 + 6 + 64 + 8 + 1 + 103 + 32);
        out.extend_from_slice(SDP_SIG_DOMAIN);
        out.extend_from_slice(self.call_id.as_bytes());
        out.push(role.len() as u8);
        out.extend_from_slice(role);
        out.extend_from_slice(self.from.as_bytes());
        out.extend_from_slice(self.to.as_bytes());
        out.extend_from_slice(&self.expires.to_be_bytes());
        // A fingerprint that does not fit a u8 length is refused by `verify` before it matters;
        // saturate here so the encoding stays defined for any value.
        out.push(u8::try_from(fp.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(fp);
        out.extend_from_slice(&Sha256::digest(self.sdp.as_bytes()));
        out
    }

    /// Checks everything and returns the SDP: signed by `expected_from` (verify_strict),
    /// addressed to `me`, the expected `role`, the expected call (if `call_id` is given; the
    /// callee learns it from the offer), not expired at `now_unix`, and the SDP's fingerprint
    /// equal to the signed one.
    pub fn verify(
        &self,
        expected_from: &CallId,
        me: &CallId,
        call_id: Option<&CallToken>,
        role: Role,
        now_unix: u64,
    ) -> Result<&str, OfferError> {
        if self.sdp.len() > MAX_SDP_BYTES {
            return Err(OfferError::TooLarge {
                size: self.sdp.len(),
                max: MAX_SDP_BYTES,
            });
        }
        if self.from != *expected_from {
            return Err(OfferError::WrongSigner {
                expected: *expected_from,
                got: self.from,
            });
        }
        if self.to != *me {
            return Err(OfferError::WrongRecipient);
        }
        if self.fingerprint.len() > usize::from(u8::MAX) {
            return Err(OfferError::Malformed("fingerprint too long".into()));
        }
        verify_strict(&self.from, &self.signed_bytes(), &self.sig)
            .map_err(|_| OfferError::BadSignature)?;
        if self.role != role {
            return Err(OfferError::WrongRole {
                expected: role,
                got: self.role,
            });
        }
        if let Some(expected) = call_id {
            if self.call_id != *expected {
                return Err(OfferError::WrongCall {
                    expected: *expected,
                    got: self.call_id,
                });
            }
        }
        if now_unix > self.expires {
            return Err(OfferError::Expired {
                ago: now_unix - self.expires,
            });
        }
        let ahead = self.expires - now_unix;
        if ahead > MAX_SDP_EXPIRY_SECS {
            return Err(OfferError::ExpiresTooLate { ahead });
        }
        if sdp_fingerprint(&self.sdp)? != self.fingerprint {
            return Err(OfferError::FingerprintMismatch);
        }
        Ok(&self.sdp)
    }

    /// Parses untrusted bytes (an envelope plaintext) into a `SignedSdp`; no checks beyond shape.
    pub fn parse(bytes: &[u8]) -> Result<SignedSdp, OfferError> {
        parse_body(bytes)
    }

    /// The JSON text (an envelope plaintext).
    pub fn to_json(&self) -> Vec<u8> {
        // Plain strings and integers: serialization cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// Parses an envelope plaintext of type `T` with the size limit ([`MAX_PLAINTEXT_BYTES`])
/// first; unknown fields are refused. Never panics.
pub fn parse_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, OfferError> {
    if bytes.len() > MAX_PLAINTEXT_BYTES {
        return Err(OfferError::TooLarge {
            size: bytes.len(),
            max: MAX_PLAINTEXT_BYTES,
        });
    }
    serde_json::from_slice(bytes).map_err(|e| OfferError::Malformed(short(&e.to_string())))
}

/// The single sha-256 DTLS fingerprint of an SDP, normalized to `"sha-256 AB:CD:…"` (lowercase
/// hash name, uppercase hex, 32 colon-separated bytes). All `a=fingerprint:` lines (session and
/// media level) are read: the sha-256 ones must all be equal and at least one must exist; lines
/// with a hash of [`OTHER_FINGERPRINT_HASHES`] must be well formed and are otherwise ignored;
/// any other hash is refused.
pub fn sdp_fingerprint(sdp: &str) -> Result<String, OfferError> {
    let mut found: Vec<String> = Vec::new();
    for line in sdp.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let Some(value) = line.strip_prefix("a=fingerprint:") else {
            continue;
        };
        let mut parts = value.split_ascii_whitespace();
        let (Some(hash), Some(hex), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(OfferError::Malformed(
                "a=fingerprint line is not `<hash> <hex>`".into(),
            ));
        };
        if !hash.eq_ignore_ascii_case(FINGERPRINT_HASH) {
            let other = OTHER_FINGERPRINT_HASHES
                .iter()
                .find(|(name, _)| hash.eq_ignore_ascii_case(name));
            match other {
                Some((_, len)) => {
                    check_hex_pairs(hex, *len)?;
                    continue;
                }
                None => return Err(OfferError::UnsupportedFingerprintHash(short(hash))),
            }
        }
        let normalized = normalize_hex_fingerprint(hex)?;
        if !found.contains(&normalized) {
            found.push(normalized);
        }
    }
    match found.len() {
        0 => Err(OfferError::NoFingerprint),
        1 => Ok(found.swap_remove(0)),
        n => Err(OfferError::MultipleFingerprints(n)),
    }
}

/// Checks `hex` is `len` colon-separated pairs of hex digits (any case).
fn check_hex_pairs(hex: &str, len: usize) -> Result<(), OfferError> {
    let mut count = 0;
    for byte in hex.split(':') {
        count += 1;
        if count > len || byte.len() != 2 || !byte.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(OfferError::Malformed(format!(
                "a=fingerprint value is not {len} colon-separated hex bytes"
            )));
        }
    }
    if count != len {
        return Err(OfferError::Malformed(format!(
            "a=fingerprint value is not {len} colon-separated hex bytes"
        )));
    }
    Ok(())
}

fn normalize_hex_fingerprint(hex: &str) -> Result<String, OfferError> {
    check_hex_pairs(hex, 32)?;
    let mut out = String::with_capacity(FINGERPRINT_HASH.len() + 1 + 95);
    out.push_str(FINGERPRINT_HASH);
    out.push(' ');
    out.push_str(&hex.to_ascii_uppercase());
    Ok(out)
}

/// An ICE candidate as the browser / webrtc-rs `RTCIceCandidateInit` JSON spells it.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IceCandidate {
    /// The `candidate:` attribute line (empty for end-of-candidates).
    pub candidate: String,
    /// Media stream identification tag.
    #[serde(default)]
    pub sdp_mid: Option<String>,
    /// Index of the media description.
    #[serde(default, rename = "sdpMLineIndex")]
    pub sdp_mline_index: Option<u16>,
    /// ICE username fragment.
    #[serde(default)]
    pub username_fragment: Option<String>,
}

/// Plaintext of a `candidate` envelope: one trickled ICE candidate of a call.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CandidateBody {
    /// The call.
    pub call_id: CallToken,
    /// The candidate.
    pub candidate: IceCandidate,
}

impl CandidateBody {
    /// Parses an envelope plaintext (size limit, shape).
    pub fn parse(bytes: &[u8]) -> Result<CandidateBody, OfferError> {
        parse_body(bytes)
    }

    /// The JSON text (an envelope plaintext).
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// Plaintext of a `hangup` or `reject` envelope. `reason` is printable text shown to the user
/// (at most [`MAX_REASON_BYTES`], no control or format characters); `call` sends the values
/// in [`reason`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HangupBody {
    /// The call.
    pub call_id: CallToken,
    /// Why.
    pub reason: String,
}

impl HangupBody {
    /// Parses an envelope plaintext (size limits on the body and the reason; the reason must
    /// be printable text: no C0/C1 controls, DEL, or Unicode format characters such as bidi
    /// overrides, see [`is_unprintable`]).
    pub fn parse(bytes: &[u8]) -> Result<HangupBody, OfferError> {
        let body: HangupBody = parse_body(bytes)?;
        if body.reason.len() > MAX_REASON_BYTES {
            return Err(OfferError::TooLarge {
                size: body.reason.len(),
                max: MAX_REASON_BYTES,
            });
        }
        if let Some(c) = body.reason.chars().find(|&c| is_unprintable(c)) {
            return Err(OfferError::UnprintableReason(u32::from(c)));
        }
        Ok(body)
    }

    /// The JSON text (an envelope plaintext).
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// Characters refused in peer-supplied text that is shown to a person: C0 and C1 controls
/// (including newline and tab), DEL, and the Unicode format characters that reorder or hide
/// text (bidi embeddings, overrides and isolates U+202A–U+202E, U+2066–U+2069, marks U+200E,
/// U+200F, U+061C, zero-width U+200B–U+200D, U+2060–U+2064, U+FEFF, U+00AD), plus line and
/// paragraph separators U+2028/U+2029.
pub fn is_unprintable(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{061C}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{2069}'
                | '\u{FEFF}'
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    use crate::test_fixtures::{
        alice, assert_codes_distinct_and_documented, bob, carol, NOW, PROTOCOL_DOC,
    };

    const FP: &str = "sha-256 1C:7E:31:9A:0B:44:5D:E2:68:F0:93:AA:17:C6:5B:0D:88:29:4E:F1:3A:B7:60:D5:92:0C:E4:7F:16:A3:BD:58";

    fn token() -> CallToken {
        "00112233445566778899aabbccddeeff".parse().unwrap()
    }

    fn sdp_with(fps: &[&str]) -> String {
        let mut s = String::from("v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n");
        for fp in fps {
            s.push_str("a=fingerprint:");
            s.push_str(fp);
            s.push_str("\r\n");
        }
        s.push_str("m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n");
        s
    }

    fn signed() -> SignedSdp {
        SignedSdp::sign(
            &alice(),
            &bob().call_id(),
            token(),
            Role::Offer,
            &sdp_with(&[FP]),
            NOW + 60,
        )
        .unwrap()
    }

    fn verify(s: &SignedSdp) -> Result<&str, OfferError> {
        s.verify(
            &alice().call_id(),
            &bob().call_id(),
            Some(&token()),
            Role::Offer,
            NOW,
        )
    }

    #[test]
    fn sign_then_verify() {
        let s = signed();
        assert_eq!(s.fingerprint, FP);
        assert_eq!(verify(&s).unwrap(), sdp_with(&[FP]));
        // The callee does not know the call token yet.
        assert!(s
            .verify(&alice().call_id(), &bob().call_id(), None, Role::Offer, NOW)
            .is_ok());
        // Through JSON.
        let back = SignedSdp::parse(&s.to_json()).unwrap();
        assert_eq!(back, s);
        assert!(verify(&back).is_ok());
        // Answer direction.
        let ans = SignedSdp::sign(
            &bob(),
            &alice().call_id(),
            token(),
            Role::Answer,
            &sdp_with(&[FP]),
            NOW,
        )
        .unwrap();
        assert!(ans
            .verify(
                &bob().call_id(),
                &alice().call_id(),
                Some(&token()),
                Role::Answer,
                NOW
            )
            .is_ok());
    }

    #[test]
    fn each_rejection() {
        let s = signed();
        let me = bob().call_id();
        let a = alice().call_id();
        assert_eq!(
            s.verify(&carol().call_id(), &me, Some(&token()), Role::Offer, NOW),
            Err(OfferError::WrongSigner {
                expected: carol().call_id(),
                got: a
            })
        );
        assert_eq!(
            s.verify(&a, &carol().call_id(), Some(&token()), Role::Offer, NOW),
            Err(OfferError::WrongRecipient)
        );
        assert_eq!(
            s.verify(&a, &me, Some(&token()), Role::Answer, NOW),
            Err(OfferError::WrongRole {
                expected: Role::Answer,
                got: Role::Offer
            })
        );
        let other = CallToken::from_bytes([9; 16]);
        assert_eq!(
            s.verify(&a, &me, Some(&other), Role::Offer, NOW),
            Err(OfferError::WrongCall {
                expected: other,
                got: token()
            })
        );
        assert!(s
            .verify(&a, &me, Some(&token()), Role::Offer, NOW + 60)
            .is_ok());
        assert_eq!(
            s.verify(&a, &me, Some(&token()), Role::Offer, NOW + 61),
            Err(OfferError::Expired { ago: 1 })
        );
        // `expires` at most 2 x TTL ahead: a signed SDP cannot be banked for later replay.
        let far = |expires| {
            SignedSdp::sign(
                &alice(),
                &me,
                token(),
                Role::Offer,
                &sdp_with(&[FP]),
                expires,
            )
            .unwrap()
        };
        assert!(verify(&far(NOW + MAX_SDP_EXPIRY_SECS)).is_ok());
        assert_eq!(
            verify(&far(NOW + MAX_SDP_EXPIRY_SECS + 1)),
            Err(OfferError::ExpiresTooLate {
                ahead: MAX_SDP_EXPIRY_SECS + 1
            })
        );
        assert_eq!(
            verify(&far(u64::MAX)),
            Err(OfferError::ExpiresTooLate {
                ahead: u64::MAX - NOW
            })
        );

        // Tampering with each signed field.
        let other_fp = FP.replace("1C:7E", "1C:7F");
        let mut cases: Vec<(&str, SignedSdp)> = Vec::new();
        let mut t = s.clone();
        t.call_id = other;
        cases.push(("call_id", t));
        let mut t = s.clone();
        t.role = Role::Answer;
        cases.push(("role", t));
        let mut t = s.clone();
        t.expires += 1;
        cases.push(("expires", t));
        let mut t = s.clone();
        t.fingerprint = other_fp.clone();
        cases.push(("fingerprint", t));
        let mut t = s.clone();
        t.sdp = sdp_with(&[&other_fp]);
        cases.push(("sdp fingerprint", t));
        let mut t = s.clone();
        t.sdp.push_str("a=x\r\n");
        cases.push(("sdp", t));
        let mut t = s.clone();
        let mut b = t.sig.to_bytes();
        b[0] ^= 1;
        t.sig = Signature::from_bytes(&b);
        cases.push(("sig", t));
        for (field, t) in cases {
            assert_eq!(
                t.verify(&a, &me, None, t.role, NOW),
                Err(OfferError::BadSignature),
                "{field}"
            );
        }
        // `to` swapped: the new recipient sees a bad signature.
        let mut t = s.clone();
        t.to = carol().call_id();
        assert_eq!(
            t.verify(&a, &carol().call_id(), None, Role::Offer, NOW),
            Err(OfferError::BadSignature)
        );
        // Re-signed by another key claiming to be Alice.
        let mut t = s.clone();
        t.sig = carol().sign(&t.signed_bytes());
        assert_eq!(verify(&t), Err(OfferError::BadSignature));
        // Signed by a (buggy or hostile) peer with a fingerprint that is not the SDP's.
        let t = SignedSdp::sign_parts(
            &alice(),
            &me,
            token(),
            Role::Offer,
            &sdp_with(&[FP]),
            NOW + 60,
            other_fp.clone(),
        );
        assert_eq!(verify(&t), Err(OfferError::FingerprintMismatch));
        let t = SignedSdp::sign_parts(
            &alice(),
            &me,
            token(),
            Role::Offer,
            "v=0\r\n",
            NOW + 60,
            other_fp,
        );
        assert_eq!(verify(&t), Err(OfferError::NoFingerprint));
        // Oversize SDP.
        let mut t = s.clone();
        t.sdp = "a".repeat(MAX_SDP_BYTES + 1);
        assert!(matches!(verify(&t), Err(OfferError::TooLarge { .. })));
        assert!(matches!(
            SignedSdp::sign(&alice(), &me, token(), Role::Offer, &t.sdp, NOW),
            Err(OfferError::TooLarge { .. })
        ));
    }

    #[test]
    fn fingerprint_extraction() {
        assert_eq!(sdp_fingerprint(&sdp_with(&[FP])).unwrap(), FP);
        // Lowercase input, repeated at media level, LF-only line ends: one distinct value.
        let lower = FP.to_lowercase().replace("sha-256", "SHA-256");
        let sdp = sdp_with(&[&lower, FP]).replace("\r\n", "\n");
        assert_eq!(sdp_fingerprint(&sdp).unwrap(), FP);
        assert_eq!(sdp_fingerprint("v=0\r\n"), Err(OfferError::NoFingerprint));
        let other = FP.replace("58", "59");
        assert_eq!(
            sdp_fingerprint(&sdp_with(&[FP, &other])),
            Err(OfferError::MultipleFingerprints(2))
        );
        assert_eq!(
            sdp_fingerprint(&sdp_with(&["md5 AA:BB"])),
            Err(OfferError::UnsupportedFingerprintHash("md5".into()))
        );
        // Stock stacks add sha-384/sha-512 (and sometimes sha-1) lines next to the sha-256 one:
        // accepted when well formed; only the sha-256 value is bound and checked.
        let hexes = |n: usize| vec!["ab"; n].join(":");
        let (sha1, sha384, sha512) = (
            format!("sha-1 {}", hexes(20)),
            format!("SHA-384 {}", hexes(48)),
            format!("sha-512 {}", hexes(64)),
        );
        assert_eq!(
            sdp_fingerprint(&sdp_with(&[&sha512, FP, &sha384, &sha1])).unwrap(),
            FP
        );
        assert_eq!(
            sdp_fingerprint(&sdp_with(&[&sha512, &sha384])),
            Err(OfferError::NoFingerprint)
        );
        for bad in [
            format!("sha-512 {}", hexes(32)),
            format!("sha-384 {}:zz", hexes(47)),
            format!("sha-1 {}", hexes(21)),
        ] {
            assert_eq!(
                sdp_fingerprint(&sdp_with(&[FP, &bad])).unwrap_err().code(),
                "body_malformed",
                "{bad}"
            );
        }
        for bad in [
            "sha-256",
            "sha-256 AA:BB",
            "sha-256 1C:7E extra",
            &FP.replace("1C:", "1C::"),
            &FP.replace("1C", "1G"),
            &FP.replace("1C", "1C1"),
            &format!("{FP}:00"),
        ] {
            assert_eq!(
                sdp_fingerprint(&sdp_with(&[bad])).unwrap_err().code(),
                "body_malformed",
                "{bad}"
            );
        }
        // Signing refuses SDPs without exactly one fingerprint.
        let me = bob().call_id();
        assert_eq!(
            SignedSdp::sign(&alice(), &me, token(), Role::Offer, "v=0\r\n", NOW),
            Err(OfferError::NoFingerprint)
        );
        assert_eq!(
            SignedSdp::sign(
                &alice(),
                &me,
                token(),
                Role::Offer,
                &sdp_with(&[FP, &other]),
                NOW
            ),
            Err(OfferError::MultipleFingerprints(2))
        );
    }

    #[test]
    fn call_token_text_form() {
        let t = CallToken::random();
        assert_ne!(t, CallToken::random());
        let text = t.to_string();
        assert_eq!(text.len(), 32);
        assert_eq!(text.parse::<CallToken>().unwrap(), t);
        assert_eq!(text.to_uppercase().parse::<CallToken>().unwrap(), t);
        for bad in [
            "",
            "00",
            "zz112233445566778899aabbccddeeff",
            "00112233445566778899aabbccddeeff00",
        ] {
            assert!(bad.parse::<CallToken>().is_err(), "{bad}");
        }
        assert_eq!(
            serde_json::to_string(&token()).unwrap(),
            "\"00112233445566778899aabbccddeeff\""
        );
    }

    #[test]
    fn bodies_round_trip_and_reject_junk() {
        let c = CandidateBody {
            call_id: token(),
            candidate: IceCandidate {
                candidate: "candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host".into(),
                sdp_mid: Some("0".into()),
                sdp_mline_index: Some(0),
                username_fragment: None,
            },
        };
        let json = String::from_utf8(c.to_json()).unwrap();
        assert!(json.contains("\"sdpMLineIndex\":0") && json.contains("\"sdpMid\":\"0\""));
        assert_eq!(CandidateBody::parse(json.as_bytes()).unwrap(), c);
        let h = HangupBody {
            call_id: token(),
            reason: "hangup".into(),
        };
        assert_eq!(
            String::from_utf8(h.to_json()).unwrap(),
            r#"{"call_id":"00112233445566778899aabbccddeeff","reason":"hangup"}"#
        );
        assert_eq!(HangupBody::parse(&h.to_json()).unwrap(), h);
        let long = HangupBody {
            call_id: token(),
            reason: "x".repeat(MAX_REASON_BYTES + 1),
        };
        assert!(matches!(
            HangupBody::parse(&long.to_json()),
            Err(OfferError::TooLarge { .. })
        ));
        // Reasons are printable text: no terminal escapes, newlines or bidi overrides.
        for (bad, code) in [
            ("\u{1b}[2J", 0x1b),
            ("a\nb", 0x0a),
            ("\u{9b}31m", 0x9b),
            ("\u{7f}", 0x7f),
            ("busy\u{202e}", 0x202e),
            ("\u{2067}x", 0x2067),
            ("\u{200b}", 0x200b),
            ("\u{feff}", 0xfeff),
        ] {
            let h = HangupBody {
                call_id: token(),
                reason: bad.into(),
            };
            assert_eq!(
                HangupBody::parse(&h.to_json()),
                Err(OfferError::UnprintableReason(code)),
                "{bad:?}"
            );
        }
        for good in [reason::HANG_UP, reason::BUSY, "déclinée", "忙", "🙂 later"] {
            let h = HangupBody {
                call_id: token(),
                reason: good.into(),
            };
            assert_eq!(HangupBody::parse(&h.to_json()).unwrap(), h);
        }
        assert!(matches!(
            SignedSdp::parse(&vec![b' '; MAX_PLAINTEXT_BYTES + 1]),
            Err(OfferError::TooLarge { .. })
        ));
        for junk in [
            &b"{}"[..],
            b"[",
            b"null",
            br#"{"call_id":"00","reason":"x"}"#,
        ] {
            assert_eq!(
                HangupBody::parse(junk).unwrap_err().code(),
                "body_malformed"
            );
            assert_eq!(SignedSdp::parse(junk).unwrap_err().code(), "body_malformed");
        }
        let mut v = serde_json::to_value(signed()).unwrap();
        v["extra"] = 1.into();
        assert_eq!(
            SignedSdp::parse(v.to_string().as_bytes())
                .unwrap_err()
                .code(),
            "body_malformed"
        );
        let mut v = serde_json::to_value(signed()).unwrap();
        v["sig"] = "AAAA".into();
        assert_eq!(
            SignedSdp::parse(v.to_string().as_bytes())
                .unwrap_err()
                .code(),
            "body_malformed"
        );
    }

    #[test]
    fn error_codes_are_distinct_and_documented() {
        let all = [
            OfferError::BadSignature,
            OfferError::WrongSigner {
                expected: alice().call_id(),
                got: bob().call_id(),
            },
            OfferError::WrongRecipient,
            OfferError::WrongRole {
                expected: Role::Offer,
                got: Role::Answer,
            },
            OfferError::WrongCall {
                expected: token(),
                got: token(),
            },
            OfferError::Expired { ago: 1 },
            OfferError::ExpiresTooLate { ahead: 1 },
            OfferError::UnprintableReason(0),
            OfferError::FingerprintMismatch,
            OfferError::NoFingerprint,
            OfferError::MultipleFingerprints(2),
            OfferError::UnsupportedFingerprintHash(String::new()),
            OfferError::Malformed(String::new()),
            OfferError::TooLarge { size: 0, max: 0 },
        ];
        let codes: Vec<_> = all.iter().map(|e| e.code()).collect();
        assert_codes_distinct_and_documented(&codes);
    }

    /// The signed-SDP example of docs/protocol.md.
    #[test]
    fn protocol_doc_sdp_vector() {
        let sdp = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=fingerprint:sha-256 1c:7e:31:9a:0b:44:5d:e2:68:f0:93:aa:17:c6:5b:0d:88:29:4e:f1:3a:b7:60:d5:92:0c:e4:7f:16:a3:bd:58\r\n";
        let s = SignedSdp::sign(
            &alice(),
            &bob().call_id(),
            token(),
            Role::Offer,
            sdp,
            NOW + 30,
        )
        .unwrap();
        let hex = |b: &[u8]| data_encoding::HEXLOWER.encode(b);
        let doc = PROTOCOL_DOC;
        let values = [
            ("sdp sha-256", hex(&Sha256::digest(sdp.as_bytes()))),
            ("sdp signed bytes", hex(&s.signed_bytes())),
            ("signed sdp json", String::from_utf8(s.to_json()).unwrap()),
        ];
        let missing: Vec<String> = values
            .iter()
            .filter(|(_, v)| !doc.contains(v.as_str()))
            .map(|(n, v)| format!("{n}: {v}"))
            .collect();
        assert!(
            missing.is_empty(),
            "docs/protocol.md lacks:\n{}",
            missing.join("\n")
        );
    }

    proptest! {
        #[test]
        fn fingerprint_parser_never_panics(sdp in ".{0,400}", extra in "[a-zA-Z0-9:= \\-]{0,120}") {
            let _ = sdp_fingerprint(&sdp);
            let _ = sdp_fingerprint(&format!("a=fingerprint:{extra}\r\n{sdp}"));
        }

        #[test]
        fn body_parsers_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..1024)) {
            let _ = SignedSdp::parse(&bytes);
            let _ = CandidateBody::parse(&bytes);
            let _ = HangupBody::parse(&bytes);
        }
    }
}
