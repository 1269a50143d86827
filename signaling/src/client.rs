//! Async signaling client over tokio-tungstenite (`ws://` and `wss://`).
//!
//! Distance from the wire: [`Client::connect`] performs the challenge-response handshake, then a
//! background task owns the socket. [`ClientSender`] (cloneable) seals, signs and queues
//! envelopes; [`ClientReceiver`] opens and checks incoming ones with a [`ReplayCache`]. A
//! [`Client`] is both; [`Client::split`] separates them so a call can send while it receives.
//!
//! Errors returned by [`ClientReceiver::recv`] are **not fatal** (a rejected envelope, an error
//! frame such as `not_online`, an unreadable or oversize frame, dropped events): keep calling
//! `recv` until it returns `None`, which means the connection is gone
//! ([`ClientReceiver::close_reason`] says why).
//!
//! The background task never waits for the application: incoming events go to a bounded
//! inbox that drops (and counts) the oldest events of the busiest sender when full, and
//! replies to commands (TURN credentials) travel on their own path, so a flood of envelopes
//! cannot stall a TURN request. Every request to the server has a timeout.

mod inbox;
mod url;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::{SinkExt, StreamExt};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use crate::envelope::{
    Envelope, EnvelopeError, EnvelopeKind, ReplayCache, ReplayLimits, MAX_ENVELOPE_BYTES,
};
use crate::identity::{CallId, Identity};
use crate::protocol::{
    answer_challenge, decode_nonce, ClientFrame, ErrorCode, FrameError, ServerFrame,
    MAX_AUTH_SKEW_SECS, MAX_FRAME_BYTES,
};
use crate::turn_credentials::TurnCredentials;
use inbox::{Inbox, Origin};
use url::{check_server_name, ExpectedName, SignalingUrl};

/// Largest WebSocket message the client reads. Larger than [`MAX_FRAME_BYTES`] on purpose: a
/// frame over the protocol limit but under this one is read whole and refused as a typed,
/// non-fatal [`FrameError::TooLarge`] instead of ending the connection (WebSocket cannot skip
/// a message it did not read). Beyond this the connection ends.
pub const MAX_READ_MESSAGE_BYTES: usize = 4 * MAX_FRAME_BYTES;

type Socket = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// Connection options.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// The name the server's challenge must carry. `None`: the host of the URL dialed
    /// (lowercase, without port, IPv6 literals without brackets; `localhost` and loopback IP
    /// literals count as one name). A challenge naming anything else is refused, so a server
    /// cannot relay our login to another server.
    pub server_name: Option<String>,
    /// Extra trusted root CA (PEM file) for `wss://`, e.g. a self-signed test certificate.
    /// The public web PKI roots are always trusted too.
    pub extra_root_ca: Option<PathBuf>,
    /// Connecting, TLS and the handshake must finish within this time.
    pub connect_timeout: Duration,
    /// Each request to the server (TURN credentials, queuing a frame, a socket write) must
    /// finish within this time.
    pub request_timeout: Duration,
    /// Incoming events buffered for [`ClientReceiver::recv`]; beyond, the oldest events of the
    /// busiest sender are dropped and counted ([`ClientReceiver::dropped`]).
    pub recv_queue: usize,
    /// Bounds of the replay cache (per-sender quota, senders tracked).
    pub replay_limits: ReplayLimits,
    /// The client pings the server this often.
    pub ping_interval: Duration,
    /// The connection is dropped when nothing (not even a pong) arrives for this long.
    pub idle_timeout: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            server_name: None,
            extra_root_ca: None,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(10),
            recv_queue: 256,
            replay_limits: ReplayLimits::default(),
            ping_interval: Duration::from_secs(20),
            idle_timeout: Duration::from_secs(90),
        }
    }
}

