//! Signed, sealed envelopes between identities; replay cache; limits.
//!
//! An [`Envelope`] is what one client sends another through the server: routing fields in
//! clear (`from`, `to`, `ts`, `kind`), a body encrypted to the recipient with `crypto_box`
//! (X25519 + XSalsa20-Poly1305, libsodium `crypto_box_easy` compatible, keys derived from the
//! ed25519 identities), and an ed25519 signature by the sender over all of it.
//!
//! Sans-IO: [`parse`] turns untrusted bytes into an `Envelope` (size limit first), and
//! [`Envelope::open`] runs every receiver check with `now` passed in, in this order:
//! version/kind (at parse), recipient, timestamp window, signature, replay cache, decryption.
//! Each failure is a typed [`EnvelopeError`] with a stable [`EnvelopeError::code`].
//! The exact byte layouts are in `docs/protocol.md`.

use std::collections::BTreeSet;
use std::fmt;

use base64::Engine as _;
use crypto_box::aead::Aead;
use ed25519_dalek::Signature;

use crate::identity::{verify_strict, CallId, IdError, Identity};

/// Largest serialized envelope accepted or produced, in bytes.
pub const MAX_ENVELOPE_BYTES: usize = 64 * 1024;
/// Largest plaintext [`Envelope::seal`] accepts. Leaves room under [`MAX_ENVELOPE_BYTES`] for
/// the base64 expansion, the JSON fields and a server frame wrapped around the envelope.
pub const MAX_PLAINTEXT_BYTES: usize = 45 * 1024;
/// Largest accepted difference between an envelope's `ts` and the receiver's clock, seconds.
pub const MAX_CLOCK_SKEW_SECS: u64 = 60;
/// The envelope format version this code produces and accepts.
pub const ENVELOPE_VERSION: u8 = 1;
/// Domain-separation prefix of the envelope signature (see [`Envelope::signed_bytes`]).
pub const ENVELOPE_SIG_DOMAIN: &[u8] = b"call-envelope/v1";
/// Default capacity of a [`ReplayCache`].
pub const DEFAULT_REPLAY_CAPACITY: usize = 4096;
/// Length of the `crypto_box` nonce.
pub const NONCE_LEN: usize = 24;
/// Longest error detail copied from untrusted input into an error message.
const MAX_DETAIL_CHARS: usize = 120;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// What an envelope carries; decides how the plaintext body is interpreted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EnvelopeKind {
    /// A [`crate::offer::SignedSdp`] with role offer.
    Offer,
    /// A [`crate::offer::SignedSdp`] with role answer.
    Answer,
    /// A [`crate::offer::CandidateBody`].
    Candidate,
    /// A [`crate::offer::HangupBody`]: the call ends.
    Hangup,
    /// A [`crate::offer::HangupBody`]: the call is declined.
    Reject,
}

impl EnvelopeKind {
    /// All kinds, in wire-name order of the spec.
    pub const ALL: [EnvelopeKind; 5] = [
        EnvelopeKind::Offer,
        EnvelopeKind::Answer,
        EnvelopeKind::Candidate,
        EnvelopeKind::Hangup,
        EnvelopeKind::Reject,
    ];

