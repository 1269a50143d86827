//! A call as its owner sees it: [`Call`] (the handle: commands and the final report) and the
//! [`CallEvent`] stream. The loop that runs the call is in [`super::call_loop`].

use std::sync::Arc;

use native::video::{VideoSink, VideoSource};
use native::{AudioSink, AudioSource, VideoInSpec};
use signaling::identity::{safety_number, CallId, Identity};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::Instrument;

use super::call_loop::{Conference, Engine};
use super::pair_setup::{PairContext, PairUp};
use super::peer::PeerId;
use crate::call::setup::{self, Connected};
use crate::call::{
    CallError, CallOptions, CallReport, EndReason, IncomingDecision, VideoFlow, VideoOptions,
};
use crate::rooms::book::RoomBook;
use crate::rooms::mesh::{DropReason, Mesh};
use media::stats::CallStats;
use signaling::room::{CallSession, RoomId, SignedRoomMessage};

/// What a call tells its owner, in order. The stream ends after [`CallEvent::Ended`].
#[derive(Debug, Clone)]
pub enum CallEvent {
    /// A peer is connected and verified.
    Connected {
        /// Its place in this call.
        peer: PeerId,
        /// Its verified identity.
        id: CallId,
        /// The safety number to compare by voice.
        safety_number: String,
        /// Whether audio flows (false for a chat-only call).
        audio: bool,
        /// Which way video flows with this peer.
        video: VideoFlow,
    },
    /// A chat message arrived (the text is the peer's: escape it before showing it).
    ChatReceived {
        /// From whom.
        peer: PeerId,
        /// Its verified identity.
        id: CallId,
        /// The text.
        text: String,
        /// The sender's Unix milliseconds.
        ts_ms: u64,
    },
    /// Statistics, once a second.
    Stats(Box<CallStats>),
    /// A peer hung up.
    PeerHungUp {
        /// Which one.
        peer: PeerId,
    },
    /// A member left a room's call (it said so, was removed from the room, or went silent);
    /// the call goes on with the others. (A member joining is [`CallEvent::Connected`].)
    MemberLeft {
        /// Its place in this call.
        peer: PeerId,
        /// Its verified identity.
        id: CallId,
        /// Why.
        reason: DropReason,
    },
    /// A room's call, once a second: each member's audio level (dBFS, smoothed) and who is
    /// speaking.
    Levels {
        /// Each connected member's level.
        levels: Vec<(CallId, f32)>,
        /// The active speaker, if anyone speaks.
        speaker: Option<CallId>,
    },
    /// A room message arrived during a room's call (verified, stored, in its sender's order;
    /// the text is the sender's: escape it before showing it).
    RoomMessage(Box<SignedRoomMessage>),
    /// The call is over; [`Call::finished`] has the report.
    Ended {
        /// Why.
        reason: EndReason,
    },
}

/// What the owner asks of a running call.
#[derive(Debug, Clone)]
pub enum CallCommand {
    /// Send a chat message to every peer (kept until the channel opens).
    SendChat(String),
    /// Hang up.
    HangUp,
}

/// The events of one call.
pub type CallEvents = mpsc::UnboundedReceiver<CallEvent>;

/// A running call. Dropping it hangs up, like [`Call::hang_up`]; [`Call::finished`] waits for
/// the end without hanging up.
pub struct Call {
    commands: mpsc::UnboundedSender<CallCommand>,
    task: JoinHandle<Result<CallReport, CallError>>,
}

impl Call {
    /// Calls `peer`; returns once it is connected and verified (or failed), with the event stream.
    pub async fn dial(
        identity: Arc<Identity>,
        peer: CallId,
        opts: CallOptions,
    ) -> Result<(Call, CallEvents), CallError> {
        let ends = MediaEnds::open(&opts)?;
        Self::dial_with_ends(identity, peer, opts, ends).await
    }

