//! `call room …`: the room commands (clap definitions and what each does). Everything a peer
//! wrote (room and member names, message text) is escaped before it reaches the terminal.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use signaling::client::{Client, ClientOptions};
use signaling::identity::{safety_number, CallId, Identity};
use signaling::room::{HeldRoom, MessageId, Role, RoomId, SignedRoomMessage};

use super::book::{RoomBook, RoomEvent};
use super::net;
use super::store::RoomStore;
use crate::call::now_unix_ms;
use crate::config::DEFAULT_SERVER;
use crate::terminal_text::escape;

/// File name of the room database inside the config dir.
pub const ROOMS_FILE: &str = "rooms.sqlite3";

/// Where the server is (for the commands that talk to other members).
#[derive(Debug, Args, Clone)]
pub struct RoomConn {
    /// Signaling server URL (ws:// or wss://).
    #[arg(long, env = "CALL_SERVER", default_value = DEFAULT_SERVER)]
    pub server: String,
    /// Extra root certificate (PEM) to trust for wss://.
    #[arg(long, env = "CALL_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
}

/// `call room …`
#[derive(Debug, Subcommand)]
pub enum RoomAction {
    /// Create a room with you as its admin; prints its ID on the last line.
    New {
        /// The room's name (up to 64 bytes).
        name: String,
        /// Your name in the room.
        #[arg(long = "as", env = "CALL_NAME", default_value = "")]
        my_name: String,
    },
    /// Add a member (or change its name or role); every member is told.
    Invite {
        /// Room ID or name.
        room: String,
        /// The new member's call ID.
        id: String,
        /// Its name in the room.
        #[arg(long, default_value = "")]
        name: String,
        /// Make it an admin.
        #[arg(long)]
        admin: bool,
        #[command(flatten)]
        conn: RoomConn,
    },
    /// Remove a member; it is told, and gets nothing sent after.
    Remove {
        /// Room ID or name.
        room: String,
        /// The member's call ID.
        id: String,
        #[command(flatten)]
        conn: RoomConn,
    },
    /// Leave a room (the others are told) and forget it here.
    Leave {
        /// Room ID or name.
        room: String,
        #[command(flatten)]
        conn: RoomConn,
    },
    /// The rooms you are in.
    List,
    /// A room's members, their roles and the safety number you share with each.
    Show {
        /// Room ID or name.
        room: String,
    },
    /// Send one message to a room.
    Send {
        /// Room ID or name.
        room: String,
        /// The text.
        text: String,
        /// Answer this message (its ID, or a unique prefix of at least 6 hex digits).
        #[arg(long)]
        reply: Option<String>,
        #[command(flatten)]
        conn: RoomConn,
    },
    /// Fetch what was sent to you while you were offline, and print it.
    Sync {
        #[command(flatten)]
        conn: RoomConn,
    },
    /// A room's history, as kept on this machine.
    History {
        /// Room ID or name.
        room: String,
        /// One JSON array instead of lines.
        #[arg(long)]
        json: bool,
        /// Only the last N messages.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Join the room's conference call (same as `call join`).
    Join(Box<super::join::JoinArgs>),
    /// Chat in a room (no call): lines you type are sent; `/reply ID TEXT` answers a message;
    /// Ctrl-D leaves the chat.
    Chat {
        /// Room ID or name.
        room: String,
        #[command(flatten)]
        conn: RoomConn,
    },
}

/// Runs one room command as `me`, with the room database in `dir`; `stdin_lines` gives the
/// typed lines (the front end's one stdin reader) for `call room chat`.
pub async fn run(
    dir: &Path,
    me: Identity,
    action: RoomAction,
    stdin_lines: impl FnOnce() -> tokio::sync::mpsc::Receiver<String>,
) -> Result<()> {
    let me = Arc::new(me);
    let store = RoomStore::open(&dir.join(ROOMS_FILE))?;
    let mut book = RoomBook::open(me.clone(), store, Instant::now())?;
    match action {
        RoomAction::New { name, my_name } => {
            let room = book.create(&name, &my_name, now_unix_ms())?;
            eprintln!("created room {}", escape(&name));
            println!("{room}");
        }
        RoomAction::Invite {
            room,
            id,
            name,
            admin,
            conn,
        } => {
            let room = resolve_room(&book, &room)?;
            let id = crate::id::parse_call_id(&id)?;
            let mut client = connect(&conn, &me).await?;
            let taken = net::take_kept(&mut client, &mut book).await;
            print_events(&book, &me.call_id(), &taken.events);
            let out = book.invite(&room, id, &name, admin, now_unix_ms())?;
            net::send_all(&client, &out).await?;
            eprintln!("invited {id}; {} member(s) told", out.len());
            let late = net::finish(client, &mut book).await;
            print_events(&book, &me.call_id(), &late.events);
        }
        RoomAction::Remove { room, id, conn } => {
            let room = resolve_room(&book, &room)?;
            let id = crate::id::parse_call_id(&id)?;
            let mut client = connect(&conn, &me).await?;
            net::take_kept(&mut client, &mut book).await;
            let out = book.remove(&room, id, now_unix_ms())?;
            net::send_all(&client, &out).await?;
            eprintln!("removed {id}");
            let late = net::finish(client, &mut book).await;
            print_events(&book, &me.call_id(), &late.events);
        }
        RoomAction::Leave { room, conn } => {
            let room = resolve_room(&book, &room)?;
            let mut client = connect(&conn, &me).await?;
            net::take_kept(&mut client, &mut book).await;
            let out = book.leave(&room, now_unix_ms())?;
            net::send_all(&client, &out).await?;
            eprintln!("left room {room}");
            let late = net::finish(client, &mut book).await;
            print_events(&book, &me.call_id(), &late.events);
        }
        RoomAction::List => {
            let rooms = book.store().rooms()?;
            if rooms.is_empty() {
                eprintln!("no rooms yet: `call room new NAME` creates one");
            }
            for held in rooms {
                println!("{}", list_line(&held, &me.call_id()));
            }
        }
        RoomAction::Show { room } => {
            let room = resolve_room(&book, &room)?;
            let held = book.store().room(&room)?.context("room vanished")?;
            for line in show_lines(&held, &me.call_id()) {
                println!("{line}");
            }
        }
        RoomAction::Send {
            room,
            text,
            reply,
            conn,
        } => {
            let room = resolve_room(&book, &room)?;
            let reply_to = reply
                .map(|r| resolve_message(book.store(), &room, &r))
                .transpose()?;
            let mut client = connect(&conn, &me).await?;
            net::take_kept(&mut client, &mut book).await;
            let (msg, out) = book.send(&room, &text, reply_to, now_unix_ms())?;
            net::send_all(&client, &out).await?;
            eprintln!("sent to {} member(s)", out.len());
            println!("{}", msg.id());
            let late = net::finish(client, &mut book).await;
            print_events(&book, &me.call_id(), &late.events);
        }
        RoomAction::Sync { conn } => {
            let mut client = connect(&conn, &me).await?;
            let taken = net::take_kept(&mut client, &mut book).await;
            print_events(&book, &me.call_id(), &taken.events);
            eprintln!(
                "{} update(s) taken, {} refused",
                taken.events.len(),
                taken.refused
            );
            let late = net::finish(client, &mut book).await;
            print_events(&book, &me.call_id(), &late.events);
        }
        RoomAction::History { room, json, limit } => {
            let room = resolve_room(&book, &room)?;
            let held = book.store().room(&room)?.context("room vanished")?;
            let history = book.store().history(&room, limit)?;
            if json {
                let items: Vec<_> = history
                    .iter()
                    .map(|m| history_json(&held, &m.message, m.received_ms))
                    .collect();
                println!("{}", serde_json::Value::Array(items));
            } else {
                for m in &history {
                    println!("{}", message_line(&held, &me.call_id(), &m.message, false));
                }
            }
        }
        RoomAction::Join(args) => super::join::run(dir, me, *args, stdin_lines()).await?,
        RoomAction::Chat { room, conn } => {
            let room = resolve_room(&book, &room)?;
            let client = connect(&conn, &me).await?;
            super::chat::run(&mut book, room, client, stdin_lines()).await?;
        }
    }
    Ok(())
}

async fn connect(conn: &RoomConn, me: &Arc<Identity>) -> Result<Client> {
    let opts = ClientOptions {
        extra_root_ca: conn.ca_cert.clone(),
        ..ClientOptions::default()
    };
    net::connect(&conn.server, me.clone(), opts)
        .await
        .with_context(|| {
            format!(
                "could not reach the signaling server {}",
                escape(&conn.server)
            )
        })
}

/// A room by ID, or by its name when exactly one held room has it.
pub fn resolve_room(book: &RoomBook, text: &str) -> Result<RoomId> {
    if let Ok(id) = text.parse::<RoomId>() {
        return Ok(id);
    }
    let rooms = book.store().rooms()?;
    let matches: Vec<_> = rooms
        .iter()
        .filter(|r| r.current().state.name == text)
        .collect();
    match matches.as_slice() {
        [one] => Ok(one.current().state.room),
        [] => match text.parse::<RoomId>() {
            Err(e) => bail!(
                "`{}` is neither a room ID ({e}) nor the name of one of your rooms (`call room list`)",
                escape(text)
            ),
            Ok(id) => Ok(id),
        },
        _ => bail!(
            "several of your rooms are called `{}`: use the room ID (`call room list`)",
            escape(text)
        ),
    }
}

/// [`resolve_message`] in a book's store.
pub fn resolve_message_in(book: &RoomBook, room: &RoomId, text: &str) -> Result<MessageId> {
    resolve_message(book.store(), room, text)
}

/// A message ID, or a unique prefix (≥ 6 hex digits) of one in this room's history.
fn resolve_message(store: &RoomStore, room: &RoomId, text: &str) -> Result<MessageId> {
    if let Ok(id) = text.parse::<MessageId>() {
        return Ok(id);
    }
    let prefix = text.to_ascii_lowercase();
    if prefix.len() < 6 || !prefix.chars().all(|c| c.is_ascii_hexdigit()) {
        bail!(
            "`{}` is not a message ID (6 to 32 hex digits)",
            escape(text)
        );
    }
    let found: Vec<_> = store
        .history(room, usize::MAX >> 1)?
        .into_iter()
        .map(|m| m.message.id())
        .filter(|id| id.to_string().starts_with(&prefix))
        .collect();
    match found.as_slice() {
        [one] => Ok(*one),
        [] => bail!("no message {prefix}… in this room"),
        _ => bail!("several messages start with {prefix}: give more digits"),
    }
}

/// A member's name as shown: the room's name for it, or the start of its ID.
pub fn member_name(held: &HeldRoom, id: &CallId) -> String {
    match held.current().state.member(id) {
        Some(m) if !m.name.is_empty() => escape(&m.name).into_owned(),
        _ => id.to_string()[..8].to_owned(),
    }
}

fn list_line(held: &HeldRoom, me: &CallId) -> String {
    let s = &held.current().state;
    let role = match s.member(me).map(|m| m.role) {
        Some(Role::Admin) => "admin",
        Some(Role::Member) => "member",
        None => "removed",
    };
    format!(
        "{}  {}  {} member(s)  you: {role}",
        s.room,
        escape(&s.name),
        s.members.len()
    )
}

fn show_lines(held: &HeldRoom, me: &CallId) -> Vec<String> {
    let s = &held.current().state;
    let mut lines = vec![
        format!("room:    {}", escape(&s.name)),
        format!("id:      {}", s.room),
        format!(
            "version: {} (signed by {})",
            s.version,
            member_name(held, &held.current().signer)
        ),
    ];
    if s.member(me).is_none() {
        lines.push("you were removed from this room".into());
    }
    for m in &s.members {
        let role = match m.role {
            Role::Admin => "admin ",
            Role::Member => "member",
        };
        let safety = if m.id == *me {
            "(you)".to_owned()
        } else {
            format!("safety number {}", safety_number(me, &m.id))
        };
        lines.push(format!(
            "{role}  {}  {}  {safety}",
            member_name(held, &m.id),
            m.id
        ));
    }
    lines
}

/// One message as a line: `[HH:MM:SS] name: text  #id`, with the quoted message's ID for a
/// reply and a mark when it mentions this member (`@name`).
pub fn message_line(held: &HeldRoom, me: &CallId, msg: &SignedRoomMessage, bold: bool) -> String {
    let m = &msg.msg;
    let my_name = held
        .current()
        .state
        .member(me)
        .map(|x| x.name.clone())
        .unwrap_or_default();
    let mentioned = !my_name.is_empty() && m.text.contains(&format!("@{my_name}"));
    let mut text = escape(&m.text).into_owned();
    if mentioned && bold {
        let tag = format!("@{}", escape(&my_name));
        text = text.replace(&tag, &format!("\x1b[1m{tag}\x1b[0m"));
    }
    let reply = m
        .reply_to
        .map(|r| format!("↪ #{} ", &r.to_string()[..8]))
        .unwrap_or_default();
    format!(
        "{}[{}] {}: {reply}{text}  #{}",
        if mentioned { "! " } else { "" },
        clock(m.ts_ms),
        member_name(held, &m.sender),
        &msg.id().to_string()[..8]
    )
}

fn history_json(held: &HeldRoom, msg: &SignedRoomMessage, received_ms: u64) -> serde_json::Value {
    let m = &msg.msg;
    serde_json::json!({
        "id": msg.id().to_string(),
        "sender": m.sender.to_string(),
        "sender_name": held.current().state.member(&m.sender).map(|x| x.name.clone()),
        "seq": m.seq,
        "ts_ms": m.ts_ms,
        "received_ms": received_ms,
        "reply_to": m.reply_to.map(|r| r.to_string()),
        "text": m.text,
    })
}

/// `HH:MM:SS` (UTC) of a Unix-ms time.
fn clock(ms: u64) -> String {
    let s = ms / 1000;
    format!("{:02}:{:02}:{:02}", (s / 3600) % 24, (s / 60) % 60, s % 60)
}

/// Prints what changed: joins, updates and removals on stderr, messages on stdout.
pub fn print_events(book: &RoomBook, me: &CallId, events: &[RoomEvent]) {
    let bold = std::io::stdout().is_terminal();
    for e in events {
        match e {
            RoomEvent::Joined { room, by } => match book.store().room(room) {
                Ok(Some(held)) => eprintln!(
                    "joined room {} ({room}), invited by {}",
                    escape(&held.current().state.name),
                    member_name(&held, by)
                ),
                _ => eprintln!("joined room {room}"),
            },
            RoomEvent::Updated { room, version } => {
                eprintln!("room {room} is now at version {version}")
            }
            RoomEvent::Removed { room } => eprintln!("you were removed from room {room}"),
            RoomEvent::Message(msg) => {
                if let Ok(Some(held)) = book.store().room(&msg.msg.room) {
                    println!("{}", message_line(&held, me, msg, bold));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use signaling::room::{RoomMessage, RoomState};

    #[test]
    fn peer_text_is_escaped_and_mentions_are_marked() {
        let alice = Identity::from_seed([1; 32]);
        let room = RoomId::from_bytes([1; 16]);
        let mut state = RoomState::create(room, "r\u{202e}oom", alice.call_id(), "Al\x1b[2Jice", 0);
        state.name = "room".into();
        let signed = state.sign(&alice);
        // The member name carries an escape sequence: refused at signing (control characters).
        assert!(signed.is_err());
        let signed = RoomState::create(room, "room", alice.call_id(), "Alice", 0)
            .sign(&alice)
            .unwrap();
        let held = HeldRoom::first(signed, &alice.call_id()).unwrap();
        let msg = RoomMessage {
            room,
            sender: alice.call_id(),
            seq: 1,
            ts_ms: 3_723_000,
            reply_to: None,
            text: "hi @Alice\u{202e}!".into(),
        }
        .sign(&alice)
        .unwrap();
        let line = message_line(&held, &alice.call_id(), &msg, false);
        assert!(
            line.starts_with("! [01:02:03] Alice: hi @Alice\\u{202e}!  #"),
            "{line}"
        );
        assert!(!line.contains('\u{202e}'));
        let bold = message_line(&held, &alice.call_id(), &msg, true);
        assert!(bold.contains("\x1b[1m@Alice\x1b[0m"), "{bold}");
    }
}
