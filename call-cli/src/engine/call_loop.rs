//! The loop that runs a connected call: one `select!` that only moves events between the
//! sans-IO pipelines, the peers' sessions, the signaling client and the owner's commands; each
//! branch is one small method of [`Engine`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::select_all;
use futures::FutureExt;
use media::chat::{ChatError, ChatFrame};
use media::codec::opus::{EncoderConfig, FRAME_SAMPLES};
use media::session::{RtcpFeedback, SessionEvent};
use media::stats::{CallStats, Rtt, RttSource};
use native::video::{NullVideoSink, VideoSink};
use native::{AudioSink, AudioSource};
use signaling::client::Client;
use signaling::envelope::EnvelopeKind;
use signaling::identity::{safety_number, CallId, Identity};
use signaling::offer::HangupBody;
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;

use super::call::{CallCommand, CallEvent, MediaEnds};
use super::congestion::{Congestion, EncoderSetting};
use super::pair_setup::PairUp;
use super::peer::{Peer, PeerId, PeerInput};
use super::pipeline::{
    AudioReceivePipeline, AudioSendPipeline, DecodedVideo, VideoFeedback, VideoReceivePipeline,
    AUDIO_FRAME,
};
use super::video::{to_video_frame, Captured, LocalVideo};
use crate::call::{answer_busy, client_error_code, ChatLog};
use crate::call::{now_unix_ms, CallError, CallOptions, CallReport, ChatInput, EndReason};
use crate::terminal_text::escape;

mod conference;

/// How long a hang-up that came through signaling waits for the peer's data channel. The
/// peer sends its last chat lines and `bye` on the channel and the hang-up through the server
/// at once; the server's path can be the faster, and ending at once would drop lines still
/// in flight on the channel.
const HANGUP_GRACE: Duration = Duration::from_millis(500);
mod room_frame;
use conference::tile_source;
pub(crate) use conference::Conference;

/// The local audio track: the device or file it reads, and its one encoder.
struct LocalAudio {
    source: Box<dyn AudioSource>,
    /// The source ended or failed: silence from now on.
    done: bool,
    pcm: Vec<i16>,
    pipeline: AudioSendPipeline,
}

impl LocalAudio {
    /// Reads one frame (silence once the source is done) into the send pipeline.
    fn capture(&mut self, now: Instant) -> Result<(), CallError> {
        if !self.done {
            match self.source.read_frame(&mut self.pcm) {
                Ok(true) => {}
                Ok(false) => {
                    self.done = true;
                    tracing::info!("audio source ended; sending silence");
                }
                Err(e) => {
                    tracing::warn!(error = %e, "audio source failed; sending silence");
                    self.done = true;
                }
            }
        }
        if self.done {
            self.pcm.fill(0);
        }
        self.pipeline.push(&self.pcm, now)?;
        Ok(())
    }
}

/// The call's state; [`Engine::run`] is its loop.
pub(crate) struct Engine {
    identity: Arc<Identity>,
    opts: CallOptions,
    client: Client,
    /// Once the signaling connection is gone `client.recv()` returns `None` at once, every time:
    /// stop polling it, or the loop spins.
    signaling_open: bool,
    /// A signed hang-up came through signaling while the peer's chat channel was open: the
    /// call ends at the channel's `bye` or close, or at this deadline (see [`HANGUP_GRACE`]).
    hangup_grace: Option<(PeerId, tokio::time::Instant)>,
    peers: BTreeMap<PeerId, Peer>,
    next_peer: u32,
    audio: Option<LocalAudio>,
    sink: Box<dyn AudioSink>,
    /// The local video track, when this side has a video source.
    video: Option<LocalVideo>,
    /// Rate control of the local video's encoder (with local video only).
    congestion: Option<Congestion>,
    /// Where received pictures go (a null sink when video arrives that nobody asked to see).
    video_sink: Option<Box<dyn VideoSink>>,
    stats: CallStats,
    chat_received: ChatLog,
    chat_seq: u64,
    pending_say: Vec<String>,
    chat_input: ChatInput,
    input_done: bool,
    commands: mpsc::UnboundedReceiver<CallCommand>,
    events: mpsc::UnboundedSender<CallEvent>,
    started: Instant,
    connected_at: Instant,
    last_sent_bytes: u64,
    last_recv_bytes: u64,
    /// A room's call: the mesh of pairs and the mix (`None` in a 1:1 call).
    conference: Option<Box<Conference>>,
}