/// What can go wrong in the client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The URL is not a `ws://` or `wss://` URL.
    #[error("invalid signaling URL {0:?}: expected ws://HOST:PORT/ws or wss://HOST:PORT/ws")]
    InvalidUrl(String),
    /// The WebSocket connection could not be opened.
    #[error("cannot connect to the signaling server: {0}")]
    Connect(String),
    /// The extra root CA could not be loaded or TLS could not be configured.
    #[error("TLS setup failed: {0}")]
    Tls(String),
    /// Connecting or the handshake took longer than the connect timeout.
    #[error("the signaling server did not complete the handshake within {0:?}")]
    Timeout(Duration),
    /// A request to the server got no answer within [`ClientOptions::request_timeout`].
    #[error("the signaling server did not answer {what} within {after:?}; try again or check the server")]
    RequestTimeout {
        /// What was asked.
        what: &'static str,
        /// The timeout.
        after: Duration,
    },
    /// The challenge's server name is empty or longer than
    /// [`crate::protocol::MAX_SERVER_NAME_BYTES`] (refused, never truncated).
    #[error("the server's challenge names a server of {len} bytes (1 to 255 allowed): not a call signaling server")]
    BadServerName {
        /// Length found, bytes.
        len: usize,
    },
    /// Incoming events were dropped because the application did not read them fast enough.
    #[error("{count} incoming signaling messages were dropped (the receive queue was full)")]
    Dropped {
        /// How many since the last report.
        count: u64,
    },
    /// The server broke the handshake protocol.
    #[error("unexpected handshake from the server: {0}")]
    Handshake(String),
    /// The challenge names a different server than the one expected.
    #[error(
        "the server calls itself {got:?}, expected {expected:?}: dial it by that name (or configure the server name), unless this server is relaying your login elsewhere"
    )]
    WrongServer {
        /// The configured name.
        expected: String,
        /// The name in the challenge.
        got: String,
    },
    /// The server sent an `error` frame.
    #[error("server error {code}: {message}")]
    Server {
        /// The error code.
        code: ErrorCode,
        /// The server's message.
        message: String,
    },
    /// An incoming envelope was rejected (bad signature, replay, stale, ...).
    #[error("rejected an incoming envelope: {0}")]
    Envelope(#[from] EnvelopeError),
    /// A frame from the server could not be parsed.
    #[error("unreadable frame from the server: {0}")]
    Frame(#[from] FrameError),
    /// An outgoing envelope could not be delivered: over [`MAX_ENVELOPE_BYTES`] (its
    /// `deliver` frame would exceed [`MAX_FRAME_BYTES`]).
    #[error("envelope of {size} bytes exceeds the {MAX_ENVELOPE_BYTES}-byte limit (its deliver frame must fit {MAX_FRAME_BYTES} bytes): send less")]
    TooLarge {
        /// Encoded envelope size.
        size: usize,
    },
    /// The connection is closed.
    #[error("the signaling connection is closed")]
    Closed,
}

/// A checked, decrypted envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    /// The sender (signature verified).
    pub from: CallId,
    /// What the plaintext is.
    pub kind: EnvelopeKind,
    /// The sender's timestamp (unix seconds).
    pub ts: u64,
    /// Decrypted body.
    pub plaintext: Vec<u8>,
}

enum Command {
    Frame(String),
    Turn(oneshot::Sender<Result<TurnCredentials, ClientError>>),
    Close,
}

enum Event {
    Deliver(Box<Envelope>),
    Error(ErrorCode, String),
    BadFrame(FrameError),
}

/// What the socket task shares with the receiver.
struct Shared {
    inbox: Inbox<Event>,
    /// Why the connection ended, once it has.
    close_reason: std::sync::Mutex<Option<String>>,
}

/// The sending half: cheap to clone.
#[derive(Clone)]
pub struct ClientSender {
    identity: Arc<Identity>,
    cmd: mpsc::Sender<Command>,
    request_timeout: Duration,
}

