//! axum WebSocket signaling server with embedded TURN.
//!
//! Layers, from the wire inwards: `http` (TCP accept, optional TLS, HTTP/1.1 with a header
//! read timeout, connection cap) → axum route `GET /ws` (WebSocket upgrade with 64 KiB limits)
//! → `connection` (one task per socket: timers, bounded queue) → [`session`] (sans-IO
//! protocol state: [`auth`] challenge, [`limits`] token bucket, frame checks) → [`routing`]
//! (in-memory presence table). [`turn`] runs the embedded TURN server whose relays obey
//! [`peer_policy`]. Nothing is written to disk.

pub mod auth;
mod connection;
mod http;
pub mod limits;
pub mod peer_policy;
pub mod routing;
pub mod session;
pub mod tls;
pub mod turn;
pub mod turn_gate;
pub mod turn_nonce;
pub mod turn_quota;
pub mod turn_rate;
pub mod turn_retransmit;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::identity::CallId;
use crate::protocol::{MAX_FRAME_BYTES, MAX_SERVER_NAME_BYTES, WS_PATH};
use crate::turn_credentials::{
    CredentialPolicy, TurnCredentialError, TurnCredentials, TurnSecret,
    DEFAULT_CREDENTIAL_TTL_SECS, DEFAULT_MAX_TTL_SECS,
};

pub use limits::RateLimit;
pub use tls::{TlsError, TlsPaths};
pub use turn::{TurnConfig, TurnLimits, TurnServerError, TurnStats};

/// Timeouts and resource bounds of the server.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Per-connection frame rate limit.
    pub rate: RateLimit,
    /// A connection must authenticate within this time after the upgrade.
    pub auth_timeout: Duration,
    /// The TLS handshake and the HTTP request head must each arrive within this time.
    pub header_read_timeout: Duration,
    /// The server pings every connection this often.
    pub ping_interval: Duration,
    /// A connection from which nothing (not even a pong) arrives for this long is closed.
    pub idle_timeout: Duration,
    /// Outbound frames queued per connection; a recipient whose queue is full is closed.
    pub send_queue: usize,
    /// A single WebSocket write may take at most this long.
    pub send_timeout: Duration,
    /// Maximum simultaneous connections (WebSockets, and separately connections still in the
    /// TCP/TLS/HTTP stage).
    pub max_connections: usize,
    /// Envelopes remembered per connection to refuse resends (bounded memory per connection).
    pub replay_capacity: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            rate: RateLimit::default(),
            auth_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(10),
            ping_interval: Duration::from_secs(20),
            idle_timeout: Duration::from_secs(60),
            send_queue: 64,
            send_timeout: Duration::from_secs(10),
            max_connections: 10_000,
            replay_capacity: 256,
        }
    }
}

/// Everything the server needs to start.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// TCP address for the WebSocket listener (port 0 picks a free port).
    pub listen: SocketAddr,
    /// Name put in every challenge and covered by the client's signature.
    pub server_name: String,
    /// Embedded TURN server; `None` runs none.
    pub turn: Option<TurnConfig>,
    /// Shared secret for TURN credentials; `None` picks a random one (fine for the embedded
    /// TURN server, which shares the process).
    pub turn_secret: Option<TurnSecret>,
    /// Extra TURN URLs to hand out (e.g. a coturn with the same `static-auth-secret`).
    pub external_turn_urls: Vec<String>,
    /// Lifetime of issued TURN credentials, seconds.
    pub credential_ttl: u64,
    /// Largest credential lifetime the embedded TURN server accepts, seconds.
    pub max_ttl: u64,
    /// Let the TURN relay talk to loopback/private/link-local peers (development only).
    pub allow_loopback_peers: bool,
    /// Serve `wss://` with this certificate and key.
    pub tls: Option<TlsPaths>,
    /// Timeouts and bounds.
    pub limits: Limits,
}

