//! `call join ROOM` (also `call room join ROOM`): joins a room's conference call through the
//! engine ([`Call::join`]) and shows it: members joining and leaving, each member's level and
//! the active speaker, room messages; lines typed go to the room. Ctrl-C or SIGTERM leaves.
//! `--video-out DIR` (an existing directory) writes each member's video to `DIR/<ID>.y4m`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use native::{AudioInSpec, AudioOutSpec};
use signaling::identity::{CallId, Identity};
use signaling::room::{HeldRoom, RoomId};
use tokio::sync::mpsc;

use super::book::RoomBook;
use super::cli::{member_name, message_line, resolve_room, ROOMS_FILE};
use super::store::RoomStore;
use crate::call::live_line::audio_line;
use crate::call::{CallOptions, ChatInput};
use crate::cli::{AudioArgs, ConnArgs, VideoArgs};
use crate::engine::{Call, CallEvent, CallEvents};
use crate::terminal_text::escape;

/// `call join ROOM`
#[derive(Debug, Args)]
pub struct JoinArgs {
    /// Room ID or name.
    pub room: String,
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

/// Joins the room's call as `me` (rooms in `dir`) and runs it until it ends; `lines` are the
/// typed lines (sent to the room).
pub async fn run(
    dir: &Path,
    me: Arc<Identity>,
    args: JoinArgs,
    lines: mpsc::Receiver<String>,
) -> Result<()> {
    let path = dir.join(ROOMS_FILE);
    let book = RoomBook::open(me.clone(), RoomStore::open(&path)?, Instant::now())?;
    let room = resolve_room(&book, &args.room)?;
    // A second connection for the names shown while the call's book writes (SQLite WAL).
    let names = RoomStore::open(&path)?;
    let opts = options(&args, lines)?;
    let live_stats = opts.live_stats;
    let (call, events) = Call::join(me.clone(), room, book, opts).await?;
    let held = names.room(&room)?.context("the room vanished")?;
    eprintln!(
        "joined the call of room {} ({} members); type to send to the room",
        escape(&held.current().state.name),
        held.current().state.members.len()
    );
    let view = View {
        me: me.call_id(),
        room,
        names,
        live_stats,
        bold: std::io::stdout().is_terminal(),
    };
    view.run(call, events).await
}

/// The call options the flags ask for (as `call dial` builds them; audio always on).
fn options(args: &JoinArgs, lines: mpsc::Receiver<String>) -> Result<CallOptions> {
    let mut opts = args.conn.options()?;
    opts.audio_in = Some(args.audio.audio_in.parse::<AudioInSpec>()?);
    opts.audio_out = args.audio.audio_out.parse::<AudioOutSpec>()?;
    // `--video-out DIR` (an existing directory): one Y4M per member there.
    let mut video = args.video.clone();
    if let Some(dir) = video.video_out.as_deref().map(PathBuf::from) {
        if dir.is_dir() {
            opts.video_out_dir = Some(dir);
            video.video_out = Some("null".into());
        }
    }
    opts.video = video.options(std::env::var_os("DISPLAY").as_deref())?;
    opts.chat_input = ChatInput::Lines(lines);
    Ok(opts)
}

/// What the terminal shows of a room's call.
struct View {
    me: CallId,
    room: RoomId,
    names: RoomStore,
    live_stats: bool,
    bold: bool,
}

impl View {
    async fn run(self, call: Call, events: CallEvents) -> Result<()> {
        let report = crate::call::front::drive(call, events, |event| self.show(event)).await?;
        eprintln!("left the call ({:?})", report.end);
        Ok(())
    }

    fn held(&self) -> Option<HeldRoom> {
        self.names.room(&self.room).ok().flatten()
    }

    fn name(&self, id: &CallId) -> String {
        match self.held() {
            Some(held) => member_name(&held, id),
            None => id.to_string(),
        }
    }

    fn show(&self, event: CallEvent) {
        match event {
            CallEvent::Connected {
                id, safety_number, ..
            } => {
                eprintln!("{} is in the call ({id})", self.name(&id));
                eprintln!("safety number: {safety_number} (compare it by voice)");
            }
            CallEvent::MemberLeft { id, reason, .. } => {
                eprintln!("{} left the call ({reason:?})", self.name(&id))
            }
            CallEvent::RoomMessage(msg) => {
                if let Some(held) = self.held() {
                    println!("{}", message_line(&held, &self.me, &msg, self.bold));
                }
            }
            CallEvent::Levels { levels, speaker } if self.live_stats && !levels.is_empty() => {
                let parts: Vec<String> = levels
                    .iter()
                    .map(|(id, db)| {
                        let mark = if Some(*id) == speaker { "*" } else { "" };
                        format!("{mark}{} {db:.0} dBFS", self.name(id))
                    })
                    .collect();
                eprintln!("levels: {}", parts.join(", "));
            }
            CallEvent::Stats(stats) if self.live_stats => eprintln!("{}", audio_line(&stats)),
            _ => {}
        }
    }
}
