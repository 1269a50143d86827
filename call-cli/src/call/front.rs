//! The terminal front end of a call: runs a [`Call`] and shows its events (the connected lines,
//! chat on stdout, the live stats line), and hangs up on Ctrl-C or SIGTERM.

use std::sync::Arc;

use signaling::identity::{CallId, Identity};
use signaling::known_peers::KnownPeers;

use super::live_line::{audio_line, chat_line};
use super::peer_name::{chat_label, known_name};
use super::{CallError, CallOptions, CallReport, IncomingDecision, VideoFlow};
use crate::engine::{Call, CallEvent, CallEvents};
use crate::terminal_text::escape;

/// Calls `peer` and runs the call until it ends.
pub async fn dial(
    identity: Arc<Identity>,
    peer: CallId,
    opts: CallOptions,
) -> Result<CallReport, CallError> {
    let view = View::new(&opts);
    let (call, events) = Call::dial(identity, peer, opts).await?;
    view.run(call, events).await
}

/// Waits for one verified call, answers it, and runs it until it ends. While waiting, a lost
/// signaling connection is re-established with backoff (the listener is a service).
pub async fn listen(
    identity: Arc<Identity>,
    decision: IncomingDecision,
    opts: CallOptions,
) -> Result<CallReport, CallError> {
    let view = View::new(&opts);
    let (call, events) = Call::listen(identity, decision, opts).await?;
    view.run(call, events).await
}

/// What the terminal shows of a call.
struct View {
    live_stats: bool,
    print_chat: bool,
    known_peers: Option<KnownPeers>,
    /// Whether the call carries audio (which stats line to show).
    audio: bool,
}

impl View {
    fn new(opts: &CallOptions) -> Self {
        Self {
            live_stats: opts.live_stats,
            print_chat: opts.print_chat,
            known_peers: opts.known_peers.clone(),
            audio: opts.audio_in.is_some(),
        }
    }

    async fn run(mut self, call: Call, events: CallEvents) -> Result<CallReport, CallError> {
        let report = drive(call, events, |event| self.show(event)).await?;
        if self.live_stats {
            eprintln!(
                "call ended ({:?}): {}",
                report.end,
                self.line(&report.stats)
            );
        }
        Ok(report)
    }

    fn line(&self, stats: &media::stats::CallStats) -> String {
        if self.audio {
            audio_line(stats)
        } else {
            chat_line(stats)
        }
    }

    fn show(&mut self, event: CallEvent) {
        match event {
            CallEvent::Connected {
                id,
                safety_number,
                audio,
                video,
                ..
            } => {
                self.audio = audio;
                if self.live_stats || self.print_chat {
                    match known_name(self.known_peers.as_ref(), &id) {
                        Some(name) => eprintln!("connected to {name} ({id})"),
                        None => eprintln!("connected to {id}"),
                    }
                    eprintln!("safety number: {safety_number} (compare it by voice)");
                    if let Some(line) = video_line(video) {
                        eprintln!("{line}");
                    }
                }
            }
            CallEvent::ChatReceived {
                id, text, ts_ms, ..
            } if self.print_chat => println!(
                "[{}] {}: {}",
                clock(ts_ms),
                chat_label(self.known_peers.as_ref(), &id),
                escape(&text)
            ),
            CallEvent::Stats(stats) if self.live_stats => eprintln!("{}", self.line(&stats)),
            _ => {}
        }
    }
}

/// What the connected lines say about video, if the call has any.
fn video_line(video: VideoFlow) -> Option<&'static str> {
    match (video.sends, video.receives) {
        (true, true) => Some("video: sending and receiving"),
        (true, false) => Some("video: sending (the peer sends none)"),
        (false, true) => Some("video: receiving (sending none)"),
        (false, false) => None,
    }
}

/// Shows every event of `call` until it ends; Ctrl-C or SIGTERM (e.g. from a script's `kill`)
/// hangs up as cleanly as the owner would. Returns the report.
pub(crate) async fn drive(
    call: Call,
    mut events: CallEvents,
    mut show: impl FnMut(CallEvent),
) -> Result<CallReport, CallError> {
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut sigterm =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let mut hung_up = false;
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Some(event) => show(event),
                None => break,
            },
            _ = &mut ctrl_c, if !hung_up => { hung_up = true; call.hang_up(); }
            _ = terminated(&mut sigterm), if !hung_up => { hung_up = true; call.hang_up(); }
        }
    }
    call.finished().await
}

async fn terminated(signal: &mut Option<tokio::signal::unix::Signal>) {
    match signal {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending().await,
    }
}

/// `HH:MM:SS` (UTC) of a Unix-milliseconds timestamp.
fn clock(ts_ms: u64) -> String {
    let s = ts_ms / 1000;
    format!("{:02}:{:02}:{:02}", (s / 3600) % 24, (s / 60) % 60, s % 60)
}