impl Engine {
    pub(crate) fn new(
        identity: Arc<Identity>,
        mut opts: CallOptions,
        ends: MediaEnds,
        client: Client,
        commands: mpsc::UnboundedReceiver<CallCommand>,
        events: mpsc::UnboundedSender<CallEvent>,
        started: Instant,
    ) -> Result<Self, CallError> {
        let audio = match ends.source {
            Some(source) if opts.audio_in.is_some() => Some(LocalAudio {
                source,
                done: false,
                pcm: vec![0; FRAME_SAMPLES],
                pipeline: AudioSendPipeline::new(&EncoderConfig::default())?,
            }),
            _ => None,
        };
        let video = match (ends.video_source, &opts.video) {
            (Some(source), Some(v)) => {
                let self_view = matches!(v.output, Some(native::VideoOutSpec::Window));
                Some(LocalVideo::start(source, v, self_view)?)
            }
            _ => None,
        };
        let congestion = match (&video, &opts.video) {
            (Some(_), Some(v)) => Some(Congestion::new(v.width, v.height, v.fps)),
            _ => None,
        };
        let now = Instant::now();
        Ok(Self {
            identity,
            pending_say: std::mem::take(&mut opts.say),
            chat_input: std::mem::take(&mut opts.chat_input),
            opts,
            client,
            signaling_open: true,
            hangup_grace: None,
            peers: BTreeMap::new(),
            next_peer: 0,
            audio,
            sink: ends.sink,
            video,
            congestion,
            video_sink: ends.video_sink,
            stats: CallStats::default(),
            chat_received: ChatLog::default(),
            chat_seq: 0,
            input_done: false,
            commands,
            events,
            started,
            connected_at: now,
            last_sent_bytes: 0,
            last_recv_bytes: 0,
            conference: None,
        })
    }

    fn emit(&self, event: CallEvent) {
        // The owner may have stopped listening; the call goes on.
        let _ = self.events.send(event);
    }

    pub(crate) fn add_peer(
        &mut self,
        id: CallId,
        token: signaling::offer::CallToken,
        up: PairUp,
    ) -> Result<PeerId, CallError> {
        let PairUp {
            session,
            events,
            audio,
            video,
            safety_number,
        } = up;
        let mut audio_rx = AudioReceivePipeline::new()?;
        if self.opts.record_trace.is_some() {
            audio_rx = audio_rx.record_trace();
        }
        let video_rx = if video.receives {
            if self.video_sink.is_none() {
                self.video_sink = Some(Box::new(NullVideoSink::default()));
            }
            Some(VideoReceivePipeline::new(
                Instant::now(),
                native::video::pattern::unix_micros(),
            )?)
        } else {
            None
        };
        if let Some(local) = self.video.as_ref().filter(|_| video.sends) {
            // A new peer starts decoding at a keyframe.
            local.start_encoding();
            local.request_keyframe();
        }
        let peer = PeerId(self.next_peer);
        self.next_peer += 1;
        if let Some(cc) = self.congestion.as_mut().filter(|_| video.sends) {
            cc.add_peer(peer);
        }
        self.peers.insert(
            peer,
            Peer::new(id, token, session, events, audio_rx, video, video_rx),
        );
        self.emit(CallEvent::Connected {
            peer,
            id,
            safety_number,
            audio,
            video,
        });
        Ok(peer)
    }

    /// A chat-only call that hangs up when its input ends (`call chat`).
    fn ends_with_input(&self) -> bool {
        self.opts.audio_in.is_none()
            && self.opts.hang_up_at_end_of_input
            && self.opts.duration.is_none()
    }

