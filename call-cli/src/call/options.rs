//! What a call is asked to do, and what it reports at the end.

use std::path::PathBuf;
use std::time::Duration;

use media::session::{CandidateScope, IceServer};
use media::stats::CallStats;
use native::{AudioInSpec, AudioOutSpec, VideoInSpec, VideoOutSpec};
use signaling::identity::CallId;
use signaling::known_peers::KnownPeers;
use tokio::sync::mpsc;

/// Where chat lines to send come from.
#[derive(Debug, Default)]
pub enum ChatInput {
    /// Nothing to send.
    #[default]
    None,
    /// Lines from a channel (the terminal, or a test).
    Lines(mpsc::Receiver<String>),
}

impl ChatInput {
    /// The next line; `None` at the end of input; pending forever for [`ChatInput::None`].
    pub(crate) async fn next_line(&mut self) -> Option<String> {
        match self {
            ChatInput::None => std::future::pending().await,
            ChatInput::Lines(rx) => rx.recv().await,
        }
    }
}

/// How the listener decides about an incoming call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncomingDecision {
    /// Accept every verified call.
    AutoAccept,
    /// Ask: the question goes to stderr, the answer is the next line of
    /// [`CallOptions::chat_input`] (the same reader that later carries chat, so nothing else
    /// competes for the terminal). The end of input declines; without any input the offer
    /// expires unanswered.
    Prompt,
    /// Decline every call, saying there is no terminal to ask.
    Decline,
}

/// Video asked for by one side (`--video` and friends).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoOptions {
    /// Send video from here; `None` receives only.
    pub input: Option<VideoInSpec>,
    /// Show received video here; `None` sends only (the peer's video is not asked for).
    pub output: Option<VideoOutSpec>,
    /// Frame width in pixels (even).
    pub width: u32,
    /// Frame height in pixels (even).
    pub height: u32,
    /// Frames per second captured and sent.
    pub fps: u32,
}

impl Default for VideoOptions {
    /// The first camera to nowhere, 640x480 at 30 fps (the CLI picks the output: see README).
    fn default() -> Self {
        Self {
            input: Some(VideoInSpec::Camera(None)),
            output: Some(VideoOutSpec::Null),
            width: 640,
            height: 480,
            fps: 30,
        }
    }
}

/// Everything a call needs besides the identities.
#[derive(Debug)]
pub struct CallOptions {
    /// Signaling server URL.
    pub server: String,
    /// Extra root CA (PEM) for wss://.
    pub ca_cert: Option<PathBuf>,
    /// Send audio from here; `None` for chat-only calls.
    pub audio_in: Option<AudioInSpec>,
    /// Play received audio here.
    pub audio_out: AudioOutSpec,
    /// Video this side asks for; `None` for an audio call (a listener still receives the
    /// caller's video then: see [`super::VideoFlow`]).
    pub video: Option<VideoOptions>,
    /// Hang up after this long connected.
    pub duration: Option<Duration>,
    /// Give up connecting after this long.
    pub connect_timeout: Duration,
    /// TURN relay candidates only.
    pub relay_only: bool,
    /// Host candidate scope; `None` = loopback only if the server is on loopback.
    pub candidate_scope: Option<CandidateScope>,
    /// Replace the TURN servers the signaling server hands out (tests put an impairment relay here).
    pub turn_override: Option<Vec<String>>,
    /// Extra ICE servers.
    pub extra_ice_servers: Vec<IceServer>,
    /// Write final stats JSON here.
    pub stats_json: Option<PathBuf>,
    /// Print the live stats line on stderr every second.
    pub live_stats: bool,
    /// Chat messages to send once the channel opens.
    pub say: Vec<String>,
    /// Further chat lines.
    pub chat_input: ChatInput,
    /// Print received chat lines on stdout.
    pub print_chat: bool,
    /// Record received-audio arrivals here.
    pub record_trace: Option<PathBuf>,
    /// End a chat-only call when the chat input ends (Ctrl-D, end of a pipe): `call chat`,
    /// and a listener whose input is a terminal.
    pub hang_up_at_end_of_input: bool,
    /// Names to show for peers (chat lines, the accept prompt); IDs are shown without it.
    pub known_peers: Option<KnownPeers>,
    /// A room's call: each member's received video goes to `<its call ID>.y4m` in this
    /// directory (instead of the one video sink).
    pub video_out_dir: Option<PathBuf>,
}

impl CallOptions {
    /// Options for a scripted call on `server` with generated audio and no terminal output.
    pub fn scripted(server: &str) -> CallOptions {
        CallOptions {
            server: server.to_owned(),
            ca_cert: None,
            audio_in: Some(AudioInSpec::Silence),
            audio_out: AudioOutSpec::Null,
            video: None,
            duration: Some(Duration::from_secs(2)),
            connect_timeout: Duration::from_secs(15),
            relay_only: false,
            candidate_scope: None,
            turn_override: None,
            extra_ice_servers: Vec::new(),
            stats_json: None,
            live_stats: false,
            say: Vec::new(),
            chat_input: ChatInput::None,
            print_chat: false,
            record_trace: None,
            hang_up_at_end_of_input: false,
            known_peers: None,
            video_out_dir: None,
        }
    }
}

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// `--duration` elapsed.
    DurationElapsed,
    /// We hung up (Ctrl-C, end of chat input).
    LocalHangup,
    /// The peer hung up.
    RemoteHangup,
    /// The connection was lost.
    ConnectionLost,
}

/// What a finished call reports.
#[derive(Debug, Clone)]
pub struct CallReport {
    /// The other party.
    pub peer: CallId,
    /// Safety number both sides can compare.
    pub safety_number: String,
    /// Final statistics.
    pub stats: CallStats,
    /// Chat texts received, in order.
    pub chat_received: Vec<String>,
    /// Why the call ended.
    pub end: EndReason,
}
