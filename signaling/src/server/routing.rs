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

use crate::envelope::EnvelopeKind;
use crate::identity::CallId;
use crate::protocol::ErrorCode;

use super::mailbox::{Mailbox, MailboxLimits, MailboxRefused, MailboxStats};
use super::metrics::QueueDrops;
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
    /// The recipient is offline and its mailbox (or the sender's share of it) is full.
    MailboxFull,
    /// The recipient is offline and the server's mailbox budget is spent.
    MailboxServerFull,
    /// The recipient is not connected here and the cluster's Redis does not answer (`--redis`).
    ClusterUnavailable,
}

impl From<Refused> for RouteError {
    /// Why the recipient's outbox refused a frame, as a routing error.
    fn from(refused: Refused) -> Self {
        match refused {
            Refused::SenderShare => RouteError::SenderShareFull,
            Refused::RecipientFull => RouteError::RecipientFull,
            Refused::ServerFull => RouteError::ServerFull,
            Refused::Closed => RouteError::NotOnline,
        }
    }
}

/// Where a routed envelope went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Routed {
    /// Queued on the recipient's connection.
    Delivered,
    /// The recipient is offline: kept in the mailbox until it logs in (mailbox kinds only).
    Kept,
}

/// The presence table, and the mailbox of those not present.
pub struct Registry {
    conns: Mutex<HashMap<CallId, ConnHandle>>,
    /// Locked only while `conns` is locked (lock order: conns, then mailbox), so a login's
    /// drain and a send to the same ID cannot interleave: nothing is left behind in the
    /// mailbox of a connected ID, and kept envelopes arrive before later live ones.
    mailbox: Mutex<Mailbox>,
    /// Frames lost at a login: kept ones that no longer fit, and a replaced connection's queue.
    drops: QueueDrops,
}

impl Default for Registry {
    fn default() -> Self {
        Registry::new(MailboxLimits::default())
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("online", &self.len())
            .finish()
    }
}

impl Registry {
    /// An empty registry whose mailbox has these limits.
    pub fn new(mailbox: MailboxLimits) -> Self {
        Registry {
            conns: Mutex::new(HashMap::new()),
            mailbox: Mutex::new(Mailbox::new(mailbox)),
            drops: QueueDrops::default(),
        }
    }

    /// Counts the frames lost at logins in `drops` (by default in counters nobody reads).
    pub fn with_drops(mut self, drops: QueueDrops) -> Self {
        self.drops = drops;
        self
    }