/// The receiving half.
pub struct ClientReceiver {
    identity: Arc<Identity>,
    shared: Arc<Shared>,
    replay: ReplayCache,
    reported_drops: u64,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// An authenticated connection to a signaling server.
pub struct Client {
    sender: ClientSender,
    receiver: ClientReceiver,
    /// Envelopes the server's mailbox kept for us and queued at login (`welcome`'s `kept`).
    kept_at_login: u64,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("id", &self.id())
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for ClientSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSender")
            .field("id", &self.identity.call_id())
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for ClientReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientReceiver")
            .field("id", &self.identity.call_id())
            .finish_non_exhaustive()
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn tls_connector(extra_root_ca: Option<&PathBuf>) -> Result<Connector, ClientError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = extra_root_ca {
        let certs =
            crate::server::tls::load_certs(path).map_err(|e| ClientError::Tls(e.to_string()))?;
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| ClientError::Tls(format!("{}: {e}", path.display())))?;
        }
    }
    let mut cfg = rustls::ClientConfig::builder_with_provider(crate::server::tls::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Connector::Rustls(Arc::new(cfg)))
}

async fn next_server_frame(ws: &mut Socket) -> Result<ServerFrame, ClientError> {
    loop {
        match ws.next().await {
            None => return Err(ClientError::Closed),
            Some(Err(e)) => return Err(ClientError::Connect(e.to_string())),
            Some(Ok(Message::Text(text))) => return Ok(ServerFrame::parse(text.as_str())?),
            Some(Ok(Message::Close(_))) => return Err(ClientError::Closed),
            Some(Ok(_)) => continue,
        }
    }
}

async fn handshake(
    url: &SignalingUrl,
    identity: &Identity,
    opts: &ClientOptions,
) -> Result<(Socket, u64), ClientError> {
    let connector = if url.tls {
        tls_connector(opts.extra_root_ca.as_ref())?
    } else {
        Connector::Plain
    };
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_READ_MESSAGE_BYTES))
        .max_frame_size(Some(MAX_READ_MESSAGE_BYTES));
    let (mut ws, _) = tokio_tungstenite::connect_async_tls_with_config(
        url.dial.as_str(),
        Some(config),
        true,
        Some(connector),
    )
    .await
    .map_err(|e| match e {
        tokio_tungstenite::tungstenite::Error::Url(_) => ClientError::InvalidUrl(url.dial.clone()),
        other => ClientError::Connect(other.to_string()),
    })?;
    let (server, nonce, ts) = match next_server_frame(&mut ws).await? {
        ServerFrame::Challenge { server, nonce, ts } => (server, nonce, ts),
        ServerFrame::Error { code, message } => return Err(ClientError::Server { code, message }),
        other => {
            return Err(ClientError::Handshake(format!(
                "expected a challenge, got {other:?}"
            )))
        }
    };
    let expected = match opts.server_name.as_deref() {
        Some(name) => ExpectedName::Configured(name),
        None => ExpectedName::Dialed(&url.host),
    };
    check_server_name(&server, expected)?;
    let nonce = decode_nonce(&nonce).ok_or_else(|| {
        ClientError::Handshake("challenge nonce is not base64 of 32 bytes".into())
    })?;
    let skew = unix_now().abs_diff(ts);
    if skew > MAX_AUTH_SKEW_SECS {
        tracing::warn!(
            skew,
            "the server's clock differs from ours by more than 60 s; envelopes may be refused"
        );
    }
    ws.send(Message::Text(
        answer_challenge(identity, &server, &nonce, ts)
            .to_json()
            .into(),
    ))
    .await
    .map_err(|e| ClientError::Connect(e.to_string()))?;
    match next_server_frame(&mut ws).await? {
        ServerFrame::Welcome { id, kept } if id == identity.call_id() => Ok((ws, kept)),
        ServerFrame::Welcome { id, .. } => Err(ClientError::Handshake(format!(
            "server welcomed {id}, not us"
        ))),
        ServerFrame::Error { code, message } => Err(ClientError::Server { code, message }),
        other => Err(ClientError::Handshake(format!(
            "expected welcome, got {other:?}"
        ))),
    }
}

