//! What the caller does with each signaling message while it waits for the answer: a sans-IO
//! decision, so that a third party can be shown not to end someone else's call.
//!
//! Only the peer we called can end the attempt, and only with a message for this call: an
//! answer signed for this call ID (accepted, or refused if it fails verification), or a reject
//! or hang-up naming this call ID. Everything else (envelopes from anyone else, envelopes that
//! fail to open, bodies that do not parse, other calls' messages) is ignored and logged with its
//! §6 code: the server authenticates `from`, so a stranger cannot pose as the peer, and an
//! envelope that fails to open cannot be attributed to anyone.

use signaling::client::{ClientError, Incoming};
use signaling::envelope::EnvelopeKind;
use signaling::identity::CallId;
use signaling::offer::{CallToken, HangupBody, Role, SignedSdp};
use signaling::protocol::ErrorCode;

use super::error::client_error_code;
use super::CallError;

/// Reason string of a reject that means "in another call" (`docs/protocol.md` §5.3).
pub const BUSY_REASON: &str = signaling::offer::reason::BUSY;

/// What one message means for a call attempt.
#[derive(Debug)]
pub(crate) enum DialStep {
    /// The peer's verified answer for this call.
    Answer(SignedSdp),
    /// The attempt is over.
    End(CallError),
    /// Not for this attempt; the reason, for the log and the timeout message.
    Ignore(String),
}

/// Decides what `item` (one result of `Client::recv`) means while `me` waits for `peer` to
/// answer call `call_id`, at Unix time `now_unix`.
pub(crate) fn dial_step(
    item: Result<Incoming, ClientError>,
    me: &CallId,
    peer: &CallId,
    call_id: &CallToken,
    now_unix: u64,
) -> DialStep {
    let incoming = match item {
        Ok(incoming) => incoming,
        Err(ClientError::Server {
            code: ErrorCode::NotOnline,
            ..
        }) => return DialStep::End(CallError::PeerNotOnline(*peer)),
        Err(e @ ClientError::Server { .. }) => {
            return DialStep::End(CallError::Signaling(e.to_string()))
        }
        Err(ClientError::Envelope(e)) => {
            return DialStep::Ignore(format!("a message that failed to open [{}]: {e}", e.code()))
        }
        Err(e) => {
            return DialStep::Ignore(format!(
                "an unreadable message [{}]: {e}",
                client_error_code(&e)
            ))
        }
    };
    if incoming.from != *peer {
        return DialStep::Ignore(format!(
            "{} from {}, not from the peer",
            kind_name(incoming.kind),
            incoming.from
        ));
    }
    match incoming.kind {
        EnvelopeKind::Answer => {
            let answer = match SignedSdp::parse(&incoming.plaintext) {
                Ok(a) => a,
                Err(e) => {
                    return DialStep::Ignore(format!(
                        "an unreadable answer from the peer [{}]: {e}",
                        e.code()
                    ))
                }
            };
            if answer.call_id != *call_id {
                return DialStep::Ignore(format!(
                    "an answer from the peer for another call ({})",
                    answer.call_id
                ));
            }
            match answer.verify(peer, me, Some(call_id), Role::Answer, now_unix) {
                Ok(_) => DialStep::Answer(answer),
                Err(e) => {
                    tracing::warn!(code = e.code(), error = %e, "refused the peer's answer");
                    DialStep::End(CallError::Verification(format!(
                        "the answer failed verification [{}]: {e}",
                        e.code()
                    )))
                }
            }
        }
        EnvelopeKind::Reject | EnvelopeKind::Hangup => match HangupBody::parse(&incoming.plaintext)
        {
            Ok(h) if h.call_id == *call_id => {
                if h.reason == BUSY_REASON {
                    DialStep::End(CallError::Busy(*peer))
                } else {
                    DialStep::End(CallError::Rejected(h.reason))
                }
            }
            Ok(h) => DialStep::Ignore(format!(
                "a {} from the peer for another call ({})",
                kind_name(incoming.kind),
                h.call_id
            )),
            Err(e) => DialStep::Ignore(format!(
                "an unreadable {} from the peer [{}]: {e}",
                kind_name(incoming.kind),
                e.code()
            )),
        },
        other => DialStep::Ignore(format!("{} from the peer", kind_name(other))),
    }
}

fn kind_name(kind: EnvelopeKind) -> &'static str {
    kind.as_str()
}

#[cfg(test)]
mod tests {
    use super::*;
    use signaling::envelope::EnvelopeError;
    use signaling::identity::Identity;

    const NOW: u64 = 1_800_000_000;
    const FP_SDP: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=fingerprint:sha-256 AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99\r\n";

    struct World {
        me: Identity,
        peer: Identity,
        stranger: Identity,
        call: CallToken,
    }

    fn world() -> World {
        World {
            me: Identity::generate(),
            peer: Identity::generate(),
            stranger: Identity::generate(),
            call: CallToken::random(),
        }
    }

