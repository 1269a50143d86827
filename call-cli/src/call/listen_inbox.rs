//! The listener's side of call set-up: waiting for a verified offer, asking the person (the
//! answer comes from the one stdin reader, see [`IncomingDecision::Prompt`]), and answering
//! `busy` to anyone who calls while we are already in a call or asking about one.

use std::time::{Duration, Instant};

use signaling::client::{Client, Incoming};
use signaling::envelope::EnvelopeKind;
use signaling::identity::{safety_number, CallId, Identity};
use signaling::offer::{CallToken, HangupBody, Role, SignedSdp};

use super::dial_inbox::BUSY_REASON;
use super::error::client_error_code;
use super::peer_name::{caller, known_name};
use super::{now_unix, CallOptions, IncomingDecision};
use crate::terminal_text::escape;

/// Why the wait for a call stopped without one.
#[derive(Debug)]
pub(crate) enum WaitOffer {
    /// A verified offer the person (or `--auto-accept`) accepted, and when it arrived.
    Accepted(Box<SignedSdp>, Instant),
    /// The signaling connection is gone: reconnect and wait again.
    ConnectionLost,
}

/// Waits for one verified offer and decides about it; declined offers are answered with a
/// `reject` and the wait goes on.
pub(crate) async fn wait_offer(
    client: &mut Client,
    identity: &Identity,
    decision: IncomingDecision,
    opts: &mut CallOptions,
) -> WaitOffer {
    loop {
        let incoming = match client.recv().await {
            None => return WaitOffer::ConnectionLost,
            Some(Ok(i)) => i,
            Some(Err(e)) => {
                tracing::warn!(code = client_error_code(&e), error = %e, "ignored a signaling message that failed verification");
                continue;
            }
        };
        if incoming.kind != EnvelopeKind::Offer {
            tracing::debug!(from = %incoming.from, kind = ?incoming.kind, "ignored while waiting for a call");
            continue;
        }
        let started = Instant::now();
        let Some(offer) = verified_offer(identity, &incoming) else {
            continue;
        };
        let accepted = match decision {
            IncomingDecision::AutoAccept => Asked::Accept,
            IncomingDecision::Decline => {
                eprintln!(
                    "incoming call from {} declined: no terminal to ask (use --auto-accept in scripts)",
                    caller(opts.known_peers.as_ref(), &offer.from)
                );
                Asked::Decline
            }
            IncomingDecision::Prompt => ask(client, identity, &offer, opts).await,
        };
        match accepted {
            Asked::Accept => return WaitOffer::Accepted(Box::new(offer), started),
            Asked::Decline => {
                send_reject(
                    client,
                    &offer.from,
                    offer.call_id,
                    signaling::offer::reason::DECLINED,
                )
                .await
            }
            Asked::CallerGone => {}
            Asked::ConnectionLost => return WaitOffer::ConnectionLost,
        }
    }
}

/// The offer in `incoming`, if it verifies (signed by the envelope's sender, for us, an offer,
/// not expired); otherwise says so, with the §6 code, and returns `None`.
pub(crate) fn verified_offer(identity: &Identity, incoming: &Incoming) -> Option<SignedSdp> {
    let checked = SignedSdp::parse(&incoming.plaintext).and_then(|o| {
        o.verify(
            &incoming.from,
            &identity.call_id(),
            None,
            Role::Offer,
            now_unix(),
        )?;
        Ok(o)
    });
    match checked {
        Ok(o) => Some(o),
        Err(e) => {
            tracing::warn!(from = %incoming.from, code = e.code(), error = %e, "refused an offer that failed verification");
            eprintln!(
                "refused a call from {}: the offer failed verification [{}]: {}",
                incoming.from,
                e.code(),
                escape(&e.to_string())
            );
            None
        }
    }
}

/// Answers an offer that arrives while we are busy: a verified one gets a `busy` reject at
/// once (so the caller need not wait for its timeout) and is shown as a missed call.
pub(crate) async fn answer_busy(
    client: &Client,
    identity: &Identity,
    incoming: &Incoming,
    opts: &CallOptions,
) {
    let Some(offer) = verified_offer(identity, incoming) else {
        return;
    };
    send_reject(client, &offer.from, offer.call_id, BUSY_REASON).await;
    eprintln!(
        "missed call from {} (busy)",
        caller(opts.known_peers.as_ref(), &offer.from)
    );
}

async fn send_reject(client: &Client, to: &CallId, call_id: CallToken, reason: &str) {
    let body = HangupBody {
        call_id,
        reason: reason.into(),
    }
    .to_json();
    if let Err(e) = client.send(to, EnvelopeKind::Reject, &body).await {
        tracing::warn!(error = %e, "could not send the reject");
    }
}

enum Asked {
    Accept,
    Decline,
    CallerGone,
    ConnectionLost,
}

/// Asks whether to accept `offer`, reading the answer from the chat input; meanwhile answers
/// other callers `busy` and notices the caller hanging up or the offer expiring.
async fn ask(
    client: &mut Client,
    identity: &Identity,
    offer: &SignedSdp,
    opts: &mut CallOptions,
) -> Asked {
    let from = offer.from;
    let known = opts.known_peers.as_ref();
    eprintln!("incoming call from {}", caller(known, &from));
    if known_name(known, &from).is_none() {
        eprintln!(
            "WARNING: this ID is not in your known_peers. If you expected someone you know, their key CHANGED or someone else is calling: compare the safety number by voice before you trust them."
        );
    }
    eprintln!(
        "safety number: {}",
        safety_number(&identity.call_id(), &from)
    );
    eprintln!("accept? [y/N]");
    let expires_in = Duration::from_secs(offer.expires.saturating_sub(now_unix()));
    let expiry = tokio::time::sleep(expires_in);
    tokio::pin!(expiry);
    loop {
        tokio::select! {
            line = opts.chat_input.next_line() => {
                let yes = line.as_deref().map(str::trim).is_some_and(|l| matches!(l, "y" | "Y" | "yes" | "Yes" | "YES"));
                if yes {
                    return Asked::Accept;
                }
                eprintln!("declined the call from {}", caller(opts.known_peers.as_ref(), &from));
                return Asked::Decline;
            }
            incoming = client.recv() => match incoming {
                None => return Asked::ConnectionLost,
                Some(Ok(m)) if m.kind == EnvelopeKind::Offer => {
                    answer_busy(client, identity, &m, opts).await;
                }
                Some(Ok(m)) if m.from == from && matches!(m.kind, EnvelopeKind::Hangup | EnvelopeKind::Reject) => {
                    if HangupBody::parse(&m.plaintext).is_ok_and(|h| h.call_id == offer.call_id) {
                        eprintln!("missed call from {}: the caller hung up", caller(opts.known_peers.as_ref(), &from));
                        return Asked::CallerGone;
                    }
                }
                Some(Ok(m)) => tracing::debug!(from = %m.from, kind = ?m.kind, "ignored while asking"),
                Some(Err(e)) => tracing::warn!(code = client_error_code(&e), error = %e, "ignored a signaling message that failed verification"),
            },
            _ = &mut expiry => {
                eprintln!("missed call from {}: not answered before the offer expired", caller(opts.known_peers.as_ref(), &from));
                return Asked::CallerGone;
            }
        }
    }
}