impl Client {
    /// Connects to `url` (`ws://` or `wss://`; a URL without a path gets `/ws`), checks that
    /// the challenge names the expected server ([`ClientOptions::server_name`], else the URL's
    /// host), answers it with `identity` and waits for `welcome`, all within
    /// [`ClientOptions::connect_timeout`].
    pub async fn connect(
        url: &str,
        identity: impl Into<Arc<Identity>>,
        opts: ClientOptions,
    ) -> Result<Client, ClientError> {
        let identity: Arc<Identity> = identity.into();
        let url = SignalingUrl::parse(url)?;
        let (ws, kept) =
            tokio::time::timeout(opts.connect_timeout, handshake(&url, &identity, &opts))
                .await
                .map_err(|_| ClientError::Timeout(opts.connect_timeout))??;
        let (cmd_tx, cmd_rx) = mpsc::channel(64);
        let shared = Arc::new(Shared {
            inbox: Inbox::new(opts.recv_queue),
            close_reason: std::sync::Mutex::new(None),
        });
        let task = tokio::spawn(run(
            ws,
            cmd_rx,
            Arc::clone(&shared),
            Timers {
                ping_every: opts.ping_interval,
                idle_timeout: opts.idle_timeout,
                write_timeout: opts.request_timeout,
            },
        ));
        tracing::debug!(id = %identity.call_id(), url = %url.dial, "connected to signaling server");
        Ok(Client {
            sender: ClientSender {
                identity: identity.clone(),
                cmd: cmd_tx,
                request_timeout: opts.request_timeout,
            },
            receiver: ClientReceiver {
                identity,
                shared,
                replay: ReplayCache::with_limits(opts.replay_limits),
                reported_drops: 0,
                task: Some(task),
            },
            kept_at_login: kept,
        })
    }

    /// Our call ID.
    pub fn id(&self) -> CallId {
        self.sender.identity.call_id()
    }

    /// How many envelopes the server's mailbox kept for us while we were offline and queued
    /// at login (they arrive through [`Client::recv`] like any other, room kinds only).
    pub fn kept_at_login(&self) -> u64 {
        self.kept_at_login
    }

    /// See [`ClientSender::send`].
    pub async fn send(
        &self,
        to: &CallId,
        kind: EnvelopeKind,
        plaintext: &[u8],
    ) -> Result<(), ClientError> {
        self.sender.send(to, kind, plaintext).await
    }

    /// See [`ClientSender::send_envelope`].
    pub async fn send_envelope(&self, envelope: &Envelope) -> Result<(), ClientError> {
        self.sender.send_envelope(envelope).await
    }

    /// See [`ClientReceiver::recv`].
    pub async fn recv(&mut self) -> Option<Result<Incoming, ClientError>> {
        self.receiver.recv().await
    }

    /// See [`ClientSender::turn_credentials`].
    pub async fn turn_credentials(&self) -> Result<TurnCredentials, ClientError> {
        self.sender.turn_credentials().await
    }

    /// A clone of the sending half.
    pub fn sender(&self) -> ClientSender {
        self.sender.clone()
    }

    /// Separates the halves (dropping every sender closes the connection).
    pub fn split(self) -> (ClientSender, ClientReceiver) {
        (self.sender, self.receiver)
    }

    /// Closes the connection and waits for the background task to end.
    pub async fn close(self) {
        let _ = tokio::time::timeout(
            self.sender.request_timeout,
            self.sender.cmd.send(Command::Close),
        )
        .await;
        drop(self.sender);
        self.receiver.close().await;
    }

