//! Call set-up: the signed offer/answer exchange over the signaling server, then ICE + DTLS with
//! the certificate checked against the fingerprint the peer signed.

use std::io::{BufRead, IsTerminal, Write};
use std::sync::Arc;
use std::time::Instant;

use media::session::{CandidateScope, IceServer, Session, SessionConfig};
use signaling::client::{Client, ClientError, ClientOptions};
use signaling::envelope::EnvelopeKind;
use signaling::identity::{safety_number, CallId, Identity};
use signaling::offer::{CallToken, HangupBody, Role, SignedSdp};
use signaling::protocol::ErrorCode;

use super::media_loop::{run_media, MediaEnds};
use super::{now_unix, CallError, CallOptions, CallReport, IncomingDecision};

/// How long a signed offer or answer stays valid.
const SDP_TTL_SECS: u64 = 60;

/// Calls `peer` and runs the call until it ends.
pub async fn dial(
    identity: Arc<Identity>,
    peer: CallId,
    mut opts: CallOptions,
) -> Result<CallReport, CallError> {
    let started = Instant::now();
    let ends = MediaEnds::open(&opts)?;
    let mut client = connect(&identity, &opts).await?;
    let result = async {
        let session_cfg = session_config(&client, &opts).await;
        let (session, events) = Session::new(&session_cfg).await?;
        let session = Arc::new(session);
        let outcome = async {
            let offer_sdp = session.create_offer().await?;
            let call_id = CallToken::random();
            send_signed_sdp(&client, &identity, &peer, call_id, Role::Offer, &offer_sdp).await?;
            tracing::info!(%peer, %call_id, "offer sent");

            let answer = tokio::time::timeout(
                opts.connect_timeout,
                wait_answer(&mut client, &identity, &peer, &call_id),
            )
            .await
            .map_err(|_| CallError::NoAnswer(opts.connect_timeout.as_secs_f64()))??;
            session.accept_answer(&answer.sdp).await?;
            session
                .wait_connected(opts.connect_timeout, &answer.fingerprint)
                .await?;
            Ok::<_, CallError>(call_id)
        }
        .await;
        let call_id = closing_on_error(&session, outcome).await?;
        announce(&identity.call_id(), &peer, &opts);
        run_media(
            Arc::clone(&session),
            events,
            &mut client,
            &identity,
            peer,
            call_id,
            &mut opts,
            ends,
            started,
        )
        .await
    }
    .await;
    client.close().await;
    result
}

/// Waits for one verified call, answers it, and runs it until it ends.
pub async fn listen(
    identity: Arc<Identity>,
    decision: IncomingDecision,
    mut opts: CallOptions,
) -> Result<CallReport, CallError> {
    let ends = MediaEnds::open(&opts)?;
    let mut client = connect(&identity, &opts).await?;
    let result = async {
        let (offer, started) = wait_offer(&mut client, &identity, decision).await?;
        let peer = offer.from;
        let session_cfg = session_config(&client, &opts).await;
        let (session, events) = Session::new(&session_cfg).await?;
        let session = Arc::new(session);
        let connected = async {
            let answer_sdp = session.accept_offer(&offer.sdp).await?;
            send_signed_sdp(
                &client,
                &identity,
                &peer,
                offer.call_id,
                Role::Answer,
                &answer_sdp,
            )
            .await?;
            session
                .wait_connected(opts.connect_timeout, &offer.fingerprint)
                .await?;
            Ok::<_, CallError>(())
        }
        .await;
        closing_on_error(&session, connected).await?;
        announce(&identity.call_id(), &peer, &opts);
        run_media(
            Arc::clone(&session),
            events,
            &mut client,
            &identity,
            peer,
            offer.call_id,
            &mut opts,
            ends,
            started,
        )
        .await
    }
    .await;
    client.close().await;
    result
}

/// Passes `outcome` on; on an error, first closes the session so no socket or task outlives a
/// call that never connected.
async fn closing_on_error<T>(
    session: &Session,
    outcome: Result<T, CallError>,
) -> Result<T, CallError> {
    if outcome.is_err() {
        session.close().await;
    }
    outcome
}