    pub(crate) async fn run(mut self) -> Result<CallReport, CallError> {
        self.connected_at = Instant::now();
        let deadline = self
            .opts
            .duration
            .map(|d| tokio::time::Instant::from_std(self.connected_at + d));
        let mut send_tick = tokio::time::interval(AUDIO_FRAME);
        send_tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
        let mut play_tick = tokio::time::interval(AUDIO_FRAME);
        play_tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
        let mut stats_tick = tokio::time::interval(Duration::from_secs(1));
        stats_tick.reset();
        let sending = self.audio.is_some();
        let mut phased_to: Option<Instant> = None;

        let end = loop {
            // Biased, in two groups. First the rare branches (the end of the call, the owner's
            // commands, the once-a-second stats and silence check, the mesh's and the book's
            // timers): not ready almost always, so they cost nothing, but when the machine cannot
            // keep up the always-ready audio ticks and peer input must not starve them (6
            // debug-build members on 2 cores once ran 20 s calls for 35-53 s). Then media; the
            // peer's data channel is ordered (chat, then bye) and the signaling hang-up is a
            // fallback: taking peer input before signaling keeps a last chat line from losing
            // that race.
            let capturing = self.video.as_ref().is_some_and(|v| !v.done);
            let video_wake = self.video_deadline();
            let mesh_wake = self.conference_deadline();
            let book_wake = self.book_deadline();
            let grace_end = self.hangup_grace.map(|(_, at)| at);
            let step = tokio::select! {
                biased;
                _ = sleep_until(deadline) => Some(EndReason::DurationElapsed),
                command = self.commands.recv() => match command {
                    Some(CallCommand::SendChat(text)) => self.on_chat_line(Some(text)).await,
                    // `None`: the owner dropped its `Call`, so nobody could end the call later.
                    Some(CallCommand::HangUp) | None => Some(EndReason::LocalHangup),
                },
                _ = stats_tick.tick() => { self.on_stats_tick().await; None }
                _ = sleep_until(grace_end) => self.on_hangup_grace_over().await,
                _ = sleep_until(mesh_wake) => self.on_mesh_timer().await,
                _ = sleep_until(book_wake) => self.on_book_timer().await,
                outcome = conference::next_outcome(&mut self.conference) => self.on_pair_outcome(outcome).await,
                _ = send_tick.tick(), if sending => self.on_send_tick().await?,
                _ = play_tick.tick() => self.on_play_tick()?,
                captured = next_capture(&mut self.video), if capturing => self.on_video_captured(captured).await,
                _ = sleep_until(video_wake) => { self.on_video_timer().await; None }
                (peer, input) = next_peer_input(&mut self.peers) => self.on_peer_input(peer, input).await,
                incoming = self.client.recv(), if self.signaling_open => self.on_signaling(incoming).await,
                line = self.chat_input.next_line() => self.on_chat_line(line).await,
            };
            if let Some(end) = step {
                break end;
            }
            // Before the first audio plays, the play clock follows the moment the jitter
            // buffer can start (once per new moment, so a past one cannot make it spin).
            let start = self
                .peers
                .values()
                .filter_map(|p| p.audio_rx.start_at())
                .min();
            if start.is_some() && start != phased_to {
                phased_to = start;
                if let Some(at) = start {
                    play_tick.reset_at(tokio::time::Instant::from_std(at));
                }
            }
        };
        self.finish(end).await
    }

    async fn on_send_tick(&mut self) -> Result<Option<EndReason>, CallError> {
        let Some(audio) = self.audio.as_mut() else {
            return Ok(None);
        };
        audio.capture(Instant::now())?;
        while let Some(packet) = audio.pipeline.poll() {
            // One encoder, its output fanned out to every peer.
            for peer in self.peers.values_mut() {
                peer.send_audio(&packet).await;
            }
        }
        Ok(None)
    }