    /// Closes the connection as [`Client::close`] does and returns every envelope (and error)
    /// that arrived before the server's close reply and was not read yet. The server counts an
    /// envelope written to this connection as delivered, so a short-lived client that drops
    /// them loses them for good (a room message sent while `call room send` was connected).
    pub async fn close_and_take(self) -> Vec<Result<Incoming, ClientError>> {
        let _ = tokio::time::timeout(
            self.sender.request_timeout,
            self.sender.cmd.send(Command::Close),
        )
        .await;
        drop(self.sender);
        let mut receiver = self.receiver;
        let mut left = Vec::new();
        if !receiver.wait_for_task().await {
            return left;
        }
        // The task has ended and closed the inbox: `recv` drains it, then says `None`.
        while let Some(event) = receiver.recv().await {
            left.push(event);
        }
        left
    }
}

impl ClientSender {
    /// Our call ID.
    pub fn id(&self) -> CallId {
        self.identity.call_id()
    }

    /// Seals `plaintext` to `to`, signs it with the current unix time and queues it.
    /// Returns once queued; a `not_online` answer arrives later through `recv`.
    pub async fn send(
        &self,
        to: &CallId,
        kind: EnvelopeKind,
        plaintext: &[u8],
    ) -> Result<(), ClientError> {
        let envelope = Envelope::seal(&self.identity, to, kind, plaintext, unix_now())?;
        self.send_envelope(&envelope).await
    }

    /// Queues an already sealed envelope (for relays and tests; the server checks `from`).
    /// Refuses an envelope over [`MAX_ENVELOPE_BYTES`], whose `deliver` frame could not reach
    /// the recipient.
    pub async fn send_envelope(&self, envelope: &Envelope) -> Result<(), ClientError> {
        let json = envelope.to_json();
        if json.len() > MAX_ENVELOPE_BYTES {
            return Err(ClientError::TooLarge { size: json.len() });
        }
        let value: serde_json::Value =
            serde_json::from_str(&json).map_err(|e| ClientError::Handshake(e.to_string()))?;
        let text = ClientFrame::Send { envelope: value }.to_json();
        self.request("the queued frame", self.cmd.send(Command::Frame(text)))
            .await?
            .map_err(|_| ClientError::Closed)
    }

    /// Asks the server for TURN credentials; [`ClientError::RequestTimeout`] when no answer
    /// arrives within [`ClientOptions::request_timeout`].
    pub async fn turn_credentials(&self) -> Result<TurnCredentials, ClientError> {
        self.request("the TURN credentials request", async {
            let (tx, rx) = oneshot::channel();
            self.cmd
                .send(Command::Turn(tx))
                .await
                .map_err(|_| ClientError::Closed)?;
            rx.await.map_err(|_| ClientError::Closed)?
        })
        .await?
    }

    async fn request<T>(
        &self,
        what: &'static str,
        fut: impl std::future::Future<Output = T>,
    ) -> Result<T, ClientError> {
        tokio::time::timeout(self.request_timeout, fut)
            .await
            .map_err(|_| ClientError::RequestTimeout {
                what,
                after: self.request_timeout,
            })
    }
}

impl ClientReceiver {
    /// Our call ID.
    pub fn id(&self) -> CallId {
        self.identity.call_id()
    }

    /// The next checked, decrypted envelope. `Some(Err(_))` is not fatal: a rejected envelope,
    /// a server error frame, an unreadable or oversize frame, or [`ClientError::Dropped`]
    /// (reported once, before the next event, after the queue overflowed). `None` means the
    /// connection is closed ([`ClientReceiver::close_reason`]).
    pub async fn recv(&mut self) -> Option<Result<Incoming, ClientError>> {
        let dropped = self.shared.inbox.dropped();
        if dropped > self.reported_drops {
            let count = dropped - self.reported_drops;
            self.reported_drops = dropped;
            return Some(Err(ClientError::Dropped { count }));
        }
        let event = self.shared.inbox.recv().await?;
        Some(match event {
            Event::Deliver(envelope) => {
                match envelope.open(&self.identity, unix_now(), &mut self.replay) {
                    Ok(opened) => Ok(Incoming {
                        from: opened.from,
                        kind: opened.kind,
                        ts: opened.ts,
                        plaintext: opened.plaintext,
                    }),
                    Err(err) => {
                        tracing::warn!(from = %envelope.from, code = err.code(), %err, "rejected an incoming envelope");
                        Err(ClientError::Envelope(err))
                    }
                }
            }
            Event::Error(code, message) => Err(ClientError::Server { code, message }),
            Event::BadFrame(err) => Err(ClientError::Frame(err)),
        })
    }

