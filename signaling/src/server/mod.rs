//! axum WebSocket signaling server with embedded TURN.
//!
//! Layers, from the wire inwards: `http` (TCP accept, optional TLS, HTTP/1.1 with a header
//! read timeout and size cap, connection caps in total and per address, [`ip_limits`]) → axum
//! route `GET /ws` ([`origin`] check, per-address WebSocket cap, upgrade with 64 KiB limits and
//! bounded buffers) → `connection` (one task per socket: timers, write timeout, its
//! [`outbox`]) → [`session`] (sans-IO protocol state: [`auth`] challenge, [`limits`] token
//! bucket, frame checks) → [`routing`] (in-memory presence table, fair byte-bounded queues).
//! [`turn`] runs the embedded TURN server whose relays obey [`peer_policy`]. [`web`] serves the
//! browser client at `/`. Nothing is written to disk ([`secret_file`] only reads the TURN
//! secret). [`metrics`] counts what happens and is served on a listener of its own
//! (`metrics_http`) when one is configured. With `--redis`, [`cluster`] shares presence,
//! routing and the mailbox with other instances through Redis.

pub mod auth;
pub mod cluster;
pub mod config_file;
mod connection;
pub mod failed_logins;
mod http;
pub mod ip_limits;
pub mod limits;
pub mod mailbox;
pub mod metrics;
mod metrics_http;
pub mod origin;
pub mod outbox;
pub mod peer_policy;
pub mod routing;
pub mod secret_file;
pub mod send_frame; // public for the differential fuzz target (fuzz/src/fast_path.rs)
pub mod session;
pub mod tls;
pub mod turn;
pub mod turn_gate;
pub mod turn_nonce;
pub mod turn_quota;
pub mod turn_rate;
pub mod turn_retransmit;
pub mod web;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::envelope::EnvelopeKind;
use crate::identity::CallId;
use crate::protocol::{MAX_FRAME_BYTES, MAX_SERVER_NAME_BYTES, WS_PATH};
use crate::turn_credentials::{
    CredentialPolicy, TurnCredentialError, TurnCredentials, TurnSecret,
    DEFAULT_CREDENTIAL_TTL_SECS, DEFAULT_MAX_TTL_SECS,
};