    /// [`Call::dial`] with media ends the caller opened itself (a bench's timestamping sink, a
    /// test's generated source) instead of the ones `opts` names.
    pub async fn dial_with_ends(
        identity: Arc<Identity>,
        peer: CallId,
        mut opts: CallOptions,
        ends: MediaEnds,
    ) -> Result<(Call, CallEvents), CallError> {
        let connected = setup::dial_connected(&identity, peer, &mut opts).await?;
        Ok(Self::start(identity, opts, ends, connected))
    }

    /// Waits for one verified call, answers it, and returns once it is connected.
    pub async fn listen(
        identity: Arc<Identity>,
        decision: IncomingDecision,
        opts: CallOptions,
    ) -> Result<(Call, CallEvents), CallError> {
        let ends = MediaEnds::open(&opts)?;
        Self::listen_with_ends(identity, decision, opts, ends).await
    }

    /// [`Call::listen`] with media ends the caller opened itself.
    pub async fn listen_with_ends(
        identity: Arc<Identity>,
        decision: IncomingDecision,
        mut opts: CallOptions,
        ends: MediaEnds,
    ) -> Result<(Call, CallEvents), CallError> {
        let connected = setup::listen_connected(&identity, decision, &mut opts).await?;
        Ok(Self::start(identity, opts, ends, connected))
    }

    fn start(
        identity: Arc<Identity>,
        opts: CallOptions,
        ends: MediaEnds,
        connected: Connected,
    ) -> (Call, CallEvents) {
        let (commands, command_rx) = mpsc::unbounded_channel();
        let (events_tx, events) = mpsc::unbounded_channel();
        let identity_id = identity.call_id();
        let task = tokio::spawn(async move {
            let mut engine = Engine::new(
                identity,
                opts,
                ends,
                connected.client,
                command_rx,
                events_tx,
                connected.started,
            )?;
            engine.add_peer(
                connected.peer,
                connected.token,
                PairUp {
                    session: connected.session,
                    events: connected.events,
                    audio: connected.audio,
                    video: connected.video,
                    safety_number: safety_number(&identity_id, &connected.peer).to_string(),
                },
            )?;
            engine.run().await
        });
        (Call { commands, task }, events)
    }

    /// Joins the call of `room` (held in `book`): announces itself to every other member and
    /// sets up one verified session with each member in the call, and with each that joins
    /// later. Returns once the announcements are sent (not when anyone answers: an empty
    /// room's call waits for members). Typed chat goes to the room.
    pub async fn join(
        identity: Arc<Identity>,
        room: RoomId,
        book: RoomBook,
        opts: CallOptions,
    ) -> Result<(Call, CallEvents), CallError> {
        let ends = MediaEnds::open(&opts)?;
        Self::join_with_ends(identity, room, book, opts, ends).await
    }

    /// [`Call::join`] with media ends the caller opened itself.
    pub async fn join_with_ends(
        identity: Arc<Identity>,
        room: RoomId,
        book: RoomBook,
        opts: CallOptions,
        ends: MediaEnds,
    ) -> Result<(Call, CallEvents), CallError> {
        let me = identity.call_id();
        let held = book
            .store()
            .room(&room)
            .map_err(|e| CallError::Room(e.to_string()))?
            .ok_or_else(|| {
                CallError::Room(format!(
                    "no room {room} here: `call room list` shows the rooms you are in"
                ))
            })?;
        let state = held.current().state.clone();
        if state.member(&me).is_none() {
            return Err(CallError::Room(format!(
                "you are not a member of room {room}: you cannot join its call"
            )));
        }
        let started = std::time::Instant::now();
        let client = setup::connect(&identity, &opts).await?;
        let base_cfg = setup::session_config(&client.sender(), &opts, true, None).await;
        let (outcome_tx, outcomes) = mpsc::unbounded_channel();
        let ctx = PairContext {
            identity: Arc::clone(&identity),
            sender: client.sender(),
            timeout: opts.connect_timeout,
            outcomes: outcome_tx,
        };
        let mesh = Mesh::new(me, room, CallSession::random());
        let conference = Conference::new(book, state, mesh, ctx, outcomes, base_cfg);
        let (commands, command_rx) = mpsc::unbounded_channel();
        let (events_tx, events) = mpsc::unbounded_channel();
        let mut engine = Engine::new(identity, opts, ends, client, command_rx, events_tx, started)?;
        // Several members may run in one process (tests, benches): their logs say whose they are.
        let span = tracing::info_span!("member", me = %&me.to_string()[..8]);
        engine
            .start_conference(conference)
            .instrument(span.clone())
            .await;
        let task = tokio::spawn(engine.run().instrument(span));
        Ok((Call { commands, task }, events))
    }

