//! One connection's protocol state machine (sans-IO).
//!
//! Takes decoded WebSocket messages plus the time, returns what the shell must do. It knows
//! nothing about sockets, other connections or clocks: the shell (`server::connection`) owns
//! those and carries out the returned [`Action`].

use std::time::Instant;

use crate::envelope::{
    self, Envelope, EnvelopeError, EnvelopeKind, ReplayCache, MAX_CLOCK_SKEW_SECS,
};
use crate::identity::CallId;
use crate::protocol::{ClientFrame, ErrorCode, ServerFrame, MAX_FRAME_BYTES};

use super::auth::Challenge;
use super::limits::{RateLimit, TokenBucket};
use super::send_frame::{self, Recipients};

/// What the shell does after a frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Nothing to send (e.g. a repeated rate-limited frame, dropped silently).
    Nothing,
    /// Send this frame to the client; the connection stays open.
    Reply(ServerFrame),
    /// The envelope of a `send` frame was refused: send this error frame to the client; the
    /// connection stays open. Apart from [`Action::Reply`] so the shell can count refusals.
    Refused(ServerFrame),
    /// Send this error frame, then close the connection.
    Close(ServerFrame),
    /// The client proved `id`: register the connection, then send `welcome`.
    Authenticated(CallId),
    /// Queue `frame` (a `deliver` frame that fits [`MAX_FRAME_BYTES`]) for the connection
    /// bound to `to`.
    Route {
        /// The sender (the connection's authenticated ID).
        from: CallId,
        /// The recipient.
        to: CallId,
        /// What the envelope says it is (for logs).
        kind: EnvelopeKind,
        /// The encoded `deliver` frame.
        frame: String,
    },
    /// Send TURN credentials for the connection's ID.
    IssueTurn(CallId),
}

enum State {
    AwaitingAuth(Challenge),
    Authenticated(CallId),
}

/// The state of one connection.
pub struct Session {
    state: State,
    bucket: TokenBucket,
    rate_limited: bool,
    replay: ReplayCache,
    verify_signatures: bool,
    /// The authenticated ID's canonical text (empty before login), for the fast path.
    me_text: String,
    recipients: Recipients,
}

impl Session {
    /// A new connection that has been sent `challenge`; it remembers up to `replay_capacity`
    /// recent envelopes to refuse resends.
    pub fn new(
        challenge: Challenge,
        rate: RateLimit,
        replay_capacity: usize,
        now: Instant,
    ) -> Self {
        Self {
            state: State::AwaitingAuth(challenge),
            bucket: TokenBucket::new(rate, now),
            rate_limited: false,
            replay: ReplayCache::new(replay_capacity),
            verify_signatures: true,
            me_text: String::new(),
            recipients: Recipients::default(),
        }
    }

    /// Whether this session checks envelope signatures (on by [`Session::new`]). Off, it still
    /// binds `from` to the authenticated ID and checks shape, timestamps and resends; the
    /// receiver verifies the signature in any case (protocol §4.5, §12.1).
    pub fn verifying_signatures(mut self, on: bool) -> Self {
        self.verify_signatures = on;
        self
    }

    /// The authenticated ID, once there is one.
    pub fn id(&self) -> Option<CallId> {
        match self.state {
            State::Authenticated(id) => Some(id),
            State::AwaitingAuth(_) => None,
        }
    }

    /// Marks the connection authenticated (the shell calls this after registering it).
    pub fn set_authenticated(&mut self, id: CallId) {
        self.state = State::Authenticated(id);
        self.me_text = id.to_string();
    }

    fn admit(&mut self, now: Instant) -> Option<Action> {
        if self.bucket.try_take(now) {
            self.rate_limited = false;
            return None;
        }
        if std::mem::replace(&mut self.rate_limited, true) {
            Some(Action::Nothing)
        } else {
            Some(Action::Reply(ServerFrame::error(
                ErrorCode::RateLimited,
                "too many frames: this one and any more until the rate drops were discarded",
            )))
        }
    }

