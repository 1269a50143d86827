//! The engine's conference part: a room's call, planned by [`Mesh`] (who offers to whom, which
//! offers are taken, which pairs are dropped) and carried out here: `room_call` announcements
//! through the signaling server, one verified session per pair set up by a
//! [`pair_setup`](super::super::pair_setup) task, members added while the call runs and removed
//! when they leave, are removed from the room, or go silent; the received audio mixed into one
//! frame for the sink; the room's messages sent on the members' data channels (`room_msg`
//! frames) and through the server only to those without one. The rest of the call (send
//! pipelines, video, chat, stats) is the 1:1 engine's, shared.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use media::chat::ChatFrame;
use media::session::SessionConfig;
use native::video::VideoSink;
use signaling::client::{ClientError, Incoming};
use signaling::envelope::EnvelopeKind;
use signaling::identity::CallId;
use signaling::offer::{CallToken, HangupBody, Role, SignedSdp};
use signaling::room::{RoomCallBody, RoomId, RoomState};
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

use super::super::call::CallEvent;
use super::super::mix::{Mixer, Speakers};
use super::super::pair_setup::{self, PairContext, PairOutcome};
use super::super::peer::PeerId;
use super::room_frame::{self, RoomFrameRefused};
use super::Engine;
use crate::call::{client_error_code, now_unix, now_unix_ms, verified_offer, EndReason, VideoFlow};
use crate::rooms::book::{RoomBook, RoomEvent};
use crate::rooms::mesh::{DropReason, Mesh, MeshAction};

/// A member from whom nothing arrived (no media, no pong to the once-a-second ping) for this
/// long is dropped: with the one-second check, a dead member is gone within 4 s.
pub(crate) const SILENCE_LIMIT: Duration = Duration::from_secs(3);

/// One member's part in a room's call.
pub(crate) struct Conference {
    room: RoomId,
    book: RoomBook,
    state: RoomState,
    mesh: Mesh,
    ctx: PairContext,
    outcomes: mpsc::UnboundedReceiver<PairOutcome>,
    /// A pair session's settings before audio and video are chosen (ICE servers, scope).
    base_cfg: SessionConfig,
    /// Offering pairs waiting for their answer: the pair's token and where the answer goes.
    awaiting_answer: HashMap<CallId, (CallToken, oneshot::Sender<SignedSdp>)>,
    /// Pairs being set up: the attempt number of each one's set-up task (a task whose pair
    /// was dropped meanwhile runs to its end and its session is closed).
    tasks: HashMap<CallId, u64>,
    next_attempt: u64,
    /// Connected members.
    members: BTreeMap<CallId, PeerId>,
    last_heard: BTreeMap<PeerId, Instant>,
    mixer: Mixer,
    speakers: Speakers<CallId>,
    /// With `--video-out DIR`: each member's pictures to its own file.
    member_sinks: BTreeMap<PeerId, Box<dyn VideoSink>>,
}

impl Conference {
    /// A conference of `room` (whose current state `book` holds), set up with `mesh`; pairs use
    /// `base_cfg`, and `ctx` (its outcome sender paired with `outcomes`).
    pub(crate) fn new(
        book: RoomBook,
        state: RoomState,
        mesh: Mesh,
        ctx: PairContext,
        outcomes: mpsc::UnboundedReceiver<PairOutcome>,
        base_cfg: SessionConfig,
    ) -> Self {
        Self {
            room: state.room,
            book,
            state,
            mesh,
            ctx,
            outcomes,
            base_cfg,
            awaiting_answer: HashMap::new(),
            tasks: HashMap::new(),
            next_attempt: 0,
            members: BTreeMap::new(),
            last_heard: BTreeMap::new(),
            mixer: Mixer::default(),
            speakers: Speakers::default(),
            member_sinks: BTreeMap::new(),
        }
    }

    /// Where `peer`'s pictures go, when each member has its own file.
    pub(crate) fn member_sink(&mut self, peer: PeerId) -> Option<&mut (dyn VideoSink + 'static)> {
        self.member_sinks.get_mut(&peer).map(|s| s.as_mut())
    }