    fn on_play_tick(&mut self) -> Result<Option<EndReason>, CallError> {
        if self.conference.is_some() {
            return self.on_play_tick_mixed();
        }
        let now = Instant::now();
        for peer in self.peers.values_mut() {
            // With several peers a mixer goes here (next issue); today there is one.
            if let Some(frame) = peer.audio_rx.poll(now)? {
                if self.stats.first_audio_ms.is_none() {
                    self.stats.first_audio_ms = Some(self.started.elapsed().as_secs_f64() * 1e3);
                }
                self.stats.audio_level_dbfs = media::codec::pcm::rms_dbfs(frame);
                if let Err(e) = self.sink.write_frame(frame) {
                    tracing::warn!(error = %e, "audio sink failed");
                }
            }
            // Lip sync: what audio plays now, and how long audio should wait for video.
            let extra = peer
                .lip_sync
                .audio_played(peer.audio_rx.playout_timestamp(), now);
            peer.audio_rx.set_extra_delay(extra);
        }
        Ok(None)
    }

    async fn on_peer_input(&mut self, id: PeerId, input: PeerInput) -> Option<EndReason> {
        if let (Some(c), PeerInput::Session(Some(ev))) = (self.conference.as_mut(), &input) {
            // Media or data-channel traffic only: RTCP may still come from a dead member's
            // transport, which outlives its engine for a while.
            if matches!(
                ev,
                SessionEvent::Audio(_) | SessionEvent::Video(_) | SessionEvent::Chat(_)
            ) {
                c.heard(id, Instant::now());
            }
        }
        let peer = self.peers.get_mut(&id)?;
        let event = match input {
            PeerInput::StateChanged if peer.session.is_failed_or_closed() => {
                return self.peer_lost(id).await
            }
            PeerInput::StateChanged => return None,
            PeerInput::Session(None) => return self.peer_lost(id).await,
            PeerInput::Session(Some(ev)) => ev,
        };
        match event {
            SessionEvent::Audio(pkt) => {
                peer.lip_sync.on_audio_ssrc(pkt.ssrc);
                peer.audio_rx.push(&pkt, pkt.arrival);
                None
            }
            SessionEvent::Video(pkt) => {
                if let Some(rx) = peer.video_rx.as_mut() {
                    peer.lip_sync.on_video_ssrc(pkt.ssrc);
                    rx.push(&pkt, pkt.arrival);
                    self.drain_video(id).await;
                }
                None
            }
            SessionEvent::Rtcp {
                kind:
                    RtcpFeedback::SenderReport {
                        ssrc, ntp, rtp_ts, ..
                    },
                ..
            } => {
                peer.lip_sync.on_sender_report(ssrc, ntp, rtp_ts);
                None
            }
            SessionEvent::Rtcp { kind, at } => {
                self.on_rtcp(id, kind, at);
                None
            }
            SessionEvent::TransportFeedback { results, at } => {
                let rate = self.congestion.as_mut()?.on_feedback(id, &results, at);
                self.apply_rate(rate);
                None
            }
            SessionEvent::ChatOpen => {
                peer.chat_open = true;
                for text in std::mem::take(&mut self.pending_say) {
                    self.send_text(&text).await;
                }
                (self.input_done && self.ends_with_input()).then_some(EndReason::LocalHangup)
            }
            SessionEvent::Chat(bytes) => self.on_chat_frame(id, &bytes).await,
            SessionEvent::ChatClosed => self.peer_hung_up(id).await,
            // Events this engine does not use.
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }

    /// A picture from the capture thread: self-view, then its one encoding to every peer that
    /// receives video. `None`: the source is done.
    async fn on_video_captured(&mut self, captured: Option<Captured>) -> Option<EndReason> {
        let local = self.video.as_mut()?;
        let Some(captured) = captured else {
            local.done = true;
            return None;
        };
        if let (Some(sink), Some(frame)) = (self.video_sink.as_mut(), &captured.self_view) {
            if let Err(e) = sink.show_self_view(frame, captured.at) {
                tracing::debug!(error = %e, "self-view not shown");
            }
        }
        for encoded in &captured.encoded {
            let mut sent = false;
            for peer in self.peers.values_mut() {
                sent |= peer.send_video(encoded).await;
            }
            local.frames_sent += u64::from(sent);
        }
        None
    }

    /// Pictures and feedback of one peer's video that are due now: pictures to the sink, NACKs
    /// and keyframe requests to its session.
    async fn drain_video(&mut self, id: PeerId) {
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        let Some(rx) = peer.video_rx.as_mut() else {
            return;
        };
        let source = self.conference.as_ref().map(|_| tile_source(&peer.id, id));
        loop {
            let started = Instant::now();
            let Some(decoded) = rx.poll_frame(started) else {
                break;
            };
            rx.add_decode_time(started.elapsed());
            if let Some(due) = peer.lip_sync.schedule(decoded, Instant::now()) {
                // A room's call with `--video-out DIR`: the member's own file; with a window,
                // the member's tile.
                let member_sink = self.conference.as_mut().and_then(|c| c.member_sink(id));
                show_remote(member_sink.or(self.video_sink.as_deref_mut()), source, &due);
            }
        }
        for due in peer.lip_sync.due(Instant::now()) {
            let member_sink = self.conference.as_mut().and_then(|c| c.member_sink(id));
            show_remote(member_sink.or(self.video_sink.as_deref_mut()), source, &due);
        }
        while let Some(feedback) = rx.poll_feedback(Instant::now()) {
            let sent = match feedback {
                VideoFeedback::Nack(seqs) => peer.session.send_nack(&seqs).await,
                VideoFeedback::KeyframeRequest => peer.session.request_keyframe().await,
            };
            if let Err(e) = sent {
                tracing::debug!(error = %e, "video feedback not sent");
            }
        }
    }

    /// The earliest time a receive pipeline wants polling without a new packet; at least a
    /// millisecond ahead, so a deadline the pipeline does not clear cannot spin the loop.
    fn video_deadline(&self) -> Option<tokio::time::Instant> {
        let soonest = Instant::now() + Duration::from_millis(1);
        self.peers
            .values()
            .filter_map(|p| {
                let rx = p.video_rx.as_ref()?.poll_timeout();
                match (rx, p.lip_sync.next_due()) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            })
            .min()
            .map(|at| tokio::time::Instant::from_std(at.max(soonest)))
    }

    async fn on_video_timer(&mut self) {
        let ids: Vec<PeerId> = self.peers.keys().copied().collect();
        for id in ids {
            self.drain_video(id).await;
        }
    }

    /// RTCP about our video: PLI and FIR give every peer one IDR (the encoder is shared); NACKs
    /// were answered by the session already and are only counted.
    fn on_rtcp(&mut self, peer: PeerId, kind: RtcpFeedback, at: Instant) {
        if let (RtcpFeedback::ReceiverReport { blocks, .. }, Some(cc)) =
            (&kind, self.congestion.as_mut())
        {
            let rtt = self
                .stats
                .rtt_ms
                .map(|ms| Duration::from_secs_f64(ms / 1e3));
            // The worst block: audio and video share the path.
            if let Some(lost) = blocks.iter().map(|b| b.fraction_lost).max() {
                let rate = cc.on_receiver_report(peer, lost, rtt, at);
                self.apply_rate(rate);
            }
        }
        let Some(local) = self.video.as_mut() else {
            return;
        };
        match kind {
            RtcpFeedback::Pli { .. } => {
                local.pli_count += 1;
                local.request_keyframe();
            }
            RtcpFeedback::Fir { .. } => {
                local.fir_count += 1;
                local.request_keyframe();
            }
            RtcpFeedback::Nack { .. } => local.nack_count += 1,
            _ => {}
        }
    }

    /// Hands a new setting from congestion control to the encoder.
    fn apply_rate(&mut self, setting: Option<EncoderSetting>) {
        if let (Some(setting), Some(local)) = (setting, self.video.as_ref()) {
            tracing::debug!(?setting, "video encoder setting");
            local.set_bitrate(setting.bps);
            local.set_rung(setting.rung);
        }
    }

    async fn on_chat_frame(&mut self, id: PeerId, bytes: &[u8]) -> Option<EndReason> {
        let peer = self.peers.get_mut(&id)?;
        match ChatFrame::parse(bytes) {
            Ok(ChatFrame::Text { text, ts_ms, .. }) => {
                let from = peer.id;
                if !self.chat_received.push(text.clone()) && self.chat_received.dropped() == 1 {
                    tracing::info!("received chat beyond the kept limit is shown, not kept");
                }
                self.emit(CallEvent::ChatReceived {
                    peer: id,
                    id: from,
                    text,
                    ts_ms,
                });
            }
            Ok(ChatFrame::Ping { n }) => peer.send_frame(&ChatFrame::Pong { n }).await,
            Ok(ChatFrame::Pong { n }) => {
                if let Some(value) = peer.pong(n, Instant::now()) {
                    self.stats.offer_rtt(Rtt {
                        value,
                        source: RttSource::DataChannel,
                    });
                }
            }
            Ok(ChatFrame::Bye { .. }) => return self.peer_hung_up(id).await,
            Ok(ChatFrame::RoomMsg { msg }) => return self.on_room_frame(id, msg.as_bytes()).await,
            Err(ChatError::UnknownType(t)) => {
                self.stats.chat_frames_ignored += 1;
                tracing::debug!(frame_type = ?t, "ignored a chat frame of unknown type");
            }
            Err(e) => {
                self.stats.chat_frames_malformed += 1;
                tracing::warn!(error = %e, "dropped a malformed chat frame");
            }
        }
        None
    }

    /// A peer left; with one peer that ends the call (a room's call goes on).
    async fn peer_hung_up(&mut self, id: PeerId) -> Option<EndReason> {
        if self.conference.is_some() {
            return self.member_hung_up(id).await;
        }
        self.emit(CallEvent::PeerHungUp { peer: id });
        Some(EndReason::RemoteHangup)
    }

    /// The peer hung up through signaling and its data channel said nothing more in time.
    async fn on_hangup_grace_over(&mut self) -> Option<EndReason> {
        let (id, _) = self.hangup_grace.take()?;
        self.peer_hung_up(id).await
    }

    async fn on_signaling(
        &mut self,
        incoming: Option<Result<signaling::client::Incoming, signaling::client::ClientError>>,
    ) -> Option<EndReason> {
        if self.conference.is_some() {
            return self.on_conference_signaling(incoming).await;
        }
        match incoming {
            Some(Ok(m)) if matches!(m.kind, EnvelopeKind::Hangup | EnvelopeKind::Reject) => {
                let Some((&id, peer)) = self.peers.iter().find(|(_, p)| p.id == m.from) else {
                    tracing::debug!(from = %m.from, "hang-up from a third party ignored");
                    return None;
                };
                match HangupBody::parse(&m.plaintext) {
                    Ok(h) if h.call_id == peer.token && peer.chat_open => {
                        let at = tokio::time::Instant::now() + HANGUP_GRACE;
                        self.hangup_grace.get_or_insert((id, at));
                    }
                    Ok(h) if h.call_id == peer.token => return self.peer_hung_up(id).await,
                    Ok(h) => tracing::debug!(call = %h.call_id, "hang-up for another call ignored"),
                    Err(e) => {
                        tracing::warn!(code = e.code(), error = %e, "ignored an unreadable hang-up from the peer")
                    }
                }
            }
            Some(Ok(m)) if m.kind == EnvelopeKind::Offer => {
                answer_busy(&self.client, &self.identity, &m, &self.opts).await;
            }
            Some(Ok(m)) => {
                tracing::debug!(from = %m.from, kind = ?m.kind, "ignored during the call")
            }
            Some(Err(e)) => {
                tracing::warn!(code = client_error_code(&e), error = %e, "ignored a signaling message")
            }
            // Losing signaling does not end a connected call: media is peer to peer.
            None => {
                self.signaling_open = false;
                tracing::warn!("signaling connection lost; the call continues");
            }
        }
        None
    }

    async fn on_chat_line(&mut self, line: Option<String>) -> Option<EndReason> {
        // A room's text need not wait for a data channel: members without one get it through
        // the server.
        let chat_open = self.conference.is_some() || self.peers.values().any(|p| p.chat_open);
        match line {
            Some(text) if text.trim().is_empty() => None,
            Some(text) if chat_open => {
                self.send_text(&text).await;
                None
            }
            Some(text) => {
                self.pending_say.push(text);
                None
            }
            None => {
                // End of input hangs up a chat-only call, once what was typed has been sent.
                self.chat_input = ChatInput::None;
                self.input_done = true;
                (chat_open && self.ends_with_input()).then_some(EndReason::LocalHangup)
            }
        }
    }

    async fn send_text(&mut self, text: &str) {
        if self.conference.is_some() {
            return self.send_room_text(text).await;
        }
        self.chat_seq += 1;
        let frame = match ChatFrame::text(self.chat_seq, now_unix_ms(), text) {
            Ok(frame) => frame,
            Err(e) => return eprintln!("chat message not sent: {}", escape(&e.to_string())),
        };
        let bytes = bytes::Bytes::from(frame.encode());
        for peer in self.peers.values_mut().filter(|p| p.chat_open) {
            if let Err(e) = peer.session.send_chat(bytes.clone()).await {
                eprintln!("chat message not sent: {}", escape(&e.to_string()));
            }
        }
    }

    async fn on_stats_tick(&mut self) {
        let now = Instant::now();
        for peer in self.peers.values_mut() {
            let transport = peer.session.transport_stats().await;
            if let Some(rtt) = transport.rtt_measurement() {
                self.stats.offer_rtt(rtt);
                if let Some(rx) = peer.video_rx.as_mut() {
                    rx.set_rtt(rtt.value);
                }
            }
            if peer.chat_open {
                // RTT over the data channel: what a chat message actually experiences.
                peer.ping(now).await;
            }
            self.stats.candidate_type = transport.local_candidate_type;
        }
        self.stats.elapsed_s = self.connected_at.elapsed().as_secs_f64();
        let (sent, received) = self.fill_counters();
        // Saturating: the totals drop when a room's member leaves (its counters go with it).
        self.stats.send_kbps = sent.saturating_sub(self.last_sent_bytes) as f64 * 8.0 / 1e3;
        self.stats.recv_kbps = received.saturating_sub(self.last_recv_bytes) as f64 * 8.0 / 1e3;
        self.last_sent_bytes = sent;
        self.last_recv_bytes = received;
        self.emit(CallEvent::Stats(Box::new(self.stats.clone())));
        self.on_conference_tick().await;
    }

    /// Copies the peers' counters into the statistics; returns (bytes sent, bytes received).
    fn fill_counters(&mut self) -> (u64, u64) {
        let (mut sent, mut received, mut packets, mut retransmitted) = (0, 0, 0, 0);
        let now = Instant::now();
        for peer in self.peers.values() {
            peer.audio_rx.fill_stats(&mut self.stats);
            sent += peer.bytes_sent;
            packets += peer.packets_sent;
            received += peer.audio_rx.bytes_received();
            retransmitted += peer.session.video_retransmitted();
            if let Some(rx) = &peer.video_rx {
                received += rx.bytes_received();
                // With several peers this becomes one entry per remote track.
                self.stats.video_received = Some(rx.stats(now));
            }
        }
        self.stats.packets_sent = packets;
        if let Some(local) = &self.video {
            let mut sent = local.stats(retransmitted);
            sent.available_outgoing_bitrate = self
                .congestion
                .as_ref()
                .and_then(|cc| cc.available_outgoing_bitrate(Instant::now()));
            self.stats.video_sent = Some(sent);
            let late = local.capture_late();
            if late > 0 {
                tracing::debug!(late, "pictures not taken while the loop was behind");
            }
        }
        (sent, received)
    }

    async fn finish(mut self, end: EndReason) -> Result<CallReport, CallError> {
        self.leave_conference().await;
        if matches!(end, EndReason::DurationElapsed | EndReason::LocalHangup) {
            for peer in self.peers.values_mut() {
                // Tell the peer both ways: the data channel is fastest, signaling works if media broke.
                let reason = signaling::offer::reason::HANG_UP;
                peer.send_frame(&ChatFrame::Bye {
                    reason: reason.into(),
                })
                .await;
                let body = HangupBody {
                    call_id: peer.token,
                    reason: reason.into(),
                }
                .to_json();
                let _ = self
                    .client
                    .send(&peer.id, EnvelopeKind::Hangup, &body)
                    .await;
            }
        }
        for peer in self.peers.values_mut() {
            peer.session.close().await;
        }
        if let Err(e) = self.sink.finish() {
            tracing::warn!(error = %e, "finishing the audio sink");
        }
        // Pictures lip sync still holds were decoded: show them before the sink closes.
        let in_room = self.conference.is_some();
        for (&id, peer) in self.peers.iter_mut() {
            let source = in_room.then(|| tile_source(&peer.id, id));
            for held in peer.lip_sync.flush() {
                show_remote(self.video_sink.as_deref_mut(), source, &held);
            }
        }
        if let Some(sink) = self.video_sink.as_mut() {
            if let Err(e) = sink.finish() {
                tracing::warn!(error = %e, "finishing the video sink");
            }
        }
        self.stats.elapsed_s = self.connected_at.elapsed().as_secs_f64();
        self.fill_counters();
        let written = self.write_files();
        let peer = self
            .peers
            .values()
            .next()
            .map(|p| p.id)
            .unwrap_or_else(|| self.identity.call_id());
        let report = CallReport {
            peer,
            safety_number: safety_number(&self.identity.call_id(), &peer).to_string(),
            stats: self.stats.clone(),
            chat_received: std::mem::take(&mut self.chat_received).into_texts(),
            end,
        };
        let events = self.events.clone();
        self.client.close().await;
        let _ = events.send(CallEvent::Ended { reason: end });
        written.map(|()| report)
    }

    /// `--record-trace` and `--stats-json`.
    fn write_files(&mut self) -> Result<(), CallError> {
        if let Some(path) = &self.opts.record_trace {
            let trace = self
                .peers
                .values_mut()
                .next()
                .and_then(|p| p.audio_rx.take_trace());
            if let Some(trace) = trace {
                std::fs::write(path, trace.to_string()).map_err(|e| {
                    CallError::Io(format!(
                        "could not write the trace to {}: {e}",
                        path.display()
                    ))
                })?;
            }
        }
        if let Some(path) = &self.opts.stats_json {
            let json = serde_json::to_vec_pretty(&self.stats).unwrap_or_default();
            std::fs::write(path, json).map_err(|e| {
                CallError::Io(format!("could not write stats to {}: {e}", path.display()))
            })?;
        }
        Ok(())
    }
}

/// The next picture of the local video (pending forever without one).
async fn next_capture(video: &mut Option<LocalVideo>) -> Option<Captured> {
    match video {
        Some(v) => v.next().await,
        None => std::future::pending().await,
    }
}

/// Gives a decoded remote picture to the sink: as the picture of `source` (a room's member)
/// when there is one, so a window shows each member in its own tile.
fn show_remote(
    sink: Option<&mut (dyn VideoSink + 'static)>,
    source: Option<u64>,
    decoded: &DecodedVideo,
) {
    let Some(sink) = sink else {
        return;
    };
    let frame = to_video_frame(&decoded.frame);
    let shown = match source {
        Some(source) => sink.show_from(source, &frame, Instant::now()),
        None => sink.show(&frame, Instant::now()),
    };
    if let Err(e) = shown {
        tracing::debug!(error = %e, "received picture not shown");
    }
}

/// The next input from any peer (pending forever while there is none).
async fn next_peer_input(peers: &mut BTreeMap<PeerId, Peer>) -> (PeerId, PeerInput) {
    if peers.is_empty() {
        return std::future::pending().await;
    }
    let waits = peers
        .iter_mut()
        .map(|(&id, peer)| async move { (id, peer.next_input().await) }.boxed());
    select_all(waits).await.0
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
