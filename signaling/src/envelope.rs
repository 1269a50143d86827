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

use std::collections::{BTreeSet, HashMap};
use std::fmt;

use base64::Engine as _;
use crypto_box::aead::Aead;
use ed25519_dalek::Signature;

use crate::identity::{verify_strict, CallId, IdError, Identity};

/// Largest serialized envelope accepted or produced, in bytes: 65,506, what fits a `deliver`
/// frame of at most [`crate::protocol::MAX_FRAME_BYTES`] (65,536) with its 30-byte wrapper.
pub const MAX_ENVELOPE_BYTES: usize =
    crate::protocol::MAX_FRAME_BYTES - crate::protocol::DELIVER_WRAPPER_BYTES;
/// Largest plaintext [`Envelope::seal`] accepts. Leaves room under [`MAX_ENVELOPE_BYTES`] for
/// the base64 expansion, the JSON fields and a server frame wrapped around the envelope.
pub const MAX_PLAINTEXT_BYTES: usize = 45 * 1024;
/// Largest accepted difference between an envelope's `ts` and the receiver's clock, seconds.
pub const MAX_CLOCK_SKEW_SECS: u64 = 60;
/// Oldest `ts` a receiver accepts for a mailbox kind ([`EnvelopeKind::is_mailbox`]): the
/// server's mailbox time-to-live (24 h) plus the clock skew.
pub const MAX_MAILBOX_AGE_SECS: u64 = 24 * 3600 + MAX_CLOCK_SKEW_SECS;
/// The envelope format version this code produces and accepts.
pub const ENVELOPE_VERSION: u8 = 1;
/// Domain-separation prefix of the envelope signature (see [`Envelope::signed_bytes`]).
pub const ENVELOPE_SIG_DOMAIN: &[u8] = b"call-envelope/v1";
/// Default per-sender quota of a [`ReplayCache`] ([`ReplayLimits::per_sender`]): far above what
/// one call needs within two minutes (an offer or answer, a few candidates, a hang-up).
pub const DEFAULT_REPLAY_PER_SENDER: usize = 128;
/// Default number of senders a [`ReplayCache`] tracks ([`ReplayLimits::max_senders`]).
pub const DEFAULT_REPLAY_SENDERS: usize = 512;
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
    /// A [`crate::room::SignedRoomState`]: an invitation or a membership change.
    RoomState,
    /// A [`crate::room::SignedRoomMessage`]: a room message sent outside a call.
    RoomMessage,
    /// A [`crate::room::RoomCallBody`]: joining, being in, or leaving a room's call.
    RoomCall,
}

impl EnvelopeKind {
    /// All kinds, in wire-name order of the spec.
    pub const ALL: [EnvelopeKind; 8] = [
        EnvelopeKind::Offer,
        EnvelopeKind::Answer,
        EnvelopeKind::Candidate,
        EnvelopeKind::Hangup,
        EnvelopeKind::Reject,
        EnvelopeKind::RoomState,
        EnvelopeKind::RoomMessage,
        EnvelopeKind::RoomCall,
    ];

    /// Kinds the server keeps in its mailbox for an offline recipient, and that a receiver
    /// accepts up to [`MAX_MAILBOX_AGE_SECS`] old. Their bodies are idempotent (a room state
    /// by its version, a room message by its sender and seq), so they skip the replay cache.
    pub fn is_mailbox(self) -> bool {
        matches!(self, EnvelopeKind::RoomState | EnvelopeKind::RoomMessage)
    }