    /// What a server that never decrypts can check: timestamp window, signature (when it
    /// verifies signatures), resend. Without the signature the resend check still holds:
    /// `from` is the connection's own ID, so only that connection fills its replay quota.
    fn check_envelope(&mut self, env: &Envelope, unix_now: u64) -> Result<(), EnvelopeError> {
        if env.ts > unix_now.saturating_add(MAX_CLOCK_SKEW_SECS) {
            return Err(EnvelopeError::FromFuture {
                ahead: env.ts - unix_now,
            });
        }
        if env.ts.saturating_add(MAX_CLOCK_SKEW_SECS) < unix_now {
            return Err(EnvelopeError::Stale {
                age: unix_now - env.ts,
            });
        }
        if self.verify_signatures {
            env.verify_signature()?;
        }
        self.replay.check_and_insert(env, unix_now)
    }

    /// A binary frame of `len` bytes arrived (the protocol is text-only).
    pub fn handle_binary(&mut self, len: usize, now: Instant) -> Action {
        if let Some(action) = self.admit(now) {
            return action;
        }
        Action::Reply(ServerFrame::error(
            ErrorCode::BadFrame,
            format!("binary frame of {len} bytes ignored: the protocol uses JSON text frames"),
        ))
    }

    /// A text frame arrived at `now` (monotonic) / `unix_now` (wall clock, seconds).
    pub fn handle_text(&mut self, text: &str, now: Instant, unix_now: u64) -> Action {
        if let Some(action) = self.admit(now) {
            return action;
        }
        if text.len() > MAX_FRAME_BYTES {
            return Action::Close(ServerFrame::error(
                ErrorCode::TooLarge,
                format!(
                    "frame of {} bytes exceeds the {MAX_FRAME_BYTES}-byte limit",
                    text.len()
                ),
            ));
        }
        if let State::Authenticated(me) = self.state {
            if let Some(p) = send_frame::parse(text, &me, &self.me_text, &mut self.recipients) {
                return self.route(me, p.envelope, Some(p.deliver), unix_now);
            }
        }
        let frame = match ClientFrame::parse(text) {
            Ok(frame) => frame,
            Err(err) => return Action::Reply(ServerFrame::error(err.code(), err.to_string())),
        };
        match (&mut self.state, frame) {
            (State::AwaitingAuth(challenge), ClientFrame::Auth { id, sig }) => {
                match challenge.verify(&id, &sig, unix_now) {
                    Ok(id) => Action::Authenticated(id),
                    Err(err) => Action::Close(ServerFrame::error(ErrorCode::AuthFailed, err.to_string())),
                }
            }
            (State::AwaitingAuth(_), _) => Action::Reply(ServerFrame::error(
                ErrorCode::Unauthenticated,
                "answer the challenge with an auth frame first",
            )),
            (State::Authenticated(_), ClientFrame::Auth { .. }) => Action::Reply(ServerFrame::error(
                ErrorCode::AlreadyAuthenticated,
                "this connection is already authenticated; open a new connection for another ID",
            )),
            (State::Authenticated(me), ClientFrame::Turn) => Action::IssueTurn(*me),
            (State::Authenticated(me), ClientFrame::Send { envelope }) => {
                let me = *me;
                match envelope::parse_value(&envelope) {
                    Ok(env) => self.route(me, env, None, unix_now),
                    Err(err) => Action::Refused(ServerFrame::error(
                        ErrorCode::BadEnvelope,
                        format!("{} ({})", err, err.code()),
                    )),
                }
            }
        }
    }

    /// The checks of a parsed envelope from the connection authenticated as `me`, then its
    /// `deliver` frame (protocol §12.1, steps 2 to 6): `deliver` when the fast path already
    /// wrote it, else encoded here.
    fn route(
        &mut self,
        me: CallId,
        envelope: Envelope,
        deliver: Option<String>,
        unix_now: u64,
    ) -> Action {
        if envelope.from != me {
            return Action::Refused(ServerFrame::error(
                ErrorCode::SpoofedFrom,
                "envelope `from` is not the ID this connection authenticated as",
            ));
        }
        if let Err(err) = self.check_envelope(&envelope, unix_now) {
            let code = match err {
                EnvelopeError::BadSignature => ErrorCode::BadSignature,
                EnvelopeError::Replayed => ErrorCode::Replayed,
                EnvelopeError::Stale { .. } | EnvelopeError::FromFuture { .. } => ErrorCode::Stale,
                _ => ErrorCode::RateLimited,
            };
            return Action::Refused(ServerFrame::error(code, err.to_string()));
        }
        let (from, to, kind) = (envelope.from, envelope.to, envelope.kind);
        let frame = match deliver {
            Some(frame) if frame.len() > MAX_FRAME_BYTES => Err(frame.len()),
            Some(frame) => Ok(frame),
            None => deliver_frame(envelope, MAX_FRAME_BYTES),
        };
        match frame {
            Ok(frame) => Action::Route {
                from,
                to,
                kind,
                frame,
            },
            Err(size) => Action::Refused(ServerFrame::error(
                ErrorCode::TooLarge,
                format!(
                    "the deliver frame for this envelope would be {size} bytes, over the \
                     {MAX_FRAME_BYTES}-byte limit; it was not sent (send a smaller envelope)"
                ),
            )),
        }
    }
}

