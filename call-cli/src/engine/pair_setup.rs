//! Setting up one pair of a conference: the same signed offer/answer and DTLS fingerprint check
//! as a 1:1 call (`crate::call::setup`), run as a task per pair so several pairs come up at
//! once while the call goes on. The conference loop owns the signaling client: it hands this
//! task the verified answer (offering side) or the checked offer (answering side), and takes
//! the connected session back ([`PairOutcome`]).

use std::sync::Arc;
use std::time::Duration;

use media::session::{Session, SessionConfig, SessionEvent};
use signaling::client::ClientSender;
use signaling::identity::{safety_number, CallId, Identity};
use signaling::offer::{CallToken, Role, SignedSdp};
use tokio::sync::{mpsc, oneshot};

use crate::call::setup::{closing_on_error, send_signed_sdp};
use crate::call::{CallError, VideoFlow};

/// A pair that came up (or did not).
pub(crate) struct PairOutcome {
    /// The other member.
    pub(crate) peer: CallId,
    /// The pair's token.
    pub(crate) token: CallToken,
    /// Which set-up of this pair (a pair set up again keeps its token: this tells a stale
    /// outcome from the current one).
    pub(crate) attempt: u64,
    /// The connected, verified session, or why not.
    pub(crate) result: Result<PairUp, CallError>,
}

/// A connected, verified session with one peer (of a room's call, or the one peer of a 1:1
/// call), as the engine takes it.
pub(crate) struct PairUp {
    pub(crate) session: Arc<Session>,
    pub(crate) events: mpsc::Receiver<SessionEvent>,
    /// Whether audio flows.
    pub(crate) audio: bool,
    /// Which way video flows.
    pub(crate) video: VideoFlow,
    /// The safety number with the peer (computed here: its hashing would hold up the
    /// call's loop, and every other member's audio with it).
    pub(crate) safety_number: String,
}

async fn safety_number_with(me: CallId, peer: CallId) -> String {
    tokio::task::spawn_blocking(move || safety_number(&me, &peer).to_string())
        .await
        .unwrap_or_default()
}

/// What every pair task needs.
#[derive(Clone)]
pub(crate) struct PairContext {
    pub(crate) identity: Arc<Identity>,
    pub(crate) sender: ClientSender,
    pub(crate) timeout: Duration,
    pub(crate) outcomes: mpsc::UnboundedSender<PairOutcome>,
}

/// Offers to `peer` with the pair's `token`; the conference loop sends the verified answer
/// through `answer`.
pub(crate) async fn offer(
    ctx: PairContext,
    cfg: SessionConfig,
    asked: VideoFlow,
    peer: CallId,
    token: CallToken,
    attempt: u64,
    answer: oneshot::Receiver<SignedSdp>,
) {
    let audio = cfg.audio;
    let result = async {
        let (session, events) = Session::new(&cfg).await?;
        let session = Arc::new(session);
        let outcome = async {
            let sdp = session.create_offer().await?;
            send_signed_sdp(&ctx.sender, &ctx.identity, &peer, token, Role::Offer, &sdp).await?;
            let answer = tokio::time::timeout(ctx.timeout, answer)
                .await
                .map_err(|_| CallError::NoAnswer(ctx.timeout.as_secs_f64()))?
                .map_err(|_| CallError::Io("the pair was dropped before it connected".into()))?;
            session.accept_answer(&answer.sdp).await?;
            session
                .wait_connected(ctx.timeout, &answer.fingerprint)
                .await?;
            Ok::<_, CallError>(asked.agreed_with(&answer.sdp))
        }
        .await;
        let video = closing_on_error(&session, outcome).await?;
        Ok(pair_up(&ctx, peer, session, events, audio, video).await)
    }
    .await;
    report(&ctx, peer, token, attempt, result).await;
}

/// A connected, verified pair, with its safety number.
async fn pair_up(
    ctx: &PairContext,
    peer: CallId,
    session: Arc<Session>,
    events: mpsc::Receiver<SessionEvent>,
    audio: bool,
    video: VideoFlow,
) -> PairUp {
    PairUp {
        session,
        events,
        audio,
        video,
        safety_number: safety_number_with(ctx.identity.call_id(), peer).await,
    }
}

/// Hands the outcome to the call; if the call is over, closes the session (no socket or task
/// outlives it).
async fn report(
    ctx: &PairContext,
    peer: CallId,
    token: CallToken,
    attempt: u64,
    result: Result<PairUp, CallError>,
) {
    let outcome = PairOutcome {
        peer,
        token,
        attempt,
        result,
    };
    if let Err(mpsc::error::SendError(outcome)) = ctx.outcomes.send(outcome) {
        if let Ok(up) = outcome.result {
            up.session.close().await;
        }
    }
}

/// Answers `offer` (already verified and checked against the room and the pair).
pub(crate) async fn answer(
    ctx: PairContext,
    cfg: SessionConfig,
    video: VideoFlow,
    offer: SignedSdp,
    attempt: u64,
) {
    let (peer, token, audio) = (offer.from, offer.call_id, cfg.audio);
    let result = async {
        let (session, events) = Session::new(&cfg).await?;
        let session = Arc::new(session);
        let connected = async {
            let sdp = session.accept_offer(&offer.sdp).await?;
            send_signed_sdp(&ctx.sender, &ctx.identity, &peer, token, Role::Answer, &sdp).await?;
            session
                .wait_connected(ctx.timeout, &offer.fingerprint)
                .await?;
            Ok::<_, CallError>(())
        }
        .await;
        closing_on_error(&session, connected).await?;
        Ok(pair_up(&ctx, peer, session, events, audio, video).await)
    }
    .await;
    report(&ctx, peer, token, attempt, result).await;
}