    fn finish_member_sink(&mut self, peer: PeerId) {
        if let Some(mut sink) = self.member_sinks.remove(&peer) {
            if let Err(e) = sink.finish() {
                tracing::warn!(error = %e, "finishing a member's video file");
            }
        }
    }

    /// Something arrived from `peer`'s session: it is alive.
    pub(crate) fn heard(&mut self, peer: PeerId, now: Instant) {
        if let Some(at) = self.last_heard.get_mut(&peer) {
            *at = now;
        }
    }
}

/// The key of `member`'s tile in a window showing the call as a grid (tiles are in key order):
/// the first 4 bytes of its ID, so every member sees the others in the same order and a member
/// who rejoins takes its old place among them, then its session's number, which keeps two
/// members apart whose IDs begin alike.
pub(crate) fn tile_source(member: &CallId, peer: PeerId) -> u64 {
    let [a, b, c, d, ..] = *member.as_bytes();
    (u64::from(u32::from_be_bytes([a, b, c, d])) << 32) | u64::from(peer.0)
}

/// The next pair outcome (pending forever outside a conference).
pub(super) async fn next_outcome(conference: &mut Option<Box<Conference>>) -> PairOutcome {
    match conference {
        Some(c) => match c.outcomes.recv().await {
            Some(o) => o,
            // The conference holds a sender in its context, so this does not happen.
            None => std::future::pending().await,
        },
        None => std::future::pending().await,
    }
}

impl Engine {
    /// Joins: a `join` to every other member.
    pub(crate) async fn start_conference(&mut self, conference: Conference) {
        let actions = conference.mesh.start(&conference.state);
        self.conference = Some(Box::new(conference));
        self.apply(actions).await;
    }

    /// When the mesh next has something to do.
    pub(super) fn conference_deadline(&self) -> Option<tokio::time::Instant> {
        let at = self.conference.as_ref()?.mesh.poll_timeout()?;
        Some(tokio::time::Instant::from_std(
            at.max(Instant::now() + Duration::from_millis(1)),
        ))
    }

    pub(super) async fn on_mesh_timer(&mut self) -> Option<EndReason> {
        let actions = self.conference.as_mut()?.mesh.poll(Instant::now());
        self.apply(actions).await;
        None
    }

    /// Carries out what the mesh planned.
    async fn apply(&mut self, actions: Vec<MeshAction>) {
        for action in actions {
            match action {
                MeshAction::Announce { to, body } => self.announce(&to, &body).await,
                MeshAction::Offer { peer, token } => self.spawn_offer(peer, token),
                MeshAction::Drop { peer, reason } => {
                    self.remove_member(peer, reason);
                    self.announce_again(peer, reason).await;
                }
            }
        }
    }

    /// After a pair failed (not a member that left or was removed), announces this member
    /// again, so the pair is set up anew once the other side has dropped it too; a member that
    /// is gone does not answer.
    async fn announce_again(&mut self, member: CallId, reason: DropReason) {
        if !matches!(reason, DropReason::Lost | DropReason::Timeout) {
            return;
        }
        let Some(c) = self.conference.as_ref() else {
            return;
        };
        let again: Vec<MeshAction> = c
            .mesh
            .start(&c.state)
            .into_iter()
            .filter(|a| matches!(a, MeshAction::Announce { to, .. } if *to == member))
            .collect();
        for action in again {
            if let MeshAction::Announce { to, body } = action {
                self.announce(&to, &body).await;
            }
        }
    }

    async fn announce(&mut self, to: &CallId, body: &RoomCallBody) {
        if let Err(e) = self
            .client
            .send(to, EnvelopeKind::RoomCall, &body.to_json())
            .await
        {
            tracing::debug!(%to, error = %e, "room_call not sent");
        }
    }

