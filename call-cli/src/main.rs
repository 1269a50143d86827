//! `call`: end-to-end verified voice calls and chat from a terminal or a script.

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use call_cli::call::{dial, listen, CallOptions, ChatInput, IncomingDecision};
use call_cli::cli::{AudioArgs, Cli, Command, ConnArgs, IdAction, PeerArgs, VideoArgs};
use call_cli::terminal_text::{escape, EscapingWriter};
use call_cli::{config, demo, id};
use clap::Parser;
use native::{AudioInSpec, AudioOutSpec};
use signaling::identity::CallId;
use signaling::known_peers::{KnownPeers, Trust};
use tokio::sync::mpsc;

/// Our warnings, but not webrtc-rs' chatter about sockets it closes during a normal hang-up.
/// `RUST_LOG` overrides it.
const DEFAULT_LOG_FILTER: &str = "warn,webrtc=error,webrtc_ice=error,webrtc_sctp=error,webrtc_dtls=error,webrtc_srtp=error,webrtc_data=error,webrtc_mdns=error,turn=error,interceptor=error";

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG_FILTER)),
        )
        // Log lines carry peer- and server-supplied text: escaped like everything else shown,
        // and without colour (its escape sequences would be escaped too).
        .with_writer(|| EscapingWriter::new(std::io::stderr()))
        .with_ansi(false)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: could not start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(cli));
    // Do not wait for a blocked stdin reader: everything else has been closed already.
    runtime.shutdown_timeout(Duration::from_millis(500));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", escape(&error_line(&e)));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line. A cause whose text the line already holds is left out:
/// many errors repeat their source in their own message (`audio: {0}` with `#[from]`), and
/// `{:#}` would print it twice.
fn error_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        if text.is_empty() || line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

async fn run(cli: Cli) -> Result<()> {
    let dir = config::config_dir(cli.config_dir.as_deref());
    match cli.command {
        Command::Id {
            action: IdAction::New { force },
        } => {
            let id = id::new_identity(&dir, force)?;
            eprintln!("created {}", config::identity_path(&dir).display());
            println!("{id}");
        }
        Command::Id {
            action: IdAction::Show,
        } => {
            let me = id::load_identity(&dir)?;
            println!("{}", me.call_id());
        }
        Command::Verify { id: text } => {
            let me = id::load_identity(&dir)?;
            let peer = resolve_peer(&dir, &text)?;
            for line in id::verify_lines(&me.call_id(), &peer) {
                println!("{line}");
            }
        }
        Command::Devices => {
            let devices = native::list_audio_devices()?;
            if devices.is_empty() {
                println!("no audio devices; use --audio-in sine:440 / FILE.wav and --audio-out FILE.wav / null");
            }
            for d in devices {
                println!("{}", escape(&d.to_string()));
            }
            for line in native::video::camera_lines() {
                println!("{}", escape(&line));
            }
        }
        Command::Join(args) => {
            let me = Arc::new(id::load_identity(&dir)?);
            call_cli::rooms::join::run(&dir, me, args, stdin_lines()).await?;
        }
        Command::Room { action } => {
            let me = id::load_identity(&dir)?;
            call_cli::rooms::cli::run(&dir, me, action, stdin_lines).await?;
        }
        Command::Listen(args) => {
            let me = Arc::new(id::load_identity(&dir)?);
            let mut opts = call_options(&args.conn, Some(&args.audio), Some(&args.video))?;
            let terminal = std::io::stdin().is_terminal();
            let decision = if args.auto_accept {
                IncomingDecision::AutoAccept
            } else if terminal {
                IncomingDecision::Prompt
            } else {
                IncomingDecision::Decline
            };
            opts.hang_up_at_end_of_input = terminal;
            opts.known_peers = known_peers(&dir);
            eprintln!(
                "listening as {} on {}",
                me.call_id(),
                escape(&args.conn.server)
            );
            listen(me, decision, opts).await?;
        }
        Command::Dial(args) => {
            let me = Arc::new(id::load_identity(&dir)?);
            let peer = trusted_peer(&dir, &args.peer)?;
            let mut opts = call_options(&args.conn, Some(&args.audio), Some(&args.video))?;
            opts.known_peers = known_peers(&dir);
            dial(me, peer, opts).await?;
        }
        Command::Chat(args) => {
            let me = Arc::new(id::load_identity(&dir)?);
            let peer = trusted_peer(&dir, &args.peer)?;
            let mut opts = call_options(&args.conn, None, None)?;
            opts.audio_out = AudioOutSpec::Null;
            opts.hang_up_at_end_of_input = true;
            opts.known_peers = known_peers(&dir);
            dial(me, peer, opts).await?;
        }
        Command::Demo(args) => {
            demo::run(&args).await?;
        }
    }
    Ok(())
}