    /// The wire name (`"offer"`, `"answer"`, `"candidate"`, `"hangup"`, `"reject"`).
    pub fn as_str(self) -> &'static str {
        match self {
            EnvelopeKind::Offer => "offer",
            EnvelopeKind::Answer => "answer",
            EnvelopeKind::Candidate => "candidate",
            EnvelopeKind::Hangup => "hangup",
            EnvelopeKind::Reject => "reject",
        }
    }

    /// The kind with wire name `s`, if known.
    pub fn from_wire(s: &str) -> Option<EnvelopeKind> {
        EnvelopeKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for EnvelopeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for EnvelopeKind {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for EnvelopeKind {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s: std::borrow::Cow<'de, str> = serde::Deserialize::deserialize(deserializer)?;
        EnvelopeKind::from_wire(&s)
            .ok_or_else(|| serde::de::Error::custom(EnvelopeError::UnknownKind(truncate(&s))))
    }
}

/// Why an envelope was refused. Messages never contain key material or plaintext.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// More than [`MAX_ENVELOPE_BYTES`] (or a plaintext over [`MAX_PLAINTEXT_BYTES`] to seal).
    #[error("envelope of {size} bytes exceeds the {max}-byte limit")]
    TooLarge {
        /// Size found.
        size: usize,
        /// Limit.
        max: usize,
    },
    /// Not a JSON envelope of the expected shape (missing/extra field, wrong type, bad base64,
    /// wrong nonce or signature length).
    #[error("malformed envelope: {0}")]
    Malformed(String),
    /// `from` or `to` is not a valid call ID.
    #[error("envelope field `{field}` is not a valid call ID: {error}")]
    BadId {
        /// `"from"` or `"to"`.
        field: &'static str,
        /// Why the ID is invalid.
        error: IdError,
    },
    /// `v` is not [`ENVELOPE_VERSION`].
    #[error("envelope version {0} is not supported (this build speaks version 1): upgrade `call`")]
    UnsupportedVersion(u64),
    /// `kind` is not one of the known kinds.
    #[error("unknown envelope kind {0:?}")]
    UnknownKind(String),
    /// `to` is not the receiver.
    #[error("envelope is addressed to another call ID")]
    WrongRecipient,
    /// `ts` is more than [`MAX_CLOCK_SKEW_SECS`] in the past.
    #[error("envelope is {age} s old (limit {MAX_CLOCK_SKEW_SECS} s): replayed, delayed, or a clock is wrong (check NTP on both sides)")]
    Stale {
        /// Seconds between `ts` and now.
        age: u64,
    },
    /// `ts` is more than [`MAX_CLOCK_SKEW_SECS`] in the future.
    #[error("envelope is dated {ahead} s in the future (limit {MAX_CLOCK_SKEW_SECS} s): a clock is wrong (check NTP on both sides)")]
    FromFuture {
        /// Seconds between now and `ts`.
        ahead: u64,
    },
    /// The signature does not verify for `from`.
    #[error("envelope signature does not verify for its sender: forged or altered in transit")]
    BadSignature,
    /// This exact envelope was already accepted.
    #[error("envelope was already received (replay)")]
    Replayed,
    /// The replay cache is full of envelopes still inside the time window; refused rather than
    /// forgetting one (which would allow a replay).
    #[error("too many envelopes within the last {MAX_CLOCK_SKEW_SECS} s (replay cache full): try again shortly")]
    ReplayCacheFull,
    /// The body does not decrypt (not encrypted to us, or corrupted by the sender).
    #[error("envelope body does not decrypt with our key")]
    DecryptFailed,
    /// Encryption failed (only with absurd sizes).
    #[error("envelope body could not be encrypted")]
    EncryptFailed,
}

impl EnvelopeError {
    /// Stable machine-readable code, for logs and docs (`docs/protocol.md`, "Error codes").
    pub fn code(&self) -> &'static str {
        match self {
            EnvelopeError::TooLarge { .. } => "too_large",
            EnvelopeError::Malformed(_) => "malformed",
            EnvelopeError::BadId { .. } => "bad_id",
            EnvelopeError::UnsupportedVersion(_) => "unsupported_version",
            EnvelopeError::UnknownKind(_) => "unknown_kind",
            EnvelopeError::WrongRecipient => "wrong_recipient",
            EnvelopeError::Stale { .. } => "stale",
            EnvelopeError::FromFuture { .. } => "from_future",
            EnvelopeError::BadSignature => "bad_signature",
            EnvelopeError::Replayed => "replayed",
            EnvelopeError::ReplayCacheFull => "replay_cache_full",
            EnvelopeError::DecryptFailed => "decrypt_failed",
            EnvelopeError::EncryptFailed => "encrypt_failed",
        }
    }
}

fn truncate(s: &str) -> String {
    if s.chars().count() <= MAX_DETAIL_CHARS {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(MAX_DETAIL_CHARS).collect();
        t.push('…');
        t
    }
}

/// A signed, sealed message from one identity to another. Serializes to exactly the JSON of
/// `docs/protocol.md` (field order `v, from, to, ts, nonce, kind, body, sig`).
#[derive(Clone, PartialEq, Eq)]
pub struct Envelope {
    /// Format version, [`ENVELOPE_VERSION`].
    pub v: u8,
    /// Sender.
    pub from: CallId,
    /// Recipient.
    pub to: CallId,
    /// Sender's clock when sealing, unix seconds.
    pub ts: u64,
    /// `crypto_box` nonce, random per envelope; also the replay-cache key.
    pub nonce: [u8; NONCE_LEN],
    /// What the body is.
    pub kind: EnvelopeKind,
    /// `crypto_box_easy` ciphertext (16-byte tag, then the encrypted plaintext).
    pub body: Vec<u8>,
    /// Ed25519 signature by `from` over [`Envelope::signed_bytes`].
    pub sig: Signature,
}

