//! Client/server wire messages (version 1): JSON text WebSocket frames tagged by `"type"`.
//!
//! Distance from the wire: one step. The server and client turn WebSocket text frames into
//! [`ClientFrame`] / [`ServerFrame`] here and nowhere else. Envelopes inside `send`/`deliver`
//! frames are [`crate::envelope::Envelope`]s; the server checks only their shape, `from` and `to`.
//! The normative description is `docs/protocol.md` ("Server frames").

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::envelope::Envelope;
use crate::identity::CallId;
use crate::turn_credentials::TurnCredentials;

/// Largest WebSocket message (and frame) either side sends, in bytes.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;
/// The bytes a `deliver` frame adds around an envelope: the frame is exactly
/// `{"type":"deliver","envelope":` + envelope + `}` (30 bytes), the larger of the two wrappers
/// (`send` adds 27). [`crate::envelope::MAX_ENVELOPE_BYTES`] is derived from it so the largest
/// envelope can always be delivered in one frame of at most [`MAX_FRAME_BYTES`].
pub const DELIVER_WRAPPER_BYTES: usize = DELIVER_PREFIX.len() + DELIVER_SUFFIX.len();
/// What a `deliver` frame puts before the envelope (see [`DELIVER_WRAPPER_BYTES`]).
const DELIVER_PREFIX: &str = r#"{"type":"deliver","envelope":"#;
/// What a `deliver` frame puts after the envelope.
const DELIVER_SUFFIX: &str = "}";
/// Domain separator of the challenge signature.
pub const AUTH_DOMAIN: &[u8] = b"call-auth/v1";
/// Length of the challenge nonce in bytes.
pub const CHALLENGE_NONCE_LEN: usize = 32;
/// How far (seconds) the challenge timestamp may be from the verifier's clock.
pub const MAX_AUTH_SKEW_SECS: u64 = 60;
/// The WebSocket path the server serves.
pub const WS_PATH: &str = "/ws";
/// Longest server name accepted in a challenge, in bytes.
pub const MAX_SERVER_NAME_BYTES: usize = 255;

/// A frame from a client to the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// Answer to the challenge: the client's ID and its signature over [`auth_message`].
    Auth {
        /// The client's call ID.
        id: CallId,
        /// base64(ed25519 signature), 64 bytes.
        sig: String,
    },
    /// Route an envelope to `envelope.to`.
    Send {
        /// The envelope, as JSON (checked by the server with [`crate::envelope::parse_value`]).
        envelope: serde_json::Value,
    },
    /// Ask for TURN credentials.
    Turn,
}

/// A frame from the server to a client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// First frame on every connection.
    Challenge {
        /// The server's name (the client may insist on a specific one).
        server: String,
        /// base64 of [`CHALLENGE_NONCE_LEN`] random bytes.
        nonce: String,
        /// Server time, unix seconds.
        ts: u64,
    },
    /// Authentication succeeded; the connection is bound to `id`.
    Welcome {
        /// The authenticated call ID.
        id: CallId,
        /// How many envelopes the mailbox kept for this ID and queued on this connection at
        /// login (§12.2); 0 when absent (older servers).
        #[serde(default)]
        kept: u64,
    },
    /// An envelope for this client.
    Deliver {
        /// The envelope exactly as the sender sent it (the server does not decrypt it).
        envelope: Envelope,
    },
    /// Answer to a `turn` request.
    TurnCredentials(TurnCredentials),
    /// Something went wrong; see [`ErrorCode`].
    Error {
        /// Machine-readable reason.
        code: ErrorCode,
        /// Human-readable detail (never contains secrets).
        message: String,
    },
}