    /// Incoming events dropped so far because the queue was full (see
    /// [`ClientOptions::recv_queue`]).
    pub fn dropped(&self) -> u64 {
        self.shared.inbox.dropped()
    }

    /// Why the connection ended, once [`ClientReceiver::recv`] has returned `None` (or the
    /// task has stopped): e.g. the server closed it, the socket failed, or it fell idle.
    pub fn close_reason(&self) -> Option<String> {
        self.shared
            .close_reason
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Waits for the background task to end (it ends once every sender is dropped or closed).
    pub async fn close(mut self) {
        self.wait_for_task().await;
    }

    /// Whether the task has stopped (at once if it had already).
    async fn wait_for_task(&mut self) -> bool {
        if let Some(task) = self.task.take() {
            if tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .is_err()
            {
                tracing::warn!("signaling client task did not stop within 5 s");
                return false;
            }
        }
        true
    }
}

/// Timing of the socket task.
struct Timers {
    ping_every: Duration,
    idle_timeout: Duration,
    write_timeout: Duration,
}

/// The background task: owns the socket. Never waits for the application (events go to the
/// inbox, which never blocks); writes are bounded by `write_timeout`.
async fn run(
    mut ws: Socket,
    mut cmds: mpsc::Receiver<Command>,
    shared: Arc<Shared>,
    timers: Timers,
) {
    let reason = serve(&mut ws, &mut cmds, &shared, &timers).await;
    tracing::info!(%reason, "signaling connection ended");
    *shared
        .close_reason
        .lock()
        .unwrap_or_else(|p| p.into_inner()) = Some(reason);
    shared.inbox.close();
}

/// The socket loop; returns why it ended. Pending TURN requests get [`ClientError::Closed`].
async fn serve(
    ws: &mut Socket,
    cmds: &mut mpsc::Receiver<Command>,
    shared: &Shared,
    timers: &Timers,
) -> String {
    let mut pending_turn: VecDeque<oneshot::Sender<Result<TurnCredentials, ClientError>>> =
        VecDeque::new();
    let reason = serve_until_closed(ws, cmds, shared, timers, &mut pending_turn).await;
    for reply in pending_turn {
        let _ = reply.send(Err(ClientError::Closed));
    }
    reason
}

async fn write(ws: &mut Socket, msg: Message, timeout: Duration) -> Result<(), String> {
    match tokio::time::timeout(timeout, ws.send(msg)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(err)) => Err(format!("sending to the signaling server failed: {err}")),
        Err(_) => Err(format!(
            "the signaling server did not accept data within {timeout:?}"
        )),
    }
}