impl fmt::Debug for Envelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Envelope")
            .field("v", &self.v)
            .field("from", &self.from)
            .field("to", &self.to)
            .field("ts", &self.ts)
            .field("kind", &self.kind)
            .field("body_len", &self.body.len())
            .finish_non_exhaustive()
    }
}

/// The checked, decrypted content of an envelope, returned by [`Envelope::open`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// Sender (signature verified).
    pub from: CallId,
    /// What the plaintext is.
    pub kind: EnvelopeKind,
    /// Sender's timestamp (inside the skew window).
    pub ts: u64,
    /// Decrypted body.
    pub plaintext: Vec<u8>,
}

impl Envelope {
    /// Encrypts `plaintext` to `to`, signs, with a fresh random nonce from the OS.
    pub fn seal(
        sender: &Identity,
        to: &CallId,
        kind: EnvelopeKind,
        plaintext: &[u8],
        now_unix: u64,
    ) -> Result<Envelope, EnvelopeError> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut nonce);
        Envelope::seal_with_nonce(sender, to, kind, plaintext, now_unix, nonce)
    }

    /// [`Envelope::seal`] with a caller-chosen nonce. A nonce must never be reused with the
    /// same pair of keys: only for test vectors and reproducible tests.
    pub fn seal_with_nonce(
        sender: &Identity,
        to: &CallId,
        kind: EnvelopeKind,
        plaintext: &[u8],
        now_unix: u64,
        nonce: [u8; NONCE_LEN],
    ) -> Result<Envelope, EnvelopeError> {
        if plaintext.len() > MAX_PLAINTEXT_BYTES {
            return Err(EnvelopeError::TooLarge {
                size: plaintext.len(),
                max: MAX_PLAINTEXT_BYTES,
            });
        }
        let cbox = crypto_box::SalsaBox::new(&to.to_x25519(), &sender.to_x25519());
        let body = cbox
            .encrypt(&nonce.into(), plaintext)
            .map_err(|_| EnvelopeError::EncryptFailed)?;
        let mut env = Envelope {
            v: ENVELOPE_VERSION,
            from: sender.call_id(),
            to: *to,
            ts: now_unix,
            nonce,
            kind,
            body,
            sig: Signature::from_bytes(&[0u8; 64]),
        };
        env.sig = sender.sign(&env.signed_bytes());
        Ok(env)
    }

    /// The exact bytes the signature covers:
    /// `"call-envelope/v1" || v:u8 || from:32 || to:32 || ts:u64be || nonce:24 ||
    /// len(kind):u8 || kind (ASCII) || len(body):u32be || body`.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let kind = self.kind.as_str().as_bytes();
        let mut out = Vec::with_capacity(
            ENVELOPE_SIG_DOMAIN.len() + 1 + 32 + 32 + 8 + NONCE_LEN + 1 + kind.len() + 4 + self.body.len(),
        );
        out.extend_from_slice(ENVELOPE_SIG_DOMAIN);
        out.push(self.v);
        out.extend_from_slice(self.from.as_bytes());
        out.extend_from_slice(self.to.as_bytes());
        out.extend_from_slice(&self.ts.to_be_bytes());
        out.extend_from_slice(&self.nonce);
        // Kind names are short ASCII constants (< 256 bytes).
        out.push(kind.len() as u8);
        out.extend_from_slice(kind);
        // Bodies are bounded by MAX_ENVELOPE_BYTES when parsed and MAX_PLAINTEXT_BYTES when sealed;
        // saturate rather than truncate for hand-built envelopes.
        out.extend_from_slice(&u32::try_from(self.body.len()).unwrap_or(u32::MAX).to_be_bytes());
        out.extend_from_slice(&self.body);
        out
    }

    /// Checks only the sender's signature (what a server that never decrypts can check).
    pub fn verify_signature(&self) -> Result<(), EnvelopeError> {
        verify_strict(&self.from, &self.signed_bytes(), &self.sig)
            .map_err(|_| EnvelopeError::BadSignature)
    }

    /// Runs every receiver check and decrypts: recipient is `me`, `|ts - now| <=`
    /// [`MAX_CLOCK_SKEW_SECS`], signature by `from` (verify_strict), not seen before (recorded
    /// in `replay` once the signature is valid), body decrypts.
    pub fn open(
        &self,
        me: &Identity,
        now_unix: u64,
        replay: &mut ReplayCache,
    ) -> Result<Opened, EnvelopeError> {
        if self.v != ENVELOPE_VERSION {
            return Err(EnvelopeError::UnsupportedVersion(self.v.into()));
        }
        if self.to != me.call_id() {
            return Err(EnvelopeError::WrongRecipient);
        }
        check_ts(self.ts, now_unix)?;
        self.verify_signature()?;
        replay.check_and_insert(self, now_unix)?;
        let cbox = crypto_box::SalsaBox::new(&self.from.to_x25519(), &me.to_x25519());
        let plaintext = cbox
            .decrypt(&self.nonce.into(), self.body.as_slice())
            .map_err(|_| EnvelopeError::DecryptFailed)?;
        Ok(Opened {
            from: self.from,
            kind: self.kind,
            ts: self.ts,
            plaintext,
        })
    }

    /// The JSON text of the envelope (what goes on the wire).
    pub fn to_json(&self) -> String {
        // Serializing plain strings and integers into a String cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

fn check_ts(ts: u64, now: u64) -> Result<(), EnvelopeError> {
    if ts > now {
        let ahead = ts - now;
        if ahead > MAX_CLOCK_SKEW_SECS {
            return Err(EnvelopeError::FromFuture { ahead });
        }
    } else {
        let age = now - ts;
        if age > MAX_CLOCK_SKEW_SECS {
            return Err(EnvelopeError::Stale { age });
        }
    }
    Ok(())
}

/// The envelope as it appears in JSON, before any check beyond types.
#[derive(serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct WireEnvelope<'a> {
    v: u64,
    #[serde(borrow)]
    from: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    to: std::borrow::Cow<'a, str>,
    ts: u64,
    #[serde(borrow)]
    nonce: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    kind: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    body: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    sig: std::borrow::Cow<'a, str>,
}

