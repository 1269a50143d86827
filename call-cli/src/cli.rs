//! Command-line definitions (clap derive). Names here are a contract: scripts and tests use them.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use media::session::CandidateScope;

use native::{VideoInSpec, VideoOutSpec};

use crate::call::{CallOptions, VideoOptions};
use crate::config::DEFAULT_SERVER;
use crate::ice_server::{IceServerError, IceServerSpec};

/// End-to-end verified voice and video calls and chat, from a terminal or a script.
#[derive(Debug, Parser)]
#[command(name = "call", version, propagate_version = true)]
pub struct Cli {
    /// Config dir holding identity.key and known_peers [default: $XDG_CONFIG_HOME/call or ~/.config/call].
    #[arg(long, env = "CALL_CONFIG_DIR", global = true)]
    pub config_dir: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create or show your identity (an ed25519 key is the account).
    Id {
        /// Which identity action.
        #[command(subcommand)]
        action: IdAction,
    },
    /// Show the safety number you share with ID, to compare by voice.
    Verify {
        /// The other party's call ID.
        id: String,
    },
    /// Wait for a call and answer it.
    Listen(ListenArgs),
    /// Call someone.
    Dial(DialArgs),
    /// Text chat with someone, without audio.
    Chat(ChatArgs),
    /// Run a complete call on this machine: in-process signaling + TURN and two peers.
    Demo(DemoArgs),
    /// List audio devices and cameras.
    Devices,
    /// Join a room's conference call: a verified session with every member in it.
    Join(crate::rooms::join::JoinArgs),
    /// Rooms: persistent groups with a signed member list and a chat history kept here.
    Room {
        /// Which room action.
        #[command(subcommand)]
        action: crate::rooms::cli::RoomAction,
    },
}

/// `call id ...`
#[derive(Debug, Subcommand)]
pub enum IdAction {
    /// Create a new identity (refuses to replace one unless --force).
    New {
        /// Replace an existing identity (the old ID is lost for good).
        #[arg(long)]
        force: bool,
    },
    /// Print your call ID (alone on the last line).
    Show,
}

/// Options every call shares.
#[derive(Debug, Args, Clone)]
pub struct ConnArgs {
    /// Signaling server URL (ws:// or wss://).
    #[arg(long, env = "CALL_SERVER", default_value = DEFAULT_SERVER)]
    pub server: String,
    /// Extra root certificate (PEM) to trust for wss://, e.g. a self-signed server.
    #[arg(long, env = "CALL_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
    /// Give up if the call is not connected within this many seconds.
    #[arg(long, default_value_t = 15.0)]
    pub connect_timeout: f64,
    /// Use only TURN relay candidates (hides your address from the peer).
    #[arg(long)]
    pub relay_only: bool,
    /// Which local addresses to offer as ICE candidates; `auto` = loopback only when the server is on loopback.
    #[arg(long, value_enum, default_value_t = IceScope::Auto)]
    pub ice_scope: IceScope,
    /// Extra STUN/TURN server, added to those the signaling server hands out (repeatable):
    /// stun:HOST:PORT or turn:USER:PASSWORD@HOST:PORT?transport=udp (credentials visible in
    /// `ps`: prefer CALL_ICE_SERVERS, comma-separated).
    #[arg(
        long = "ice-server",
        env = "CALL_ICE_SERVERS",
        value_delimiter = ',',
        hide_env_values = true,
        value_name = "URL"
    )]
    pub ice_servers: Vec<IceServerArg>,
    /// Hang up after this many seconds of connected call.
    #[arg(long)]
    pub duration: Option<f64>,
    /// Write the final call statistics as JSON to this file.
    #[arg(long)]
    pub stats_json: Option<PathBuf>,
    /// Do not print the live statistics line every second.
    #[arg(long)]
    pub quiet: bool,
    /// Send this chat message once the chat channel is open (repeatable).
    #[arg(long = "say")]
    pub say: Vec<String>,
    /// Record the arrival trace of received audio packets to this file (for jitter replay).
    #[arg(long)]
    pub record_trace: Option<PathBuf>,
}

/// One `--ice-server` value as typed, parsed in [`ConnArgs::options`] so that a bad one is
/// reported by our own message (clap would echo the value, credential and all).
#[derive(Clone)]
pub struct IceServerArg(String);

impl std::str::FromStr for IceServerArg {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(IceServerArg(s.to_owned()))
    }
}

impl std::fmt::Debug for IceServerArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // It may hold a TURN password.
        f.write_str("IceServerArg(<redacted>)")
    }
}