/// Error codes of `error` frames. Unknown codes from a newer server parse as [`ErrorCode::Unknown`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// Not JSON, not an object with a known shape, or a binary frame. Connection stays open.
    BadFrame,
    /// A frame `type` the server does not know. Connection stays open.
    UnknownType,
    /// The message exceeded [`MAX_FRAME_BYTES`]. Sent where possible before the close.
    TooLarge,
    /// A frame other than `auth` before authentication. Connection stays open.
    Unauthenticated,
    /// The `auth` signature, ID or timestamp is wrong. The connection is closed.
    AuthFailed,
    /// No valid `auth` within the auth timeout. The connection is closed.
    AuthTimeout,
    /// A second `auth` on an authenticated connection. Connection stays open.
    AlreadyAuthenticated,
    /// `envelope.from` is not the connection's authenticated ID. Connection stays open.
    SpoofedFrom,
    /// The envelope in a `send` frame is malformed. Connection stays open.
    BadEnvelope,
    /// The envelope's signature does not verify for its `from`. Connection stays open.
    BadSignature,
    /// The envelope's `ts` is more than 60 s from the server's clock. Connection stays open.
    Stale,
    /// This connection already sent this envelope (same `ts` and `nonce`). Connection stays open.
    Replayed,
    /// The recipient is not connected. Connection stays open.
    NotOnline,
    /// The recipient's send queue is full (it is too slow). Connection stays open.
    RecipientBusy,
    /// The recipient is offline and its mailbox (or the server's) is full. Connection stays open.
    MailboxFull,
    /// Too many frames; the frame was dropped. Connection stays open.
    RateLimited,
    /// This server hands out no TURN credentials.
    TurnUnavailable,
    /// Another connection authenticated with the same ID; this one is closed.
    Replaced,
    /// This client did not read its frames fast enough; the connection is closed.
    TooSlow,
    /// Nothing received within the idle timeout; the connection is closed.
    IdleTimeout,
    /// The server is shutting down; the connection is closed.
    ShuttingDown,
    /// A code this build does not know.
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    /// Every code a server sends (not [`ErrorCode::Unknown`], which stands for a code this
    /// version does not know), in declaration order.
    pub const ALL: [ErrorCode; 21] = [
        ErrorCode::BadFrame,
        ErrorCode::UnknownType,
        ErrorCode::TooLarge,
        ErrorCode::Unauthenticated,
        ErrorCode::AuthFailed,
        ErrorCode::AuthTimeout,
        ErrorCode::AlreadyAuthenticated,
        ErrorCode::SpoofedFrom,
        ErrorCode::BadEnvelope,
        ErrorCode::BadSignature,
        ErrorCode::Stale,
        ErrorCode::Replayed,
        ErrorCode::NotOnline,
        ErrorCode::RecipientBusy,
        ErrorCode::MailboxFull,
        ErrorCode::RateLimited,
        ErrorCode::TurnUnavailable,
        ErrorCode::Replaced,
        ErrorCode::TooSlow,
        ErrorCode::IdleTimeout,
        ErrorCode::ShuttingDown,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadFrame => "bad_frame",
            ErrorCode::UnknownType => "unknown_type",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::AuthFailed => "auth_failed",
            ErrorCode::AuthTimeout => "auth_timeout",
            ErrorCode::AlreadyAuthenticated => "already_authenticated",
            ErrorCode::SpoofedFrom => "spoofed_from",
            ErrorCode::BadEnvelope => "bad_envelope",
            ErrorCode::BadSignature => "bad_signature",
            ErrorCode::Stale => "stale",
            ErrorCode::Replayed => "replayed",
            ErrorCode::NotOnline => "not_online",
            ErrorCode::RecipientBusy => "recipient_busy",
            ErrorCode::MailboxFull => "mailbox_full",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::TurnUnavailable => "turn_unavailable",
            ErrorCode::Replaced => "replaced",
            ErrorCode::TooSlow => "too_slow",
            ErrorCode::IdleTimeout => "idle_timeout",
            ErrorCode::ShuttingDown => "shutting_down",
            ErrorCode::Unknown => "unknown",
        }
    }

    /// `true` when the server always closes the connection after sending this code.
    /// `too_large` is not among them: it closes only when the client's own message was over the
    /// limit, not when it answers a `send` whose `deliver` frame would be (§13).
    pub fn closes_connection(self) -> bool {
        matches!(
            self,
            ErrorCode::AuthFailed
                | ErrorCode::AuthTimeout
                | ErrorCode::Replaced
                | ErrorCode::TooSlow
                | ErrorCode::IdleTimeout
                | ErrorCode::ShuttingDown
        )
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a client frame could not be parsed. Maps to an [`ErrorCode`] with [`FrameError::code`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Larger than [`MAX_FRAME_BYTES`].
    #[error("frame of {0} bytes exceeds the {MAX_FRAME_BYTES}-byte limit")]
    TooLarge(usize),
    /// Not a JSON object with a string `type`.
    #[error("frame is not a JSON object with a string \"type\" field: {0}")]
    NotJson(String),
    /// `type` is not one this side knows.
    #[error("unknown frame type {0:?}")]
    UnknownType(String),
    /// Known `type` but wrong fields.
    #[error("malformed {kind:?} frame: {detail}")]
    Malformed {
        /// The frame type.
        kind: String,
        /// What is wrong.
        detail: String,
    },
}

impl FrameError {
    /// The error code to answer with.
    pub fn code(&self) -> ErrorCode {
        match self {
            FrameError::TooLarge(_) => ErrorCode::TooLarge,
            FrameError::UnknownType(_) => ErrorCode::UnknownType,
            FrameError::NotJson(_) | FrameError::Malformed { .. } => ErrorCode::BadFrame,
        }
    }
}

const MAX_DETAIL_CHARS: usize = 120;

fn short(s: &str) -> String {
    let mut out: String = s.chars().take(MAX_DETAIL_CHARS).collect();
    if s.chars().count() > MAX_DETAIL_CHARS {
        out.push('…');
    }
    out
}

#[derive(Deserialize)]
struct TypeOnly {
    #[serde(rename = "type")]
    ty: String,
}

const CLIENT_TYPES: [&str; 3] = ["auth", "send", "turn"];
const SERVER_TYPES: [&str; 5] = [
    "challenge",
    "welcome",
    "deliver",
    "turn_credentials",
    "error",
];

/// A JSON value parsed with duplicate object members refused at every depth (serde_json's
/// `Value` keeps the last one silently). One rule everywhere: a duplicate member makes a frame
/// `bad_frame`, as it makes an envelope `malformed`.
pub struct StrictValue(pub serde_json::Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = StrictValue;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value without duplicate object members")
    }

    fn visit_bool<E>(self, v: bool) -> Result<StrictValue, E> {
        Ok(StrictValue(v.into()))
    }

    fn visit_i64<E>(self, v: i64) -> Result<StrictValue, E> {
        Ok(StrictValue(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<StrictValue, E> {
        Ok(StrictValue(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<StrictValue, E> {
        // JSON text has no NaN or infinity, so `from_f64` only fails on input that cannot occur.
        Ok(StrictValue(
            serde_json::Number::from_f64(v).map_or(serde_json::Value::Null, Into::into),
        ))
    }

    fn visit_str<E>(self, v: &str) -> Result<StrictValue, E> {
        Ok(StrictValue(v.into()))
    }

    fn visit_string<E>(self, v: String) -> Result<StrictValue, E> {
        Ok(StrictValue(v.into()))
    }

    fn visit_unit<E>(self) -> Result<StrictValue, E> {
        Ok(StrictValue(serde_json::Value::Null))
    }

    fn visit_none<E>(self) -> Result<StrictValue, E> {
        Ok(StrictValue(serde_json::Value::Null))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<StrictValue, A::Error> {
        let mut out = Vec::new();
        while let Some(StrictValue(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(StrictValue(out.into()))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<StrictValue, A::Error> {
        let mut out = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(serde::de::Error::custom(format!(
                    "duplicate member {:?}",
                    short(&key)
                )));
            }
            let StrictValue(v) = map.next_value()?;
            out.insert(key, v);
        }
        Ok(StrictValue(out.into()))
    }
}

fn parse_tagged<T: serde::de::DeserializeOwned>(
    text: &str,
    known: &[&str],
) -> Result<T, FrameError> {
    if text.len() > MAX_FRAME_BYTES {
        return Err(FrameError::TooLarge(text.len()));
    }
    let StrictValue(value) =
        serde_json::from_str(text).map_err(|e| FrameError::NotJson(short(&e.to_string())))?;
    let ty = TypeOnly::deserialize(&value)
        .map_err(|e| FrameError::NotJson(short(&e.to_string())))?
        .ty;
    if !known.contains(&ty.as_str()) {
        return Err(FrameError::UnknownType(short(&ty)));
    }
    T::deserialize(value).map_err(|e| FrameError::Malformed {
        kind: ty,
        detail: short(&e.to_string()),
    })
}

impl ClientFrame {
    /// Parses an untrusted client frame. Never panics.
    pub fn parse(text: &str) -> Result<ClientFrame, FrameError> {
        parse_tagged(text, &CLIENT_TYPES)
    }

    /// The JSON text.
    pub fn to_json(&self) -> String {
        // Plain strings, integers and JSON values always serialize.
        serde_json::to_string(self).unwrap_or_default()
    }
}

impl ServerFrame {
    /// Parses an untrusted server frame. Never panics.
    pub fn parse(text: &str) -> Result<ServerFrame, FrameError> {
        parse_tagged(text, &SERVER_TYPES)
    }

    /// The JSON text.
    pub fn to_json(&self) -> String {
        // Plain strings, integers and envelopes (strings and integers) always serialize.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// An `error` frame.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> ServerFrame {
        ServerFrame::Error {
            code,
            message: message.into(),
        }
    }
}

/// The bytes a client signs to answer a challenge:
/// `"call-auth/v1" || u16be(len(server)) || server (UTF-8) || nonce (32 bytes) || u64be(ts)`.
pub fn auth_message(server: &str, nonce: &[u8; CHALLENGE_NONCE_LEN], ts: u64) -> Vec<u8> {
    let name = server.as_bytes();
    let name = &name[..name.len().min(MAX_SERVER_NAME_BYTES)];
    let mut out = Vec::with_capacity(AUTH_DOMAIN.len() + 2 + name.len() + CHALLENGE_NONCE_LEN + 8);
    out.extend_from_slice(AUTH_DOMAIN);
    // Bounded by MAX_SERVER_NAME_BYTES above, so it fits in a u16.
    out.extend_from_slice(&(name.len() as u16).to_be_bytes());
    out.extend_from_slice(name);
    out.extend_from_slice(nonce);
    out.extend_from_slice(&ts.to_be_bytes());
    out
}

/// Encodes a challenge nonce.
pub fn encode_nonce(nonce: &[u8; CHALLENGE_NONCE_LEN]) -> String {
    BASE64.encode(nonce)
}

/// Decodes a challenge nonce; `None` unless it is canonical base64 of exactly 32 bytes.
pub fn decode_nonce(text: &str) -> Option<[u8; CHALLENGE_NONCE_LEN]> {
    BASE64.decode(text.as_bytes()).ok()?.try_into().ok()
}

/// The client's answer to a challenge: `auth` with its ID and signature over [`auth_message`].
pub fn answer_challenge(
    identity: &crate::identity::Identity,
    server: &str,
    nonce: &[u8; CHALLENGE_NONCE_LEN],
    ts: u64,
) -> ClientFrame {
    let sig = identity.sign(&auth_message(server, nonce, ts));
    ClientFrame::Auth {
        id: identity.call_id(),
        sig: BASE64.encode(sig.to_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::EnvelopeKind;
    use crate::identity::Identity;
    use proptest::prelude::*;

    #[test]
    fn client_frames_round_trip() {
        let id = Identity::from_seed([7; 32]).call_id();
        let frames = [
            ClientFrame::Auth {
                id,
                sig: "AAAA".into(),
            },
            ClientFrame::Send {
                envelope: serde_json::json!({"v": 1}),
            },
            ClientFrame::Turn,
        ];
        for f in frames {
            assert_eq!(ClientFrame::parse(&f.to_json()).unwrap(), f);
        }
        assert_eq!(ClientFrame::Turn.to_json(), r#"{"type":"turn"}"#);
    }

    #[test]
    fn server_frames_round_trip() {
        let a = Identity::from_seed([1; 32]);
        let b = Identity::from_seed([2; 32]);
        let env =
            Envelope::seal(&a, &b.call_id(), EnvelopeKind::Offer, b"hi", 1_700_000_000).unwrap();
        let frames = [
            ServerFrame::Challenge {
                server: "s".into(),
                nonce: encode_nonce(&[3; 32]),
                ts: 5,
            },
            ServerFrame::Welcome {
                id: a.call_id(),
                kept: 0,
            },
            ServerFrame::Deliver { envelope: env },
            ServerFrame::TurnCredentials(TurnCredentials {
                urls: vec!["turn:127.0.0.1:1?transport=udp".into()],
                username: "1:x".into(),
                password: "p".into(),
                ttl: 600,
            }),
            ServerFrame::error(ErrorCode::NotOnline, "gone"),
        ];
        for f in frames {
            let text = f.to_json();
            assert_eq!(ServerFrame::parse(&text).unwrap(), f, "{text}");
        }
        let text = ServerFrame::error(ErrorCode::SpoofedFrom, "x").to_json();
        assert_eq!(
            text,
            r#"{"type":"error","code":"spoofed_from","message":"x"}"#
        );
        let tc = ServerFrame::TurnCredentials(TurnCredentials {
            urls: vec![],
            username: "u".into(),
            password: "p".into(),
            ttl: 1,
        });
        assert_eq!(
            tc.to_json(),
            r#"{"type":"turn_credentials","urls":[],"username":"u","password":"p","ttl":1}"#
        );
    }

    #[test]
    fn error_code_names_match_serde() {
        for code in ErrorCode::ALL {
            assert_eq!(serde_json::to_string(&code).unwrap(), format!("\"{code}\""));
        }
        let unknown: ErrorCode = serde_json::from_str("\"from_the_future\"").unwrap();
        assert_eq!(unknown, ErrorCode::Unknown);
    }

    #[test]
    fn bad_frames_are_typed() {
        assert!(matches!(
            ClientFrame::parse("not json"),
            Err(FrameError::NotJson(_))
        ));
        assert!(matches!(
            ClientFrame::parse("[1,2]"),
            Err(FrameError::NotJson(_))
        ));
        assert!(matches!(
            ClientFrame::parse(r#"{"type":5}"#),
            Err(FrameError::NotJson(_))
        ));
        assert_eq!(
            ClientFrame::parse(r#"{"type":"dance"}"#),
            Err(FrameError::UnknownType("dance".into()))
        );
        assert!(matches!(
            ClientFrame::parse(r#"{"type":"auth","id":"nope","sig":""}"#),
            Err(FrameError::Malformed { .. })
        ));
        // Unknown fields are ignored (forward compatibility).
        assert_eq!(
            ClientFrame::parse(r#"{"type":"turn","extra":1}"#),
            Ok(ClientFrame::Turn)
        );
        assert!(matches!(
            ClientFrame::parse(r#"{"type":"send"}"#),
            Err(FrameError::Malformed { .. })
        ));
        let big = format!(r#"{{"type":"turn","x":"{}"}}"#, "a".repeat(MAX_FRAME_BYTES));
        assert_eq!(
            ClientFrame::parse(&big).unwrap_err().code(),
            ErrorCode::TooLarge
        );
        // Server frames a client does not accept.
        assert!(matches!(
            ServerFrame::parse(r#"{"type":"auth"}"#),
            Err(FrameError::UnknownType(_))
        ));
    }

    /// Duplicate members used to be last-wins inside frames (parsed via `serde_json::Value`)
    /// while a bare envelope refused them: now refused everywhere, at any depth.
    #[test]
    fn duplicate_members_are_refused_in_frames() {
        let a = Identity::from_seed([1; 32]);
        let b = Identity::from_seed([2; 32]);
        let env =
            Envelope::seal(&a, &b.call_id(), EnvelopeKind::Offer, b"hi", 1_700_000_000).unwrap();
        let good = ServerFrame::Deliver { envelope: env }.to_json();
        assert!(ServerFrame::parse(&good).is_ok());
        let dups = [
            good.replacen(
                r#"{"type":"deliver","#,
                r#"{"type":"deliver","type":"deliver","#,
                1,
            ),
            good.replacen(r#""envelope":{"v":1,"#, r#""envelope":{"v":1,"v":1,"#, 1),
            good.replacen(r#""ts":"#, r#""ts":1,"ts":"#, 1),
        ];
        for text in &dups {
            let err = ServerFrame::parse(text).unwrap_err();
            assert_eq!(err.code(), ErrorCode::BadFrame, "{text}");
            assert!(err.to_string().contains("duplicate member"), "{err}");
        }
        let send = r#"{"type":"send","envelope":{"v":1,"v":2}}"#;
        assert_eq!(
            ClientFrame::parse(send).unwrap_err().code(),
            ErrorCode::BadFrame
        );
        assert_eq!(
            ClientFrame::parse(r#"{"type":"turn","x":[{"a":1,"a":2}]}"#)
                .unwrap_err()
                .code(),
            ErrorCode::BadFrame
        );
        // Same member names in different objects are fine, as are unknown members.
        assert_eq!(
            ClientFrame::parse(r#"{"type":"turn","x":{"type":1},"y":[{"a":1},{"a":2}]}"#),
            Ok(ClientFrame::Turn)
        );
    }

    /// Issue 7 item 1: the largest envelope must fit its `deliver` frame exactly.
    #[test]
    fn largest_envelope_fits_its_deliver_frame_exactly() {
        use crate::envelope::MAX_ENVELOPE_BYTES;
        assert_eq!(
            DELIVER_WRAPPER_BYTES,
            r#"{"type":"deliver","envelope":}"#.len()
        );
        assert_eq!(MAX_ENVELOPE_BYTES + DELIVER_WRAPPER_BYTES, MAX_FRAME_BYTES);
        let env = crate::test_fixtures::envelope_of_exactly(MAX_ENVELOPE_BYTES);
        let json = env.to_json();
        assert_eq!(json.len(), MAX_ENVELOPE_BYTES);
        assert!(crate::envelope::parse(json.as_bytes()).is_ok());
        let frame = ServerFrame::Deliver {
            envelope: env.clone(),
        }
        .to_json();
        assert_eq!(frame.len(), MAX_FRAME_BYTES);
        assert_eq!(
            ServerFrame::parse(&frame).unwrap(),
            ServerFrame::Deliver { envelope: env }
        );
        // The `send` wrapper is smaller, so whatever a client may send can be delivered.
        let value = serde_json::from_str(&json).unwrap();
        assert!(ClientFrame::Send { envelope: value }.to_json().len() < MAX_FRAME_BYTES);
        // One byte more is refused as an envelope.
        let over = crate::test_fixtures::envelope_of_exactly(MAX_ENVELOPE_BYTES + 1);
        assert_eq!(
            crate::envelope::parse(over.to_json().as_bytes())
                .unwrap_err()
                .code(),
            "too_large"
        );
    }

    #[test]
    fn auth_message_layout() {
        let m = auth_message("ab", &[9; 32], 0x0102);
        let mut want = b"call-auth/v1".to_vec();
        want.extend_from_slice(&[0, 2, b'a', b'b']);
        want.extend_from_slice(&[9; 32]);
        want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 1, 2]);
        assert_eq!(m, want);
    }

    #[test]
    fn nonce_codec() {
        let n = [0xab; 32];
        assert_eq!(decode_nonce(&encode_nonce(&n)), Some(n));
        assert_eq!(decode_nonce("AAAA"), None);
        assert_eq!(decode_nonce("!!"), None);
    }

    fn arb_json() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(Into::into),
            any::<i64>().prop_map(Into::into),
            any::<u64>().prop_map(Into::into),
            (-1e9f64..1e9).prop_map(Into::into),
            ".{0,20}".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                prop::collection::btree_map(".{0,6}", inner, 0..4)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn parsers_never_panic(s in ".{0,400}") {
            let _ = ClientFrame::parse(&s);
            let _ = ServerFrame::parse(&s);
        }

        /// Without duplicates, the strict parser reads exactly what serde_json reads.
        #[test]
        fn strict_value_agrees_with_serde_json(v in arb_json()) {
            let text = serde_json::to_string(&v).unwrap();
            let StrictValue(strict) = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(strict, serde_json::from_str::<serde_json::Value>(&text).unwrap());
        }

        #[test]
        fn typed_garbage_never_panics(ty in "(auth|send|turn|welcome|deliver|error)", body in ".{0,200}") {
            let text = format!(r#"{{"type":"{ty}","envelope":"{body}","id":"{body}","sig":"{body}"}}"#);
            let _ = ClientFrame::parse(&text);
            let _ = ServerFrame::parse(&text);
        }
    }
}

#[cfg(test)]
mod doc_vectors {
    //! The worked example of `docs/protocol.md` part 2 (§17); keeps the document and the code in step.
    use super::*;
    use crate::identity::Identity;
    use crate::turn_credentials::{CredentialPolicy, TurnSecret};

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn protocol_server_doc_vectors() {
        let alice = Identity::from_seed(std::array::from_fn(|i| i as u8));
        let nonce: [u8; 32] = std::array::from_fn(|i| 0x60 + i as u8);
        let ts = 1_700_000_000;
        assert_eq!(
            hex(&auth_message("call-signaling", &nonce, ts)),
            "63616c6c2d617574682f7631000e63616c6c2d7369676e616c696e67\
             606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f000000006553f100"
        );
        let challenge = ServerFrame::Challenge {
            server: "call-signaling".into(),
            nonce: encode_nonce(&nonce),
            ts,
        };
        assert_eq!(
            challenge.to_json(),
            r#"{"type":"challenge","server":"call-signaling","nonce":"YGFiY2RlZmdoaWprbG1ub3BxcnN0dXZ3eHl6e3x9fn8=","ts":1700000000}"#
        );
        assert_eq!(
            answer_challenge(&alice, "call-signaling", &nonce, ts).to_json(),
            r#"{"type":"auth","id":"aoqqpp7tzyil4hlq3umoos6atft6jvrqtosq2xy53sdgiesvgg4bkaedp4","sig":"B1JoLtFsDjrMt/Zt0K+kVpg7kizh9dlJO+vIGiwpxAJDsPnkaw93n40c3+4yYXSLc7Q7PefPQ3+enWAmzuJXCQ=="}"#
        );
        let policy =
            CredentialPolicy::new(TurnSecret::new(b"north".to_vec()).unwrap(), 600, 3600).unwrap();
        let creds = policy.issue(
            &alice.call_id().to_string(),
            ts,
            vec!["turn:127.0.0.1:3478?transport=udp".into()],
        );
        assert_eq!(
            ServerFrame::TurnCredentials(creds).to_json(),
            r#"{"type":"turn_credentials","urls":["turn:127.0.0.1:3478?transport=udp"],"username":"1700000600:aoqqpp7tzyil4hlq3umoos6atft6jvrqtosq2xy53sdgiesvgg4bkaedp4","password":"QYGAgRz+f8wrRrGm2zWLGnyuH90=","ttl":600}"#
        );
    }
}