impl TryFrom<WireEnvelope<'_>> for Envelope {
    type Error = EnvelopeError;

    fn try_from(w: WireEnvelope<'_>) -> Result<Envelope, EnvelopeError> {
        if w.v != u64::from(ENVELOPE_VERSION) {
            return Err(EnvelopeError::UnsupportedVersion(w.v));
        }
        let kind = EnvelopeKind::from_wire(&w.kind)
            .ok_or_else(|| EnvelopeError::UnknownKind(truncate(&w.kind)))?;
        let from = w
            .from
            .parse()
            .map_err(|error| EnvelopeError::BadId { field: "from", error })?;
        let to = w
            .to
            .parse()
            .map_err(|error| EnvelopeError::BadId { field: "to", error })?;
        let nonce = decode_fixed::<NONCE_LEN>("nonce", &w.nonce)?;
        let sig = Signature::from_bytes(&decode_fixed::<64>("sig", &w.sig)?);
        let body = B64
            .decode(w.body.as_bytes())
            .map_err(|_| EnvelopeError::Malformed("`body` is not canonical padded base64".into()))?;
        Ok(Envelope {
            v: ENVELOPE_VERSION,
            from,
            to,
            ts: w.ts,
            nonce,
            kind,
            body,
            sig,
        })
    }
}

fn decode_fixed<const N: usize>(field: &str, text: &str) -> Result<[u8; N], EnvelopeError> {
    let bytes = B64.decode(text.as_bytes()).map_err(|_| {
        EnvelopeError::Malformed(format!("`{field}` is not canonical padded base64"))
    })?;
    bytes.try_into().map_err(|b: Vec<u8>| {
        EnvelopeError::Malformed(format!("`{field}` is {} bytes, expected {N}", b.len()))
    })
}

/// Parses untrusted bytes into an [`Envelope`]: size limit first, then JSON shape, version,
/// kind, call IDs and base64 fields. Never panics; every failure is a typed error.
pub fn parse(bytes: &[u8]) -> Result<Envelope, EnvelopeError> {
    if bytes.len() > MAX_ENVELOPE_BYTES {
        return Err(EnvelopeError::TooLarge {
            size: bytes.len(),
            max: MAX_ENVELOPE_BYTES,
        });
    }
    let wire: WireEnvelope<'_> = serde_json::from_slice(bytes)
        .map_err(|e| EnvelopeError::Malformed(truncate(&e.to_string())))?;
    Envelope::try_from(wire)
}

