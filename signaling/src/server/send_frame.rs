//! The per-envelope fast path of the server (sans-IO): a `send` frame parsed without copies,
//! its `from` compared as text with the connection's own ID, its `to` looked up in a small cache
//! of the recipients this connection already named, and the `deliver` frame written from the
//! canonical strings it arrived with.
//!
//! Why: turning a call ID's text into a [`CallId`] validates the key (decompressing the point
//! and multiplying it by the group order), which costs as much as a signature check, and the
//! general parse did it twice per envelope and printed both IDs again. Here `from` must equal
//! the authenticated ID (validated at login), and a recipient is validated the first time the
//! connection names it.
//!
//! Anything unusual (escapes, unknown or duplicate members, non-canonical text, a new recipient
//! that does not parse) returns `None`, and the caller runs the general parser
//! ([`crate::protocol::ClientFrame::parse`], [`crate::envelope::parse_value`]), which gives the
//! errors. So this accepts nothing the general parser refuses, and for what it accepts it
//! returns the same envelope and the same `deliver` frame text (tested below).

use base64::Engine as _;
use ed25519_dalek::Signature;
use serde::Deserialize;

use crate::envelope::{Envelope, EnvelopeKind, ENVELOPE_VERSION, MAX_ENVELOPE_BYTES, NONCE_LEN};
use crate::identity::CallId;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Recipients remembered per connection (a connection talks to a handful of peers at a time).
const RECIPIENTS: usize = 16;

/// A `send` frame as it arrives, borrowed from the text.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SendFrame<'a> {
    #[serde(rename = "type", borrow)]
    ty: &'a str,
    #[serde(borrow)]
    envelope: &'a serde_json::value::RawValue,
}

/// The envelope's members, borrowed (a string with escapes fails: clients never escape these).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireRef<'a> {
    v: u64,
    from: &'a str,
    to: &'a str,
    ts: u64,
    nonce: &'a str,
    kind: &'a str,
    body: &'a str,
    sig: &'a str,
}

/// The recipients a connection named lately: canonical text → validated ID.
#[derive(Debug, Default)]
pub struct Recipients {
    known: Vec<(String, CallId)>,
    next: usize,
}

impl Recipients {
    /// The ID whose canonical text is `text`, validating and remembering it when new; `None`
    /// when `text` is not a canonical call ID.
    fn lookup(&mut self, text: &str) -> Option<CallId> {
        if let Some((_, id)) = self.known.iter().find(|(t, _)| t == text) {
            return Some(*id);
        }
        let id: CallId = text.parse().ok()?;
        let canonical = id.to_string();
        if canonical != text {
            return None;
        }
        if self.known.len() < RECIPIENTS {
            self.known.push((canonical, id));
        } else {
            self.known[self.next] = (canonical, id);
            self.next = (self.next + 1) % RECIPIENTS;
        }
        Some(id)
    }
}

/// A `send` frame taken by the fast path: the envelope (for the checks) and its `deliver`
/// frame, byte for byte what [`crate::protocol::ServerFrame::to_json`] would print.
pub struct Parsed {
    /// The envelope, for the checks of protocol §12.1.
    pub envelope: Envelope,
    /// Its `deliver` frame.
    pub deliver: String,
}

fn decode_fixed<const N: usize>(text: &str) -> Option<[u8; N]> {
    B64.decode(text.as_bytes()).ok()?.try_into().ok()
}