pub use cluster::{ClusterConfig, ClusterError};
pub use limits::RateLimit;
pub use metrics::Metrics;
pub use metrics_http::METRICS_PATH;
pub use origin::{OriginError, OriginPolicy};
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
    /// Bytes one sender may have queued for one recipient (beyond its first frame); past it
    /// the sender gets `recipient_busy`.
    pub sender_queue_bytes: usize,
    /// Bytes queued for one recipient (beyond a first frame from each sender with nothing
    /// queued); past it senders get `recipient_busy`. The recipient is never closed for it.
    pub recipient_queue_bytes: usize,
    /// Bytes queued for all recipients together (frames being written included); past it
    /// senders get `recipient_busy`.
    pub global_queue_bytes: usize,
    /// A single WebSocket write may take at most this long; a client whose socket takes no
    /// frame for this long does not read and is closed.
    pub send_timeout: Duration,
    /// Maximum simultaneous connections (WebSockets, and separately connections still in the
    /// TCP/TLS/HTTP stage).
    pub max_connections: usize,
    /// Maximum simultaneous WebSockets from one IPv4 address or IPv6 /64 (HTTP 429 beyond).
    pub max_connections_per_ip: usize,
    /// Maximum simultaneous connections in the TCP/TLS/HTTP stage from one IPv4 address or
    /// IPv6 /64 (closed at once beyond).
    pub max_handshakes_per_ip: usize,
    /// Largest HTTP request head (request line and headers) read before the upgrade, bytes
    /// (at least 8192; hyper's own default would be about 400 KiB per connection).
    pub http_max_request_head: usize,
    /// Bytes the WebSocket layer reads from the socket at a time (its read buffer, allocated
    /// whole for every connection, idle or not). A frame larger than it is read in several
    /// pieces, so it does not bound the frame size (`MAX_FRAME_BYTES` does).
    pub ws_read_buffer: usize,
    /// Most bytes the WebSocket layer may hold unwritten (at least one largest frame plus a
    /// close frame; a connection that would exceed it is closed).
    pub ws_max_write_buffer: usize,
    /// Kernel send buffer (`SO_SNDBUF`) of every accepted socket; `None` keeps the system's
    /// autotuning (up to `net.ipv4.tcp_wmem`'s maximum, 4 MiB by default on Linux).
    pub tcp_send_buffer: Option<usize>,
    /// Envelopes remembered per connection to refuse resends (bounded memory per connection).
    pub replay_capacity: usize,
    /// Whether the server verifies envelope signatures before routing (protocol §12.1 step 4).
    /// Off by default: one Ed25519 verification costs more than the rest of routing together,
    /// and receivers verify every envelope anyway (§4.5); `from` stays bound to the
    /// authenticated ID either way (docs/decisions.md, "Signatures at the server").
    pub verify_signatures: bool,
    /// Failed logins allowed per minute from one IPv4 address or IPv6 /64; past them the
    /// address is refused at the upgrade (HTTP 429) until it has earned one back
    /// ([`failed_logins`]). 0: no limit.
    pub login_failures_per_minute: u32,
    /// The offline mailbox (room states and messages for IDs not connected; memory only).
    pub mailbox: mailbox::MailboxLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            rate: RateLimit::default(),
            auth_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(10),
            ping_interval: Duration::from_secs(20),
            idle_timeout: Duration::from_secs(60),
            sender_queue_bytes: 256 * 1024,
            recipient_queue_bytes: 1024 * 1024,
            global_queue_bytes: 256 * 1024 * 1024,
            send_timeout: Duration::from_secs(10),
            max_connections: 10_000,
            max_connections_per_ip: 64,
            max_handshakes_per_ip: 32,
            http_max_request_head: 16 * 1024,
            // 4 KiB: most frames fit (an offer is 2-4 KiB); 16 KiB cost 12 KiB more per idle
            // connection (docs/performance.md, "Signaling under load").
            ws_read_buffer: 4 * 1024,
            ws_max_write_buffer: MAX_FRAME_BYTES + 4096,
            tcp_send_buffer: None,
            replay_capacity: 256,
            verify_signatures: false,
            login_failures_per_minute: 10,
            mailbox: mailbox::MailboxLimits::default(),
        }
    }
}

/// Everything the server needs to start.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// TCP address for the WebSocket listener (port 0 picks a free port).
    pub listen: SocketAddr,
    /// Name put in every challenge and covered by the client's signature: the host clients
    /// dial (DNS name or IP literal), since clients check it against their URL's host. `None`
    /// uses the listen address's IP when it is not a wildcard; a wildcard listener must name
    /// itself. See [`server_name_for`].
    pub server_name: Option<String>,
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
    /// Browser origins (`scheme://host[:port]`) allowed to open `/ws` besides the server's own
    /// page ([`origin::own_origins`]); a request with any other `Origin` header is refused with
    /// 403. Requests without one (non-browser clients) are always allowed.
    pub allowed_origins: Vec<String>,
    /// The URL people open to reach this server's page when it is not the listen address
    /// (behind a reverse proxy, or a DNS name): its origin may open `/ws` too. `None`: only the
    /// origins derived from the listen address and the server name.
    pub public_url: Option<String>,
    /// Timeouts and bounds.
    pub limits: Limits,
    /// Serve Prometheus metrics on `GET /metrics` at this TCP address (port 0 picks a free
    /// one); `None` serves none. A listener of its own: never the public WebSocket port.
    pub metrics_listen: Option<SocketAddr>,
    /// Share presence, routing and the offline mailbox with other instances through this
    /// Redis (`--redis`); `None` keeps everything in this process.
    pub redis: Option<ClusterConfig>,
}

