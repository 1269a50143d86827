//! Command-line definitions (clap derive). Names here are a contract: scripts and tests use them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::DEFAULT_SERVER;

/// End-to-end verified voice calls and chat, from a terminal or a script.
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
    /// List audio devices.
    Devices,
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
}