    fn lock_mailbox(&self) -> std::sync::MutexGuard<'_, Mailbox> {
        self.mailbox.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What the mailbox holds.
    pub fn mailbox_stats(&self) -> MailboxStats {
        let _conns = self.lock();
        self.lock_mailbox().stats()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<CallId, ConnHandle>> {
        // A panic while holding this lock cannot leave the map inconsistent (single inserts and
        // removes), so a poisoned lock is still usable.
        self.conns.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Binds `id` to `handle`, then hands it what its mailbox kept (`now`: Unix seconds) and
    /// returns how many envelopes that was; an older connection with the same ID is kicked
    /// with `replaced`.
    pub fn register(&self, id: CallId, handle: ConnHandle, now: u64) -> u64 {
        let mut conns = self.lock();
        let kept = self.lock_mailbox().take(&id, now);
        let mut lost = 0;
        let mut handed = 0;
        for (from, frame) in kept {
            // The mailbox's per-sender and per-recipient bounds are the outbox's, so this only
            // fails when the server-wide queue budget is spent.
            match handle.outbox.push(from, frame) {
                Ok(()) => handed += 1,
                Err(_) => lost += 1,
            }
        }
        if lost > 0 {
            self.drops.mailbox_handover.inc_by(lost);
            tracing::warn!(%id, lost, "mailbox envelopes dropped at login: the server's queues are full");
        }
        if let Some(old) = conns.insert(id, handle) {
            tracing::info!(%id, old_conn = old.conn_id, "call ID reconnected; replacing the old connection");
            let unsent = old.outbox.close();
            self.drops.unsent.inc_by(unsent as u64);
            let _ = old.kick.send(Some(ErrorCode::Replaced));
        }
        handed
    }

    /// Removes `id` if it is still bound to connection `conn_id`.
    pub fn unregister(&self, id: &CallId, conn_id: u64) {
        let mut conns = self.lock();
        if conns.get(id).is_some_and(|h| h.conn_id == conn_id) {
            conns.remove(id);
        }
    }

    /// Queues `frame` (an envelope of `kind`) from `from` for `to` without waiting; for an
    /// offline recipient, keeps a mailbox kind in the mailbox (`now`: Unix seconds).
    pub fn route(
        &self,
        from: CallId,
        to: &CallId,
        kind: EnvelopeKind,
        frame: String,
        now: u64,
    ) -> Result<Routed, RouteError> {
        let conns = self.lock();
        let Some(handle) = conns.get(to).cloned() else {
            if !kind.is_mailbox() {
                return Err(RouteError::NotOnline);
            }
            return match self.lock_mailbox().push(from, *to, frame, now) {
                Ok(()) => Ok(Routed::Kept),
                Err(MailboxRefused::RecipientFull) => Err(RouteError::MailboxFull),
                Err(MailboxRefused::ServerFull) => Err(RouteError::MailboxServerFull),
            };
        };
        drop(conns);
        handle
            .outbox
            .push(from, frame)
            .map(|()| Routed::Delivered)
            .map_err(RouteError::from)
    }

    /// Queues `frame` for `to` if `to` is connected here; otherwise hands the frame back (the
    /// cluster routes it: `--redis`). The local mailbox is not used.
    pub fn route_connected(
        &self,
        from: CallId,
        to: &CallId,
        frame: String,
    ) -> Result<Result<Routed, RouteError>, String> {
        let Some(handle) = self.lock().get(to).cloned() else {
            return Err(frame);
        };
        Ok(handle
            .outbox
            .push(from, frame)
            .map(|()| Routed::Delivered)
            .map_err(RouteError::from))
    }

    /// Queues `frame`, routed by another instance (or kept in the cluster's mailbox), for `to`
    /// if it is connected here. Its sender cannot be told of a refusal any more: a frame that
    /// does not fit, or whose recipient left, is dropped and counted (`remote_dropped`).
    pub fn deliver_remote(&self, from: CallId, to: &CallId, frame: String) -> bool {
        let handle = self.lock().get(to).cloned();
        let delivered = handle.is_some_and(|h| h.outbox.push(from, frame).is_ok());
        if !delivered {
            self.drops.remote_dropped.inc();
            tracing::debug!(%to, "frame from another instance dropped: recipient gone or its queue full");
        }
        delivered
    }

    /// Closes connection `conn_id` of `id` with `replaced` (a newer login on another instance
    /// took the ID), if it is still the one bound here.
    pub fn kick(&self, id: &CallId, conn_id: u64) {
        let mut conns = self.lock();
        if conns.get(id).is_some_and(|h| h.conn_id == conn_id) {
            if let Some(old) = conns.remove(id) {
                let unsent = old.outbox.close();
                self.drops.unsent.inc_by(unsent as u64);
                let _ = old.kick.send(Some(ErrorCode::Replaced));
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
        assert_eq!(
            reg.route(from, &id, EnvelopeKind::Offer, "x".into(), 0),
            Err(RouteError::NotOnline)
        );
        let (h1, out1, kick1) = handle(1, 100);
        reg.register(id, h1, 0);
        reg.route(from, &id, EnvelopeKind::Offer, "a".into(), 0)
            .unwrap();
        assert_eq!(next(&out1), "a");
        let (h2, out2, _kick2) = handle(2, 100);
        reg.route(from, &id, EnvelopeKind::Offer, "lost".into(), 0)
            .unwrap();
        reg.register(id, h2, 0);
        assert_eq!(
            reg.drops.unsent.get(),
            1,
            "the replaced connection's queue is counted as dropped"
        );
        assert_eq!(*kick1.borrow(), Some(ErrorCode::Replaced));
        reg.route(from, &id, EnvelopeKind::Offer, "b".into(), 0)
            .unwrap();
        assert_eq!(next(&out2), "b");
        // The replaced connection's cleanup must not remove the new binding.
        reg.unregister(&id, 1);
        assert_eq!(reg.len(), 1);
        reg.unregister(&id, 2);
        assert!(reg.is_empty());
    }

    #[test]
    fn mailbox_kinds_wait_for_an_offline_recipient_and_arrive_first_at_login() {
        let reg = Registry::default();
        let from = Identity::from_seed([9; 32]).call_id();
        let id = Identity::from_seed([1; 32]).call_id();
        for text in ["s1", "m1"] {
            assert_eq!(
                reg.route(from, &id, EnvelopeKind::RoomMessage, text.into(), 5),
                Ok(Routed::Kept)
            );
        }
        // A call offer is not kept: it would be stale by the time anyone read it.
        assert_eq!(
            reg.route(from, &id, EnvelopeKind::Offer, "o".into(), 5),
            Err(RouteError::NotOnline)
        );
        assert_eq!(reg.mailbox_stats().envelopes, 2);
        let (h, out, _kick) = handle(1, 1 << 20);
        assert_eq!(reg.register(id, h, 6), 2);
        assert_eq!(
            reg.route(from, &id, EnvelopeKind::RoomMessage, "live".into(), 6),
            Ok(Routed::Delivered)
        );
        assert_eq!([next(&out), next(&out), next(&out)], ["s1", "m1", "live"]);
        assert_eq!(reg.mailbox_stats().envelopes, 0);
    }

    #[test]
    fn a_full_mailbox_refuses_the_sender() {
        let reg = Registry::new(MailboxLimits {
            per_recipient_count: 1,
            ..MailboxLimits::default()
        });
        let from = Identity::from_seed([9; 32]).call_id();
        let id = Identity::from_seed([1; 32]).call_id();
        reg.route(from, &id, EnvelopeKind::RoomState, "a".into(), 0)
            .unwrap();
        assert_eq!(
            reg.route(from, &id, EnvelopeKind::RoomState, "b".into(), 0),
            Err(RouteError::MailboxFull)
        );
        assert_eq!(reg.mailbox_stats().refused, 1);
    }

    #[test]
    fn a_full_queue_refuses_the_sender_and_keeps_the_recipient() {
        let reg = Registry::default();
        let from = Identity::from_seed([9; 32]).call_id();
        let id = Identity::from_seed([1; 32]).call_id();
        let (h, out, kick) = handle(1, 2);
        reg.register(id, h, 0);
        reg.route(from, &id, EnvelopeKind::Offer, "aa".into(), 0)
            .unwrap();
        assert_eq!(
            reg.route(from, &id, EnvelopeKind::Offer, "b".into(), 0),
            Err(RouteError::SenderShareFull)
        );
        assert_eq!(*kick.borrow(), None, "the recipient is not kicked");
        assert_eq!(next(&out), "aa");
        reg.route(from, &id, EnvelopeKind::Offer, "c".into(), 0)
            .unwrap();
        assert_eq!(next(&out), "c");
        assert_eq!(reg.len(), 1);
    }

    #[test]
    fn cluster_hooks_serve_only_local_connections() {
        let reg = Registry::default();
        let from = Identity::from_seed([9; 32]).call_id();
        let id = Identity::from_seed([1; 32]).call_id();
        // Not connected here: the frame comes back for the cluster, and no mailbox keeps it.
        assert_eq!(
            reg.route_connected(from, &id, "x".into()),
            Err("x".to_owned())
        );
        assert!(!reg.deliver_remote(from, &id, "y".into()));
        assert_eq!(reg.drops.remote_dropped.get(), 1);
        assert_eq!(reg.mailbox_stats().envelopes, 0);
        let (h, out, kick) = handle(7, 100);
        reg.register(id, h, 0);
        assert_eq!(
            reg.route_connected(from, &id, "a".into()),
            Ok(Ok(Routed::Delivered))
        );
        assert!(reg.deliver_remote(from, &id, "b".into()));
        assert_eq!([next(&out), next(&out)], ["a", "b"]);
        // A kick for another connection number is stale and ignored.
        reg.kick(&id, 6);
        assert_eq!((*kick.borrow(), reg.len()), (None, 1));
        reg.kick(&id, 7);
        assert_eq!(*kick.borrow(), Some(ErrorCode::Replaced));
        assert!(reg.is_empty());
    }
}