/// Signs our SDP for `peer` (binding its DTLS fingerprint to both IDs, the call and the role)
/// and sends it as an offer or answer envelope.
async fn send_signed_sdp(
    client: &Client,
    identity: &Identity,
    peer: &CallId,
    call_id: CallToken,
    role: Role,
    sdp: &str,
) -> Result<(), CallError> {
    let signed = SignedSdp::sign(
        identity,
        peer,
        call_id,
        role,
        sdp,
        now_unix() + SDP_TTL_SECS,
    )
    .map_err(|e| CallError::Verification(e.to_string()))?;
    let kind = match role {
        Role::Offer => EnvelopeKind::Offer,
        Role::Answer => EnvelopeKind::Answer,
    };
    client
        .send(peer, kind, &signed.to_json())
        .await
        .map_err(|e| CallError::Signaling(e.to_string()))
}

async fn connect(identity: &Arc<Identity>, opts: &CallOptions) -> Result<Client, CallError> {
    let client_opts = ClientOptions {
        extra_root_ca: opts.ca_cert.clone(),
        ..ClientOptions::default()
    };
    tokio::time::timeout(
        opts.connect_timeout,
        Client::connect(&opts.server, Arc::clone(identity), client_opts),
    )
    .await
    .map_err(|_| {
        CallError::Signaling(format!(
            "no connection to {} within {:?}",
            opts.server, opts.connect_timeout
        ))
    })?
    .map_err(|e| CallError::Signaling(format!("{} ({})", e, opts.server)))
}

/// ICE servers and candidate policy: TURN credentials from the signaling server unless overridden.
async fn session_config(client: &Client, opts: &CallOptions) -> SessionConfig {
    let mut ice_servers = opts.extra_ice_servers.clone();
    match client.turn_credentials().await {
        Ok(creds) => ice_servers.push(IceServer {
            urls: opts.turn_override.clone().unwrap_or(creds.urls),
            username: creds.username,
            credential: creds.password,
        }),
        Err(e) => {
            tracing::warn!(error = %e, "no TURN credentials from the server; relay candidates unavailable")
        }
    }
    let candidate_scope = opts.candidate_scope.unwrap_or_else(|| {
        if server_is_loopback(&opts.server) {
            CandidateScope::LoopbackOnly
        } else {
            CandidateScope::All
        }
    });
    SessionConfig {
        ice_servers,
        relay_only: opts.relay_only,
        candidate_scope,
        ..SessionConfig::default()
    }
}

