//! Moving room envelopes through the signaling server: send what a [`RoomBook`] produced, and
//! take what arrives (the mailbox's envelopes first, at login).

use std::sync::Arc;
use std::time::{Duration, Instant};

use signaling::client::{Client, ClientError, ClientOptions, Incoming};
use signaling::identity::Identity;

use super::book::{Outgoing, RoomBook, RoomEvent};
use crate::call::now_unix_ms;

/// How long to wait for the envelopes the server says it kept for us.
pub const KEPT_WAIT: Duration = Duration::from_secs(5);

/// Connects to the server as `me`.
pub async fn connect(
    server: &str,
    me: Arc<Identity>,
    opts: ClientOptions,
) -> Result<Client, ClientError> {
    Client::connect(server, me, opts).await
}

/// Sends every envelope; stops at the first that cannot be queued.
pub async fn send_all(client: &Client, out: &[Outgoing]) -> Result<(), ClientError> {
    for o in out {
        client.send(&o.to, o.kind, &o.body).await?;
    }
    Ok(())
}

/// What taking the mailbox gave.
#[derive(Debug, Default)]
pub struct Taken {
    /// What changed, in order.
    pub events: Vec<RoomEvent>,
    /// Envelopes refused (each logged with its reason).
    pub refused: usize,
}

/// Takes the envelopes the mailbox kept for us (the count `welcome` gave) and any others that
/// arrive meanwhile, applying room kinds to `book`; returns when all kept ones are in (or after
/// [`KEPT_WAIT`]) and whatever waited for a missing earlier message has been released (at most
/// `signaling::room::GAP_WAIT` more). Other kinds (a call offer) are left unanswered.
pub async fn take_kept(client: &mut Client, book: &mut RoomBook) -> Taken {
    let mut taken = Taken::default();
    let mut remaining = client.kept_at_login();
    let deadline = tokio::time::Instant::now() + KEPT_WAIT;
    while remaining > 0 {
        let next = tokio::time::timeout_at(deadline, client.recv()).await;
        let Ok(Some(incoming)) = next else {
            break;
        };
        match incoming {
            Ok(m) if m.kind.is_mailbox() => {
                remaining -= 1;
                taken.apply(book, &m);
            }
            Ok(m) => {
                tracing::debug!(from = %m.from, kind = ?m.kind, "not a room envelope; ignored")
            }
            Err(e) => {
                // A kept envelope that fails the envelope checks still counts as arrived.
                remaining = remaining.saturating_sub(1);
                taken.refused += 1;
                tracing::warn!(error = %e, "signaling message refused");
            }
        }
    }
    if remaining > 0 {
        tracing::warn!(remaining, "not every kept envelope arrived in time");
    }
    // A sender's first message waits a moment for an earlier one; let that wait run out
    // (at most GAP_WAIT) so a one-shot command shows everything the mailbox had.
    taken.release_waiting(book).await;
    taken
}

/// Closes a one-shot command's connection, keeping the room envelopes that arrived while it
/// was open (a member's message sent meanwhile was delivered to this connection: dropping it
/// would lose it, the server counts it delivered) and releasing what waits for an earlier one.
pub async fn finish(client: Client, book: &mut RoomBook) -> Taken {
    let mut taken = Taken::default();
    for incoming in client.close_and_take().await {
        match incoming {
            Ok(m) if m.kind.is_mailbox() => taken.apply(book, &m),
            Ok(m) => {
                tracing::debug!(from = %m.from, kind = ?m.kind, "not a room envelope; ignored")
            }
            Err(e) => tracing::debug!(error = %e, "signaling message at close ignored"),
        }
    }
    taken.release_waiting(book).await;
    taken
}

impl Taken {
    /// A room envelope into `book`; what it changed is added, a refusal counted and logged.
    fn apply(&mut self, book: &mut RoomBook, m: &Incoming) {
        match book.receive(m.from, m.kind, &m.plaintext, Instant::now(), now_unix_ms()) {
            Ok(events) => self.events.extend(events),
            Err(e) => {
                self.refused += 1;
                tracing::warn!(from = %m.from, error = %e, "room envelope refused");
            }
        }
    }

    /// Waits until nothing in `book` waits for an earlier message (at most GAP_WAIT).
    async fn release_waiting(&mut self, book: &mut RoomBook) {
        while let Some(at) = book.poll_timeout() {
            tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await;
            match book.poll(Instant::now()) {
                Ok(events) => self.events.extend(events),
                Err(e) => {
                    tracing::warn!(error = %e, "room store");
                    break;
                }
            }
        }
    }
}