/// Encodes the `deliver` frame for `envelope`, or returns its size when it exceeds `max` bytes:
/// the recipient would have to drop an oversize frame together with its connection, so such an
/// envelope is refused at the sender. The actual encoded size is checked, whatever the envelope
/// size limit is.
pub fn deliver_frame(envelope: Envelope, max: usize) -> Result<String, usize> {
    let frame = ServerFrame::Deliver { envelope }.to_json();
    if frame.len() > max {
        Err(frame.len())
    } else {
        Ok(frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::EnvelopeKind;
    use crate::identity::Identity;
    use crate::protocol::answer_challenge;

    const NOW: u64 = 1_700_000_000;

    fn session(t0: Instant) -> Session {
        Session::new(
            Challenge::new("srv", [4; 32], NOW),
            RateLimit::default(),
            64,
            t0,
        )
    }

    fn code(action: &Action) -> Option<ErrorCode> {
        match action {
            Action::Reply(ServerFrame::Error { code, .. })
            | Action::Refused(ServerFrame::Error { code, .. })
            | Action::Close(ServerFrame::Error { code, .. }) => Some(*code),
            _ => None,
        }
    }

    fn authed(me: &Identity, t0: Instant) -> Session {
        let mut s = session(t0);
        let auth = answer_challenge(me, "srv", &[4; 32], NOW).to_json();
        assert_eq!(
            s.handle_text(&auth, t0, NOW),
            Action::Authenticated(me.call_id())
        );
        s.set_authenticated(me.call_id());
        s
    }

    #[test]
    fn auth_then_route() {
        let t0 = Instant::now();
        let a = Identity::from_seed([1; 32]);
        let b = Identity::from_seed([2; 32]);
        let mut s = authed(&a, t0);
        assert_eq!(s.id(), Some(a.call_id()));
        let env = Envelope::seal(&a, &b.call_id(), EnvelopeKind::Offer, b"x", NOW).unwrap();
        let frame = ClientFrame::Send {
            envelope: serde_json::to_value(&env).unwrap(),
        };
        match s.handle_text(&frame.to_json(), t0, NOW) {
            Action::Route {
                from,
                to,
                kind,
                frame,
            } => {
                assert_eq!((from, to, kind), (a.call_id(), b.call_id(), env.kind));
                assert_eq!(frame, ServerFrame::Deliver { envelope: env }.to_json());
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            s.handle_text(r#"{"type":"turn"}"#, t0, NOW),
            Action::IssueTurn(a.call_id())
        );
        let again = answer_challenge(&a, "srv", &[4; 32], NOW).to_json();
        assert_eq!(
            code(&s.handle_text(&again, t0, NOW)),
            Some(ErrorCode::AlreadyAuthenticated)
        );
    }

    #[test]
    fn bad_auth_closes() {
        let t0 = Instant::now();
        let a = Identity::from_seed([1; 32]);
        let mut s = session(t0);
        let wrong_server = answer_challenge(&a, "evil", &[4; 32], NOW).to_json();
        let action = s.handle_text(&wrong_server, t0, NOW);
        assert!(matches!(action, Action::Close(_)));
        assert_eq!(code(&action), Some(ErrorCode::AuthFailed));
    }

    #[test]
    fn frames_before_auth_are_refused() {
        let t0 = Instant::now();
        let mut s = session(t0);
        assert_eq!(
            code(&s.handle_text(r#"{"type":"turn"}"#, t0, NOW)),
            Some(ErrorCode::Unauthenticated)
        );
        assert_eq!(s.id(), None);
    }

    #[test]
    fn spoofed_from_is_refused() {
        let t0 = Instant::now();
        let a = Identity::from_seed([1; 32]);
        let b = Identity::from_seed([2; 32]);
        let mut s = authed(&a, t0);
        let env = Envelope::seal(&b, &a.call_id(), EnvelopeKind::Offer, b"x", NOW).unwrap();
        let frame = ClientFrame::Send {
            envelope: serde_json::to_value(&env).unwrap(),
        };
        assert_eq!(
            code(&s.handle_text(&frame.to_json(), t0, NOW)),
            Some(ErrorCode::SpoofedFrom)
        );
    }

    #[test]
    fn forged_stale_and_replayed_envelopes_are_refused() {
        let t0 = Instant::now();
        let a = Identity::from_seed([1; 32]);
        let b = Identity::from_seed([2; 32]);
        let mut s = authed(&a, t0);
        let env = Envelope::seal(&a, &b.call_id(), EnvelopeKind::Offer, b"x", NOW).unwrap();
        let send = |env: &Envelope| {
            ClientFrame::Send {
                envelope: serde_json::to_value(env).unwrap(),
            }
            .to_json()
        };
        assert!(matches!(
            s.handle_text(&send(&env), t0, NOW),
            Action::Route { .. }
        ));
        assert_eq!(
            code(&s.handle_text(&send(&env), t0, NOW)),
            Some(ErrorCode::Replayed)
        );
        let mut forged = Envelope::seal(&a, &b.call_id(), EnvelopeKind::Offer, b"y", NOW).unwrap();
        forged.body[0] ^= 1;
        assert_eq!(
            code(&s.handle_text(&send(&forged), t0, NOW)),
            Some(ErrorCode::BadSignature)
        );
        let old = Envelope::seal(&a, &b.call_id(), EnvelopeKind::Offer, b"z", NOW - 61).unwrap();
        assert_eq!(
            code(&s.handle_text(&send(&old), t0, NOW)),
            Some(ErrorCode::Stale)
        );
        let future = Envelope::seal(&a, &b.call_id(), EnvelopeKind::Offer, b"z", NOW + 61).unwrap();
        assert_eq!(
            code(&s.handle_text(&send(&future), t0, NOW)),
            Some(ErrorCode::Stale)
        );
    }

    #[test]
    fn without_signature_checks_from_time_and_resends_are_still_checked() {
        let t0 = Instant::now();
        let a = Identity::from_seed([1; 32]);
        let b = Identity::from_seed([2; 32]);
        let mut s = authed(&a, t0).verifying_signatures(false);
        let send = |env: &Envelope| {
            ClientFrame::Send {
                envelope: serde_json::to_value(env).unwrap(),
            }
            .to_json()
        };
        // A forged signature is routed as is: the recipient verifies it (protocol §4.5).
        let mut forged = Envelope::seal(&a, &b.call_id(), EnvelopeKind::Offer, b"y", NOW).unwrap();
        forged.body[0] ^= 1;
        match s.handle_text(&send(&forged), t0, NOW) {
            Action::Route { frame, .. } => assert_eq!(
                frame,
                ServerFrame::Deliver {
                    envelope: forged.clone()
                }
                .to_json()
            ),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            code(&s.handle_text(&send(&forged), t0, NOW)),
            Some(ErrorCode::Replayed)
        );
        let spoofed = Envelope::seal(&b, &a.call_id(), EnvelopeKind::Offer, b"x", NOW).unwrap();
        assert_eq!(
            code(&s.handle_text(&send(&spoofed), t0, NOW)),
            Some(ErrorCode::SpoofedFrom)
        );
        let old = Envelope::seal(&a, &b.call_id(), EnvelopeKind::Offer, b"z", NOW - 61).unwrap();
        assert_eq!(
            code(&s.handle_text(&send(&old), t0, NOW)),
            Some(ErrorCode::Stale)
        );
    }

    #[test]
    fn an_invalid_recipient_key_is_a_bad_envelope_on_the_fast_path_too() {
        let t0 = Instant::now();
        let a = Identity::from_seed([1; 32]);
        let b = Identity::from_seed([2; 32]);
        let mut s = authed(&a, t0);
        let env = Envelope::seal(&a, &b.call_id(), EnvelopeKind::Offer, b"x", NOW).unwrap();
        let text = ClientFrame::Send {
            envelope: serde_json::to_value(&env).unwrap(),
        }
        .to_json();
        // The last character of an ID carries checksum bits: changing it breaks the ID.
        let to = b.call_id().to_string();
        let mut broken = to.clone();
        let last = broken.pop().unwrap();
        broken.push(if last == 'a' { 'b' } else { 'a' });
        let text = text.replace(&to, &broken);
        assert_eq!(
            code(&s.handle_text(&text, t0, NOW)),
            Some(ErrorCode::BadEnvelope)
        );
    }

    #[test]
    fn garbage_gets_typed_errors_and_keeps_the_session() {
        let t0 = Instant::now();
        let a = Identity::from_seed([1; 32]);
        let mut s = authed(&a, t0);
        assert_eq!(
            code(&s.handle_text("{{{{", t0, NOW)),
            Some(ErrorCode::BadFrame)
        );
        assert_eq!(
            code(&s.handle_text(r#"{"type":"hack"}"#, t0, NOW)),
            Some(ErrorCode::UnknownType)
        );
        assert_eq!(
            code(&s.handle_text(r#"{"type":"send","envelope":{"v":1}}"#, t0, NOW)),
            Some(ErrorCode::BadEnvelope)
        );
        assert_eq!(code(&s.handle_binary(10, t0)), Some(ErrorCode::BadFrame));
        assert_eq!(s.id(), Some(a.call_id()));
    }

    #[test]
    fn rate_limit_reports_once_per_burst() {
        let t0 = Instant::now();
        let limit = RateLimit {
            per_second: 1.0,
            burst: 2,
        };
        let mut s = Session::new(Challenge::new("srv", [4; 32], NOW), limit, 64, t0);
        assert_eq!(code(&s.handle_binary(1, t0)), Some(ErrorCode::BadFrame));
        assert_eq!(code(&s.handle_binary(1, t0)), Some(ErrorCode::BadFrame));
        assert_eq!(code(&s.handle_binary(1, t0)), Some(ErrorCode::RateLimited));
        assert_eq!(s.handle_binary(1, t0), Action::Nothing);
        let later = t0 + std::time::Duration::from_secs(1);
        assert_eq!(code(&s.handle_binary(1, later)), Some(ErrorCode::BadFrame));
        assert_eq!(
            code(&s.handle_binary(1, later)),
            Some(ErrorCode::RateLimited)
        );
    }

    #[test]
    fn deliver_frames_over_the_limit_are_refused_at_any_limit() {
        let a = Identity::from_seed([1; 32]);
        let b = Identity::from_seed([2; 32]);
        let env = Envelope::seal(&a, &b.call_id(), EnvelopeKind::Offer, b"x", NOW).unwrap();
        let exact = ServerFrame::Deliver {
            envelope: env.clone(),
        }
        .to_json()
        .len();
        assert_eq!(deliver_frame(env.clone(), exact).unwrap().len(), exact);
        assert_eq!(deliver_frame(env, exact - 1), Err(exact));
    }

    #[test]
    fn an_envelope_whose_deliver_frame_would_be_oversize_gets_too_large() {
        let t0 = Instant::now();
        let a = Identity::from_seed([1; 32]);
        let b = Identity::from_seed([2; 32]);
        let mut s = authed(&a, t0);
        // `answer` with a 48 888-byte body: the deliver frame is exactly MAX_FRAME_BYTES + 1
        // while the send frame (3 bytes shorter) is within the limit.
        let mut env = Envelope::seal(&a, &b.call_id(), EnvelopeKind::Answer, b"", NOW).unwrap();
        env.body = vec![0x5a; 48_888];
        env.sig = a.sign(&env.signed_bytes());
        let send = ClientFrame::Send {
            envelope: serde_json::to_value(&env).unwrap(),
        }
        .to_json();
        assert!(send.len() <= MAX_FRAME_BYTES);
        let action = s.handle_text(&send, t0, NOW);
        // A smaller MAX_ENVELOPE_BYTES may refuse it earlier, as a bad envelope.
        let code = code(&action).expect("refused");
        assert!(
            matches!(code, ErrorCode::TooLarge | ErrorCode::BadEnvelope),
            "{action:?}"
        );
        assert!(
            matches!(action, Action::Refused(_)),
            "the sender stays connected"
        );
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_text_never_panics(text in ".{0,300}", authed_first in proptest::bool::ANY) {
            let t0 = Instant::now();
            let a = Identity::from_seed([1; 32]);
            let mut s = if authed_first { authed(&a, t0) } else { session(t0) };
            let _ = s.handle_text(&text, t0, NOW);
            let wrapped = format!(r#"{{"type":"send","envelope":{text:?}}}"#);
            let _ = s.handle_text(&wrapped, t0, NOW);
        }
    }
}
