//! `call-load cost`: what each step of the server's per-envelope path costs on this machine,
//! measured in-process on one core, in the same run: one Ed25519 verification (the reference),
//! batch verification at several batch sizes, the `send` frame parse the server did before
//! (a `serde_json::Value` tree, printed again and parsed as an envelope) and a borrowed parse
//! into an [`Envelope`] (which still validates both call IDs: the cost the server's fast path
//! avoids), one call ID validation, the canonical re-encoding into a `deliver` frame, the
//! replay cache, and the whole sans-IO [`Session`] step (the server's fast path) with and
//! without the signature check. No sockets: the tokio and WebSocket share is what `route`
//! measures on top of this.

use std::time::{Duration, Instant};

use ed25519_dalek::{Signature, VerifyingKey};
use signaling::envelope::{self, Envelope, EnvelopeKind, ReplayCache};
use signaling::identity::{verify_strict, Identity};
use signaling::protocol::{answer_challenge, ClientFrame};
use signaling::server::auth::Challenge;
use signaling::server::session::{deliver_frame, Action, Session};
use signaling::server::RateLimit;

use super::stamped_plaintext;

/// Unix time the measured envelopes carry (any fixed value: the checks get it as `now`).
const NOW: u64 = 1_700_000_000;
/// Plaintext bytes per envelope, as `route` sends.
pub const BODY_BYTES: usize = 200;
/// Batch sizes measured for batch verification.
pub const BATCH_SIZES: [usize; 3] = [8, 32, 64];

/// One measured step: its name and its mean cost per envelope (or per signature).
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// What was measured.
    pub name: String,
    /// Mean time per envelope.
    pub per_envelope: Duration,
}

/// `count` distinct envelopes (fresh nonces) from `from` to `to`, each sealing a
/// [`BODY_BYTES`] plaintext, and their `send` frames as a client sends them.
pub fn envelopes(from: &Identity, to: &Identity, count: usize) -> Vec<(Envelope, String)> {
    (0..count)
        .map(|k| {
            let body = stamped_plaintext(Duration::from_micros(k as u64), BODY_BYTES);
            // Sealing plain bytes to a valid ID cannot fail below MAX_PLAINTEXT_BYTES.
            let env = Envelope::seal(from, &to.call_id(), EnvelopeKind::Candidate, &body, NOW)
                .expect("a 200-byte plaintext seals");
            let frame = ClientFrame::Send {
                envelope: serde_json::to_value(&env).unwrap_or_default(),
            }
            .to_json();
            (env, frame)
        })
        .collect()
}

/// Mean time of `op` over `items`, best of `rounds` passes (the least disturbed by the other
/// processes sharing the core).
fn mean_of<T>(items: &[T], rounds: usize, mut op: impl FnMut(&T)) -> Duration {
    let mut best = Duration::MAX;
    for _ in 0..rounds.max(1) {
        let t0 = Instant::now();
        for item in items {
            op(item);
        }
        best = best.min(t0.elapsed() / items.len().max(1) as u32);
    }
    best
}

/// The old parse: the whole frame into a `Value` tree (duplicate members refused), the envelope
/// printed back to JSON and parsed again.
fn parse_via_value(frame: &str) -> Option<Envelope> {
    match ClientFrame::parse(frame).ok()? {
        ClientFrame::Send { envelope } => envelope::parse_value(&envelope).ok(),
        _ => None,
    }
}

/// A borrowed parse: the frame borrowed, the envelope left as raw JSON and parsed straight
/// into an [`Envelope`] with [`envelope::parse`] (both call IDs validated).
fn parse_borrowed(frame: &str) -> Option<Envelope> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct SendFrame<'a> {
        #[serde(rename = "type", borrow)]
        _ty: &'a str,
        #[serde(borrow)]
        envelope: &'a serde_json::value::RawValue,
    }
    let f: SendFrame<'_> = serde_json::from_str(frame).ok()?;
    envelope::parse(f.envelope.get().as_bytes()).ok()
}

/// An authenticated [`Session`] for `me` that remembers `replay` envelopes.
fn session(me: &Identity, replay: usize, verify: bool) -> Session {
    let t0 = Instant::now();
    let unlimited = RateLimit {
        per_second: 1e9,
        burst: u32::MAX,
    };
    let mut s = Session::new(Challenge::new("cost", [7; 32], NOW), unlimited, replay, t0)
        .verifying_signatures(verify);
    let auth = answer_challenge(me, "cost", &[7; 32], NOW).to_json();
    if let Action::Authenticated(id) = s.handle_text(&auth, t0, NOW) {
        s.set_authenticated(id);
    }
    s
}

