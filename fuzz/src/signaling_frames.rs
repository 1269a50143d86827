//! Targets for what reaches the signaling plane from outside: envelopes (§4), client and
//! server frames (§12), the IDs inside them (§2, §21.1), the envelope bodies of a call
//! (signed SDP, candidates, hang-ups: §5) and SDP fingerprint extraction (§5.1, with
//! `media`'s fingerprint comparison).

use media::session::{certificate_fingerprint, fingerprints_equal};
use signaling::envelope::{self, Envelope, EnvelopeError, ReplayCache, MAX_ENVELOPE_BYTES};
use signaling::identity::CallId;
use signaling::offer::{
    self, is_unprintable, CallToken, CandidateBody, HangupBody, Role, SignedSdp, MAX_REASON_BYTES,
    MAX_SDP_BYTES,
};
use signaling::protocol::{self, ClientFrame, ServerFrame, MAX_FRAME_BYTES};
use signaling::room::{MessageId, RoomId};
use signaling::turn_credentials::parse_username;

use crate::fixtures::{alice, alice_id, bob, bob_id};

/// `signaling::envelope::parse`: a parsed envelope re-encodes to at most its own size (so the
/// server can always deliver it in one frame), parses back to itself, reads the same from a
/// JSON value and inside a `deliver` frame; receiving it as Bob never panics, and a second
/// copy of an envelope the replay cache took is refused.
pub fn envelope(data: &[u8]) {
    let Ok(env) = envelope::parse(data) else {
        return;
    };
    let json = env.to_json();
    assert!(json.len() <= data.len().min(MAX_ENVELOPE_BYTES));
    assert_eq!(envelope::parse(json.as_bytes()).as_ref(), Ok(&env));
    let value: serde_json::Value = serde_json::from_slice(data).expect("parsed JSON is a value");
    assert_eq!(envelope::parse_value(&value).as_ref(), Ok(&env));
    let deliver = format!(r#"{{"type":"deliver","envelope":{json}}}"#);
    assert!(deliver.len() <= MAX_FRAME_BYTES);
    assert_eq!(
        ServerFrame::parse(&deliver),
        Ok(ServerFrame::Deliver {
            envelope: env.clone()
        })
    );

    let _ = env.verify_signature();
    let mut replay = ReplayCache::new(1);
    let _ = env.open(bob(), env.ts, &mut replay);
    let mut replay = ReplayCache::new(4);
    if replay.check_and_insert(&env, env.ts).is_ok() {
        assert_eq!(
            replay.check_and_insert(&env, env.ts),
            Err(EnvelopeError::Replayed)
        );
        assert_eq!(replay.len(), 1);
    }
}

/// `ClientFrame::parse` (what the server reads from every connection): a frame parses back
/// from its own JSON, the envelope of a `send` frame goes through `parse_value`, errors carry
/// a code and a bounded message.
pub fn client_frame(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match ClientFrame::parse(text) {
        Ok(frame) => {
            let json = frame.to_json();
            // Numbers such as `1E5` re-encode longer (`100000.0`); only frames that still fit
            // the limit can come back.
            if json.len() <= MAX_FRAME_BYTES {
                let again = ClientFrame::parse(&json).expect("own JSON parses");
                match (&frame, &again) {
                    // serde_json reads long decimals to the nearest double only within an ulp
                    // (no `float_roundtrip`), so a float in the envelope value may move when
                    // parsed again (regressions/client_frame/float_*). Harmless: a valid
                    // envelope holds integers and strings only; what the server does with the
                    // value, `parse_value`, must come out the same.
                    (ClientFrame::Send { envelope: a }, ClientFrame::Send { envelope: b })
                        if has_float(a) =>
                    {
                        // Errors are compared by code: their text names columns, which move.
                        let outcome = |v| envelope::parse_value(v).map_err(|e| e.code());
                        assert_eq!(outcome(a), outcome(b));
                    }
                    _ => assert_eq!(again, frame),
                }
            }
            match &frame {
                ClientFrame::Send { envelope } => {
                    let _ = envelope::parse_value(envelope);
                }
                ClientFrame::Auth { id, sig } => {
                    let _ = id.to_string();
                    let _ = sig.len();
                }
                ClientFrame::Turn => {}
            }
        }
        Err(err) => {
            let _ = err.code();
            assert!(err.to_string().len() < 1024);
        }
    }
}

/// Whether a JSON value holds a number that is not an integer.
fn has_float(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::Number(n) => n.is_f64(),
        serde_json::Value::Array(items) => items.iter().any(has_float),
        serde_json::Value::Object(members) => members.values().any(has_float),
        _ => false,
    }
}

/// `ServerFrame::parse` (what a client reads from the server): round trip; a challenge's
/// nonce and a credential's username go through their own parsers.
pub fn server_frame(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match ServerFrame::parse(text) {
        Ok(frame) => {
            let json = frame.to_json();
            if json.len() <= MAX_FRAME_BYTES {
                assert_eq!(ServerFrame::parse(&json).as_ref(), Ok(&frame));
            }
            match &frame {
                ServerFrame::Challenge { nonce, server, ts } => {
                    if let Some(bytes) = protocol::decode_nonce(nonce) {
                        assert_eq!(&protocol::encode_nonce(&bytes), nonce);
                        let _ = protocol::auth_message(server, &bytes, *ts);
                    }
                }
                ServerFrame::TurnCredentials(creds) => {
                    let _ = parse_username(&creds.username);
                }
                ServerFrame::Deliver { envelope } => {
                    assert!(envelope.to_json().len() <= MAX_ENVELOPE_BYTES);
                }
                ServerFrame::Welcome { .. } | ServerFrame::Error { .. } => {}
            }
        }
        Err(err) => {
            let _ = err.code();
            assert!(err.to_string().len() < 1024);
        }
    }
}