/// Builds call options from flags; chat lines come from stdin.
fn call_options(
    conn: &ConnArgs,
    audio: Option<&AudioArgs>,
    video: Option<&VideoArgs>,
) -> Result<CallOptions> {
    let mut opts = conn.options()?;
    opts.audio_in = match audio {
        Some(a) => Some(a.audio_in.parse::<AudioInSpec>()?),
        None => None,
    };
    if let Some(a) = audio {
        opts.audio_out = a.audio_out.parse::<AudioOutSpec>()?;
    }
    if let Some(v) = video {
        opts.video = v.options(std::env::var_os("DISPLAY").as_deref())?;
    }
    opts.chat_input = ChatInput::Lines(stdin_lines());
    Ok(opts)
}

/// The one reader of stdin: a plain thread (so a pending read never holds up exit) whose lines
/// go to whoever holds the receiver, the accept prompt first and the chat after it. Nothing
/// else may read stdin, or typed answers would be lost to the other reader.
fn stdin_lines() -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel(16);
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if tx.blocking_send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The known_peers store, for showing names; a store that cannot be read is reported once and
/// IDs are shown instead.
fn known_peers(dir: &std::path::Path) -> Option<KnownPeers> {
    match KnownPeers::load(&KnownPeers::default_path(dir)) {
        Ok(peers) => Some(peers),
        Err(e) => {
            tracing::warn!(error = %e, "known_peers not readable; showing IDs without names");
            None
        }
    }
}

/// A call ID or a name from known_peers.
fn resolve_peer(dir: &std::path::Path, text: &str) -> Result<CallId> {
    if let Ok(id) = text.parse::<CallId>() {
        return Ok(id);
    }
    let peers = KnownPeers::load(&KnownPeers::default_path(dir))?;
    match peers.get(text) {
        Some(id) => Ok(*id),
        None => id::parse_call_id(text),
    }
}

/// Resolves the peer and applies trust on first use when a name is given.
fn trusted_peer(dir: &std::path::Path, args: &PeerArgs) -> Result<CallId> {
    let peer = resolve_peer(dir, &args.peer)?;
    let Some(name) = args.name.as_deref() else {
        return Ok(peer);
    };
    let path = KnownPeers::default_path(dir);
    let mut peers = KnownPeers::load(&path)?;
    match peers.check(name, &peer) {
        Trust::Known => {}
        Trust::New => {
            peers.remember(name, peer)?;
            peers.save().context("could not save known_peers")?;
            eprintln!("saved {} = {peer} (trust on first use)", escape(name));
        }
        Trust::Changed { previous } => {
            eprintln!("WARNING: the key for `{}` CHANGED", escape(name));
            eprintln!("  saved: {previous}");
            eprintln!("  now:   {peer}");
            if !args.accept_changed_key {
                bail!(call_cli::call::CallError::KeyChanged {
                    name: name.to_owned(),
                    previous,
                    new: peer
                });
            }
            peers.remember(name, peer)?;
            peers.save().context("could not save known_peers")?;
        }
    }
    Ok(peer)
}
