//! The I/O loop of one WebSocket connection (the thin shell around [`Session`]).
//!
//! It owns the socket, the connection's [`Outbox`] and its timers: the auth deadline, the idle
//! deadline (reset by anything received, including pongs), the ping interval and a per-write
//! timeout. A frame whose write does not complete within the write timeout means the client
//! does not read its socket: that, and only that, disconnects a slow client. Every exit path
//! unregisters the connection and frees its queue.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use rand::RngCore;
use tokio::sync::watch;

use crate::protocol::{ErrorCode, ServerFrame, CHALLENGE_NONCE_LEN};

use super::auth::Challenge;
use super::outbox::{Outbox, QueueLimits};
use super::routing::{ConnHandle, RouteError, Routed};
use super::session::{Action, Session};
use super::Shared;

/// WebSocket close code 1008 "policy violation".
const CLOSE_POLICY: u16 = 1008;
/// WebSocket close code 1001 "going away".
const CLOSE_GOING_AWAY: u16 = 1001;
/// WebSocket close code 1009 "message too big".
const CLOSE_TOO_BIG: u16 = 1009;

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

enum Flow {
    Continue,
    Stop,
}

struct Conn {
    socket: WebSocket,
    shared: Arc<Shared>,
    peer: SocketAddr,
    conn_id: u64,
}

impl Conn {
    /// Writes one message, bounded by the send timeout. `false` means the socket is unusable.
    async fn write(&mut self, msg: Message) -> bool {
        match tokio::time::timeout(self.shared.limits.send_timeout, self.socket.send(msg)).await {
            Ok(Ok(())) => true,
            Ok(Err(err)) => {
                tracing::debug!(conn = self.conn_id, %err, "write failed");
                false
            }
            Err(_) => {
                self.shared.metrics.write_timeouts.inc();
                tracing::info!(conn = self.conn_id, peer = %self.peer, "write timed out; closing a client that does not read");
                false
            }
        }
    }

    async fn send_frame(&mut self, frame: &ServerFrame) -> bool {
        if let ServerFrame::Error { code, .. } = frame {
            self.shared.metrics.error_frames.get(*code).inc();
        }
        match frame {
            // Expected under load, possibly thousands a second from a flooder: debug only.
            ServerFrame::Error {
                code: ErrorCode::RecipientBusy,
                ..
            } => tracing::debug!(conn = self.conn_id, peer = %self.peer, "recipient_busy"),
            ServerFrame::Error { code, message } => {
                tracing::info!(conn = self.conn_id, peer = %self.peer, %code, %message, "error frame")
            }
            _ => {}
        }
        self.write(Message::Text(frame.to_json().into())).await
    }

    /// Sends an error frame (best effort), then a close frame.
    async fn close_with(&mut self, code: ErrorCode, message: &str) {
        let frame = ServerFrame::error(code, message);
        if self.send_frame(&frame).await {
            let ws_code = match code {
                ErrorCode::ShuttingDown => CLOSE_GOING_AWAY,
                ErrorCode::TooLarge => CLOSE_TOO_BIG,
                _ => CLOSE_POLICY,
            };
            let _ = self
                .write(Message::Close(Some(CloseFrame {
                    code: ws_code,
                    reason: code.as_str().into(),
                })))
                .await;
        }
    }
}

