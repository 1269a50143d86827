//! Presence and routing: which connection is bound to which call ID (in memory only).
//!
//! Each authenticated connection registers a bounded outbound queue and a kick channel.
//! Routing never blocks: a full recipient queue means the recipient is too slow, so it is
//! kicked (closed with `too_slow`) and the sender gets `recipient_busy`.
//!
//! A second connection authenticating with an ID that is already connected **replaces** the
//! old one (the old one gets `replaced` and is closed): only the key holder can authenticate,
//! and a client that lost its network must not be locked out until the idle timeout.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::{mpsc, watch};

use crate::identity::CallId;
use crate::protocol::ErrorCode;

/// How to reach one connection.
#[derive(Debug, Clone)]
pub struct ConnHandle {
    /// Connection number (unique per server run).
    pub conn_id: u64,
    /// Outbound text frames (bounded).
    pub tx: mpsc::Sender<String>,
    /// Set to `Some(code)` to make the connection send that error and close.
    pub kick: watch::Sender<Option<ErrorCode>>,
}

/// Why an envelope could not be routed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteError {
    /// Nobody is connected with that ID.
    NotOnline,
    /// The recipient's queue is full; it has been kicked.
    RecipientBusy,
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

    /// Queues `frame` for `to` without waiting.
    pub fn route(&self, to: &CallId, frame: String) -> Result<(), RouteError> {
        let handle = self.lock().get(to).cloned().ok_or(RouteError::NotOnline)?;
        match handle.tx.try_send(frame) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!(id = %to, conn = handle.conn_id, "send queue full; closing the slow connection");
                let _ = handle.kick.send(Some(ErrorCode::TooSlow));
                self.unregister(to, handle.conn_id);
                Err(RouteError::RecipientBusy)
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.unregister(to, handle.conn_id);
                Err(RouteError::NotOnline)
            }
        }
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

    fn handle(
        conn_id: u64,
        cap: usize,
    ) -> (
        ConnHandle,
        mpsc::Receiver<String>,
        watch::Receiver<Option<ErrorCode>>,
    ) {
        let (tx, rx) = mpsc::channel(cap);
        let (kick, kick_rx) = watch::channel(None);
        (ConnHandle { conn_id, tx, kick }, rx, kick_rx)
    }

    #[test]
    fn route_register_replace_unregister() {
        let reg = Registry::default();
        let id = Identity::from_seed([1; 32]).call_id();
        assert_eq!(reg.route(&id, "x".into()), Err(RouteError::NotOnline));
        let (h1, mut rx1, kick1) = handle(1, 4);
        reg.register(id, h1);
        reg.route(&id, "a".into()).unwrap();
        assert_eq!(rx1.try_recv().unwrap(), "a");
        let (h2, mut rx2, _kick2) = handle(2, 4);
        reg.register(id, h2);
        assert_eq!(*kick1.borrow(), Some(ErrorCode::Replaced));
        reg.route(&id, "b".into()).unwrap();
        assert_eq!(rx2.try_recv().unwrap(), "b");
        // The replaced connection's cleanup must not remove the new binding.
        reg.unregister(&id, 1);
        assert_eq!(reg.len(), 1);
        reg.unregister(&id, 2);
        assert!(reg.is_empty());
    }

    #[test]
    fn full_queue_kicks_the_slow_recipient() {
        let reg = Registry::default();
        let id = Identity::from_seed([1; 32]).call_id();
        let (h, _rx, kick) = handle(1, 1);
        reg.register(id, h);
        reg.route(&id, "a".into()).unwrap();
        assert_eq!(reg.route(&id, "b".into()), Err(RouteError::RecipientBusy));
        assert_eq!(*kick.borrow(), Some(ErrorCode::TooSlow));
        assert_eq!(reg.route(&id, "c".into()), Err(RouteError::NotOnline));
    }
}