/// Connection flags that do not make sense.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConnArgsError {
    /// A bad duration.
    #[error(transparent)]
    Duration(#[from] BadDuration),
    /// A bad `--ice-server` (counted from 1; the value is not echoed, it may hold a password).
    #[error("--ice-server #{index}: {error}")]
    IceServer {
        /// Which `--ice-server`, counted from 1.
        index: usize,
        /// What is wrong with it.
        error: IceServerError,
    },
}

/// A duration flag that is not a positive number of seconds.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[error("durations must be positive numbers of seconds, got {0}")]
pub struct BadDuration(pub f64);

/// A positive number of seconds as a [`Duration`].
pub fn secs(v: f64) -> Result<Duration, BadDuration> {
    if !(v.is_finite() && v > 0.0) {
        return Err(BadDuration(v));
    }
    Ok(Duration::from_secs_f64(v))
}

impl ConnArgs {
    /// Call options for these connection flags: the server, certificate, timeouts, candidates,
    /// stats, `--say` and the trace (media and chat input are the caller's to set).
    pub fn options(&self) -> Result<CallOptions, ConnArgsError> {
        let mut opts = CallOptions::scripted(&self.server);
        opts.ca_cert = self.ca_cert.clone();
        opts.duration = self.duration.map(secs).transpose()?;
        opts.connect_timeout = secs(self.connect_timeout)?;
        opts.relay_only = self.relay_only;
        opts.candidate_scope = match self.ice_scope {
            IceScope::Auto => None,
            IceScope::Loopback => Some(CandidateScope::LoopbackOnly),
            IceScope::All => Some(CandidateScope::All),
        };
        opts.stats_json = self.stats_json.clone();
        opts.live_stats = !self.quiet;
        opts.say = self.say.clone();
        opts.print_chat = true;
        opts.record_trace = self.record_trace.clone();
        for (i, arg) in self.ice_servers.iter().enumerate() {
            let spec = IceServerSpec::parse(&arg.0).map_err(|error| ConnArgsError::IceServer {
                index: i + 1,
                error,
            })?;
            opts.extra_ice_servers.push(spec.to_ice_server());
        }
        Ok(opts)
    }
}

/// Which addresses become host candidates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum IceScope {
    /// Loopback only if the signaling server is on loopback, else every interface.
    Auto,
    /// Loopback addresses only.
    Loopback,
    /// Every interface.
    All,
}

/// Audio options.
#[derive(Debug, Args, Clone)]
pub struct AudioArgs {
    /// Audio source: device[:NAME] | FILE.wav | sine:HZ | silence.
    #[arg(long, env = "CALL_AUDIO_IN", default_value = "device")]
    pub audio_in: String,
    /// Audio sink: device[:NAME] | FILE.wav | null.
    #[arg(long, env = "CALL_AUDIO_OUT", default_value = "device")]
    pub audio_out: String,
}

/// Video options. Any of `--video`, `--video-in`, `--video-out` turns video on.
#[derive(Debug, Args, Clone, Default)]
pub struct VideoArgs {
    /// Send and receive H.264 video next to the audio.
    #[arg(long)]
    pub video: bool,
    /// Video source: camera[:N|NAME] | pattern | FILE.y4m | none (receive only) [default: camera].
    #[arg(long, env = "CALL_VIDEO_IN")]
    pub video_in: Option<String>,
    /// Video sink: window | FILE.y4m | null | none (send only) [default: window if $DISPLAY is set, else null].
    #[arg(long, env = "CALL_VIDEO_OUT")]
    pub video_out: Option<String>,
    /// Video size WxH, even numbers (320x240, 640x480, 1280x720, ...).
    #[arg(long, env = "CALL_VIDEO_SIZE", default_value = "640x480")]
    pub video_size: String,
    /// Video frames per second (1 to 120).
    #[arg(long, env = "CALL_FPS", default_value_t = 30)]
    pub fps: u32,
}

impl VideoArgs {
    /// The video options these flags ask for; `None` when video is not asked for.
    /// `display` is `$DISPLAY`: the default sink is a window only when there is a display, so
    /// headless use never needs one.
    pub fn options(
        &self,
        display: Option<&std::ffi::OsStr>,
    ) -> anyhow::Result<Option<VideoOptions>> {
        if !(self.video || self.video_in.is_some() || self.video_out.is_some()) {
            return Ok(None);
        }
        let input = match self.video_in.as_deref() {
            None => Some(VideoInSpec::Camera(None)),
            Some("none") => None,
            Some(spec) => Some(spec.parse::<VideoInSpec>()?),
        };
        let output = match self.video_out.as_deref() {
            None if native::video::window::display_available(display) => Some(VideoOutSpec::Window),
            None => Some(VideoOutSpec::Null),
            Some("none") => None,
            Some(spec) => Some(spec.parse::<VideoOutSpec>()?),
        };
        let (width, height) = parse_video_size(&self.video_size)?;
        Ok(Some(VideoOptions {
            input,
            output,
            width,
            height,
            fps: self.fps,
        }))
    }
}