/// Serves one upgraded WebSocket until it closes, errs, times out, is kicked or the server stops.
pub(crate) async fn serve(socket: WebSocket, shared: Arc<Shared>, peer: SocketAddr) {
    let conn_id = shared.next_conn_id();
    let mut nonce = [0u8; CHALLENGE_NONCE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let challenge = Challenge::new(shared.server_name.clone(), nonce, unix_now());
    let start = Instant::now();
    let mut session = Session::new(
        challenge.clone(),
        shared.limits.rate,
        shared.limits.replay_capacity,
        start,
    )
    .verifying_signatures(shared.limits.verify_signatures);
    let mut conn = Conn {
        socket,
        shared: shared.clone(),
        peer,
        conn_id,
    };
    tracing::debug!(conn = conn_id, %peer, "websocket connected");

    let outbox = Arc::new(Outbox::new(
        QueueLimits {
            sender_share: shared.limits.sender_queue_bytes,
            recipient_max: shared.limits.recipient_queue_bytes,
        },
        shared.queue_budget.clone(),
    ));
    let (kick_tx, mut kick_rx) = watch::channel::<Option<ErrorCode>>(None);
    let auth_deadline = tokio::time::Instant::from_std(start + shared.limits.auth_timeout);
    let mut idle_deadline = tokio::time::Instant::from_std(start + shared.limits.idle_timeout);
    // A zero period would panic in tokio; 10 ms is far below any sensible setting.
    let ping_every = shared.limits.ping_interval.max(Duration::from_millis(10));
    let mut ping = tokio::time::interval_at(
        tokio::time::Instant::from_std(start + ping_every),
        ping_every,
    );
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    if conn.send_frame(&challenge.frame()).await {
        loop {
            let flow = tokio::select! {
                _ = shared.shutdown.cancelled() => {
                    conn.close_with(ErrorCode::ShuttingDown, "the server is shutting down").await;
                    Flow::Stop
                }
                _ = tokio::time::sleep_until(auth_deadline), if session.id().is_none() => {
                    shared.metrics.logins.timeout.inc();
                    conn.close_with(ErrorCode::AuthTimeout, "no valid auth frame within the auth timeout").await;
                    Flow::Stop
                }
                _ = tokio::time::sleep_until(idle_deadline) => {
                    conn.close_with(ErrorCode::IdleTimeout, "nothing received within the idle timeout").await;
                    Flow::Stop
                }
                _ = ping.tick() => {
                    if conn.write(Message::Ping(Default::default())).await { Flow::Continue } else { Flow::Stop }
                }
                changed = kick_rx.changed() => {
                    let code = if changed.is_ok() { *kick_rx.borrow() } else { None };
                    match code {
                        Some(code) => {
                            let message = match code {
                                ErrorCode::Replaced => "another connection authenticated with this call ID",
                                _ => "closed by the server",
                            };
                            conn.close_with(code, message).await;
                            Flow::Stop
                        }
                        None => Flow::Continue,
                    }
                }
                mut out = outbox.next() => {
                    // `out` keeps the frame's bytes counted in the global budget until written.
                    let text = std::mem::take(&mut out.text);
                    if conn.write(Message::Text(text.into())).await { Flow::Continue } else { Flow::Stop }
                }
                msg = conn.socket.recv() => {
                    idle_deadline = tokio::time::Instant::now() + shared.limits.idle_timeout;
                    handle_message(&mut conn, &mut session, msg, &outbox, &kick_tx).await
                }
            };
            if matches!(flow, Flow::Stop) {
                break;
            }
        }
    }

    let unsent = outbox.close();
    shared.metrics.queue_drops.unsent.inc_by(unsent as u64);
    if let Some(id) = session.id() {
        shared.unregister(&id, conn_id);
        tracing::info!(conn = conn_id, %id, "client disconnected");
    } else {
        tracing::debug!(conn = conn_id, %peer, "unauthenticated connection closed");
    }
}

async fn handle_message(
    conn: &mut Conn,
    session: &mut Session,
    msg: Option<Result<Message, axum::Error>>,
    outbox: &Arc<Outbox>,
    kick_tx: &watch::Sender<Option<ErrorCode>>,
) -> Flow {
    let now = Instant::now();
    let action = match msg {
        None | Some(Ok(Message::Close(_))) => return Flow::Stop,
        Some(Ok(Message::Ping(_) | Message::Pong(_))) => return Flow::Continue,
        Some(Ok(Message::Text(text))) => session.handle_text(text.as_str(), now, unix_now()),
        Some(Ok(Message::Binary(bytes))) => session.handle_binary(bytes.len(), now),
        Some(Err(err)) => {
            // Oversize messages/frames surface here; the stream cannot be resynchronised after
            // them, so the connection is closed (after a best-effort error frame).
            let text = err.to_string();
            if text.contains("Space limit") {
                conn.close_with(ErrorCode::TooLarge, "message exceeds the 65536-byte limit")
                    .await;
            } else {
                tracing::info!(conn = conn.conn_id, peer = %conn.peer, %err, "websocket protocol error; closing");
                conn.close_with(ErrorCode::BadFrame, "websocket protocol error")
                    .await;
            }
            return Flow::Stop;
        }
    };
    run_action(conn, session, action, outbox, kick_tx).await
}

async fn run_action(
    conn: &mut Conn,
    session: &mut Session,
    action: Action,
    outbox: &Arc<Outbox>,
    kick_tx: &watch::Sender<Option<ErrorCode>>,
) -> Flow {
    let ok = match action {
        Action::Nothing => true,
        Action::Reply(frame) => conn.send_frame(&frame).await,
        Action::Refused(frame) => {
            if let ServerFrame::Error { code, .. } = &frame {
                conn.shared.metrics.rejected.get(*code).inc();
            }
            conn.send_frame(&frame).await
        }
        Action::Close(frame) => {
            if let ServerFrame::Error { code, message } = &frame {
                if *code == ErrorCode::AuthFailed {
                    conn.shared.metrics.logins.failed.inc();
                    conn.shared.login_failed(conn.peer.ip());
                }
                conn.close_with(*code, message).await;
            }
            return Flow::Stop;
        }
        Action::Authenticated(id) => {
            session.set_authenticated(id);
            conn.shared.metrics.logins.ok.inc();
            let kept = conn
                .shared
                .register(
                    id,
                    ConnHandle {
                        conn_id: conn.conn_id,
                        outbox: outbox.clone(),
                        kick: kick_tx.clone(),
                    },
                    unix_now(),
                )
                .await;
            tracing::info!(conn = conn.conn_id, peer = %conn.peer, %id, "client authenticated");
            conn.send_frame(&ServerFrame::Welcome { id, kept }).await
        }
        Action::Route {
            from,
            to,
            kind,
            frame,
        } => match conn.shared.route(from, to, kind, frame, unix_now()).await {
            Ok(Routed::Delivered) => {
                conn.shared.metrics.delivered.inc();
                tracing::debug!(%from, %to, %kind, "routed");
                true
            }
            Ok(Routed::Kept) => {
                conn.shared.metrics.kept.inc();
                tracing::debug!(%from, %to, %kind, "recipient offline; kept in the mailbox");
                true
            }
            Err(err) => {
                let drops = &conn.shared.metrics.queue_drops;
                let dropped = match err {
                    RouteError::SenderShareFull => Some(&drops.sender_share),
                    RouteError::RecipientFull => Some(&drops.recipient_full),
                    RouteError::ServerFull => Some(&drops.server_full),
                    RouteError::NotOnline
                    | RouteError::MailboxFull
                    | RouteError::MailboxServerFull
                    | RouteError::ClusterUnavailable => None,
                };
                if let Some(counter) = dropped {
                    counter.inc();
                }
                let (code, message) = match err {
                    RouteError::NotOnline => (ErrorCode::NotOnline, format!("{to} is not connected")),
                    RouteError::SenderShareFull => (
                        ErrorCode::RecipientBusy,
                        format!("{to} has not yet received what you sent it; this envelope was dropped, retry later"),
                    ),
                    RouteError::RecipientFull => (
                        ErrorCode::RecipientBusy,
                        format!("{to} is receiving more than it reads; this envelope was dropped, retry later"),
                    ),
                    RouteError::ServerFull => (
                        ErrorCode::RecipientBusy,
                        "the server's queues are full; this envelope was dropped, retry later".to_owned(),
                    ),
                    RouteError::MailboxFull => (
                        ErrorCode::MailboxFull,
                        format!("{to} is offline and its mailbox is full; this envelope was dropped, retry later"),
                    ),
                    RouteError::MailboxServerFull => (
                        ErrorCode::MailboxFull,
                        format!("{to} is offline and the server's mailbox is full; this envelope was dropped, retry later"),
                    ),
                    RouteError::ClusterUnavailable => (
                        ErrorCode::RecipientBusy,
                        format!("{to} is not connected to this server instance and the instances' shared store (Redis) does not answer; this envelope was dropped, retry later"),
                    ),
                };
                tracing::debug!(%from, %to, %kind, ?err, "envelope not routed");
                conn.shared.metrics.rejected.get(code).inc();
                conn.send_frame(&ServerFrame::error(code, message)).await
            }
        },
        Action::IssueTurn(id) => {
            let frame = match conn.shared.turn_credentials(&id) {
                Some(creds) => ServerFrame::TurnCredentials(creds),
                None => ServerFrame::error(
                    ErrorCode::TurnUnavailable,
                    "this server has no TURN service configured",
                ),
            };
            conn.send_frame(&frame).await
        }
    };
    if ok {
        Flow::Continue
    } else {
        Flow::Stop
    }
}