/// Measures every step over `count` envelopes (at least the largest batch), best of `rounds`.
pub fn measure(count: usize, rounds: usize) -> Vec<Step> {
    let count = count.max(BATCH_SIZES[BATCH_SIZES.len() - 1]);
    let alice = Identity::from_seed([1; 32]);
    let bob = Identity::from_seed([2; 32]);
    let envs = envelopes(&alice, &bob, count);
    let mut steps = Vec::new();
    let mut step = |name: &str, per_envelope: Duration| {
        steps.push(Step {
            name: name.to_owned(),
            per_envelope,
        })
    };

    let signed: Vec<(Vec<u8>, Signature)> = envs
        .iter()
        .map(|(e, _)| (e.signed_bytes(), e.sig))
        .collect();
    let key = VerifyingKey::from_bytes(alice.call_id().as_bytes()).expect("a valid key");
    step(
        "Ed25519 verify_strict, key decoded per call (as the server did)",
        mean_of(&signed, rounds, |(msg, sig)| {
            assert!(verify_strict(&alice.call_id(), msg, sig).is_ok());
        }),
    );
    step(
        "Ed25519 verify_strict, key decoded once",
        mean_of(&signed, rounds, |(msg, sig)| {
            assert!(key.verify_strict(msg, sig).is_ok());
        }),
    );
    for size in BATCH_SIZES {
        let batches: Vec<&[(Vec<u8>, Signature)]> = signed.chunks_exact(size).collect();
        let keys = vec![key; size];
        let per_batch = mean_of(&batches, rounds, |batch| {
            let msgs: Vec<&[u8]> = batch.iter().map(|(m, _)| m.as_slice()).collect();
            let sigs: Vec<Signature> = batch.iter().map(|(_, s)| *s).collect();
            assert!(ed25519_dalek::verify_batch(&msgs, &sigs, &keys).is_ok());
        });
        step(
            &format!("Ed25519 batch verification, batches of {size} (per signature)"),
            per_batch / size as u32,
        );
    }
    step(
        "parse `send` via a Value tree (before)",
        mean_of(&envs, rounds, |(_, f)| {
            assert!(parse_via_value(f).is_some());
        }),
    );
    step(
        "parse `send` borrowed, then `envelope::parse` (both IDs validated)",
        mean_of(&envs, rounds, |(_, f)| {
            assert!(parse_borrowed(f).is_some());
        }),
    );
    let id_text = bob.call_id().to_string();
    step(
        "call ID text → validated `CallId` (one of the two above)",
        mean_of(&envs, rounds, |_| {
            assert!(id_text.parse::<signaling::identity::CallId>().is_ok());
        }),
    );
    step(
        "`CallId` → text (SHA-256 checksum, base32)",
        mean_of(&envs, rounds, |_| {
            std::hint::black_box(bob.call_id().to_string());
        }),
    );
    step(
        "re-encode the `deliver` frame (canonical JSON, base64)",
        mean_of(&envs, rounds, |(e, _)| {
            assert!(deliver_frame(e.clone(), usize::MAX).is_ok());
        }),
    );
    step(
        "clone an envelope (part of the line above)",
        mean_of(&envs, rounds, |(e, _)| {
            std::hint::black_box(e.clone());
        }),
    );
    let mut replay = ReplayCache::new(count * rounds.max(1) + 1);
    let mut now = NOW;
    step(
        "replay cache check and insert",
        mean_of(&envs, rounds, |(e, _)| {
            // A fresh `ts` per round keeps every insert new.
            let mut e = e.clone();
            e.ts = now;
            now += 1;
            assert!(replay.check_and_insert(&e, now).is_ok());
        }),
    );
    for (verify, name) in [
        (true, "whole sans-IO Session step, signature verified"),
        (false, "whole sans-IO Session step, no signature check"),
    ] {
        let mut best = Duration::MAX;
        for _ in 0..rounds.max(1) {
            // A fresh session per round: the same envelopes again would be replays.
            let mut s = session(&alice, count + 1, verify);
            let t0 = Instant::now();
            let now = Instant::now();
            for (_, f) in &envs {
                assert!(matches!(s.handle_text(f, now, NOW), Action::Route { .. }));
            }
            best = best.min(t0.elapsed() / envs.len() as u32);
        }
        step(name, best);
    }
    steps
}

/// The steps as a markdown table, with envelopes per core-second for each.
pub fn table(steps: &[Step]) -> String {
    let mut out = String::from("| step | µs per envelope | per core-second |\n|---|---|---|\n");
    for s in steps {
        let us = s.per_envelope.as_secs_f64() * 1e6;
        let rate = if us > 0.0 { 1e6 / us } else { f64::INFINITY };
        out.push_str(&format!("| {} | {us:.2} | {rate:.0} |\n", s.name));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_parses_give_the_same_envelope() {
        let a = Identity::from_seed([1; 32]);
        let b = Identity::from_seed([2; 32]);
        for (env, frame) in envelopes(&a, &b, 4) {
            assert_eq!(parse_via_value(&frame).as_ref(), Some(&env));
            assert_eq!(parse_borrowed(&frame).as_ref(), Some(&env));
        }
    }

    #[test]
    fn a_session_without_signature_checks_still_routes_and_binds_from() {
        let a = Identity::from_seed([1; 32]);
        let b = Identity::from_seed([2; 32]);
        let mut s = session(&a, 16, false);
        let (_, frame) = &envelopes(&a, &b, 1)[0];
        assert!(matches!(
            s.handle_text(frame, Instant::now(), NOW),
            Action::Route { .. }
        ));
        // b's envelope on a's connection is still refused.
        let (_, spoofed) = &envelopes(&b, &a, 1)[0];
        assert!(matches!(
            s.handle_text(spoofed, Instant::now(), NOW),
            Action::Refused(_)
        ));
    }

    #[test]
    fn the_table_has_a_row_per_step() {
        let steps = vec![Step {
            name: "x".into(),
            per_envelope: Duration::from_micros(20),
        }];
        let t = table(&steps);
        assert!(t.contains("| x | 20.00 | 50000 |"), "{t}");
    }
}