/// `WxH` with both even and non-zero (4:2:0 video); the devices check the upper limits.
pub fn parse_video_size(text: &str) -> anyhow::Result<(u32, u32)> {
    let parsed = text
        .split_once(['x', 'X'])
        .and_then(|(w, h)| Some((w.trim().parse::<u32>().ok()?, h.trim().parse::<u32>().ok()?)));
    match parsed {
        Some((w, h)) if w > 0 && h > 0 && w % 2 == 0 && h % 2 == 0 => Ok((w, h)),
        _ => anyhow::bail!(
            "bad --video-size `{text}`: expected WIDTHxHEIGHT with even numbers, e.g. 640x480 or 1280x720"
        ),
    }
}

/// `call listen`
#[derive(Debug, Args)]
pub struct ListenArgs {
    /// Answer without asking.
    #[arg(long)]
    pub auto_accept: bool,
    /// Connection options.
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Audio options.
    #[command(flatten)]
    pub audio: AudioArgs,
    /// Video options (a listener without them still receives the caller's video, shown nowhere).
    #[command(flatten)]
    pub video: VideoArgs,
}

/// Whom to call, with trust on first use.
#[derive(Debug, Args, Clone)]
pub struct PeerArgs {
    /// The call ID to call, or a name saved with --name.
    pub peer: String,
    /// Remember the ID under this name (trust on first use; a changed key is refused).
    #[arg(long)]
    pub name: Option<String>,
    /// Accept that the key saved for --name changed (only after verifying the new safety number!).
    #[arg(long)]
    pub accept_changed_key: bool,
}

/// `call dial`
#[derive(Debug, Args)]
pub struct DialArgs {
    /// Whom to call.
    #[command(flatten)]
    pub peer: PeerArgs,
    /// Connection options.
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Audio options.
    #[command(flatten)]
    pub audio: AudioArgs,
    /// Video options.
    #[command(flatten)]
    pub video: VideoArgs,
}

/// `call chat`
#[derive(Debug, Args)]
pub struct ChatArgs {
    /// Whom to chat with.
    #[command(flatten)]
    pub peer: PeerArgs,
    /// Connection options.
    #[command(flatten)]
    pub conn: ConnArgs,
}

/// `call demo`
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// How long the two peers talk, seconds.
    #[arg(long, default_value_t = 5.0)]
    pub duration: f64,
    /// Connect through the embedded TURN server only.
    #[arg(long)]
    pub relay_only: bool,
    /// Write what the listener hears to this WAV file.
    #[arg(long)]
    pub audio_out: Option<PathBuf>,
    /// Write the dialer's final statistics as JSON here.
    #[arg(long)]
    pub stats_json: Option<PathBuf>,
    /// Add video: the test pattern both ways, received into nothing (headless) unless
    /// --video-out says where the listener's pictures go.
    #[arg(long)]
    pub video: bool,
    /// Where the listener's received video goes: window | FILE.y4m | null.
    #[arg(long, default_value = "null")]
    pub video_out: String,
    /// Video size WxH for --video.
    #[arg(long, default_value = "640x480")]
    pub video_size: String,
    /// Video frames per second for --video.
    #[arg(long, default_value_t = 30)]
    pub fps: u32,
}

#[cfg(test)]
mod tests {