    /// The wire name (`"offer"`, `"answer"`, `"candidate"`, `"hangup"`, `"reject"`,
    /// `"room_state"`, `"room_message"`, `"room_call"`).
    pub fn as_str(self) -> &'static str {
        match self {
            EnvelopeKind::Offer => "offer",
            EnvelopeKind::Answer => "answer",
            EnvelopeKind::Candidate => "candidate",
            EnvelopeKind::Hangup => "hangup",
            EnvelopeKind::Reject => "reject",
            EnvelopeKind::RoomState => "room_state",
            EnvelopeKind::RoomMessage => "room_message",
            EnvelopeKind::RoomCall => "room_call",
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
            ENVELOPE_SIG_DOMAIN.len()
                + 1
                + 32
                + 32
                + 8
                + NONCE_LEN
                + 1
                + kind.len()
                + 4
                + self.body.len(),
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
        out.extend_from_slice(
            &u32::try_from(self.body.len())
                .unwrap_or(u32::MAX)
                .to_be_bytes(),
        );
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
        let max_age = if self.kind.is_mailbox() {
            MAX_MAILBOX_AGE_SECS
        } else {
            MAX_CLOCK_SKEW_SECS
        };
        check_ts(self.ts, now_unix, max_age)?;
        self.verify_signature()?;
        if !self.kind.is_mailbox() {
            replay.check_and_insert(self, now_unix)?;
        }
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

fn check_ts(ts: u64, now: u64, max_age: u64) -> Result<(), EnvelopeError> {
    if ts > now {
        let ahead = ts - now;
        if ahead > MAX_CLOCK_SKEW_SECS {
            return Err(EnvelopeError::FromFuture { ahead });
        }
    } else {
        let age = now - ts;
        if age > max_age {
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
        let from = w.from.parse().map_err(|error| EnvelopeError::BadId {
            field: "from",
            error,
        })?;
        let to =
            w.to.parse()
                .map_err(|error| EnvelopeError::BadId { field: "to", error })?;
        let nonce = decode_fixed::<NONCE_LEN>("nonce", &w.nonce)?;
        let sig = Signature::from_bytes(&decode_fixed::<64>("sig", &w.sig)?);
        let body = B64.decode(w.body.as_bytes()).map_err(|_| {
            EnvelopeError::Malformed("`body` is not canonical padded base64".into())
        })?;
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

/// Bounds of a [`ReplayCache`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayLimits {
    /// Envelopes remembered per sender inside the time window. A sender over its quota gets
    /// [`EnvelopeError::ReplayCacheFull`] until its entries age out; others are not affected.
    pub per_sender: usize,
    /// Senders tracked at once. A new sender beyond this makes the cache forget the least
    /// recently seen sender (after dropping senders whose entries all aged out).
    pub max_senders: usize,
}

impl Default for ReplayLimits {
    fn default() -> Self {
        ReplayLimits {
            per_sender: DEFAULT_REPLAY_PER_SENDER,
            max_senders: DEFAULT_REPLAY_SENDERS,
        }
    }
}

/// Remembers the envelopes accepted within the time window, to refuse replays. Sans-IO and
/// bounded: each sender has its own quota of [`ReplayLimits::per_sender`] entries
/// `(ts, nonce)`, and at most [`ReplayLimits::max_senders`] senders are tracked, so memory is
/// at most `per_sender × max_senders` entries (about 64 bytes each with tree overhead; the
/// defaults give 65,536 entries, about 4 MiB).
///
/// An entry is dropped once its `ts` is more than [`MAX_CLOCK_SKEW_SECS`] behind `now`: from
/// then on the timestamp check alone refuses a replay, so forgetting it is safe.
///
/// * A sender whose quota is full of entries still inside the window is **refused**
///   ([`EnvelopeError::ReplayCacheFull`]) rather than having a live entry evicted, which would
///   re-open a replay hole. Quotas are per sender, so a flooder (any number of free
///   identities, timestamps set 60 s ahead to keep their entries alive) only blocks itself.
/// * When a new sender arrives and [`ReplayLimits::max_senders`] are tracked, senders whose
///   entries all aged out are dropped first; if none did, the least recently seen sender is
///   forgotten ([`ReplayCache::evicted_senders`] counts it). That re-opens a replay window for
///   that sender's last envelopes (at most 120 s), the price of never refusing a fresh sender;
///   it takes `max_senders` identities active within two minutes.
#[derive(Debug, Clone)]
pub struct ReplayCache {
    limits: ReplayLimits,
    senders: HashMap<[u8; 32], SenderWindow>,
    len: usize,
    /// Logical clock for "least recently seen" (sans-IO: no wall clock needed).
    tick: u64,
    evicted_senders: u64,
}

#[derive(Debug, Clone, Default)]
struct SenderWindow {
    last_seen: u64,
    seen: BTreeSet<(u64, [u8; NONCE_LEN])>,
}

impl SenderWindow {
    /// Drops entries with `ts < cutoff`; returns how many.
    fn expire(&mut self, cutoff: u64) -> usize {
        let before = self.seen.len();
        self.seen = self.seen.split_off(&(cutoff, [0u8; NONCE_LEN]));
        before - self.seen.len()
    }

    fn newest_ts(&self) -> Option<u64> {
        self.seen.last().map(|(ts, _)| *ts)
    }
}

impl Default for ReplayCache {
    fn default() -> Self {
        ReplayCache::with_limits(ReplayLimits::default())
    }
}

impl ReplayCache {
    /// An empty cache remembering at most `per_sender` envelopes per sender (at least 1), with
    /// the default number of senders ([`DEFAULT_REPLAY_SENDERS`]).
    pub fn new(per_sender: usize) -> ReplayCache {
        ReplayCache::with_limits(ReplayLimits {
            per_sender,
            ..ReplayLimits::default()
        })
    }

    /// An empty cache with these limits (each at least 1).
    pub fn with_limits(limits: ReplayLimits) -> ReplayCache {
        ReplayCache {
            limits: ReplayLimits {
                per_sender: limits.per_sender.max(1),
                max_senders: limits.max_senders.max(1),
            },
            senders: HashMap::new(),
            len: 0,
            tick: 0,
            evicted_senders: 0,
        }
    }

    /// Number of remembered envelopes, all senders together.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The most envelopes ever remembered: `per_sender × max_senders`.
    pub fn capacity(&self) -> usize {
        self.limits
            .per_sender
            .saturating_mul(self.limits.max_senders)
    }

    /// The limits in force.
    pub fn limits(&self) -> ReplayLimits {
        self.limits
    }

    /// Number of senders tracked.
    pub fn senders(&self) -> usize {
        self.senders.len()
    }

    /// How many senders were forgotten to make room for new ones (see the type's docs).
    pub fn evicted_senders(&self) -> u64 {
        self.evicted_senders
    }

    /// Drops entries whose `ts` is more than [`MAX_CLOCK_SKEW_SECS`] before `now_unix`, and
    /// senders left without entries.
    pub fn expire(&mut self, now_unix: u64) {
        let Some(cutoff) = now_unix.checked_sub(MAX_CLOCK_SKEW_SECS) else {
            return;
        };
        let mut dropped = 0;
        self.senders.retain(|_, w| {
            dropped += w.expire(cutoff);
            !w.seen.is_empty()
        });
        self.len -= dropped;
    }

    /// Records the envelope; `Replayed` if it is already there, `ReplayCacheFull` if its
    /// sender's quota has no room after expiring old entries. Call only for envelopes whose
    /// signature verified (an unverified `from` would let anyone fill someone else's quota).
    pub fn check_and_insert(&mut self, env: &Envelope, now_unix: u64) -> Result<(), EnvelopeError> {
        self.check_and_insert_key(env.from.as_bytes(), env.ts, env.nonce, now_unix)
    }

    fn check_and_insert_key(
        &mut self,
        from: &[u8; 32],
        ts: u64,
        nonce: [u8; NONCE_LEN],
        now_unix: u64,
    ) -> Result<(), EnvelopeError> {
        let cutoff = now_unix.saturating_sub(MAX_CLOCK_SKEW_SECS);
        self.tick += 1;
        if let Some(window) = self.senders.get_mut(from) {
            if window.seen.contains(&(ts, nonce)) {
                return Err(EnvelopeError::Replayed);
            }
            if window.seen.len() >= self.limits.per_sender {
                self.len -= window.expire(cutoff);
                if window.seen.len() >= self.limits.per_sender {
                    return Err(EnvelopeError::ReplayCacheFull);
                }
            }
            window.seen.insert((ts, nonce));
            window.last_seen = self.tick;
            self.len += 1;
            return Ok(());
        }
        if self.senders.len() >= self.limits.max_senders {
            self.make_room_for_a_sender(cutoff);
        }
        let mut window = SenderWindow {
            last_seen: self.tick,
            ..SenderWindow::default()
        };
        window.seen.insert((ts, nonce));
        self.senders.insert(*from, window);
        self.len += 1;
        Ok(())
    }

    /// Frees one sender slot: senders whose entries all aged out first, else the least
    /// recently seen sender. O(senders), only when the sender table is full.
    fn make_room_for_a_sender(&mut self, cutoff: u64) {
        let mut dropped = 0;
        self.senders.retain(|_, w| {
            let keep = w.newest_ts().is_some_and(|ts| ts >= cutoff);
            if !keep {
                dropped += w.seen.len();
            }
            keep
        });
        self.len -= dropped;
        if self.senders.len() < self.limits.max_senders {
            return;
        }
        let oldest = self
            .senders
            .iter()
            .min_by_key(|(_, w)| w.last_seen)
            .map(|(k, _)| *k);
        if let Some(key) = oldest {
            if let Some(w) = self.senders.remove(&key) {
                self.len -= w.seen.len();
                self.evicted_senders += 1;
                tracing::warn!(
                    tracked = self.limits.max_senders,
                    "replay cache: too many senders within the window; forgot the least recently seen one"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    use crate::test_fixtures::{
        alice, assert_codes_distinct_and_documented, bob, carol, seq, NOW, PROTOCOL_DOC,
    };

    fn sealed() -> Envelope {
        Envelope::seal(
            &alice(),
            &bob().call_id(),
            EnvelopeKind::Offer,
            b"secret sdp",
            NOW,
        )
        .unwrap()
    }

    fn open(env: &Envelope) -> Result<Opened, EnvelopeError> {
        env.open(&bob(), NOW, &mut ReplayCache::new(16))
    }

    /// Re-signs a modified envelope with the sender's key, as a sender (not an attacker) could.
    fn resign(mut env: Envelope, by: &Identity) -> Envelope {
        env.sig = by.sign(&env.signed_bytes());
        env
    }

    fn json_value(env: &Envelope) -> serde_json::Value {
        serde_json::to_value(env).unwrap()
    }

    fn parse_json(v: &serde_json::Value) -> Result<Envelope, EnvelopeError> {
        parse(serde_json::to_string(v).unwrap().as_bytes())
    }

    #[test]
    fn seal_then_open_round_trips() {
        let env = sealed();
        let opened = open(&env).unwrap();
        assert_eq!(
            opened,
            Opened {
                from: alice().call_id(),
                kind: EnvelopeKind::Offer,
                ts: NOW,
                plaintext: b"secret sdp".to_vec()
            }
        );
        // Through JSON, both ways.
        let json = env.to_json();
        let parsed = parse(json.as_bytes()).unwrap();
        assert_eq!(parsed, env);
        assert_eq!(serde_json::from_str::<Envelope>(&json).unwrap(), env);
        assert_eq!(parse_value(&json_value(&env)).unwrap(), env);
        assert_eq!(open(&parsed).unwrap().plaintext, b"secret sdp");
        // The body is not the plaintext.
        assert!(!json.contains("secret"));
        assert_eq!(env.verify_signature(), Ok(()));
        for kind in EnvelopeKind::ALL {
            let e = Envelope::seal(&alice(), &bob().call_id(), kind, b"", NOW).unwrap();
            let back = parse(e.to_json().as_bytes()).unwrap();
            assert_eq!(open(&back).unwrap().kind, kind);
        }
    }

    #[test]
    fn nonces_are_fresh() {
        assert_ne!(sealed().nonce, sealed().nonce);
    }

    #[test]
    fn tampering_with_any_signed_field_is_detected() {
        let env = sealed();
        let mut cases: Vec<(&str, Envelope)> = Vec::new();
        let mut e = env.clone();
        e.from = carol().call_id();
        cases.push(("from", e));
        let mut e = env.clone();
        e.ts += 1;
        cases.push(("ts", e));
        let mut e = env.clone();
        e.nonce[0] ^= 1;
        cases.push(("nonce", e));
        let mut e = env.clone();
        e.kind = EnvelopeKind::Answer;
        cases.push(("kind", e));
        let mut e = env.clone();
        e.body[20] ^= 0x80;
        cases.push(("body", e));
        let mut e = env.clone();
        e.body.push(0);
        cases.push(("body length", e));
        let mut e = env.clone();
        let mut s = e.sig.to_bytes();
        s[5] ^= 1;
        e.sig = Signature::from_bytes(&s);
        cases.push(("sig", e));
        for (field, e) in cases {
            assert_eq!(open(&e), Err(EnvelopeError::BadSignature), "{field}");
            assert_eq!(
                e.verify_signature(),
                Err(EnvelopeError::BadSignature),
                "{field}"
            );
            // Also after a trip through JSON.
            let back = parse(e.to_json().as_bytes()).unwrap();
            assert_eq!(open(&back), Err(EnvelopeError::BadSignature), "{field}");
        }
        // `to` changed: the new recipient refuses it on the signature, the old one on `to`.
        let mut e = env.clone();
        e.to = carol().call_id();
        assert_eq!(open(&e), Err(EnvelopeError::WrongRecipient));
        assert_eq!(
            e.open(&carol(), NOW, &mut ReplayCache::new(4)),
            Err(EnvelopeError::BadSignature)
        );
        // `v` changed.
        let mut e = env.clone();
        e.v = 2;
        assert_eq!(open(&e), Err(EnvelopeError::UnsupportedVersion(2)));
        let mut v = json_value(&env);
        v["v"] = 2.into();
        assert_eq!(parse_json(&v), Err(EnvelopeError::UnsupportedVersion(2)));
    }

    #[test]
    fn wrong_recipient_and_wrong_key() {
        let env = sealed();
        assert_eq!(
            env.open(&carol(), NOW, &mut ReplayCache::new(4)),
            Err(EnvelopeError::WrongRecipient)
        );
        // Signed correctly by Alice for Bob, but encrypted to Carol's key.
        let mut e =
            Envelope::seal(&alice(), &carol().call_id(), EnvelopeKind::Offer, b"x", NOW).unwrap();
        e.to = bob().call_id();
        let e = resign(e, &alice());
        assert_eq!(open(&e), Err(EnvelopeError::DecryptFailed));
        // A signature by Carol claiming to be from Alice.
        let e = resign(sealed(), &carol());
        assert_eq!(open(&e), Err(EnvelopeError::BadSignature));
    }

    #[test]
    fn timestamps_outside_the_window_are_refused() {
        let at = |ts| {
            Envelope::seal(
                &alice(),
                &bob().call_id(),
                EnvelopeKind::Candidate,
                b"c",
                ts,
            )
            .unwrap()
        };
        assert!(open(&at(NOW - MAX_CLOCK_SKEW_SECS)).is_ok());
        assert!(open(&at(NOW + MAX_CLOCK_SKEW_SECS)).is_ok());
        assert_eq!(open(&at(NOW - 61)), Err(EnvelopeError::Stale { age: 61 }));
        assert_eq!(
            open(&at(NOW + 61)),
            Err(EnvelopeError::FromFuture { ahead: 61 })
        );
        assert_eq!(open(&at(0)), Err(EnvelopeError::Stale { age: NOW }));
        assert_eq!(
            open(&at(u64::MAX)),
            Err(EnvelopeError::FromFuture {
                ahead: u64::MAX - NOW
            })
        );
        // now near 0 does not underflow.
        let e = at(5);
        assert!(e.open(&bob(), 0, &mut ReplayCache::new(4)).is_ok());
    }

    /// Room kinds wait in the server's mailbox: a receiver takes them up to 24 h (+ skew) old,
    /// and leaves duplicates to the room layer (version / sender+seq), not the replay cache.
    #[test]
    fn mailbox_kinds_are_taken_late_and_other_kinds_are_not() {
        let day = 24 * 3600;
        for kind in EnvelopeKind::ALL {
            let env = Envelope::seal(&alice(), &bob().call_id(), kind, b"x", NOW).unwrap();
            let mut cache = ReplayCache::new(16);
            let late = env.open(&bob(), NOW + day, &mut cache);
            if kind.is_mailbox() {
                assert!(late.is_ok(), "{kind}: {late:?}");
                assert!(env.open(&bob(), NOW + day, &mut cache).is_ok());
                assert!(cache.is_empty(), "{kind} used the replay cache");
                assert_eq!(
                    env.open(&bob(), NOW + MAX_MAILBOX_AGE_SECS + 1, &mut cache),
                    Err(EnvelopeError::Stale {
                        age: MAX_MAILBOX_AGE_SECS + 1
                    })
                );
            } else {
                assert_eq!(late, Err(EnvelopeError::Stale { age: day }), "{kind}");
            }
            // From the future: the same ±60 s for every kind.
            assert!(matches!(
                env.open(&bob(), NOW - 61, &mut cache),
                Err(EnvelopeError::FromFuture { ahead: 61 })
            ));
        }
        let mailbox: Vec<_> = EnvelopeKind::ALL
            .into_iter()
            .filter(|k| k.is_mailbox())
            .map(EnvelopeKind::as_str)
            .collect();
        assert_eq!(mailbox, ["room_state", "room_message"]);
    }

    #[test]
    fn replays_are_refused() {
        let env = sealed();
        let mut cache = ReplayCache::new(16);
        assert!(env.open(&bob(), NOW, &mut cache).is_ok());
        assert_eq!(
            env.open(&bob(), NOW, &mut cache),
            Err(EnvelopeError::Replayed)
        );
        assert_eq!(
            env.open(&bob(), NOW + 60, &mut cache),
            Err(EnvelopeError::Replayed)
        );
        // Once outside the window the timestamp check refuses it, and the entry can go.
        assert_eq!(
            env.open(&bob(), NOW + 61, &mut cache),
            Err(EnvelopeError::Stale { age: 61 })
        );
        cache.expire(NOW + 61);
        assert!(cache.is_empty());
        // A bad signature does not consume a cache slot.
        let mut bad = sealed();
        bad.ts += 1;
        let mut cache = ReplayCache::new(16);
        assert_eq!(
            bad.open(&bob(), NOW, &mut cache),
            Err(EnvelopeError::BadSignature)
        );
        assert!(cache.is_empty());
    }

    #[test]
    fn replay_cache_is_bounded_and_refuses_when_full() {
        let mut cache = ReplayCache::new(8);
        for i in 0..8u64 {
            let e = Envelope::seal(
                &alice(),
                &bob().call_id(),
                EnvelopeKind::Candidate,
                b"",
                NOW + i,
            )
            .unwrap();
            assert!(e.open(&bob(), NOW, &mut cache).is_ok());
            assert!(cache.len() <= cache.capacity());
        }
        assert_eq!(cache.len(), 8);
        let e = Envelope::seal(
            &alice(),
            &bob().call_id(),
            EnvelopeKind::Candidate,
            b"",
            NOW,
        )
        .unwrap();
        assert_eq!(
            e.open(&bob(), NOW, &mut cache),
            Err(EnvelopeError::ReplayCacheFull)
        );
        assert_eq!(cache.len(), 8);
        // 61 s later the entry with ts = NOW has left the window: room for one more.
        let later = NOW + 61;
        let e = Envelope::seal(
            &alice(),
            &bob().call_id(),
            EnvelopeKind::Candidate,
            b"",
            later,
        )
        .unwrap();
        assert!(e.open(&bob(), later, &mut cache).is_ok());
        assert_eq!(cache.len(), 8);
        // Never grows past capacity, whatever the sequence.
        let mut cache = ReplayCache::new(5);
        for i in 0..200u64 {
            let ts = NOW + i / 3;
            let e = Envelope::seal(&alice(), &bob().call_id(), EnvelopeKind::Candidate, b"", ts)
                .unwrap();
            let _ = e.open(&bob(), ts, &mut cache);
            assert!(cache.len() <= 5);
        }
        assert_eq!(ReplayCache::new(0).limits().per_sender, 1);
    }

    /// Issue 7 item 3: about 16 free identities used to fill the one shared cache (timestamps
    /// 60 s ahead), after which nobody's offer was accepted. Quotas are per sender now.
    #[test]
    fn flooding_identities_fill_only_their_own_quota() {
        let limits = ReplayLimits {
            per_sender: 8,
            max_senders: 64,
        };
        let mut cache = ReplayCache::with_limits(limits);
        let me = bob();
        let flooders: Vec<Identity> = (0..20u8)
            .map(|i| Identity::from_seed([0xf0 ^ i; 32]))
            .collect();
        let mut first = Vec::new();
        for f in &flooders {
            for i in 0..limits.per_sender + 3 {
                let e = Envelope::seal(f, &me.call_id(), EnvelopeKind::Candidate, b"", NOW + 60)
                    .unwrap();
                let got = e.open(&me, NOW, &mut cache);
                if i < limits.per_sender {
                    assert!(got.is_ok(), "{got:?}");
                    if i == 0 {
                        first.push(e);
                    }
                } else {
                    assert_eq!(got, Err(EnvelopeError::ReplayCacheFull));
                }
            }
        }
        assert_eq!(cache.len(), 20 * limits.per_sender);
        // A fresh sender is still heard, and its replay still refused.
        let offer = sealed();
        assert!(offer.open(&me, NOW, &mut cache).is_ok());
        assert_eq!(
            offer.open(&me, NOW, &mut cache),
            Err(EnvelopeError::Replayed)
        );
        // Flooders' replays are refused too (Replayed, not merely "full").
        for e in &first {
            assert_eq!(e.open(&me, NOW, &mut cache), Err(EnvelopeError::Replayed));
        }
        assert_eq!(cache.evicted_senders(), 0);
        // Once their entries leave the window, the flooders may send again.
        let later = NOW + 60 + MAX_CLOCK_SKEW_SECS + 1;
        let e = Envelope::seal(
            &flooders[0],
            &me.call_id(),
            EnvelopeKind::Candidate,
            b"",
            later,
        )
        .unwrap();
        assert!(e.open(&me, later, &mut cache).is_ok());
    }

    #[test]
    fn too_many_senders_forget_the_least_recently_seen() {
        let mut cache = ReplayCache::with_limits(ReplayLimits {
            per_sender: 2,
            max_senders: 3,
        });
        let key = |n: u8| [n; 32];
        for n in 1..=3u8 {
            assert!(cache
                .check_and_insert_key(&key(n), NOW, [n; 24], NOW)
                .is_ok());
        }
        // Sender 1 is seen again, so 2 is now the least recently seen.
        assert!(cache
            .check_and_insert_key(&key(1), NOW, [9; 24], NOW)
            .is_ok());
        assert!(cache
            .check_and_insert_key(&key(4), NOW, [4; 24], NOW)
            .is_ok());
        assert_eq!(
            (cache.senders(), cache.len(), cache.evicted_senders()),
            (3, 4, 1)
        );
        assert!(!cache.senders.contains_key(&key(2)));
        assert_eq!(
            cache.check_and_insert_key(&key(1), NOW, [1; 24], NOW),
            Err(EnvelopeError::Replayed)
        );
        // Senders whose entries aged out go first, before any live sender is forgotten.
        let later = NOW + 30;
        assert!(cache
            .check_and_insert_key(&key(5), later + 31, [5; 24], later + 31)
            .is_ok());
        assert_eq!(cache.evicted_senders(), 1);
        assert_eq!(cache.senders(), 1);
        assert_eq!(cache.len(), 1);
    }

    #[derive(Debug, Clone)]
    enum ReplayOp {
        /// Sender index, ts offset from now (-70..=70), nonce byte.
        Insert(u8, i8, u8),
        /// Advance the clock.
        Tick(u8),
    }

    fn replay_op() -> impl Strategy<Value = ReplayOp> {
        prop_oneof![
            8 => (0u8..12, -70i8..=70, 0u8..6).prop_map(|(s, d, n)| ReplayOp::Insert(s, d, n)),
            1 => (0u8..40).prop_map(ReplayOp::Tick),
        ]
    }

    proptest! {
        /// Bounds always hold; an accepted envelope is refused as a replay while inside the
        /// window unless its sender was forgotten since; one sender never blocks another.
        #[test]
        fn replay_cache_bounds_and_replays(ops in prop::collection::vec(replay_op(), 1..300)) {
            let limits = ReplayLimits { per_sender: 4, max_senders: 5 };
            let mut cache = ReplayCache::with_limits(limits);
            let mut now = NOW;
            // (sender, ts, nonce) -> evicted_senders when accepted
            let mut accepted: std::collections::HashMap<(u8, u64, u8), u64> = Default::default();
            for op in ops {
                match op {
                    ReplayOp::Tick(d) => now += u64::from(d),
                    ReplayOp::Insert(s, d, n) => {
                        let ts = now.saturating_add_signed(i64::from(d));
                        if ts.abs_diff(now) > MAX_CLOCK_SKEW_SECS {
                            continue; // the timestamp check runs before the cache
                        }
                        let got = cache.check_and_insert_key(&[s; 32], ts, [n; 24], now);
                        match accepted.get(&(s, ts, n)) {
                            Some(&ev) if ev == cache.evicted_senders() => {
                                prop_assert_eq!(&got, &Err(EnvelopeError::Replayed));
                            }
                            // Some sender was forgotten since: this one may or may not be.
                            Some(_) => {}
                            None => prop_assert_ne!(&got, &Err(EnvelopeError::Replayed)),
                        }
                        if got.is_ok() {
                            accepted.insert((s, ts, n), cache.evicted_senders());
                        }
                        // A full quota refuses only its own sender.
                        if got == Err(EnvelopeError::ReplayCacheFull) {
                            prop_assert!(cache.senders[&[s; 32]].seen.len() >= limits.per_sender);
                        }
                    }
                }
                prop_assert!(cache.senders() <= limits.max_senders);
                prop_assert!(cache.len() <= cache.capacity());
                prop_assert_eq!(cache.len(), cache.senders.values().map(|w| w.seen.len()).sum::<usize>());
                prop_assert!(cache.senders.values().all(|w| w.seen.len() <= limits.per_sender));
            }
        }
    }

    #[test]
    fn size_limits() {
        let big = vec![b'x'; MAX_ENVELOPE_BYTES + 1];
        assert_eq!(
            parse(&big),
            Err(EnvelopeError::TooLarge {
                size: MAX_ENVELOPE_BYTES + 1,
                max: MAX_ENVELOPE_BYTES
            })
        );
        let too_much = vec![0u8; MAX_PLAINTEXT_BYTES + 1];
        assert!(matches!(
            Envelope::seal(
                &alice(),
                &bob().call_id(),
                EnvelopeKind::Offer,
                &too_much,
                NOW
            ),
            Err(EnvelopeError::TooLarge { .. })
        ));
        // The largest plaintext still fits, with room for a server frame around it.
        let max = vec![0u8; MAX_PLAINTEXT_BYTES];
        let e = Envelope::seal(&alice(), &bob().call_id(), EnvelopeKind::Offer, &max, NOW).unwrap();
        let json = e.to_json();
        assert!(json.len() + 1024 < MAX_ENVELOPE_BYTES, "{}", json.len());
        assert_eq!(
            open(&parse(json.as_bytes()).unwrap()).unwrap().plaintext,
            max
        );
    }

    #[test]
    fn malformed_input_gets_typed_errors() {
        let v = json_value(&sealed());
        let code = |v: &serde_json::Value| parse_json(v).unwrap_err().code();

        let mut u = v.clone();
        u["kind"] = "ring".into();
        assert_eq!(
            parse_json(&u),
            Err(EnvelopeError::UnknownKind("ring".into()))
        );
        u["kind"] = "Offer".into();
        assert_eq!(code(&u), "unknown_kind");
        u["kind"] = 3.into();
        assert_eq!(code(&u), "malformed");

        for field in ["v", "from", "to", "ts", "nonce", "kind", "body", "sig"] {
            let mut u = v.clone();
            u.as_object_mut().unwrap().remove(field);
            assert_eq!(code(&u), "malformed", "missing {field}");
        }
        let mut u = v.clone();
        u["extra"] = true.into();
        assert_eq!(code(&u), "malformed");

        for (field, bad) in [
            ("nonce", "not base64!"),
            ("nonce", "AAAA"),
            ("body", "***"),
            ("body", "AAA"),
            ("sig", "AAAA"),
            ("sig", "=="),
        ] {
            let mut u = v.clone();
            u[field] = bad.into();
            assert_eq!(code(&u), "malformed", "{field}={bad}");
        }
        // Non-canonical base64 (non-zero trailing bits) is refused too.
        // (64 bytes = 88 characters ending in "==": the last data character has 4 unused bits.)
        let mut u = v.clone();
        let sig = u["sig"].as_str().unwrap().trim_end_matches('=').to_owned();
        let last = sig.chars().last().unwrap();
        let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let idx = alphabet.find(last).unwrap();
        let tweaked = format!(
            "{}{}==",
            &sig[..sig.len() - 1],
            &alphabet[idx ^ 1..(idx ^ 1) + 1]
        );
        u["sig"] = tweaked.into();
        assert_eq!(code(&u), "malformed");

        let mut u = v.clone();
        u["from"] = "abc".into();
        assert_eq!(
            parse_json(&u),
            Err(EnvelopeError::BadId {
                field: "from",
                error: IdError::BadLength { got: 3 }
            })
        );
        let mut u = v.clone();
        u["ts"] = (-1).into();
        assert_eq!(code(&u), "malformed");
        u["ts"] = 1.5.into();
        assert_eq!(code(&u), "malformed");

        for junk in [
            &b""[..],
            b"null",
            b"[]",
            b"{",
            b"\xff\xfe",
            b"{\"v\":1}",
            b"\"x\"",
        ] {
            assert_eq!(parse(junk).unwrap_err().code(), "malformed");
        }
        // Duplicate keys are refused.
        let json = sealed().to_json();
        let dup = json.replacen("{\"v\":1,", "{\"v\":1,\"v\":1,", 1);
        assert_eq!(parse(dup.as_bytes()).unwrap_err().code(), "malformed");
        // Error details from untrusted input are truncated.
        let mut u = v.clone();
        u["kind"] = "k".repeat(10_000).into();
        assert!(parse_json(&u).unwrap_err().to_string().len() < 300);
    }

    #[test]
    fn error_codes_are_distinct() {
        let all = [
            EnvelopeError::TooLarge { size: 0, max: 0 },
            EnvelopeError::Malformed(String::new()),
            EnvelopeError::BadId {
                field: "from",
                error: IdError::BadChecksum,
            },
            EnvelopeError::UnsupportedVersion(2),
            EnvelopeError::UnknownKind(String::new()),
            EnvelopeError::WrongRecipient,
            EnvelopeError::Stale { age: 0 },
            EnvelopeError::FromFuture { ahead: 0 },
            EnvelopeError::BadSignature,
            EnvelopeError::Replayed,
            EnvelopeError::ReplayCacheFull,
            EnvelopeError::DecryptFailed,
            EnvelopeError::EncryptFailed,
        ];
        let codes: Vec<_> = all.iter().map(|e| e.code()).collect();
        assert_codes_distinct_and_documented(&codes);
    }

    /// The worked example of docs/protocol.md: every value printed there is asserted here.
    #[test]
    fn protocol_doc_test_vector() {
        let a = alice();
        let b = bob();
        let hex = |b: &[u8]| data_encoding::HEXLOWER.encode(b);
        let plaintext = br#"{"call_id":"00112233445566778899aabbccddeeff","reason":"hang-up"}"#;
        let env = Envelope::seal_with_nonce(
            &a,
            &b.call_id(),
            EnvelopeKind::Hangup,
            plaintext,
            NOW,
            seq(0x40),
        )
        .unwrap();
        let values = [
            ("alice ed25519 public key", hex(a.call_id().as_bytes())),
            ("alice call ID", a.call_id().to_string()),
            (
                "alice x25519 public key",
                hex(a.call_id().to_x25519().as_bytes()),
            ),
            ("alice x25519 secret key", hex(&a.to_x25519().to_bytes())),
            ("bob ed25519 public key", hex(b.call_id().as_bytes())),
            ("bob call ID", b.call_id().to_string()),
            (
                "bob x25519 public key",
                hex(b.call_id().to_x25519().as_bytes()),
            ),
            ("ciphertext", hex(&env.body)),
            ("signed bytes", hex(&env.signed_bytes())),
            ("signature", hex(&env.sig.to_bytes())),
            ("envelope", env.to_json()),
            (
                "safety number",
                crate::identity::safety_number(&a.call_id(), &b.call_id()).to_string(),
            ),
        ];
        let doc = PROTOCOL_DOC;
        let mut missing = Vec::new();
        for (name, value) in &values {
            if !doc.contains(value.as_str()) {
                missing.push(format!("{name}: {value}"));
            }
        }
        assert!(
            missing.is_empty(),
            "docs/protocol.md lacks:\n{}",
            missing.join("\n")
        );
        // And the receiver side of the example.
        let opened = parse(env.to_json().as_bytes())
            .unwrap()
            .open(&b, NOW, &mut ReplayCache::default())
            .unwrap();
        assert_eq!(opened.plaintext, plaintext);
    }

    fn arb_json() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(Into::into),
            any::<i64>().prop_map(Into::into),
            any::<u64>().prop_map(Into::into),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Into::into),
            ".{0,80}".prop_map(serde_json::Value::from),
            "[A-Za-z0-9+/=]{0,100}".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                prop::collection::btree_map("[a-z]{0,6}", inner, 0..4)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    const FIELDS: [&str; 9] = ["v", "from", "to", "ts", "nonce", "kind", "body", "sig", "x"];

    proptest! {
        #[test]
        fn parse_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
            if let Ok(env) = parse(&bytes) {
                let _ = env.open(&bob(), NOW, &mut ReplayCache::new(4));
            }
        }

        #[test]
        fn parse_and_open_never_panic_on_mutated_envelopes(
            field in 0usize..FIELDS.len(),
            value in arb_json(),
            flip in any::<(usize, u8)>(),
        ) {
            let mut v = json_value(&sealed());
            v[FIELDS[field]] = value;
            let text = serde_json::to_vec(&v).unwrap();
            match parse(&text) {
                Ok(env) => { let _ = env.open(&bob(), NOW, &mut ReplayCache::new(4)); }
                Err(e) => prop_assert!(!e.code().is_empty()),
            }
            // Flip one byte of a valid envelope: a typed parse error, or an error on open, or
            // (if the flip hit nothing meaningful, e.g. JSON case of an escape) the same content.
            let mut raw = sealed_fixed().to_json().into_bytes();
            let i = flip.0 % raw.len();
            raw[i] ^= flip.1.max(1);
            if let Ok(env) = parse(&raw) {
                if let Ok(opened) = env.open(&bob(), NOW, &mut ReplayCache::new(4)) {
                    prop_assert_eq!(opened.plaintext, b"x".to_vec());
                    prop_assert_eq!(opened.kind, EnvelopeKind::Offer);
                    prop_assert_eq!(opened.from, alice().call_id());
                    prop_assert_eq!(opened.ts, NOW);
                }
            }
        }

        #[test]
        fn seal_open_round_trip_any_plaintext(pt in prop::collection::vec(any::<u8>(), 0..512), ts in 60u64..u64::MAX / 2) {
            let e = Envelope::seal(&alice(), &bob().call_id(), EnvelopeKind::Candidate, &pt, ts).unwrap();
            let back = parse(e.to_json().as_bytes()).unwrap();
            prop_assert_eq!(back.open(&bob(), ts, &mut ReplayCache::new(2)).unwrap().plaintext, pt);
        }
    }

    fn sealed_fixed() -> Envelope {
        Envelope::seal_with_nonce(
            &alice(),
            &bob().call_id(),
            EnvelopeKind::Offer,
            b"x",
            NOW,
            [7; 24],
        )
        .unwrap()
    }
}