    /// Sends a chat message to every peer.
    pub fn send_chat(&self, text: impl Into<String>) {
        let _ = self.commands.send(CallCommand::SendChat(text.into()));
    }

    /// Hangs up (the call ends with [`EndReason::LocalHangup`]).
    pub fn hang_up(&self) {
        let _ = self.commands.send(CallCommand::HangUp);
    }

    /// Stops the call at once without a word to anyone: no goodbye, no hang-up, sessions
    /// dropped. What a crash looks like to the peers (tests of a member that dies).
    pub fn kill(self) {
        self.task.abort();
    }

    /// Waits for the call to end and returns its report.
    pub async fn finished(self) -> Result<CallReport, CallError> {
        // Holding the command sender until the end: dropping it would hang up.
        let Call { commands, task } = self;
        let result = task.await;
        drop(commands);
        result.map_err(|e| CallError::Io(format!("the call task failed: {e}")))?
    }
}

/// The local ends of a call's media, opened before dialing so a missing device fails at once.
pub struct MediaEnds {
    /// Where sent audio comes from; `None` sends none (a chat-only call). The call sends audio
    /// only when [`CallOptions::audio_in`] is set too (that decides what the offer carries).
    pub source: Option<Box<dyn AudioSource>>,
    /// Where received audio goes.
    pub sink: Box<dyn AudioSink>,
    /// Where sent video comes from; `None` sends none. The call sends video only when
    /// [`CallOptions::video`] asks for an input too (that decides what the offer carries).
    pub video_source: Option<Box<dyn VideoSource>>,
    /// Where received video goes (and the self-view, for a window); `None` discards received
    /// pictures after counting them.
    pub video_sink: Option<Box<dyn VideoSink>>,
}

impl MediaEnds {
    /// Opens the devices or files `opts` names.
    pub fn open(opts: &CallOptions) -> Result<MediaEnds, CallError> {
        let source = match &opts.audio_in {
            Some(spec) => Some(native::open_source(spec)?),
            None => None,
        };
        let sink = native::open_sink(&opts.audio_out)?;
        let (video_source, video_sink) = match &opts.video {
            Some(v) => open_video_ends(v)?,
            None => (None, None),
        };
        Ok(MediaEnds {
            source,
            sink,
            video_source,
            video_sink,
        })
    }

    /// Audio ends only (no video source or sink).
    pub fn audio(source: Option<Box<dyn AudioSource>>, sink: Box<dyn AudioSink>) -> MediaEnds {
        MediaEnds {
            source,
            sink,
            video_source: None,
            video_sink: None,
        }
    }
}

/// A call's video source and sink.
type VideoEnds = (Option<Box<dyn VideoSource>>, Option<Box<dyn VideoSink>>);

/// Opens the video source and sink `v` names, at its size and rate. `VideoInSpec::None` is no
/// source (receive only).
fn open_video_ends(v: &VideoOptions) -> Result<VideoEnds, CallError> {
    let source = match &v.input {
        Some(VideoInSpec::None) | None => None,
        Some(spec) => Some(native::video::open_video_source(
            spec, v.width, v.height, v.fps,
        )?),
    };
    let sink = match &v.output {
        Some(spec) => Some(native::video::open_video_sink(
            spec, v.width, v.height, v.fps,
        )?),
        None => None,
    };
    Ok((source, sink))
}
