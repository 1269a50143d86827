//! `call room chat ROOM`: a room's chat without a call. Lines typed are sent to every member
//! (`/reply ID TEXT` answers a message); what arrives is printed in each sender's order; the
//! end of input leaves. The last few messages of the history are shown first.

use std::time::Instant;

use anyhow::Result;
use signaling::client::Client;
use signaling::room::RoomId;
use tokio::sync::mpsc;

use super::book::RoomBook;
use super::cli::{message_line, print_events};
use super::net;
use crate::call::now_unix_ms;
use crate::terminal_text::escape;

/// Messages of the history shown when the chat opens.
const SHOWN_AT_START: usize = 10;

/// Runs the chat until `lines` ends.
pub async fn run(
    book: &mut RoomBook,
    room: RoomId,
    mut client: Client,
    mut lines: mpsc::Receiver<String>,
) -> Result<()> {
    let me = client.id();
    let taken = net::take_kept(&mut client, book).await;
    if let Some(held) = book.store().room(&room)? {
        eprintln!(
            "room {} ({} members); type to send, /reply ID TEXT to answer, Ctrl-D to leave",
            escape(&held.current().state.name),
            held.current().state.members.len()
        );
        for m in book.store().history(&room, SHOWN_AT_START)? {
            println!("{}", message_line(&held, &me, &m.message, false));
        }
    }
    let others: Vec<_> = taken
        .events
        .into_iter()
        .filter(|e| !matches!(e, super::book::RoomEvent::Message(_)))
        .collect();
    print_events(book, &me, &others);
    loop {
        let wake = book.poll_timeout().map(tokio::time::Instant::from_std);
        tokio::select! {
            line = lines.recv() => {
                let Some(line) = line else { break };
                if let Err(e) = send_line(book, &client, room, &line).await {
                    eprintln!("not sent: {}", escape(&e.to_string()));
                }
            }
            incoming = client.recv() => match incoming {
                Some(Ok(m)) if m.kind.is_mailbox() => {
                    match book.receive(m.from, m.kind, &m.plaintext, Instant::now(), now_unix_ms()) {
                        Ok(events) => print_events(book, &me, &events),
                        Err(e) => tracing::warn!(from = %m.from, error = %e, "room envelope refused"),
                    }
                }
                Some(Ok(m)) => tracing::debug!(from = %m.from, kind = ?m.kind, "ignored in a room chat"),
                Some(Err(e)) => tracing::warn!(error = %e, "signaling message refused"),
                None => {
                    eprintln!("the signaling connection closed");
                    break;
                }
            },
            _ = sleep_until(wake) => {
                let events = book.poll(Instant::now())?;
                print_events(book, &me, &events);
            }
        }
    }
    let late = super::net::finish(client, book).await;
    print_events(book, &me, &late.events);
    Ok(())
}

async fn send_line(book: &mut RoomBook, client: &Client, room: RoomId, line: &str) -> Result<()> {
    let line = line.trim_end();
    if line.trim().is_empty() {
        return Ok(());
    }
    let (reply_to, text) = match line.strip_prefix("/reply ") {
        Some(rest) => {
            let (id, text) = rest.trim_start().split_once(' ').unwrap_or((rest, ""));
            let id = super::cli::resolve_message_in(book, &room, id)?;
            (Some(id), text.trim_start())
        }
        None => (None, line),
    };
    let (_, out) = book.send(&room, text, reply_to, now_unix_ms())?;
    net::send_all(client, &out).await?;
    Ok(())
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