/// Whether the signaling URL names a loopback host (then the call is local and stays on loopback).
fn server_is_loopback(url: &str) -> bool {
    let rest = url.split("://").nth(1).unwrap_or(url);
    let host_port = rest.split('/').next().unwrap_or("");
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host_port
            .rsplit_once(':')
            .map(|(h, _)| h)
            .unwrap_or(host_port)
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

async fn wait_answer(
    client: &mut Client,
    identity: &Identity,
    peer: &CallId,
    call_id: &CallToken,
) -> Result<SignedSdp, CallError> {
    loop {
        let incoming = match client.recv().await {
            None => {
                return Err(CallError::Signaling(
                    "the signaling server closed the connection".into(),
                ))
            }
            Some(Ok(i)) => i,
            Some(Err(ClientError::Server {
                code: ErrorCode::NotOnline,
                ..
            })) => return Err(CallError::PeerNotOnline(*peer)),
            Some(Err(e @ ClientError::Server { .. })) => {
                return Err(CallError::Signaling(e.to_string()))
            }
            Some(Err(e)) => {
                // A forged or corrupted envelope while we wait for the answer: nobody honest sends
                // one, so refuse the call rather than wait for a timeout.
                return Err(CallError::Verification(format!(
                    "received a message that failed verification ({e})"
                )));
            }
        };
        match incoming.kind {
            EnvelopeKind::Answer => {
                if incoming.from != *peer {
                    return Err(CallError::WrongPeer {
                        expected: *peer,
                        got: incoming.from,
                    });
                }
                let answer = SignedSdp::parse(&incoming.plaintext)
                    .map_err(|e| CallError::Verification(format!("malformed answer: {e}")))?;
                answer
                    .verify(
                        peer,
                        &identity.call_id(),
                        Some(call_id),
                        Role::Answer,
                        now_unix(),
                    )
                    .map_err(|e| {
                        CallError::Verification(format!("answer failed verification: {e}"))
                    })?;
                return Ok(answer);
            }
            EnvelopeKind::Reject | EnvelopeKind::Hangup if incoming.from == *peer => {
                let reason = HangupBody::parse(&incoming.plaintext)
                    .map(|h| h.reason)
                    .unwrap_or_else(|_| "no reason given".into());
                return Err(CallError::Rejected(reason));
            }
            other => {
                tracing::debug!(from = %incoming.from, kind = ?other, "ignored while waiting for the answer")
            }
        }
    }
}

async fn wait_offer(
    client: &mut Client,
    identity: &Identity,
    decision: IncomingDecision,
) -> Result<(SignedSdp, Instant), CallError> {
    let me = identity.call_id();
    loop {
        let incoming = match client.recv().await {
            None => {
                return Err(CallError::Signaling(
                    "the signaling server closed the connection".into(),
                ))
            }
            Some(Ok(i)) => i,
            Some(Err(e)) => {
                tracing::warn!(error = %e, "rejected a message that failed verification");
                continue;
            }
        };
        if incoming.kind != EnvelopeKind::Offer {
            tracing::debug!(from = %incoming.from, kind = ?incoming.kind, "ignored while waiting for a call");
            continue;
        }
        let started = Instant::now();
        let offer = match SignedSdp::parse(&incoming.plaintext).and_then(|o| {
            o.verify(&incoming.from, &me, None, Role::Offer, now_unix())?;
            Ok(o)
        }) {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!(from = %incoming.from, error = %e, "refused an offer that failed verification");
                eprintln!(
                    "refused a call from {}: the offer failed verification ({e})",
                    incoming.from
                );
                continue;
            }
        };
        let accept = match decision {
            IncomingDecision::AutoAccept => true,
            IncomingDecision::Prompt => prompt_accept(&me, &offer.from).await,
        };
        if accept {
            return Ok((offer, started));
        }
        let body = serde_json::to_vec(&HangupBody {
            call_id: offer.call_id,
            reason: "declined".into(),
        })
        .unwrap_or_default();
        let _ = client.send(&offer.from, EnvelopeKind::Reject, &body).await;
    }
}

/// Asks on the terminal whether to accept; declines when there is no terminal to ask.
async fn prompt_accept(me: &CallId, from: &CallId) -> bool {
    if !std::io::stdin().is_terminal() {
        eprintln!(
            "incoming call from {from} declined: no terminal to ask (use --auto-accept in scripts)"
        );
        return false;
    }
    let (me, from) = (*me, *from);
    tokio::task::spawn_blocking(move || {
        eprintln!("incoming call from {from}");
        eprintln!("safety number: {}", safety_number(&me, &from));
        eprint!("accept? [y/N] ");
        let _ = std::io::stderr().flush();
        let mut line = String::new();
        let _ = std::io::stdin().lock().read_line(&mut line);
        matches!(line.trim(), "y" | "Y" | "yes")
    })
    .await
    .unwrap_or(false)
}

fn announce(me: &CallId, peer: &CallId, opts: &CallOptions) {
    if opts.live_stats || opts.print_chat {
        eprintln!("connected to {peer}");
        eprintln!(
            "safety number: {} (compare it by voice)",
            safety_number(me, peer)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::server_is_loopback;

    #[test]
    fn recognises_loopback_servers() {
        assert!(server_is_loopback("ws://127.0.0.1:8787/ws"));
        assert!(server_is_loopback("wss://localhost:443/ws"));
        assert!(server_is_loopback("ws://[::1]:8787/ws"));
        assert!(!server_is_loopback("wss://call.example.org/ws"));
        assert!(!server_is_loopback("ws://10.0.0.1:8787/ws"));
    }
}