    fn spawn_offer(&mut self, peer: CallId, token: CallToken) {
        let Some(c) = self.conference.as_mut() else {
            return;
        };
        let asked = VideoFlow::asked(self.opts.video.as_ref());
        let cfg = SessionConfig {
            audio: true,
            video: asked.session_config(),
            ..c.base_cfg.clone()
        };
        let (tx, rx) = oneshot::channel();
        c.awaiting_answer.insert(peer, (token, tx));
        c.next_attempt += 1;
        c.tasks.insert(peer, c.next_attempt);
        tokio::spawn(
            pair_setup::offer(c.ctx.clone(), cfg, asked, peer, token, c.next_attempt, rx)
                .in_current_span(),
        );
        tracing::info!(%peer, "offering to a member");
    }

    /// A pair set-up ended: a connected pair joins the call (if it is still the current pair).
    pub(super) async fn on_pair_outcome(&mut self, outcome: PairOutcome) -> Option<EndReason> {
        let c = self.conference.as_mut()?;
        let PairOutcome {
            peer: member,
            token,
            attempt,
            result,
        } = outcome;
        if c.mesh.token(&member) != Some(token) || c.tasks.get(&member) != Some(&attempt) {
            if let Ok(up) = result {
                up.session.close().await;
            }
            return None;
        }
        c.tasks.remove(&member);
        c.awaiting_answer.remove(&member);
        match result {
            Ok(up) => {
                c.mesh.on_connected(&member);
                let receives = up.video.receives;
                match self.add_peer(member, token, up) {
                    Ok(peer) => {
                        let c = self.conference.as_mut()?;
                        c.members.insert(member, peer);
                        c.last_heard.insert(peer, Instant::now());
                        if receives {
                            self.open_member_sink(member, peer);
                        }
                        tracing::info!(%member, %peer, "member connected");
                    }
                    Err(e) => {
                        tracing::warn!(%member, error = %e, "member not added");
                        let actions = self.conference.as_mut()?.mesh.on_lost(&member);
                        self.apply(actions).await;
                    }
                }
            }
            Err(e) => {
                tracing::warn!(%member, error = %e, "pair did not connect");
                let actions = c.mesh.on_lost(&member);
                self.apply(actions).await;
            }
        }
        None
    }

    /// With `--video-out DIR`: `member`'s pictures to `DIR/<its ID>.y4m` (a file that cannot
    /// be opened is logged; its pictures then go to the call's one sink).
    fn open_member_sink(&mut self, member: CallId, peer: PeerId) {
        let (Some(dir), Some(v)) = (&self.opts.video_out_dir, &self.opts.video) else {
            return;
        };
        let spec = native::VideoOutSpec::File(dir.join(format!("{member}.y4m")));
        match native::video::open_video_sink(&spec, v.width, v.height, v.fps) {
            Ok(sink) => {
                if let Some(c) = self.conference.as_mut() {
                    c.member_sinks.insert(peer, sink);
                }
            }
            Err(e) => tracing::warn!(%member, error = %e, "no video file for this member"),
        }
    }

    /// Removes `member` from the call: its set-up stops, its session closes, and the owner is
    /// told if it was connected.
    fn remove_member(&mut self, member: CallId, reason: DropReason) {
        let Some(c) = self.conference.as_mut() else {
            return;
        };
        // Its set-up task (if any) ends on its own: an offer's at once (its answer channel
        // closes here), an answer's at the connect timeout; the outcome is then stale.
        c.tasks.remove(&member);
        c.awaiting_answer.remove(&member);
        c.speakers.remove(&member);
        let Some(peer) = c.members.remove(&member) else {
            return;
        };
        c.last_heard.remove(&peer);
        c.finish_member_sink(peer);
        // With a window: its tile goes and the others share the window.
        if let Some(sink) = self.video_sink.as_mut() {
            sink.forget(tile_source(&member, peer));
        }
        // The video rate was held down for the slowest member: it may rise now.
        let rate = self
            .congestion
            .as_mut()
            .and_then(|cc| cc.remove_peer(peer, Instant::now()));
        self.apply_rate(rate);
        if let Some(p) = self.peers.remove(&peer) {
            let session = p.session.clone();
            tokio::spawn(async move { session.close().await }.in_current_span());
        }
        tracing::info!(%member, ?reason, "member left the call");
        self.emit(CallEvent::MemberLeft {
            peer,
            id: member,
            reason,
        });
    }

