//! One verified peer of a call: its media session, its receive pipeline, and its chat state.
//! A call holds these in a map keyed by [`PeerId`] (one entry today; a mesh conference holds
//! several, all fed by the same send pipelines).

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt};
use media::chat::ChatFrame;
use media::session::{Session, SessionEvent};
use signaling::identity::CallId;
use signaling::offer::CallToken;
use tokio::sync::mpsc;

use super::lip_sync::LipSync;
use super::pipeline::{AudioReceivePipeline, EncodedAudio, EncodedVideo, VideoReceivePipeline};
use crate::call::VideoFlow;

/// A peer's place in one call (not its identity: that is [`Peer::id`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PeerId(pub u32);

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "peer#{}", self.0)
    }
}

/// What woke the call up for one peer.
pub(crate) enum PeerInput {
    /// From the session; `None` when the session is gone.
    Session(Option<SessionEvent>),
    /// The connection state changed (maybe to failed or closed).
    StateChanged,
}

/// One connected, verified peer.
pub(crate) struct Peer {
    /// Its verified identity.
    pub(crate) id: CallId,
    /// The call token both signed.
    pub(crate) token: CallToken,
    pub(crate) session: Arc<Session>,
    events: mpsc::Receiver<SessionEvent>,
    /// Yields once per connection-state change; ends when the session is gone.
    state: BoxStream<'static, ()>,
    /// Its audio track, received.
    pub(crate) audio_rx: AudioReceivePipeline,
    /// Which way video flows with it.
    pub(crate) video: VideoFlow,
    /// Its video track, received (when [`VideoFlow::receives`]).
    pub(crate) video_rx: Option<VideoReceivePipeline>,
    /// Video frames handed to its session.
    pub(crate) video_frames_sent: u64,
    /// Its audio and video in step.
    pub(crate) lip_sync: LipSync,
    pub(crate) chat_open: bool,
    ping_n: u64,
    ping_out: Option<(u64, Instant)>,
    pub(crate) packets_sent: u64,
    pub(crate) bytes_sent: u64,
}

impl Peer {
    pub(crate) fn new(
        id: CallId,
        token: CallToken,
        session: Arc<Session>,
        events: mpsc::Receiver<SessionEvent>,
        audio_rx: AudioReceivePipeline,
        video: VideoFlow,
        video_rx: Option<VideoReceivePipeline>,
    ) -> Self {
        let state = futures::stream::unfold(session.state_changes(), |mut rx| async move {
            rx.changed().await.ok().map(|()| ((), rx))
        })
        .boxed();
        Self {
            id,
            token,
            session,
            events,
            state,
            audio_rx,
            video,
            video_rx,
            video_frames_sent: 0,
            lip_sync: LipSync::default(),
            chat_open: false,
            ping_n: 0,
            ping_out: None,
            packets_sent: 0,
            bytes_sent: 0,
        }
    }

    /// The next thing this peer's session reports.
    pub(crate) async fn next_input(&mut self) -> PeerInput {
        tokio::select! {
            ev = self.events.recv() => PeerInput::Session(ev),
            changed = self.state.next() => match changed {
                Some(()) => PeerInput::StateChanged,
                // The session dropped its state sender: it is gone.
                None => PeerInput::Session(None),
            },
        }
    }

    /// Sends one encoded audio packet; failures are logged, not fatal (the peer may be leaving).
    pub(crate) async fn send_audio(&mut self, packet: &EncodedAudio) {
        match self
            .session
            .send_audio(packet.payload.clone(), packet.duration)
            .await
        {
            Ok(()) => {
                self.packets_sent += 1;
                self.bytes_sent += packet.payload.len() as u64;
            }
            Err(e) => tracing::debug!(error = %e, "audio send failed"),
        }
    }

    /// Sends one encoded video frame if this peer receives video; returns whether it was
    /// handed to the session. Failures are logged, not fatal.
    pub(crate) async fn send_video(&mut self, frame: &EncodedVideo) -> bool {
        if !self.video.sends {
            return false;
        }
        match self
            .session
            .send_video_frame(&frame.data, frame.duration)
            .await
        {
            Ok(_) => {
                self.video_frames_sent += 1;
                self.bytes_sent += frame.data.len() as u64;
                true
            }
            Err(e) => {
                tracing::debug!(error = %e, "video send failed");
                false
            }
        }
    }

    /// Sends a chat frame, ignoring failure (pings, pongs, byes are best effort).
    pub(crate) async fn send_frame(&mut self, frame: &ChatFrame) {
        let _ = self.session.send_chat(Bytes::from(frame.encode())).await;
    }

    /// Starts a data-channel RTT probe.
    pub(crate) async fn ping(&mut self, now: Instant) {
        self.ping_n += 1;
        self.ping_out = Some((self.ping_n, now));
        self.send_frame(&ChatFrame::Ping { n: self.ping_n }).await;
    }

    /// The RTT if `n` answers the outstanding probe.
    pub(crate) fn pong(&mut self, n: u64, now: Instant) -> Option<std::time::Duration> {
        match self.ping_out.take() {
            Some((sent_n, at)) if sent_n == n => Some(now.saturating_duration_since(at)),
            _ => None,
        }
    }
}