/// Parses an envelope already decoded as a JSON value (e.g. a field of a server frame), with
/// the same checks as [`parse`] (the size limit applies to the value's JSON text).
pub fn parse_value(value: &serde_json::Value) -> Result<Envelope, EnvelopeError> {
    let text = serde_json::to_vec(value)
        .map_err(|e| EnvelopeError::Malformed(truncate(&e.to_string())))?;
    parse(&text)
}

impl serde::Serialize for Envelope {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let wire = WireEnvelope {
            v: self.v.into(),
            from: self.from.to_string().into(),
            to: self.to.to_string().into(),
            ts: self.ts,
            nonce: B64.encode(self.nonce).into(),
            kind: self.kind.as_str().into(),
            body: B64.encode(&self.body).into(),
            sig: B64.encode(self.sig.to_bytes()).into(),
        };
        wire.serialize(serializer)
    }
}

impl<'de> serde::Deserialize<'de> for Envelope {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Owned strings: the envelope may come from a `serde_json::Value` or an escaped string.
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Owned {
            v: u64,
            from: String,
            to: String,
            ts: u64,
            nonce: String,
            kind: String,
            body: String,
            sig: String,
        }
        let o = Owned::deserialize(deserializer)?;
        Envelope::try_from(WireEnvelope {
            v: o.v,
            from: o.from.into(),
            to: o.to.into(),
            ts: o.ts,
            nonce: o.nonce.into(),
            kind: o.kind.into(),
            body: o.body.into(),
            sig: o.sig.into(),
        })
        .map_err(serde::de::Error::custom)
    }
}

/// Remembers the envelopes accepted within the time window, to refuse replays. Sans-IO and
/// bounded: at most `capacity` entries, each `(ts, from, nonce)` (72 bytes plus tree overhead).
///
/// An entry is dropped once its `ts` is more than [`MAX_CLOCK_SKEW_SECS`] behind `now`: from
/// then on the timestamp check alone refuses a replay, so forgetting it is safe. When the
/// cache is full of entries still inside the window, a new envelope is refused with
/// [`EnvelopeError::ReplayCacheFull`] instead of evicting a live entry: evicting would silently
/// re-open a replay hole, while refusing only delays a legitimate sender (who can resend with a
/// fresh nonce), and the capacity (default 4096 over a 2-minute window) is far above what one
/// call needs.
#[derive(Debug, Clone)]
pub struct ReplayCache {
    capacity: usize,
    entries: BTreeSet<(u64, [u8; 32], [u8; NONCE_LEN])>,
}

impl Default for ReplayCache {
    fn default() -> Self {
        ReplayCache::new(DEFAULT_REPLAY_CAPACITY)
    }
}

impl ReplayCache {
    /// An empty cache holding at most `capacity` envelopes (at least 1).
    pub fn new(capacity: usize) -> ReplayCache {
        ReplayCache {
            capacity: capacity.max(1),
            entries: BTreeSet::new(),
        }
    }

    /// Number of remembered envelopes.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The maximum number of entries.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Drops entries whose `ts` is more than [`MAX_CLOCK_SKEW_SECS`] before `now_unix`.
    pub fn expire(&mut self, now_unix: u64) {
        let Some(cutoff) = now_unix.checked_sub(MAX_CLOCK_SKEW_SECS) else {
            return;
        };
        // Keep entries with ts >= cutoff.
        self.entries = self.entries.split_off(&(cutoff, [0u8; 32], [0u8; NONCE_LEN]));
    }

    /// Records the envelope; `Replayed` if it is already there, `ReplayCacheFull` if there is no
    /// room after expiring old entries. Call only for envelopes whose signature verified.
    pub fn check_and_insert(&mut self, env: &Envelope, now_unix: u64) -> Result<(), EnvelopeError> {
        let key = (env.ts, *env.from.as_bytes(), env.nonce);
        if self.entries.contains(&key) {
            return Err(EnvelopeError::Replayed);
        }
        if self.entries.len() >= self.capacity {
            self.expire(now_unix);
            if self.entries.len() >= self.capacity {
                return Err(EnvelopeError::ReplayCacheFull);
            }
        }
        self.entries.insert(key);
        Ok(())
    }
}