    /// A peer said goodbye (data channel `bye`, closed channel, or a hang-up with its token).
    pub(super) async fn member_hung_up(&mut self, peer: PeerId) -> Option<EndReason> {
        self.member_gone(peer, DropReason::Left).await
    }

    /// A peer's connection failed or closed. In a 1:1 call that ends the call.
    pub(super) async fn peer_lost(&mut self, peer: PeerId) -> Option<EndReason> {
        if self.conference.is_none() {
            return Some(EndReason::ConnectionLost);
        }
        self.member_gone(peer, DropReason::Lost).await
    }

    async fn member_gone(&mut self, peer: PeerId, reason: DropReason) -> Option<EndReason> {
        let member = self.peers.get(&peer)?.id;
        let c = self.conference.as_mut()?;
        if c.mesh.on_lost(&member).is_empty() {
            return None;
        }
        self.remove_member(member, reason);
        self.announce_again(member, reason).await;
        None
    }

    /// Once a second: members silent for [`SILENCE_LIMIT`] are dropped; the levels are shown.
    pub(super) async fn on_conference_tick(&mut self) {
        let Some(c) = self.conference.as_ref() else {
            return;
        };
        let now = Instant::now();
        let silent: Vec<PeerId> = c
            .last_heard
            .iter()
            .filter(|(_, at)| now.saturating_duration_since(**at) >= SILENCE_LIMIT)
            .map(|(p, _)| *p)
            .collect();
        for peer in silent {
            tracing::info!(%peer, "nothing from a member for {SILENCE_LIMIT:?}: dropped");
            self.member_gone(peer, DropReason::Lost).await;
        }
        let Some(c) = self.conference.as_ref() else {
            return;
        };
        self.emit(CallEvent::Levels {
            levels: c.speakers.levels().collect(),
            speaker: c.speakers.active(),
        });
    }

    /// Every member's frame that is due, mixed into one for the sink.
    pub(super) fn on_play_tick_mixed(
        &mut self,
    ) -> Result<Option<EndReason>, crate::call::CallError> {
        let now = Instant::now();
        let Some(c) = self.conference.as_mut() else {
            return Ok(None);
        };
        let mut frames: Vec<Vec<i16>> = Vec::with_capacity(self.peers.len());
        for peer in self.peers.values_mut() {
            // One member's undecodable audio costs its own frame, not everyone's call.
            match peer.audio_rx.poll(now) {
                Ok(Some(frame)) => {
                    c.speakers.observe(peer.id, frame);
                    frames.push(frame.to_vec());
                }
                Ok(None) => {}
                Err(e) => tracing::debug!(member = %peer.id, error = %e, "a frame not decoded"),
            }
            // Lip sync per member, as in a 1:1 call: its audio waits for its late video.
            let extra = peer
                .lip_sync
                .audio_played(peer.audio_rx.playout_timestamp(), now);
            peer.audio_rx.set_extra_delay(extra);
        }
        if frames.is_empty() {
            return Ok(None);
        }
        if self.stats.first_audio_ms.is_none() {
            self.stats.first_audio_ms = Some(self.started.elapsed().as_secs_f64() * 1e3);
        }
        let inputs: Vec<&[i16]> = frames.iter().map(Vec::as_slice).collect();
        let mixed = c.mixer.mix(&inputs);
        self.stats.audio_level_dbfs = media::codec::pcm::rms_dbfs(mixed);
        if let Err(e) = self.sink.write_frame(mixed) {
            tracing::warn!(error = %e, "audio sink failed");
        }
        Ok(None)
    }

