//! Call set-up: the signed offer/answer exchange over the signaling server, then ICE + DTLS with
//! the certificate checked against the fingerprint the peer signed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use media::session::{
    CandidateScope, IceServer, Session, SessionConfig, SessionEvent, VideoConfig,
};
use signaling::client::{Client, ClientOptions, ClientSender};
use signaling::envelope::EnvelopeKind;
use signaling::identity::{CallId, Identity};
use signaling::offer::{CallToken, HangupBody, Role, SignedSdp};
use tokio::sync::mpsc;

use super::backoff::{self, Backoff};
use super::dial_inbox::{dial_step, DialStep};
use super::listen_inbox::{wait_offer, WaitOffer};
use super::{now_unix, CallError, CallOptions, IncomingDecision, VideoFlow};
use crate::terminal_text::escape;

/// A verified, connected peer, handed to the engine ([`crate::engine::Call`]).
pub(crate) struct Connected {
    /// The signaling client, still logged in (busy answers, hang-ups).
    pub(crate) client: Client,
    pub(crate) session: Arc<Session>,
    pub(crate) events: mpsc::Receiver<SessionEvent>,
    /// The peer's verified identity.
    pub(crate) peer: CallId,
    /// The call token both signed.
    pub(crate) token: CallToken,
    /// When the call started (dialing, or the offer's arrival), for `first_audio_ms`.
    pub(crate) started: Instant,
    /// Whether the call carries audio.
    pub(crate) audio: bool,
    /// Which way video flows, as both SDPs agreed.
    pub(crate) video: VideoFlow,
}

/// Calls `peer`: signed offer, verified answer, ICE + DTLS with the signed fingerprint.
pub(crate) async fn dial_connected(
    identity: &Arc<Identity>,
    peer: CallId,
    opts: &mut CallOptions,
) -> Result<Connected, CallError> {
    let started = Instant::now();
    let mut client = connect(identity, opts).await?;
    let result = async {
        let audio = opts.audio_in.is_some();
        let asked = VideoFlow::asked(opts.video.as_ref());
        let session_cfg =
            session_config(&client.sender(), opts, audio, asked.session_config()).await;
        let (session, events) = Session::new(&session_cfg).await?;
        let session = Arc::new(session);
        let call_id = CallToken::random();
        let outcome = async {
            let offer_sdp = session.create_offer().await?;
            send_signed_sdp(
                &client.sender(),
                identity,
                &peer,
                call_id,
                Role::Offer,
                &offer_sdp,
            )
            .await?;
            tracing::info!(%peer, %call_id, "offer sent");

            let answer =
                wait_answer(&mut client, identity, &peer, &call_id, opts.connect_timeout).await?;
            session.accept_answer(&answer.sdp).await?;
            session
                .wait_connected(opts.connect_timeout, &answer.fingerprint)
                .await?;
            Ok::<_, CallError>(asked.agreed_with(&answer.sdp))
        }
        .await;
        if matches!(
            outcome,
            Err(CallError::NoAnswer(_) | CallError::NoValidAnswer { .. })
        ) {
            // Tell the listener we gave up, so its prompt ends with a missed call.
            let body = HangupBody {
                call_id,
                reason: signaling::offer::reason::TIMEOUT.into(),
            }
            .to_json();
            let _ = client.send(&peer, EnvelopeKind::Hangup, &body).await;
        }
        let video = closing_on_error(&session, outcome).await?;
        Ok((session, events, call_id, audio, video))
    }
    .await;
    match result {
        Ok((session, events, token, audio, video)) => Ok(Connected {
            client,
            session,
            events,
            peer,
            token,
            started,
            audio,
            video,
        }),
        Err(e) => {
            client.close().await;
            Err(e)
        }
    }
}