impl ServerConfig {
    /// Local development and tests: `127.0.0.1:0` (server name `127.0.0.1`), embedded TURN on
    /// `127.0.0.1:0`, random secret, loopback peers allowed, no TLS, default limits.
    pub fn local() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            server_name: None,
            turn: Some(TurnConfig::local()),
            turn_secret: None,
            external_turn_urls: Vec::new(),
            credential_ttl: DEFAULT_CREDENTIAL_TTL_SECS,
            max_ttl: DEFAULT_MAX_TTL_SECS,
            allow_loopback_peers: true,
            tls: None,
            allowed_origins: Vec::new(),
            public_url: None,
            limits: Limits::default(),
            metrics_listen: None,
            redis: None,
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
    #[error("server name must be 1 to {MAX_SERVER_NAME_BYTES} bytes, got {0}")]
    BadServerName(usize),
    /// The listen address is a wildcard and no server name was given.
    #[error(
        "listening on {0} (all interfaces) needs --server-name: the DNS name or IP address \
         clients dial (it goes into every login challenge and clients check it)"
    )]
    ServerNameRequired(SocketAddr),
    /// TLS files are unusable.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The embedded TURN server could not start.
    #[error(transparent)]
    Turn(#[from] TurnServerError),
    /// TTL settings are inconsistent.
    #[error(transparent)]
    Credentials(#[from] TurnCredentialError),
    /// An allowed origin or the public URL is malformed.
    #[error(transparent)]
    Origin(#[from] OriginError),
    /// The metrics listener could not be bound.
    #[error("cannot listen for metrics on {addr}: {source} (is the port in use? --metrics-listen 127.0.0.1:0 picks a free one)")]
    MetricsBind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// Redis (`--redis`) is unusable.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
}

/// State shared by all connections of one server.
pub(crate) struct Shared {
    server_name: String,
    origins: OriginPolicy,
    limits: Limits,
    registry: Arc<routing::Registry>,
    cluster: Option<Arc<cluster::Cluster>>,
    queue_budget: Arc<outbox::ByteBudget>,
    per_ip: Arc<ip_limits::PerSourceLimits>,
    failed_logins: std::sync::Mutex<failed_logins::FailedLogins>,
    policy: Arc<CredentialPolicy>,
    turn_urls: Vec<String>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    next_conn: AtomicU64,
    open_connections: AtomicUsize,
    open_websockets: AtomicUsize,
    metrics: Arc<Metrics>,
}

impl Shared {
    fn next_conn_id(&self) -> u64 {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    /// Binds `id` to `handle` here and, with `--redis`, in the cluster; returns how many kept
    /// envelopes the connection gets.
    async fn register(&self, id: CallId, handle: routing::ConnHandle, now: u64) -> u64 {
        let conn_id = handle.conn_id;
        let kept = self.registry.register(id, handle, now);
        match &self.cluster {
            Some(cluster) => kept + cluster.login(&self.registry, id, conn_id, now).await,
            None => kept,
        }
    }

    /// Unbinds connection `conn_id` of `id` here and, with `--redis`, in the cluster.
    fn unregister(&self, id: &CallId, conn_id: u64) {
        self.registry.unregister(id, conn_id);
        if let Some(cluster) = &self.cluster {
            cluster.logout(&self.tracker, *id, conn_id);
        }
    }

    /// Routes `frame` to `to`: to a local connection, else (with `--redis`) through the
    /// cluster, else to the local mailbox or `not_online`.
    async fn route(
        &self,
        from: CallId,
        to: CallId,
        kind: EnvelopeKind,
        frame: String,
        now: u64,
    ) -> Result<routing::Routed, routing::RouteError> {
        let Some(cluster) = &self.cluster else {
            return self.registry.route(from, &to, kind, frame, now);
        };
        match self.registry.route_connected(from, &to, frame) {
            Ok(result) => result,
            Err(frame) => cluster.route(from, to, kind.is_mailbox(), frame, now).await,
        }
    }

    /// What the offline mailbox holds (with `--redis`: the shared one, as of the last
    /// presence refresh).
    fn mailbox_stats(&self) -> mailbox::MailboxStats {
        match &self.cluster {
            Some(cluster) => cluster.mailbox_stats(),
            None => self.registry.mailbox_stats(),
        }
    }

    fn failed_logins(&self) -> std::sync::MutexGuard<'_, failed_logins::FailedLogins> {
        // Each update is one step; a poisoned lock is still consistent.
        self.failed_logins
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts a refused login from `ip` against its address's budget.
    fn login_failed(&self, ip: std::net::IpAddr) {
        self.failed_logins()
            .failed(ip_limits::Source::of(ip), std::time::Instant::now());
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
    headers: HeaderMap,
) -> Response {
    let origin = headers.get(header::ORIGIN);
    if !shared.origins.allows(origin.map(|o| o.as_bytes())) {
        tracing::info!(%peer, ?origin, "refusing WebSocket: origin not allowed (not this server's page, --public-url or --allow-origin)");
        shared.metrics.refused.origin.inc();
        return (StatusCode::FORBIDDEN, "origin not allowed").into_response();
    }
    let source = ip_limits::Source::of(peer.ip());
    if !shared
        .failed_logins()
        .allows(source, std::time::Instant::now())
    {
        tracing::info!(%peer, "refusing WebSocket: too many failed logins from this address");
        shared.metrics.refused.login_failures.inc();
        return (
            StatusCode::TOO_MANY_REQUESTS,
            "too many failed logins from your address; try again in a minute",
        )
            .into_response();
    }
    let open = shared.open_websockets.fetch_add(1, Ordering::AcqRel);
    let slot = WsSlot(shared.clone());
    if open >= shared.limits.max_connections || shared.shutdown.is_cancelled() {
        tracing::warn!(%peer, open, "refusing WebSocket: connection limit or shutting down");
        shared.metrics.refused.limit.inc();
        return (StatusCode::SERVICE_UNAVAILABLE, "too many connections").into_response();
    }
    let Some(ip_slot) = shared
        .per_ip
        .try_acquire(peer.ip(), ip_limits::Kind::Connection)
    else {
        tracing::info!(%peer, "refusing WebSocket: per-address connection limit reached");
        shared.metrics.refused.per_address.inc();
        return (
            StatusCode::TOO_MANY_REQUESTS,
            "too many connections from your address",
        )
            .into_response();
    };
    let tracker = shared.tracker.clone();
    // Frames are written one at a time and flushed, so the write buffer never holds more than
    // one frame and a close frame while the socket drains; the cap turns a bug into a close
    // instead of unbounded memory.
    let max_write = shared
        .limits
        .ws_max_write_buffer
        .max(MAX_FRAME_BYTES + 1024);
    ws.max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
        .read_buffer_size(shared.limits.ws_read_buffer.max(1024))
        .write_buffer_size(0)
        .max_write_buffer_size(max_write)
        .on_failed_upgrade(move |err| tracing::debug!(%peer, %err, "WebSocket upgrade failed"))
        .on_upgrade(move |socket| {
            tracker.track_future(async move {
                let _slots = (slot, ip_slot);
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
        let server_name = server_name_for(cfg.server_name.as_deref(), cfg.listen)?;
        let origins = OriginPolicy::new(&cfg.allowed_origins)?;
        let public_url = cfg
            .public_url
            .as_deref()
            .map(origin::PublicUrl::parse)
            .transpose()?;
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
        let origins = origins.with_origins(origin::own_origins(
            addr,
            &server_name,
            tls.is_some(),
            public_url.as_ref(),
        ));
        if let Some(public) = &public_url {
            let same = public.host().eq_ignore_ascii_case(&server_name)
                || (is_loopback_name(public.host()) && is_loopback_name(&server_name));
            if !same {
                tracing::warn!(
                    public_url = public.origin(),
                    %server_name,
                    "the public URL's host is not the server name: browsers opening it will refuse \
                     the login challenge; set --server-name to that host"
                );
            }
        }
        tracing::debug!(allowed = ?origins.allowed(), "browser origins allowed on /ws");
        let metrics_listener = match cfg.metrics_listen {
            Some(addr) => Some(
                metrics_http::bind(addr)
                    .await
                    .map_err(|source| ServerError::MetricsBind { addr, source })?,
            ),
            None => None,
        };
        let metrics = Arc::new(Metrics::new());
        // Before TURN starts: an unreachable Redis stops the start with nothing to undo.
        let joined = match &cfg.redis {
            Some(redis) => Some(
                cluster::Cluster::join(redis, cfg.limits.mailbox, metrics.redis_errors.clone())
                    .await?,
            ),
            None => None,
        };
        let turn = match &cfg.turn {
            Some(turn_cfg) => Some(Arc::new(
                turn::EmbeddedTurn::start(
                    turn_cfg,
                    policy.clone(),
                    cfg.allow_loopback_peers,
                    metrics.turn.clone(),
                )
                .await?,
            )),
            None => None,
        };
        let mut turn_urls = turn.as_ref().map(|t| t.urls()).unwrap_or_default();
        turn_urls.extend(cfg.external_turn_urls.iter().cloned());

        let shutdown = CancellationToken::new();
        let tracker = TaskTracker::new();
        let registry = Arc::new(
            routing::Registry::new(cfg.limits.mailbox).with_drops(metrics.queue_drops.clone()),
        );
        let cluster = joined.map(|(cluster, pubsub)| {
            cluster.spawn(registry.clone(), pubsub, shutdown.clone(), &tracker);
            cluster
        });
        let shared = Arc::new(Shared {
            server_name: server_name.clone(),
            origins,
            limits: cfg.limits.clone(),
            registry,
            cluster,
            queue_budget: Arc::new(outbox::ByteBudget::new(cfg.limits.global_queue_bytes)),
            per_ip: ip_limits::PerSourceLimits::new(
                cfg.limits.max_handshakes_per_ip,
                cfg.limits.max_connections_per_ip,
            ),
            failed_logins: std::sync::Mutex::new(failed_logins::FailedLogins::new(
                cfg.limits.login_failures_per_minute,
                failed_logins::MAX_SOURCES,
            )),
            policy,
            turn_urls,
            shutdown: shutdown.clone(),
            tracker: tracker.clone(),
            next_conn: AtomicU64::new(1),
            open_connections: AtomicUsize::new(0),
            open_websockets: AtomicUsize::new(0),
            metrics,
        });
        let router = Router::new()
            .route(WS_PATH, get(ws_handler))
            .merge(web::routes())
            .with_state(shared.clone());
        let scheme = if tls.is_some() { "wss" } else { "ws" };
        let url = format!("{scheme}://{}{WS_PATH}", url_authority(&server_name, addr));

        tracker.spawn(http::accept_loop(
            listener,
            router,
            tls,
            shared.clone(),
            tracker.clone(),
        ));
        let metrics_addr = metrics_listener.map(|(listener, bound)| {
            tracker.spawn(metrics_http::serve(listener, shared.clone(), turn.clone()));
            tracing::info!(addr = %bound, path = METRICS_PATH, "serving metrics");
            bound
        });
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
        tracing::info!(%url, %server_name, turn = ?turn_task.as_ref().map(|t| t.0), "signaling server ready");
        Ok(RunningServer {
            url,
            addr,
            shutdown,
            tracker,
            shared,
            turn_addr: turn_task.as_ref().map(|t| t.0),
            turn_task: turn_task.map(|t| t.1),
            turn: turn_server,
            metrics_addr,
        })
    }
}

/// The name a server puts in its challenges: `configured` if given (IP literals in canonical
/// form without brackets, DNS names in lowercase), else the listen IP when it is not a
/// wildcard. Clients compare it with the host of the URL they dialed, so every deployment has
/// its own name and a login cannot be relayed to another server.
pub fn server_name_for(
    configured: Option<&str>,
    listen: SocketAddr,
) -> Result<String, ServerError> {
    let name = match configured {
        Some(name) => {
            let bare = name
                .strip_prefix('[')
                .and_then(|n| n.strip_suffix(']'))
                .unwrap_or(name);
            match bare.parse::<IpAddr>() {
                Ok(ip) => ip.to_string(),
                Err(_) => name.to_ascii_lowercase(),
            }
        }
        None if listen.ip().is_unspecified() => {
            return Err(ServerError::ServerNameRequired(listen))
        }
        None => listen.ip().to_string(),
    };
    if name.is_empty() || name.len() > MAX_SERVER_NAME_BYTES {
        return Err(ServerError::BadServerName(name.len()));
    }
    Ok(name)
}

/// `localhost` or a loopback IP literal: clients treat these as one name (§11).
fn is_loopback_name(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// `HOST:PORT` for [`RunningServer::url`]: the server name when it can be a URL host (an IP
/// literal or a DNS name), so that the URL's host is what clients check the challenge against;
/// otherwise the bound address (loopback for a wildcard).
fn url_authority(server_name: &str, bound: SocketAddr) -> String {
    let port = bound.port();
    if let Ok(ip) = server_name.parse::<IpAddr>() {
        return SocketAddr::new(ip, port).to_string();
    }
    if crate::host_name::is_dns_name(server_name) {
        return format!("{server_name}:{port}");
    }
    let mut addr = bound;
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            Ipv4Addr::LOCALHOST.into()
        } else {
            Ipv6Addr::LOCALHOST.into()
        });
    }
    addr.to_string()
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
    metrics_addr: Option<SocketAddr>,
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
    /// The URL clients connect to: `ws://HOST:PORT/ws` or `wss://HOST:PORT/ws`, where `HOST` is
    /// the server name when that is an IP literal or a DNS name (so clients that check the
    /// challenge against the URL's host accept it), else the bound address.
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

    /// The bound address of the metrics listener (`GET /metrics`), if one was configured.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// This server's metrics (what `/metrics` serves, also without a metrics listener).
    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
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

    /// What the offline mailbox holds right now.
    pub fn mailbox_stats(&self) -> mailbox::MailboxStats {
        self.shared.mailbox_stats()
    }

    /// Bytes of `deliver` frames queued (or being written) for all clients right now.
    pub fn queued_bytes(&self) -> usize {
        self.shared.queue_budget.used()
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

impl RunningServer {
    /// The name this server puts in its challenges.
    pub fn server_name(&self) -> &str {
        &self.shared.server_name
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

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn default_server_name_is_the_listen_host_and_a_wildcard_needs_one() {
        let name =
            |configured: Option<&str>, listen: &str| server_name_for(configured, addr(listen));
        assert_eq!(name(None, "127.0.0.1:8443").unwrap(), "127.0.0.1");
        assert_eq!(name(None, "[::1]:8443").unwrap(), "::1");
        assert!(matches!(
            name(None, "0.0.0.0:8443"),
            Err(ServerError::ServerNameRequired(_))
        ));
        assert!(matches!(
            name(None, "[::]:8443"),
            Err(ServerError::ServerNameRequired(_))
        ));
        assert_eq!(
            name(Some("Call.Example.COM"), "0.0.0.0:8443").unwrap(),
            "call.example.com"
        );
        assert_eq!(name(Some("[::1]"), "[::]:1").unwrap(), "::1");
        assert_eq!(name(Some("0:0:0:0:0:0:0:1"), "[::]:1").unwrap(), "::1");
        let longest = "a".repeat(MAX_SERVER_NAME_BYTES);
        assert_eq!(name(Some(&longest), "0.0.0.0:1").unwrap(), longest);
        let over = "a".repeat(MAX_SERVER_NAME_BYTES + 1);
        assert!(matches!(
            name(Some(&over), "0.0.0.0:1"),
            Err(ServerError::BadServerName(256))
        ));
        assert!(matches!(
            name(Some(""), "127.0.0.1:1"),
            Err(ServerError::BadServerName(0))
        ));
    }

    #[test]
    fn url_host_is_the_server_name_when_it_can_be() {
        assert_eq!(
            url_authority("127.0.0.1", addr("127.0.0.1:5")),
            "127.0.0.1:5"
        );
        assert_eq!(url_authority("::1", addr("[::1]:5")), "[::1]:5");
        assert_eq!(
            url_authority("call.example.com", addr("0.0.0.0:5")),
            "call.example.com:5"
        );
        assert_eq!(
            url_authority("not a host", addr("0.0.0.0:5")),
            "127.0.0.1:5"
        );
        assert_eq!(url_authority("not a host", addr("[::]:5")), "[::1]:5");
        assert_eq!(url_authority("x", addr("10.0.0.1:5")), "x:5");
    }
}
