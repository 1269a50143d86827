//! Presence and routing: which connection is bound to which call ID (in memory only).
//!
//! Each authenticated connection registers its [`Outbox`] and a kick channel. Routing never
//! blocks and never disconnects the recipient: a frame that does not fit the recipient's queue
//! (the sender's share of it, the recipient's bound or the server's budget, see
//! [`outbox`](super::outbox)) is refused to the *sender* with `recipient_busy`. A recipient is
//! disconnected only when its own socket stops taking writes (the connection task's write
//! timeout).
//!
//! A second connection authenticating with an ID that is already connected **replaces** the
//! old one (the old one gets `replaced` and is closed): only the key holder can authenticate,
//! and a client that lost its network must not be locked out until the idle timeout.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use crate::identity::CallId;
use crate::protocol::ErrorCode;

use super::outbox::{Outbox, Refused};

/// How to reach one connection.
#[derive(Debug, Clone)]
pub struct ConnHandle {
    /// Connection number (unique per server run).
    pub conn_id: u64,
    /// Outbound `deliver` frames (bounded, fair between senders).
    pub outbox: Arc<Outbox>,
    /// Set to `Some(code)` to make the connection send that error and close.
    pub kick: watch::Sender<Option<ErrorCode>>,
}

/// Why an envelope could not be routed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteError {
    /// Nobody is connected with that ID.
    NotOnline,
    /// The sender already has its share of the recipient's queue queued.
    SenderShareFull,
    /// The recipient's queue is full (it reads slower than it is sent to).
    RecipientFull,
    /// The server-wide budget for queued frames is exhausted.
    ServerFull,
}

/// The presence table.
#[derive(Debug, Default)]
pub struct Registry {
    conns: Mutex<HashMap<CallId, ConnHandle>>,
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<CallId, ConnHandle>> {
        // A panic while holding this lock cannot leave the map inconsistent (single inserts and
        // removes), so a poisoned lock is still usable.
        self.conns.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Binds `id` to `handle`; an older connection with the same ID is kicked with `replaced`.
    pub fn register(&self, id: CallId, handle: ConnHandle) {
        if let Some(old) = self.lock().insert(id, handle) {
            tracing::info!(%id, old_conn = old.conn_id, "call ID reconnected; replacing the old connection");
            old.outbox.close();
            let _ = old.kick.send(Some(ErrorCode::Replaced));
        }
    }

    /// Removes `id` if it is still bound to connection `conn_id`.
    pub fn unregister(&self, id: &CallId, conn_id: u64) {
        let mut conns = self.lock();
        if conns.get(id).is_some_and(|h| h.conn_id == conn_id) {
            conns.remove(id);
        }
    }

    /// Queues `frame` from `from` for `to` without waiting.
    pub fn route(&self, from: CallId, to: &CallId, frame: String) -> Result<(), RouteError> {
        let handle = self.lock().get(to).cloned().ok_or(RouteError::NotOnline)?;
        handle
            .outbox
            .push(from, frame)
            .map_err(|refused| match refused {
                Refused::SenderShare => RouteError::SenderShareFull,
                Refused::RecipientFull => RouteError::RecipientFull,
                Refused::ServerFull => RouteError::ServerFull,
                Refused::Closed => RouteError::NotOnline,
            })
    }

    /// Number of bound IDs.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// `true` when nobody is bound.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;
    use crate::server::outbox::{ByteBudget, QueueLimits};

    fn handle(
        conn_id: u64,
        recipient_max: usize,
    ) -> (ConnHandle, Arc<Outbox>, watch::Receiver<Option<ErrorCode>>) {
        let outbox = Arc::new(Outbox::new(
            QueueLimits {
                sender_share: recipient_max,
                recipient_max,
            },
            Arc::new(ByteBudget::new(usize::MAX)),
        ));
        let (kick, kick_rx) = watch::channel(None);
        (
            ConnHandle {
                conn_id,
                outbox: outbox.clone(),
                kick,
            },
            outbox,
            kick_rx,
        )
    }

    fn next(outbox: &Outbox) -> String {
        futures::FutureExt::now_or_never(outbox.next())
            .expect("a frame is queued")
            .text
            .clone()
    }

    #[test]
    fn route_register_replace_unregister() {
        let reg = Registry::default();
        let from = Identity::from_seed([9; 32]).call_id();
        let id = Identity::from_seed([1; 32]).call_id();
        assert_eq!(reg.route(from, &id, "x".into()), Err(RouteError::NotOnline));
        let (h1, out1, kick1) = handle(1, 100);
        reg.register(id, h1);
        reg.route(from, &id, "a".into()).unwrap();
        assert_eq!(next(&out1), "a");
        let (h2, out2, _kick2) = handle(2, 100);
        reg.register(id, h2);
        assert_eq!(*kick1.borrow(), Some(ErrorCode::Replaced));
        reg.route(from, &id, "b".into()).unwrap();
        assert_eq!(next(&out2), "b");
        // The replaced connection's cleanup must not remove the new binding.
        reg.unregister(&id, 1);
        assert_eq!(reg.len(), 1);
        reg.unregister(&id, 2);
        assert!(reg.is_empty());
    }

    #[test]
    fn a_full_queue_refuses_the_sender_and_keeps_the_recipient() {
        let reg = Registry::default();
        let from = Identity::from_seed([9; 32]).call_id();
        let id = Identity::from_seed([1; 32]).call_id();
        let (h, out, kick) = handle(1, 2);
        reg.register(id, h);
        reg.route(from, &id, "aa".into()).unwrap();
        assert_eq!(
            reg.route(from, &id, "b".into()),
            Err(RouteError::SenderShareFull)
        );
        assert_eq!(*kick.borrow(), None, "the recipient is not kicked");
        assert_eq!(next(&out), "aa");
        reg.route(from, &id, "c".into()).unwrap();
        assert_eq!(next(&out), "c");
        assert_eq!(reg.len(), 1);
    }
}