    #[test]
    fn connection_flags_become_call_options_and_bad_durations_are_refused() {
        let cli = Cli::try_parse_from([
            "call",
            "dial",
            "x",
            "--duration",
            "2.5",
            "--connect-timeout",
            "3",
            "--relay-only",
            "--ice-scope",
            "loopback",
            "--quiet",
            "--say",
            "hi",
        ])
        .unwrap();
        let Command::Dial(args) = cli.command else {
            panic!("dial");
        };
        let opts = args.conn.options().unwrap();
        assert_eq!(opts.duration, Some(Duration::from_millis(2500)));
        assert_eq!(opts.connect_timeout, Duration::from_secs(3));
        assert!(opts.relay_only && !opts.live_stats && opts.print_chat);
        assert_eq!(opts.candidate_scope, Some(CandidateScope::LoopbackOnly));
        assert_eq!(opts.say, ["hi"]);
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert_eq!(
                secs(bad).unwrap_err().to_string(),
                format!("durations must be positive numbers of seconds, got {bad}")
            );
        }
    }

    #[test]
    fn ice_servers_are_added_in_order_and_a_bad_one_is_named_by_position() {
        let parse = |extra: &[&str]| {
            let mut argv = vec!["call", "dial", "x"];
            argv.extend_from_slice(extra);
            let Command::Dial(args) = Cli::try_parse_from(argv).unwrap().command else {
                panic!("dial");
            };
            args.conn.options()
        };
        let opts = parse(&[
            "--ice-server",
            "stun:stun.example.org:3478",
            "--ice-server",
            "turn:1700000000:me:pw@turn.example.org?transport=udp",
        ])
        .unwrap();
        let urls: Vec<_> = opts
            .extra_ice_servers
            .iter()
            .map(|s| s.urls[0].as_str())
            .collect();
        assert_eq!(
            urls,
            [
                "stun:stun.example.org:3478",
                "turn:turn.example.org:3478?transport=udp"
            ]
        );
        assert_eq!(opts.extra_ice_servers[1].username, "1700000000:me");
        assert_eq!(opts.extra_ice_servers[1].credential, "pw");
        // A comma separates several in one value (as in CALL_ICE_SERVERS).
        let opts = parse(&["--ice-server", "stun:a.test,stun:b.test"]).unwrap();
        assert_eq!(opts.extra_ice_servers.len(), 2);

        let err = parse(&[
            "--ice-server",
            "stun:a.test",
            "--ice-server",
            "turn:u:topsecret@h:0",
        ])
        .unwrap_err();
        let text = err.to_string();
        assert_eq!(
            text,
            "--ice-server #2: \"0\" is not a port number (1 to 65535)"
        );
        assert!(!format!("{err:?}").contains("topsecret"));
        assert!(parse(&[]).unwrap().extra_ice_servers.is_empty());
    }

    use super::*;
    use std::ffi::OsStr;

    fn args(video: bool, video_in: Option<&str>, video_out: Option<&str>) -> VideoArgs {
        VideoArgs {
            video,
            video_in: video_in.map(str::to_owned),
            video_out: video_out.map(str::to_owned),
            video_size: "640x480".into(),
            fps: 30,
        }
    }

    #[test]
    fn video_is_off_unless_asked_for() {
        assert_eq!(args(false, None, None).options(None).unwrap(), None);
        let on = args(true, None, None).options(None).unwrap().unwrap();
        assert_eq!(on.input, Some(VideoInSpec::Camera(None)));
        assert_eq!((on.width, on.height, on.fps), (640, 480, 30));
        // --video-in alone turns video on too.
        let pattern = args(false, Some("pattern"), None).options(None).unwrap();
        assert_eq!(pattern.unwrap().input, Some(VideoInSpec::Pattern));
    }

    #[test]
    fn the_default_sink_is_a_window_only_with_a_display() {
        let headless = args(true, None, None).options(None).unwrap().unwrap();
        assert_eq!(headless.output, Some(VideoOutSpec::Null));
        let empty = args(true, None, None)
            .options(Some(OsStr::new("")))
            .unwrap();
        assert_eq!(empty.unwrap().output, Some(VideoOutSpec::Null));
        let desk = args(true, None, None)
            .options(Some(OsStr::new(":0")))
            .unwrap();
        assert_eq!(desk.unwrap().output, Some(VideoOutSpec::Window));
    }

    #[test]
    fn none_means_one_way() {
        let recv = args(true, Some("none"), None)
            .options(None)
            .unwrap()
            .unwrap();
        assert_eq!(recv.input, None);
        let send = args(true, None, Some("none"))
            .options(None)
            .unwrap()
            .unwrap();
        assert_eq!(send.output, None);
        assert!(args(true, Some("webcam"), None).options(None).is_err());
        assert!(args(true, None, Some("screen")).options(None).is_err());
    }

    #[test]
    fn video_sizes_must_be_even() {
        assert_eq!(parse_video_size("1280x720").unwrap(), (1280, 720));
        assert_eq!(parse_video_size("320X240").unwrap(), (320, 240));
        for bad in ["", "640", "641x480", "640x0", "x480", "axb", "640x480x2"] {
            let err = parse_video_size(bad).unwrap_err().to_string();
            assert!(err.contains("640x480"), "{bad}: {err}");
        }
    }
}