    fn incoming(from: &Identity, kind: EnvelopeKind, plaintext: Vec<u8>) -> Incoming {
        Incoming {
            from: from.call_id(),
            kind,
            ts: NOW,
            plaintext,
        }
    }

    fn answer(from: &Identity, to: &Identity, call: CallToken) -> Vec<u8> {
        SignedSdp::sign(from, &to.call_id(), call, Role::Answer, FP_SDP, NOW + 60)
            .unwrap()
            .to_json()
    }

    fn hangup(call: CallToken, reason: &str) -> Vec<u8> {
        HangupBody {
            call_id: call,
            reason: reason.into(),
        }
        .to_json()
    }

    fn step(w: &World, item: Result<Incoming, ClientError>) -> DialStep {
        dial_step(item, &w.me.call_id(), &w.peer.call_id(), &w.call, NOW)
    }

    #[test]
    fn the_peers_answer_for_this_call_is_accepted() {
        let w = world();
        let item = incoming(
            &w.peer,
            EnvelopeKind::Answer,
            answer(&w.peer, &w.me, w.call),
        );
        assert!(matches!(step(&w, Ok(item)), DialStep::Answer(_)));
    }

    #[test]
    fn a_third_party_cannot_end_the_attempt() {
        let w = world();
        let cases = [
            // A foreign answer, properly signed by the stranger, even naming our call.
            incoming(
                &w.stranger,
                EnvelopeKind::Answer,
                answer(&w.stranger, &w.me, w.call),
            ),
            // Rejects and hang-ups, with and without our call ID.
            incoming(
                &w.stranger,
                EnvelopeKind::Reject,
                hangup(w.call, "declined"),
            ),
            incoming(&w.stranger, EnvelopeKind::Hangup, hangup(w.call, "hang-up")),
            incoming(&w.stranger, EnvelopeKind::Reject, b"{}".to_vec()),
            incoming(&w.stranger, EnvelopeKind::Hangup, b"garbage".to_vec()),
        ];
        for item in cases {
            let kind = item.kind;
            assert!(
                matches!(step(&w, Ok(item)), DialStep::Ignore(_)),
                "a stranger's {kind:?} must be ignored"
            );
        }
        // An envelope that fails to open (forged, corrupted) is not attributable: ignored.
        let failed = Err(ClientError::Envelope(EnvelopeError::BadSignature));
        match step(&w, failed) {
            // Logged with its protocol error code.
            DialStep::Ignore(why) => {
                assert!(why.contains(EnvelopeError::BadSignature.code()), "{why}")
            }
            other => panic!("expected it to be ignored, got {other:?}"),
        }
    }

    #[test]
    fn the_peers_messages_for_other_calls_are_ignored() {
        let w = world();
        let other = CallToken::random();
        let cases = [
            incoming(&w.peer, EnvelopeKind::Answer, answer(&w.peer, &w.me, other)),
            incoming(&w.peer, EnvelopeKind::Answer, b"not json".to_vec()),
            incoming(&w.peer, EnvelopeKind::Reject, hangup(other, "declined")),
            incoming(&w.peer, EnvelopeKind::Hangup, hangup(other, "hang-up")),
            // A hang-up without any call ID.
            incoming(
                &w.peer,
                EnvelopeKind::Hangup,
                br#"{"reason":"hang-up"}"#.to_vec(),
            ),
            incoming(&w.peer, EnvelopeKind::Offer, b"{}".to_vec()),
        ];
        for item in cases {
            let kind = item.kind;
            assert!(
                matches!(step(&w, Ok(item)), DialStep::Ignore(_)),
                "the peer's {kind:?} for no/another call must be ignored"
            );
        }
    }

    #[test]
    fn the_peers_bad_answer_for_this_call_ends_it() {
        let w = world();
        // Signed by the stranger but delivered as the peer's (a relay holding no peer key).
        let item = incoming(
            &w.peer,
            EnvelopeKind::Answer,
            answer(&w.stranger, &w.me, w.call),
        );
        match step(&w, Ok(item)) {
            DialStep::End(CallError::Verification(msg)) => {
                assert!(msg.contains("sdp_wrong_signer"), "{msg}")
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn the_peers_reject_for_this_call_ends_it_and_busy_is_recognised() {
        let w = world();
        let item = incoming(&w.peer, EnvelopeKind::Reject, hangup(w.call, "declined"));
        assert!(matches!(
            step(&w, Ok(item)),
            DialStep::End(CallError::Rejected(r)) if r == "declined"
        ));
        let item = incoming(&w.peer, EnvelopeKind::Reject, hangup(w.call, BUSY_REASON));
        assert!(matches!(
            step(&w, Ok(item)),
            DialStep::End(CallError::Busy(id)) if id == w.peer.call_id()
        ));
    }
}