    /// A signaling message during a room's call.
    pub(super) async fn on_conference_signaling(
        &mut self,
        incoming: Option<Result<Incoming, ClientError>>,
    ) -> Option<EndReason> {
        let m = match incoming {
            Some(Ok(m)) => m,
            Some(Err(e)) => {
                // A `join` to a member who is not online is the usual case, not a problem.
                match client_error_code(&e) {
                    "not_online" => tracing::debug!(error = %e, "announcement not delivered"),
                    code => tracing::warn!(code, error = %e, "ignored a signaling message"),
                }
                return None;
            }
            None => {
                self.signaling_open = false;
                tracing::warn!(
                    "signaling connection lost; the call goes on with the members in it"
                );
                return None;
            }
        };
        match m.kind {
            EnvelopeKind::RoomCall => self.on_room_call(&m).await,
            EnvelopeKind::Offer => self.on_pair_offer(&m),
            EnvelopeKind::Answer => self.on_pair_answer(&m),
            EnvelopeKind::Hangup | EnvelopeKind::Reject => self.on_pair_hangup(&m).await,
            EnvelopeKind::RoomState | EnvelopeKind::RoomMessage => self.on_room_envelope(&m).await,
            _ => {
                tracing::debug!(from = %m.from, kind = ?m.kind, "ignored during a room's call");
                None
            }
        }
    }