/// Parses `text` as a `send` frame from the connection authenticated as `me`, whose canonical
/// text is `me_text`; `None` sends the frame to the general parser.
pub fn parse(
    text: &str,
    me: &CallId,
    me_text: &str,
    recipients: &mut Recipients,
) -> Option<Parsed> {
    let frame: SendFrame<'_> = serde_json::from_str(text).ok()?;
    let raw = frame.envelope.get();
    if frame.ty != "send" || raw.len() > MAX_ENVELOPE_BYTES {
        return None;
    }
    let w: WireRef<'_> = serde_json::from_str(raw).ok()?;
    if w.v != u64::from(ENVELOPE_VERSION) || w.from != me_text {
        return None;
    }
    let kind = EnvelopeKind::from_wire(w.kind)?;
    let to = recipients.lookup(w.to)?;
    let nonce = decode_fixed::<NONCE_LEN>(w.nonce)?;
    let sig = Signature::from_bytes(&decode_fixed::<64>(w.sig)?);
    let body = B64.decode(w.body.as_bytes()).ok()?;
    // The strict base64 engine decodes only canonical text, so the strings below are exactly
    // what re-encoding the decoded bytes would give.
    let (v, ts) = (ENVELOPE_VERSION.to_string(), w.ts.to_string());
    let mut deliver = String::with_capacity(raw.len() + 64);
    for piece in [
        r#"{"type":"deliver","envelope":{"v":"#,
        &v,
        r#","from":""#,
        me_text,
        r#"","to":""#,
        w.to,
        r#"","ts":"#,
        &ts,
        r#","nonce":""#,
        w.nonce,
        r#"","kind":""#,
        kind.as_str(),
        r#"","body":""#,
        w.body,
        r#"","sig":""#,
        w.sig,
        r#""}}"#,
    ] {
        deliver.push_str(piece);
    }
    let envelope = Envelope {
        v: ENVELOPE_VERSION,
        from: *me,
        to,
        ts: w.ts,
        nonce,
        kind,
        body,
        sig,
    };
    Some(Parsed { envelope, deliver })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;
    use crate::protocol::{ClientFrame, ServerFrame};

    const NOW: u64 = 1_700_000_000;

    fn send_text(env: &Envelope) -> String {
        ClientFrame::Send {
            envelope: serde_json::to_value(env).unwrap(),
        }
        .to_json()
    }

    #[test]
    fn same_envelope_and_deliver_frame_as_the_general_path() {
        let a = Identity::from_seed([1; 32]);
        let mut rec = Recipients::default();
        for (k, kind) in EnvelopeKind::ALL.into_iter().enumerate() {
            let b = Identity::from_seed([2 + k as u8; 32]);
            let env = Envelope::seal(&a, &b.call_id(), kind, &vec![7; k * 100], NOW).unwrap();
            let p = parse(
                &send_text(&env),
                &a.call_id(),
                &a.call_id().to_string(),
                &mut rec,
            )
            .expect("taken by the fast path");
            assert_eq!(p.envelope, env);
            assert_eq!(p.deliver, ServerFrame::Deliver { envelope: env }.to_json());
        }
    }

    #[test]
    fn anything_unusual_goes_to_the_general_parser() {
        let a = Identity::from_seed([1; 32]);
        let b = Identity::from_seed([2; 32]);
        let me = a.call_id();
        let me_text = me.to_string();
        let env = Envelope::seal(&a, &b.call_id(), EnvelopeKind::Offer, b"x", NOW).unwrap();
        let good = send_text(&env);
        let mut rec = Recipients::default();
        assert!(parse(&good, &me, &me_text, &mut rec).is_some());
        let upper_to = good.replace(
            &b.call_id().to_string(),
            &b.call_id().to_string().to_uppercase(),
        );
        let spoofed =
            send_text(&Envelope::seal(&b, &a.call_id(), EnvelopeKind::Offer, b"x", NOW).unwrap());
        let escaped = good.replacen("\"kind\":\"offer\"", "\"kind\":\"of\\u0066er\"", 1);
        let extra = good.replacen("{\"body\"", "{\"x\":1,\"body\"", 1);
        let dup = good.replacen("{\"body\"", "{\"v\":1,\"body\"", 1);
        let top_extra = good.replacen("{\"type\"", "{\"x\":1,\"type\"", 1);
        let v2 = good.replacen("\"v\":1", "\"v\":2", 1);
        let bad_b64 = good.replacen("\"nonce\":\"", "\"nonce\":\"!", 1);
        for (what, text) in [
            ("upper-case to", upper_to),
            ("spoofed from", spoofed),
            ("escaped kind", escaped),
            ("unknown member", extra),
            ("duplicate member", dup),
            ("unknown frame member", top_extra),
            ("version 2", v2),
            ("bad base64", bad_b64),
            ("not json", "{".into()),
            ("turn", r#"{"type":"turn"}"#.into()),
        ] {
            assert_ne!(text, good, "{what}: the test changed nothing");
            assert!(
                parse(&text, &me, &me_text, &mut rec).is_none(),
                "{what} was taken"
            );
        }
    }

    #[test]
    fn recipients_are_validated_once_and_bounded() {
        let mut rec = Recipients::default();
        let ids: Vec<CallId> = (0..RECIPIENTS + 3)
            .map(|k| Identity::from_seed([k as u8 + 1; 32]).call_id())
            .collect();
        for id in &ids {
            assert_eq!(rec.lookup(&id.to_string()), Some(*id));
        }
        assert_eq!(rec.known.len(), RECIPIENTS);
        assert_eq!(rec.lookup(&ids[0].to_string()), Some(ids[0]));
        assert_eq!(rec.lookup("not an id"), None);
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_text_never_panics(text in ".{0,400}") {
            let a = Identity::from_seed([1; 32]);
            let mut rec = Recipients::default();
            let _ = parse(&text, &a.call_id(), &a.call_id().to_string(), &mut rec);
            let wrapped = format!(r#"{{"type":"send","envelope":{text}}}"#);
            let _ = parse(&wrapped, &a.call_id(), &a.call_id().to_string(), &mut rec);
        }
    }
}