/// The text forms of IDs a peer or server sends: call IDs (§2.2), room IDs (§21.1), call
/// tokens and message IDs. Whatever parses prints back in canonical form and parses again to
/// the same value.
pub fn ids(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(id) = text.parse::<CallId>() {
        let canonical = id.to_string();
        assert_eq!(canonical.len(), signaling::identity::CALL_ID_TEXT_LEN);
        assert_eq!(canonical.parse::<CallId>(), Ok(id));
        assert_eq!(CallId::from_bytes(id.as_bytes()), Ok(id));
    }
    if let Ok(room) = text.parse::<RoomId>() {
        let canonical = room.to_string();
        assert_eq!(canonical.len(), signaling::room::ROOM_ID_TEXT_LEN);
        assert_eq!(canonical.parse::<RoomId>(), Ok(room));
    }
    if let Ok(token) = text.parse::<CallToken>() {
        assert_eq!(token.to_string().parse::<CallToken>(), Ok(token));
    }
    if let Ok(msg) = text.parse::<MessageId>() {
        assert_eq!(msg.to_string().parse::<MessageId>(), Ok(msg));
    }
}

/// The plaintexts of `offer`/`answer`, `candidate` and `hangup`/`reject` envelopes: each
/// parser's result re-encodes and parses back to itself; a signed SDP is checked as its
/// recipient would (nothing may panic), and a hang-up reason is printable and bounded.
pub fn offer_bodies(data: &[u8]) {
    if let Ok(sdp) = SignedSdp::parse(data) {
        assert_eq!(SignedSdp::parse(&sdp.to_json()).as_ref(), Ok(&sdp));
        let verified = sdp.verify(
            &sdp.from,
            &sdp.to,
            Some(&sdp.call_id),
            sdp.role,
            sdp.expires,
        );
        if let Ok(text) = verified {
            assert_eq!(offer::sdp_fingerprint(text).as_ref(), Ok(&sdp.fingerprint));
        }
        let _ = sdp.verify(&alice_id(), &bob_id(), None, Role::Offer, sdp.expires);
    }
    if let Ok(candidate) = CandidateBody::parse(data) {
        assert_eq!(
            CandidateBody::parse(&candidate.to_json()).as_ref(),
            Ok(&candidate)
        );
    }
    if let Ok(hangup) = HangupBody::parse(data) {
        assert!(hangup.reason.len() <= MAX_REASON_BYTES);
        assert!(!hangup.reason.chars().any(is_unprintable));
        assert_eq!(HangupBody::parse(&hangup.to_json()).as_ref(), Ok(&hangup));
    }
}

/// `signaling::offer::sdp_fingerprint` on any SDP text, with `media`'s fingerprint
/// comparison: an extracted fingerprint is in normal form (`sha-256` and 32 uppercase hex
/// pairs), compares equal to itself in any case, and an SDP that yields one can be signed by
/// Alice and verified by Bob. The comparison is symmetric and reflexive on any two strings.
pub fn sdp_fingerprint(data: &[u8]) {
    let Ok(sdp) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(fp) = offer::sdp_fingerprint(sdp) {
        let hex = fp
            .strip_prefix("sha-256 ")
            .expect("normal form starts with the hash");
        assert_eq!(hex.len(), 32 * 3 - 1);
        for (i, byte) in hex.split(':').enumerate() {
            assert!(i < 32);
            assert!(byte
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b)));
        }
        assert!(fingerprints_equal(&fp, &fp.to_ascii_lowercase()));
        assert_eq!(certificate_fingerprint(b"").len(), fp.len());
        if sdp.len() <= MAX_SDP_BYTES {
            let token = CallToken::from_bytes([7; 16]);
            let signed = SignedSdp::sign(alice(), &bob_id(), token, Role::Offer, sdp, 100)
                .expect("an SDP with one fingerprint within the size limit signs");
            assert_eq!(signed.fingerprint, fp);
            assert_eq!(
                signed.verify(&alice_id(), &bob_id(), Some(&token), Role::Offer, 100),
                Ok(sdp)
            );
        }
    }
    let mut mid = sdp.len() / 2;
    while !sdp.is_char_boundary(mid) {
        mid -= 1;
    }
    let (a, b) = sdp.split_at(mid);
    assert_eq!(fingerprints_equal(a, b), fingerprints_equal(b, a));
    assert!(fingerprints_equal(a, a));
}

/// An envelope the fuzz corpus generator and tests use: Alice to Bob, sealed with a fixed nonce.
pub fn sealed_for_bob(kind: envelope::EnvelopeKind, plaintext: &[u8], nonce: u8) -> Envelope {
    Envelope::seal_with_nonce(
        alice(),
        &bob_id(),
        kind,
        plaintext,
        crate::fixtures::NOW,
        [nonce; envelope::NONCE_LEN],
    )
    .expect("a plaintext within the limit seals")
}