    async fn on_room_call(&mut self, m: &Incoming) -> Option<EndReason> {
        let c = self.conference.as_mut()?;
        let body = match RoomCallBody::parse(&m.plaintext) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(from = %m.from, error = %e, "unreadable room_call refused");
                return None;
            }
        };
        match c.mesh.on_room_call(m.from, body, &c.state, Instant::now()) {
            Ok(actions) => self.apply(actions).await,
            Err(e) => tracing::warn!(from = %m.from, error = %e, "room_call refused"),
        }
        None
    }

    /// An offer: taken only from a member, for an announced pair this side answers, with the
    /// pair's token; then verified exactly as a 1:1 offer.
    fn on_pair_offer(&mut self, m: &Incoming) -> Option<EndReason> {
        let offer = verified_offer(&self.identity, m)?;
        let c = self.conference.as_mut()?;
        if let Err(e) = c.mesh.check_offer(&offer.from, &offer.call_id, &c.state) {
            tracing::warn!(from = %m.from, error = %e, "offer refused");
            eprintln!(
                "refused a call from {}: {}",
                m.from,
                crate::terminal_text::escape(&e.to_string())
            );
            return None;
        }
        let member = offer.from;
        let video = VideoFlow::answering(self.opts.video.as_ref(), &offer.sdp);
        let cfg = SessionConfig {
            audio: true,
            video: video.session_config(),
            ..c.base_cfg.clone()
        };
        c.next_attempt += 1;
        c.tasks.insert(member, c.next_attempt);
        tokio::spawn(
            pair_setup::answer(c.ctx.clone(), cfg, video, offer, c.next_attempt).in_current_span(),
        );
        tracing::info!(%member, "answering a member");
        None
    }

    fn on_pair_answer(&mut self, m: &Incoming) -> Option<EndReason> {
        let me = self.identity.call_id();
        let c = self.conference.as_mut()?;
        let answer = match SignedSdp::parse(&m.plaintext) {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(from = %m.from, error = %e, "unreadable answer ignored");
                return None;
            }
        };
        let Some((token, _)) = c.awaiting_answer.get(&m.from) else {
            tracing::debug!(from = %m.from, "an answer nobody waits for ignored");
            return None;
        };
        if answer.call_id != *token {
            tracing::debug!(from = %m.from, "an answer for another pair ignored");
            return None;
        }
        if let Err(e) = answer.verify(&m.from, &me, Some(token), Role::Answer, now_unix()) {
            tracing::warn!(from = %m.from, code = e.code(), error = %e, "answer refused");
            return None;
        }
        if let Some((_, tx)) = c.awaiting_answer.remove(&m.from) {
            let _ = tx.send(answer);
        }
        None
    }

    async fn on_pair_hangup(&mut self, m: &Incoming) -> Option<EndReason> {
        let h = HangupBody::parse(&m.plaintext).ok()?;
        let c = self.conference.as_ref()?;
        if c.mesh.token(&m.from) != Some(h.call_id) {
            return None;
        }
        let actions = self.conference.as_mut()?.mesh.on_lost(&m.from);
        if !actions.is_empty() {
            self.remove_member(m.from, DropReason::Left);
        }
        None
    }

    /// A room state or message: through the book (its checks, its store); a newer state drops
    /// members no longer in it, and ends the call if this member was removed.
    async fn on_room_envelope(&mut self, m: &Incoming) -> Option<EndReason> {
        let c = self.conference.as_mut()?;
        let events =
            match c
                .book
                .receive(m.from, m.kind, &m.plaintext, Instant::now(), now_unix_ms())
            {
                Ok(events) => events,
                Err(e) => {
                    tracing::warn!(from = %m.from, error = %e, "room envelope refused");
                    return None;
                }
            };
        self.on_room_events(events).await
    }

    async fn on_room_events(&mut self, events: Vec<RoomEvent>) -> Option<EndReason> {
        for event in events {
            match event {
                RoomEvent::Message(msg) => self.emit(CallEvent::RoomMessage(Box::new(msg))),
                RoomEvent::Updated { room, .. } => {
                    let c = self.conference.as_mut()?;
                    if room != c.room {
                        continue;
                    }
                    match c.book.store().room(&room) {
                        Ok(Some(held)) => c.state = held.current().state.clone(),
                        Ok(None) => continue,
                        Err(e) => {
                            tracing::warn!(error = %e, "room store");
                            continue;
                        }
                    }
                    let mut actions = c.mesh.on_state(&c.state);
                    // Members new in this state may have announced themselves while we held
                    // the older one (and been refused): announce ourselves to them.
                    let known: Vec<_> = c.mesh.peers().copied().collect();
                    actions.extend(c.mesh.start(&c.state).into_iter().filter(
                        |a| !matches!(a, MeshAction::Announce { to, .. } if known.contains(to)),
                    ));
                    self.apply(actions).await;
                }
                RoomEvent::Removed { room } if Some(room) == self.conference_room() => {
                    eprintln!("you were removed from the room: leaving its call");
                    return Some(EndReason::RemoteHangup);
                }
                RoomEvent::Removed { .. } | RoomEvent::Joined { .. } => {}
            }
        }
        None
    }

    fn conference_room(&self) -> Option<RoomId> {
        self.conference.as_ref().map(|c| c.room)
    }

    /// Typed text in a room's call goes to the room: signed and stored, then a `room_msg` frame
    /// on the data channel of every member connected in the call (no server needed, and the
    /// shortest path), and an envelope through the server to the others (its mailbox keeps it
    /// for those offline) and to any member whose channel refused the frame.
    pub(super) async fn send_room_text(&mut self, text: &str) {
        let Some(c) = self.conference.as_mut() else {
            return;
        };
        let room = c.room;
        let (msg, out) = match c.book.send(&room, text, None, now_unix_ms()) {
            Ok(sent) => sent,
            Err(e) => {
                return eprintln!(
                    "room message not sent: {}",
                    crate::terminal_text::escape(&e.to_string())
                )
            }
        };
        let frame = match ChatFrame::room_msg(&msg.to_json()) {
            Ok(frame) => Some(bytes::Bytes::from(frame.encode())),
            Err(e) => {
                tracing::warn!(error = %e, "room message too large for a frame: through the server");
                None
            }
        };
        let mut via_server = Vec::new();
        for o in out {
            let channel = c
                .members
                .get(&o.to)
                .and_then(|p| self.peers.get(p))
                .filter(|p| p.chat_open);
            if let (Some(peer), Some(bytes)) = (channel, &frame) {
                match peer.session.send_chat(bytes.clone()).await {
                    Ok(()) => continue,
                    Err(e) => {
                        tracing::debug!(to = %o.to, error = %e, "room_msg not sent: through the server")
                    }
                }
            }
            via_server.push(o);
        }
        if via_server.is_empty() {
            return;
        }
        if !self.signaling_open {
            return eprintln!(
                "room message not sent to {} member(s) without an open channel in this call: the signaling connection is lost (the message is in your history)",
                via_server.len()
            );
        }
        if let Err(e) = crate::rooms::net::send_all(&self.client, &via_server).await {
            eprintln!("room message not sent to everyone: {e}");
        }
    }

    /// A `room_msg` frame on `peer`'s chat channel: checked (this room's call, signed by that
    /// very member), then taken as that member's room message (membership, duplicates that
    /// came through the server, the sender's order, the history).
    pub(super) async fn on_room_frame(&mut self, peer: PeerId, msg: &[u8]) -> Option<EndReason> {
        let carrier = self.peers.get(&peer)?.id;
        let checked = match self.conference.as_ref() {
            Some(c) if c.members.get(&carrier) != Some(&peer) => {
                tracing::warn!(from = %carrier, "room message from a peer not connected as a member refused");
                return None;
            }
            c => room_frame::check(c.map(|c| c.room), carrier, msg),
        };
        let signed = match checked {
            Ok(signed) => signed,
            Err(RoomFrameRefused::NotInRoomCall) => {
                self.stats.chat_frames_ignored += 1;
                tracing::debug!("ignored a room_msg frame outside a room's call");
                return None;
            }
            Err(e) => {
                tracing::warn!(from = %carrier, error = %e, "room message on the data channel refused");
                return None;
            }
        };
        let c = self.conference.as_mut()?;
        match c
            .book
            .receive_message(signed, Instant::now(), now_unix_ms())
        {
            Ok(events) => self.on_room_events(events).await,
            Err(e) => {
                tracing::warn!(from = %carrier, error = %e, "room message on the data channel refused");
                None
            }
        }
    }

    /// Messages whose wait for an earlier one is over.
    pub(super) async fn on_book_timer(&mut self) -> Option<EndReason> {
        let events = match self.conference.as_mut()?.book.poll(Instant::now()) {
            Ok(events) => events,
            Err(e) => {
                tracing::warn!(error = %e, "room store");
                return None;
            }
        };
        self.on_room_events(events).await
    }

    /// When the book next releases a message.
    pub(super) fn book_deadline(&self) -> Option<tokio::time::Instant> {
        let at = self.conference.as_ref()?.book.poll_timeout()?;
        Some(tokio::time::Instant::from_std(
            at.max(Instant::now() + Duration::from_millis(1)),
        ))
    }

    /// Leaving: `leave` to every member in the call.
    pub(super) async fn leave_conference(&mut self) {
        let Some(c) = self.conference.as_mut() else {
            return;
        };
        let actions = c.mesh.leave();
        let sinks: Vec<PeerId> = c.member_sinks.keys().copied().collect();
        for peer in sinks {
            c.finish_member_sink(peer);
        }
        c.tasks.clear();
        c.awaiting_answer.clear();
        self.apply(actions).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use signaling::identity::Identity;

    #[test]
    fn tiles_follow_the_members_ids_and_never_collide() {
        let mut ids: Vec<CallId> = (1..=5u8)
            .map(|i| Identity::from_seed([i; 32]).call_id())
            .collect();
        ids.sort_by_key(|id| id.as_bytes()[..4].to_vec());
        // Session numbers given in another order than the IDs': the tiles still follow the IDs.
        let keys: Vec<u64> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| tile_source(id, PeerId(10 - i as u32)))
            .collect();
        assert!(keys.windows(2).all(|k| k[0] < k[1]), "{keys:x?}");
        // The same member in two sessions (a rejoin) keeps its place; two sessions never share
        // a tile.
        let again = tile_source(&ids[0], PeerId(99));
        assert_ne!(again, keys[0]);
        assert!(again < keys[1]);
    }
}
