//! Async signaling client over tokio-tungstenite (`ws://` and `wss://`).
//!
//! Distance from the wire: [`Client::connect`] performs the challenge-response handshake, then a
//! background task owns the socket. [`ClientSender`] (cloneable) seals, signs and queues
//! envelopes; [`ClientReceiver`] opens and checks incoming ones with a [`ReplayCache`]. A
//! [`Client`] is both; [`Client::split`] separates them so a call can send while it receives.
//!
//! Errors returned by [`ClientReceiver::recv`] are **not fatal** (a rejected envelope, an error
//! frame such as `not_online`): keep calling `recv` until it returns `None`, which means the
//! connection is gone.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::{SinkExt, StreamExt};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use crate::envelope::{Envelope, EnvelopeError, EnvelopeKind, ReplayCache, ReplayLimits};
use crate::identity::{CallId, Identity};
use crate::protocol::{
    answer_challenge, decode_nonce, ClientFrame, ErrorCode, FrameError, ServerFrame,
    MAX_AUTH_SKEW_SECS, MAX_FRAME_BYTES,
};
use crate::turn_credentials::TurnCredentials;

type Socket = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// Connection options.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Refuse servers whose challenge names another server (`None`: accept any name).
    pub server_name: Option<String>,
    /// Extra trusted root CA (PEM file) for `wss://`, e.g. a self-signed test certificate.
    /// The public web PKI roots are always trusted too.
    pub extra_root_ca: Option<PathBuf>,
    /// Connecting, TLS and the handshake must finish within this time.
    pub connect_timeout: Duration,
    /// Incoming frames buffered before the client stops reading from the server.
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
    /// The server broke the handshake protocol.
    #[error("unexpected handshake from the server: {0}")]
    Handshake(String),
    /// The challenge names a different server than the one expected.
    #[error(
        "the server calls itself {got:?}, expected {expected:?}: wrong URL or a relaying server"
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
    /// An outgoing frame would exceed the size limit.
    #[error("message of {size} bytes exceeds the {MAX_FRAME_BYTES}-byte frame limit: send less")]
    TooLarge {
        /// Encoded frame size.
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

/// The sending half: cheap to clone.
#[derive(Clone)]
pub struct ClientSender {
    identity: Arc<Identity>,
    cmd: mpsc::Sender<Command>,
}

/// The receiving half.
pub struct ClientReceiver {
    identity: Arc<Identity>,
    events: mpsc::Receiver<Event>,
    replay: ReplayCache,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// An authenticated connection to a signaling server.
pub struct Client {
    sender: ClientSender,
    receiver: ClientReceiver,
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
    url: &str,
    identity: &Identity,
    opts: &ClientOptions,
) -> Result<Socket, ClientError> {
    let connector = if url.starts_with("wss://") {
        tls_connector(opts.extra_root_ca.as_ref())?
    } else if url.starts_with("ws://") {
        Connector::Plain
    } else {
        return Err(ClientError::InvalidUrl(url.to_owned()));
    };
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_FRAME_BYTES))
        .max_frame_size(Some(MAX_FRAME_BYTES));
    let (mut ws, _) =
        tokio_tungstenite::connect_async_tls_with_config(url, Some(config), true, Some(connector))
            .await
            .map_err(|e| match e {
                tokio_tungstenite::tungstenite::Error::Url(_) => {
                    ClientError::InvalidUrl(url.to_owned())
                }
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
    if let Some(expected) = &opts.server_name {
        if *expected != server {
            return Err(ClientError::WrongServer {
                expected: expected.clone(),
                got: server,
            });
        }
    }
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
        ServerFrame::Welcome { id } if id == identity.call_id() => Ok(ws),
        ServerFrame::Welcome { id } => Err(ClientError::Handshake(format!(
            "server welcomed {id}, not us"
        ))),
        ServerFrame::Error { code, message } => Err(ClientError::Server { code, message }),
        other => Err(ClientError::Handshake(format!(
            "expected welcome, got {other:?}"
        ))),
    }
}

impl Client {
    /// Connects to `url` (`ws://` or `wss://`), answers the challenge with `identity` and waits
    /// for `welcome`.
    pub async fn connect(
        url: &str,
        identity: impl Into<Arc<Identity>>,
        opts: ClientOptions,
    ) -> Result<Client, ClientError> {
        let identity: Arc<Identity> = identity.into();
        let ws = tokio::time::timeout(opts.connect_timeout, handshake(url, &identity, &opts))
            .await
            .map_err(|_| ClientError::Timeout(opts.connect_timeout))??;
        let (cmd_tx, cmd_rx) = mpsc::channel(64);
        let (ev_tx, ev_rx) = mpsc::channel(opts.recv_queue.max(1));
        let task = tokio::spawn(run(
            ws,
            cmd_rx,
            ev_tx,
            opts.ping_interval,
            opts.idle_timeout,
        ));
        tracing::debug!(id = %identity.call_id(), %url, "connected to signaling server");
        Ok(Client {
            sender: ClientSender {
                identity: identity.clone(),
                cmd: cmd_tx,
            },
            receiver: ClientReceiver {
                identity,
                events: ev_rx,
                replay: ReplayCache::with_limits(opts.replay_limits),
                task: Some(task),
            },
        })
    }

    /// Our call ID.
    pub fn id(&self) -> CallId {
        self.sender.identity.call_id()
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
        let _ = self.sender.cmd.send(Command::Close).await;
        drop(self.sender);
        self.receiver.close().await;
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
    pub async fn send_envelope(&self, envelope: &Envelope) -> Result<(), ClientError> {
        let value =
            serde_json::to_value(envelope).map_err(|e| ClientError::Handshake(e.to_string()))?;
        let text = ClientFrame::Send { envelope: value }.to_json();
        if text.len() > MAX_FRAME_BYTES {
            return Err(ClientError::TooLarge { size: text.len() });
        }
        self.cmd
            .send(Command::Frame(text))
            .await
            .map_err(|_| ClientError::Closed)
    }

    /// Asks the server for TURN credentials.
    pub async fn turn_credentials(&self) -> Result<TurnCredentials, ClientError> {
        let (tx, rx) = oneshot::channel();
        self.cmd
            .send(Command::Turn(tx))
            .await
            .map_err(|_| ClientError::Closed)?;
        rx.await.map_err(|_| ClientError::Closed)?
    }
}

impl ClientReceiver {
    /// Our call ID.
    pub fn id(&self) -> CallId {
        self.identity.call_id()
    }

    /// The next checked, decrypted envelope. `Some(Err(_))` is a rejected envelope or a server
    /// error frame and is not fatal; `None` means the connection is closed.
    pub async fn recv(&mut self) -> Option<Result<Incoming, ClientError>> {
        let event = self.events.recv().await?;
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

    /// Waits for the background task to end (it ends once every sender is dropped or closed).
    pub async fn close(mut self) {
        self.events.close();
        if let Some(task) = self.task.take() {
            if tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .is_err()
            {
                tracing::warn!("signaling client task did not stop within 5 s");
            }
        }
    }
}

/// The background task: owns the socket.
async fn run(
    mut ws: Socket,
    mut cmds: mpsc::Receiver<Command>,
    events: mpsc::Sender<Event>,
    ping_every: Duration,
    idle_timeout: Duration,
) {
    let mut pending_turn: VecDeque<oneshot::Sender<Result<TurnCredentials, ClientError>>> =
        VecDeque::new();
    // A zero period would panic in tokio.
    let ping_every = ping_every.max(Duration::from_millis(10));
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + ping_every, ping_every);
    let mut last_rx = std::time::Instant::now();
    loop {
        tokio::select! {
            cmd = cmds.recv() => match cmd {
                Some(Command::Frame(text)) => {
                    if let Err(err) = ws.send(Message::Text(text.into())).await {
                        tracing::debug!(%err, "signaling send failed");
                        break;
                    }
                }
                Some(Command::Turn(reply)) => {
                    if ws.send(Message::Text(ClientFrame::Turn.to_json().into())).await.is_err() {
                        let _ = reply.send(Err(ClientError::Closed));
                        break;
                    }
                    pending_turn.push_back(reply);
                }
                Some(Command::Close) | None => {
                    let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
                    break;
                }
            },
            _ = ping.tick() => {
                if last_rx.elapsed() > idle_timeout {
                    tracing::info!(?idle_timeout, "nothing heard from the signaling server; dropping the connection");
                    break;
                }
                if ws.send(Message::Ping(Default::default())).await.is_err() {
                    break;
                }
            }
            msg = ws.next() => {
                last_rx = std::time::Instant::now();
                let text = match msg {
                    None | Some(Ok(Message::Close(_))) => break,
                    Some(Err(err)) => {
                        tracing::info!(%err, "signaling connection failed");
                        break;
                    }
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(_)) => continue,
                };
                let event = match ServerFrame::parse(text.as_str()) {
                    Ok(ServerFrame::Deliver { envelope }) => Event::Deliver(Box::new(envelope)),
                    Ok(ServerFrame::TurnCredentials(creds)) => {
                        if let Some(reply) = pending_turn.pop_front() {
                            let _ = reply.send(Ok(creds));
                        }
                        continue;
                    }
                    Ok(ServerFrame::Error { code: ErrorCode::TurnUnavailable, message }) if !pending_turn.is_empty() => {
                        if let Some(reply) = pending_turn.pop_front() {
                            let _ = reply.send(Err(ClientError::Server { code: ErrorCode::TurnUnavailable, message }));
                        }
                        continue;
                    }
                    Ok(ServerFrame::Error { code, message }) => {
                        tracing::info!(%code, %message, "error frame from the signaling server");
                        Event::Error(code, message)
                    }
                    Ok(other) => {
                        tracing::debug!(?other, "ignoring unexpected frame");
                        continue;
                    }
                    Err(err) => Event::BadFrame(err),
                };
                // Waits when the application is not reading: backpressure towards the server.
                if events.send(event).await.is_err() {
                    tracing::debug!("receiver dropped; discarding incoming frame");
                }
            }
        }
    }
    for reply in pending_turn {
        let _ = reply.send(Err(ClientError::Closed));
    }
}