impl ServerConfig {
    /// Local development and tests: `127.0.0.1:0`, embedded TURN on `127.0.0.1:0`, random
    /// secret, loopback peers allowed, no TLS, default limits.
    pub fn local() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            server_name: "call-signaling".to_owned(),
            turn: Some(TurnConfig::local()),
            turn_secret: None,
            external_turn_urls: Vec::new(),
            credential_ttl: DEFAULT_CREDENTIAL_TTL_SECS,
            max_ttl: DEFAULT_MAX_TTL_SECS,
            allow_loopback_peers: true,
            tls: None,
            limits: Limits::default(),
        }
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The TCP listener could not be bound.
    #[error("cannot listen on {addr}: {source} (is the port in use? --listen 127.0.0.1:0 picks a free one)")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The server name is empty or too long.
    #[error("server name must be 1 to {MAX_SERVER_NAME_BYTES} bytes")]
    BadServerName,
    /// TLS files are unusable.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The embedded TURN server could not start.
    #[error(transparent)]
    Turn(#[from] TurnServerError),
    /// TTL settings are inconsistent.
    #[error(transparent)]
    Credentials(#[from] TurnCredentialError),
}

/// State shared by all connections of one server.
pub(crate) struct Shared {
    server_name: String,
    limits: Limits,
    registry: routing::Registry,
    policy: Arc<CredentialPolicy>,
    turn_urls: Vec<String>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    next_conn: AtomicU64,
    open_connections: AtomicUsize,
    open_websockets: AtomicUsize,
}

impl Shared {
    fn next_conn_id(&self) -> u64 {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    /// Credentials for `id`, or `None` when there is no TURN service to use them with.
    fn turn_credentials(&self, id: &CallId) -> Option<TurnCredentials> {
        if self.turn_urls.is_empty() {
            return None;
        }
        Some(self.policy.issue(
            &id.to_string(),
            connection::unix_now(),
            self.turn_urls.clone(),
        ))
    }
}

/// Counts one open WebSocket; released on drop.
struct WsSlot(Arc<Shared>);

impl Drop for WsSlot {
    fn drop(&mut self) {
        self.0.open_websockets.fetch_sub(1, Ordering::AcqRel);
    }
}

async fn ws_handler(
    ws: WebSocketUpgrade,
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> Response {
    let open = shared.open_websockets.fetch_add(1, Ordering::AcqRel);
    let slot = WsSlot(shared.clone());
    if open >= shared.limits.max_connections || shared.shutdown.is_cancelled() {
        tracing::warn!(%peer, open, "refusing WebSocket: connection limit or shutting down");
        return (StatusCode::SERVICE_UNAVAILABLE, "too many connections").into_response();
    }
    let tracker = shared.tracker.clone();
    ws.max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
        .on_failed_upgrade(move |err| tracing::debug!(%peer, %err, "WebSocket upgrade failed"))
        .on_upgrade(move |socket| {
            tracker.track_future(async move {
                let _slot = slot;
                connection::serve(socket, shared, peer).await;
            })
        })
}

/// The signaling server.
#[derive(Debug)]
pub struct Server;

impl Server {
    /// Binds the listener (and the embedded TURN server), starts serving, and returns once
    /// both accept connections.
    pub async fn start(cfg: ServerConfig) -> Result<RunningServer, ServerError> {
        if cfg.server_name.is_empty() || cfg.server_name.len() > MAX_SERVER_NAME_BYTES {
            return Err(ServerError::BadServerName);
        }
        let secret = cfg.turn_secret.clone().unwrap_or_else(TurnSecret::random);
        let policy = Arc::new(CredentialPolicy::new(
            secret,
            cfg.credential_ttl,
            cfg.max_ttl,
        )?);
        let tls = match &cfg.tls {
            Some(paths) => Some(tokio_rustls::TlsAcceptor::from(tls::server_config(paths)?)),
            None => None,
        };
        let listener = tokio::net::TcpListener::bind(cfg.listen)
            .await
            .map_err(|source| ServerError::Bind {
                addr: cfg.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| ServerError::Bind {
            addr: cfg.listen,
            source,
        })?;
        let turn = match &cfg.turn {
            Some(turn_cfg) => Some(Arc::new(
                turn::EmbeddedTurn::start(turn_cfg, policy.clone(), cfg.allow_loopback_peers)
                    .await?,
            )),
            None => None,
        };
        let mut turn_urls = turn.as_ref().map(|t| t.urls()).unwrap_or_default();
        turn_urls.extend(cfg.external_turn_urls.iter().cloned());

        let shutdown = CancellationToken::new();
        let tracker = TaskTracker::new();
        let shared = Arc::new(Shared {
            server_name: cfg.server_name.clone(),
            limits: cfg.limits.clone(),
            registry: routing::Registry::default(),
            policy,
            turn_urls,
            shutdown: shutdown.clone(),
            tracker: tracker.clone(),
            next_conn: AtomicU64::new(1),
            open_connections: AtomicUsize::new(0),
            open_websockets: AtomicUsize::new(0),
        });
        let router = Router::new()
            .route(WS_PATH, get(ws_handler))
            .with_state(shared.clone());
        let scheme = if tls.is_some() { "wss" } else { "ws" };
        let mut url_addr = addr;
        if url_addr.ip().is_unspecified() {
            url_addr.set_ip(if addr.is_ipv4() {
                std::net::Ipv4Addr::LOCALHOST.into()
            } else {
                std::net::Ipv6Addr::LOCALHOST.into()
            });
        }
        let url = format!("{scheme}://{url_addr}{WS_PATH}");

        tracker.spawn(http::accept_loop(
            listener,
            router,
            tls,
            shared.clone(),
            tracker.clone(),
        ));
        let turn_server = turn.clone();
        let turn_task = turn.map(|turn| {
            let token = shutdown.clone();
            let turn_addr = turn.local_addr();
            let task = tokio::spawn(async move {
                token.cancelled().await;
                turn.close().await;
            });
            (turn_addr, task)
        });
        tracing::info!(%url, turn = ?turn_task.as_ref().map(|t| t.0), "signaling server ready");
        Ok(RunningServer {
            url,
            addr,
            shutdown,
            tracker,
            shared,
            turn_addr: turn_task.as_ref().map(|t| t.0),
            turn_task: turn_task.map(|t| t.1),
            turn: turn_server,
        })
    }
}

/// A started server. Stops on [`RunningServer::shutdown`], when its
/// [`shutdown_token`](RunningServer::shutdown_token) is cancelled, or when dropped.
pub struct RunningServer {
    url: String,
    addr: SocketAddr,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    shared: Arc<Shared>,
    turn_addr: Option<SocketAddr>,
    turn_task: Option<tokio::task::JoinHandle<()>>,
    turn: Option<Arc<turn::EmbeddedTurn>>,
}

impl std::fmt::Debug for RunningServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningServer")
            .field("url", &self.url)
            .field("turn_addr", &self.turn_addr)
            .finish_non_exhaustive()
    }
}

impl RunningServer {
    /// The URL clients connect to: `ws://HOST:PORT/ws` or `wss://HOST:PORT/ws`.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// The bound TCP address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The embedded TURN server's UDP address, if it runs.
    pub fn turn_addr(&self) -> Option<SocketAddr> {
        self.turn_addr
    }

    /// Cancelling this token shuts the server down (as [`RunningServer::shutdown`] does,
    /// without waiting).
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// What the embedded TURN server holds right now, if it runs.
    pub async fn turn_stats(&self) -> Option<TurnStats> {
        match &self.turn {
            Some(turn) => Some(turn.stats().await),
            None => None,
        }
    }

    /// Number of authenticated clients right now.
    pub fn connected_clients(&self) -> usize {
        self.shared.registry.len()
    }

    /// Stops accepting, closes every connection (`shutting_down`), stops the TURN server and
    /// waits until all tasks have finished and all sockets are released.
    pub async fn shutdown(mut self) {
        self.shutdown.cancel();
        self.tracker.close();
        if tokio::time::timeout(Duration::from_secs(5), self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("some connections did not close within 5 s");
        }
        if let Some(task) = self.turn_task.take() {
            let _ = task.await;
        }
        tracing::info!(url = %self.url, "signaling server stopped");
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        // Tasks notice the cancellation and end on their own (the TURN task closes the TURN
        // server); `shutdown()` is the way to wait for that.
        self.shutdown.cancel();
        self.tracker.close();
    }
}