async fn serve_until_closed(
    ws: &mut Socket,
    cmds: &mut mpsc::Receiver<Command>,
    shared: &Shared,
    timers: &Timers,
    pending_turn: &mut VecDeque<oneshot::Sender<Result<TurnCredentials, ClientError>>>,
) -> String {
    // A zero period would panic in tokio.
    let ping_every = timers.ping_every.max(Duration::from_millis(10));
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + ping_every, ping_every);
    let mut last_rx = tokio::time::Instant::now();
    loop {
        tokio::select! {
            cmd = cmds.recv() => match cmd {
                Some(Command::Frame(text)) => {
                    if let Err(reason) = write(ws, Message::Text(text.into()), timers.write_timeout).await {
                        return reason;
                    }
                }
                Some(Command::Turn(reply)) => {
                    let frame = Message::Text(ClientFrame::Turn.to_json().into());
                    if let Err(reason) = write(ws, frame, timers.write_timeout).await {
                        let _ = reply.send(Err(ClientError::Closed));
                        return reason;
                    }
                    pending_turn.push_back(reply);
                }
                Some(Command::Close) | None => {
                    // Send our close frame, then read until the server's: leaving with the
                    // server's frames unread would make the kernel answer with a reset, and a
                    // reset makes the server drop what it had not read of ours yet (the last
                    // envelopes sent before closing).
                    let _ = tokio::time::timeout(Duration::from_secs(2), async {
                        let _ = ws.close(None).await;
                        while let Some(Ok(msg)) = ws.next().await {
                            if matches!(msg, Message::Close(_)) {
                                break;
                            }
                        }
                    })
                    .await;
                    return "closed by this client".into();
                }
            },
            _ = ping.tick() => {
                if last_rx.elapsed() > timers.idle_timeout {
                    return format!("nothing heard from the signaling server for {:?}", timers.idle_timeout);
                }
                if let Err(reason) = write(ws, Message::Ping(Default::default()), timers.write_timeout).await {
                    return reason;
                }
            }
            msg = ws.next() => {
                last_rx = tokio::time::Instant::now();
                let text = match msg {
                    None => return "the signaling server closed the connection".into(),
                    Some(Ok(Message::Close(frame))) => {
                        return match frame {
                            Some(f) if !f.reason.is_empty() => format!(
                                "the signaling server closed the connection ({}: {})",
                                u16::from(f.code),
                                f.reason.chars().take(120).collect::<String>()
                            ),
                            _ => "the signaling server closed the connection".into(),
                        };
                    }
                    Some(Err(err)) => return format!("the signaling connection failed: {err}"),
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(_)) => continue,
                };
                if let Some((origin, event)) = handle_text(text.as_str(), pending_turn) {
                    if shared.inbox.push(origin, event) {
                        let dropped = shared.inbox.dropped();
                        // Once per power of two: visible without flooding the log.
                        if dropped.is_power_of_two() {
                            tracing::warn!(dropped, "signaling receive queue full; dropped the oldest message of the busiest sender");
                        }
                    }
                }
            }
        }
    }
}

/// Turns one text frame into an event for the application, or answers a pending request.
fn handle_text(
    text: &str,
    pending_turn: &mut VecDeque<oneshot::Sender<Result<TurnCredentials, ClientError>>>,
) -> Option<(Origin, Event)> {
    match ServerFrame::parse(text) {
        Ok(ServerFrame::Deliver { envelope }) => Some((
            Some(*envelope.from.as_bytes()),
            Event::Deliver(Box::new(envelope)),
        )),
        Ok(ServerFrame::TurnCredentials(creds)) => {
            match pending_turn.pop_front() {
                Some(reply) => {
                    let _ = reply.send(Ok(creds));
                }
                None => tracing::debug!("TURN credentials nobody asked for; ignored"),
            }
            None
        }
        Ok(ServerFrame::Error {
            code: ErrorCode::TurnUnavailable,
            message,
        }) if !pending_turn.is_empty() => {
            if let Some(reply) = pending_turn.pop_front() {
                let _ = reply.send(Err(ClientError::Server {
                    code: ErrorCode::TurnUnavailable,
                    message,
                }));
            }
            None
        }
        Ok(ServerFrame::Error { code, message }) => {
            tracing::info!(%code, %message, "error frame from the signaling server");
            Some((None, Event::Error(code, message)))
        }
        Ok(other) => {
            tracing::debug!(?other, "ignoring unexpected frame");
            None
        }
        Err(err) => {
            tracing::warn!(code = %err.code(), %err, "unreadable frame from the signaling server; ignored");
            Some((None, Event::BadFrame(err)))
        }
    }
}

#[cfg(test)]
mod tests;