/// Waits for one verified call and answers it. While waiting, a lost signaling connection is
/// re-established with backoff (the listener is a service). A chat-only offer clears
/// `opts.audio_in`: no audio is sent and no audio statistics are shown.
pub(crate) async fn listen_connected(
    identity: &Arc<Identity>,
    decision: IncomingDecision,
    opts: &mut CallOptions,
) -> Result<Connected, CallError> {
    let mut client = connect(identity, opts).await?;
    let (offer, started) = loop {
        match wait_offer(&mut client, identity, decision, opts).await {
            WaitOffer::Accepted(offer, started) => break (*offer, started),
            WaitOffer::ConnectionLost => {
                client.close().await;
                client = reconnect(identity, opts).await;
            }
        }
    };
    let result = async {
        let peer = offer.from;
        let audio = offers_audio(&offer.sdp);
        if !audio {
            opts.audio_in = None;
        }
        let video = VideoFlow::answering(opts.video.as_ref(), &offer.sdp);
        if opts.video.is_some() && !video.any() {
            tracing::info!("the caller offered no video; the call is audio only");
        }
        let session_cfg =
            session_config(&client.sender(), opts, audio, video.session_config()).await;
        let (session, events) = Session::new(&session_cfg).await?;
        let session = Arc::new(session);
        let connected = async {
            let answer_sdp = session.accept_offer(&offer.sdp).await?;
            send_signed_sdp(
                &client.sender(),
                identity,
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
        Ok((session, events, audio, video))
    }
    .await;
    match result {
        Ok((session, events, audio, video)) => Ok(Connected {
            client,
            session,
            events,
            peer: offer.from,
            token: offer.call_id,
            started,
            audio,
            video,
        }),
        Err(e) => {
            client.close().await;
            Err(e)
        }
    }
}

/// Whether an SDP has an audio m-line (a chat-only caller's has none).
fn offers_audio(sdp: &str) -> bool {
    sdp.lines().any(|l| l.starts_with("m=audio"))
}

/// Connects again after the server went away: backoff between attempts, one line when the
/// connection is lost and one when it is back. Logs in with the same identity, so the listener
/// keeps its place (callers reach it again as soon as it is back).
async fn reconnect(identity: &Arc<Identity>, opts: &CallOptions) -> Client {
    eprintln!(
        "lost the signaling server {}; reconnecting (every {:?} to {:?}, with jitter)",
        escape(&opts.server),
        backoff::FIRST_DELAY,
        backoff::MAX_DELAY
    );
    let mut backoff = Backoff::default();
    loop {
        let delay = backoff.next_delay(rand::random::<f64>());
        tokio::time::sleep(delay).await;
        match connect(identity, opts).await {
            Ok(client) => {
                eprintln!("reconnected to {}", escape(&opts.server));
                return client;
            }
            Err(e) => tracing::info!(error = %e, ?delay, "reconnecting failed; trying again"),
        }
    }
}

/// Passes `outcome` on; on an error, first closes the session so no socket or task outlives a
/// call that never connected.
pub(crate) async fn closing_on_error<T>(
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
pub(crate) async fn send_signed_sdp(
    client: &ClientSender,
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
        now_unix() + signaling::offer::SDP_TTL_SECS,
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

pub(crate) async fn connect(
    identity: &Arc<Identity>,
    opts: &CallOptions,
) -> Result<Client, CallError> {
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
pub(crate) async fn session_config(
    client: &ClientSender,
    opts: &CallOptions,
    audio: bool,
    video: Option<VideoConfig>,
) -> SessionConfig {
    // `--ice-server`s first: the user's own choice, and there even when the server has none.
    let mut ice_servers = opts.extra_ice_servers.clone();
    match client.turn_credentials().await {
        Ok(creds) => {
            let urls = opts.turn_override.clone().unwrap_or(creds.urls);
            if !urls.is_empty() {
                ice_servers.push(IceServer {
                    urls,
                    username: creds.username,
                    credential: creds.password,
                });
            }
        }
        Err(e) if opts.extra_ice_servers.is_empty() => {
            tracing::warn!(error = %e, "no TURN credentials from the server; relay candidates unavailable")
        }
        Err(e) => {
            tracing::info!(error = %e, "no TURN credentials from the server; using --ice-server only")
        }
    }
    // URLs only: the credentials stay out of the logs.
    let urls: Vec<&str> = ice_servers
        .iter()
        .flat_map(|s| s.urls.iter().map(String::as_str))
        .collect();
    tracing::info!(?urls, "ICE servers");
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
        audio,
        video,
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

/// Waits up to `timeout` for the peer's answer to `call_id`; messages that are not one are
/// ignored ([`dial_step`]) and counted for the timeout message.
async fn wait_answer(
    client: &mut Client,
    identity: &Identity,
    peer: &CallId,
    call_id: &CallToken,
    timeout: Duration,
) -> Result<SignedSdp, CallError> {
    let deadline = tokio::time::Instant::now() + timeout;
    let me = identity.call_id();
    let mut ignored = 0usize;
    let mut last = String::new();
    loop {
        let item = match tokio::time::timeout_at(deadline, client.recv()).await {
            Err(_) if ignored == 0 => return Err(CallError::NoAnswer(timeout.as_secs_f64())),
            Err(_) => {
                return Err(CallError::NoValidAnswer {
                    secs: timeout.as_secs_f64(),
                    ignored,
                    last,
                })
            }
            Ok(None) => {
                return Err(CallError::Signaling(
                    "the signaling server closed the connection".into(),
                ))
            }
            Ok(Some(item)) => item,
        };
        match dial_step(item, &me, peer, call_id, now_unix()) {
            DialStep::Answer(answer) => return Ok(answer),
            DialStep::End(e) => return Err(e),
            DialStep::Ignore(why) => {
                tracing::warn!(why = %why, "ignored while waiting for the answer");
                ignored += 1;
                last = why;
            }
        }
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
