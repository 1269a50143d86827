//! Embedded TURN server (webrtc-rs `turn`) accepting exactly our REST-style credentials.
//!
//! Distance from the wire: this owns one UDP socket for TURN and one UDP socket per relay
//! allocation. The read loop here replaces the crate's own: each datagram first passes the
//! [`Gate`] (stateless nonces, answer budgets, quotas, peer policy), and only then reaches the
//! crate's request handler, whose nonce map is emptied after every request. Authentication goes
//! through [`CredentialPolicy`]; every relay socket is wrapped in a [`PeerFilterConn`] that drops
//! traffic to and from peers the [`PeerPolicy`] denies and enforces the bandwidth cap.

use std::any::Any;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;
use turn::allocation::allocation_manager::{Manager, ManagerConfig};
use turn::allocation::five_tuple::FiveTuple;
use turn::auth::AuthHandler;
use turn::proto::lifetime::DEFAULT_LIFETIME;
use turn::proto::PROTO_UDP;
use turn::relay::RelayAddressGenerator;
use turn::server::request::Request;
use webrtc_util::Conn;

use super::metrics::TurnCounters;
use super::peer_policy::PeerPolicy;
use super::turn_gate::{AllocationState, Gate, GateSizes, Screen};
use super::turn_quota::ByteBudget;
pub use super::turn_quota::TurnLimits;
use super::turn_retransmit::{AllocateCache, RetransmitConn};
use crate::turn_credentials::CredentialPolicy;

/// Largest datagram read from the TURN socket (the crate's own limit).
const INBOUND_MTU: usize = 1500;

/// The `turn` crate's nonce map: nonce → when it was issued.
type NonceMap = Arc<tokio::sync::Mutex<HashMap<String, tokio::time::Instant>>>;

/// Where and how the embedded TURN server listens.
#[derive(Debug, Clone, PartialEq)]
pub struct TurnConfig {
    /// UDP address of the TURN listener (port 0 picks a free port).
    pub listen: SocketAddr,
    /// The address advertised to clients (in the `turn:` URL and as relay address).
    /// Required when `listen` is a wildcard address; defaults to the listen IP.
    pub public_ip: Option<IpAddr>,
    /// The TURN realm.
    pub realm: String,
    /// Quotas, caps and answer budgets.
    pub limits: TurnLimits,
}

impl TurnConfig {
    /// TURN on `127.0.0.1:0`, realm `call`, default limits.
    pub fn local() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            public_ip: None,
            realm: "call".to_owned(),
            limits: TurnLimits::default(),
        }
    }

    /// The IP advertised to clients, or `None` when it cannot be known.
    pub fn advertised_ip(&self) -> Option<IpAddr> {
        match self.public_ip {
            Some(ip) => Some(ip),
            None if self.listen.ip().is_unspecified() => None,
            None => Some(self.listen.ip()),
        }
    }
}

/// Errors starting the embedded TURN server.
#[derive(Debug, thiserror::Error)]
pub enum TurnServerError {
    /// Binding the UDP listener failed.
    #[error("cannot bind the TURN UDP socket on {addr}: {source} (is the port in use? try --turn-listen 127.0.0.1:0)")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// Listening on a wildcard address without a public IP to advertise.
    #[error("TURN listens on the wildcard address {0}: give the address clients should use with --turn-public-ip")]
    NoPublicIp(SocketAddr),
}

/// What the embedded TURN server holds right now (for tests and monitoring).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TurnStats {
    /// Live allocations.
    pub allocations: usize,
    /// Entries in the `turn` crate's nonce map (0 between requests).
    pub crate_nonces: usize,
    /// Allocate answers kept for retransmissions.
    pub cached_answers: usize,
    /// The front door's tables.
    pub gate: GateSizes,
}

/// A running embedded TURN server.
pub struct EmbeddedTurn {
    addr: SocketAddr,
    advertised: SocketAddr,
    manager: Arc<Manager>,
    nonces: NonceMap,
    gate: Arc<Mutex<Gate>>,
    cache: Arc<Mutex<AllocateCache>>,
    stop: CancellationToken,
    task: tokio::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl std::fmt::Debug for EmbeddedTurn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedTurn")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// Everything the read loop needs.
struct Shell {
    socket: Arc<UdpSocket>,
    conn: Arc<dyn Conn + Send + Sync>,
    manager: Arc<Manager>,
    nonces: NonceMap,
    gate: Arc<Mutex<Gate>>,
    auth: Arc<dyn AuthHandler + Send + Sync>,
    realm: String,
}

impl EmbeddedTurn {
    /// Binds the TURN socket and starts serving; allocations and relayed bytes are added to
    /// `counters`.
    pub async fn start(
        cfg: &TurnConfig,
        policy: Arc<CredentialPolicy>,
        allow_loopback_peers: bool,
        counters: TurnCounters,
    ) -> Result<Self, TurnServerError> {
        let advertised_ip = cfg
            .advertised_ip()
            .ok_or(TurnServerError::NoPublicIp(cfg.listen))?;
        let socket = UdpSocket::bind(cfg.listen)
            .await
            .map_err(|source| TurnServerError::Bind {
                addr: cfg.listen,
                source,
            })?;
        let addr = socket
            .local_addr()
            .map_err(|source| TurnServerError::Bind {
                addr: cfg.listen,
                source,
            })?;
        let peers = Arc::new(PeerPolicy::new(
            allow_loopback_peers,
            own_addresses(cfg.listen.ip(), advertised_ip),
        ));
        let manager = Arc::new(Manager::new(ManagerConfig {
            relay_addr_generator: Box::new(FilteringRelayGenerator {
                bind_ip: cfg.listen.ip(),
                relay_ip: advertised_ip,
                peers: peers.clone(),
                bandwidth: cfg.limits.bandwidth_per_allocation,
                counters,
            }),
            alloc_close_notify: None,
        }));
        let socket = Arc::new(socket);
        let cache = Arc::new(Mutex::new(AllocateCache::default()));
        let gate = Arc::new(Mutex::new(Gate::new(
            cfg.realm.clone(),
            policy.clone(),
            cfg.limits.clone(),
            peers,
            cache.clone(),
            Instant::now(),
        )));
        let nonces: NonceMap = Arc::default();
        let shell = Shell {
            socket: socket.clone(),
            conn: Arc::new(RetransmitConn::new(socket, cache.clone())),
            manager: manager.clone(),
            nonces: nonces.clone(),
            gate: gate.clone(),
            auth: Arc::new(RestAuthHandler { policy }),
            realm: cfg.realm.clone(),
        };
        let stop = CancellationToken::new();
        let task = tokio::spawn(shell.run(stop.clone()));
        tracing::info!(%addr, allow_loopback_peers, limits = ?cfg.limits, "embedded TURN server listening");
        Ok(Self {
            addr,
            advertised: SocketAddr::new(advertised_ip, addr.port()),
            manager,
            nonces,
            gate,
            cache,
            stop,
            task: tokio::sync::Mutex::new(Some(task)),
        })
    }

    /// The bound UDP address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The `turn:` URLs clients should use.
    pub fn urls(&self) -> Vec<String> {
        vec![turn_url(self.advertised)]
    }

    /// What the server holds right now.
    pub async fn stats(&self) -> TurnStats {
        TurnStats {
            allocations: self.manager.get_allocations_info(None).await.len(),
            crate_nonces: self.nonces.lock().await.len(),
            cached_answers: self.cache.lock().map(|c| c.len()).unwrap_or(0),
            gate: self.gate.lock().map(|g| g.sizes()).unwrap_or_default(),
        }
    }

    /// Stops the server, closing its listener and all allocations.
    pub async fn close(&self) {
        self.stop.cancel();
        if let Some(task) = self.task.lock().await.take() {
            if let Err(err) = task.await {
                tracing::warn!(%err, "the TURN read loop ended abnormally");
            }
        }
    }
}

impl Drop for EmbeddedTurn {
    fn drop(&mut self) {
        // The read loop ends on its own and releases the socket and the allocations.
        self.stop.cancel();
    }
}

impl Shell {
    async fn run(self, stop: CancellationToken) {
        let mut buf = vec![0u8; INBOUND_MTU];
        loop {
            let (n, from) = tokio::select! {
                got = self.socket.recv_from(&mut buf) => match got {
                    Ok(got) => got,
                    Err(err) if transient(&err) => continue,
                    Err(err) => {
                        tracing::warn!(%err, "the TURN socket failed; TURN stops");
                        break;
                    }
                },
                _ = stop.cancelled() => break,
            };
            self.serve(&buf[..n], from).await;
        }
        if let Err(err) = self.manager.close().await {
            tracing::debug!(%err, "closing TURN allocations");
        }
    }

    async fn serve(&self, datagram: &[u8], from: SocketAddr) {
        let screen = match self.gate.lock() {
            Ok(mut gate) => gate.screen(datagram, from, Instant::now()),
            Err(_) => return,
        };
        let mut checked = match screen {
            Screen::Drop => return,
            Screen::Reply(answer) => return self.reply(&answer, from).await,
            Screen::Forward => return self.handle(datagram, from, None).await,
            Screen::Authenticated(checked) => checked,
        };
        let state_owner;
        let state = if checked.is_allocate() {
            state_owner = self.manager.get_allocations_info(None).await;
            AllocationState {
                usernames: state_owner.values().map(|i| i.username.as_str()).collect(),
                clients: state_owner.keys().map(|t| t.src_addr).collect(),
                has_allocation: state_owner.keys().any(|t| t.src_addr == from),
            }
        } else if checked.installs_permissions() {
            AllocationState {
                has_allocation: self
                    .manager
                    .get_allocation(&self.five_tuple(from))
                    .await
                    .is_some(),
                ..AllocationState::default()
            }
        } else {
            AllocationState::default()
        };
        let admitted = match self.gate.lock() {
            Ok(mut gate) => gate.admit(&mut checked, from, &state, Instant::now(), unix_now()),
            Err(_) => return,
        };
        match admitted {
            Screen::Reply(answer) => self.reply(&answer, from).await,
            Screen::Forward | Screen::Authenticated(_) => {
                self.handle(datagram, from, Some(checked.nonce())).await
            }
            Screen::Drop => {}
        }
    }

    /// Hands a datagram to the crate; a checked request's nonce sits in the crate's map only
    /// while the crate handles it.
    async fn handle(&self, datagram: &[u8], from: SocketAddr, nonce: Option<&str>) {
        if let Some(nonce) = nonce {
            self.nonces
                .lock()
                .await
                .insert(nonce.to_owned(), tokio::time::Instant::now());
        }
        let mut request = Request {
            conn: self.conn.clone(),
            src_addr: from,
            buff: datagram.to_vec(),
            allocation_manager: self.manager.clone(),
            nonces: self.nonces.clone(),
            auth_handler: self.auth.clone(),
            realm: self.realm.clone(),
            channel_bind_timeout: DEFAULT_LIFETIME,
        };
        if let Err(err) = request.handle_request().await {
            tracing::debug!(%from, %err, "TURN datagram not served");
        }
        // Nonces live in the gate's key, never here: whatever the crate stored goes.
        self.nonces.lock().await.clear();
    }

    async fn reply(&self, answer: &[u8], to: SocketAddr) {
        if let Err(err) = self.conn.send_to(answer, to).await {
            tracing::debug!(%to, %err, "cannot answer a TURN request");
        }
    }

    fn five_tuple(&self, from: SocketAddr) -> FiveTuple {
        FiveTuple {
            src_addr: from,
            dst_addr: self.socket.local_addr().unwrap_or(from),
            protocol: PROTO_UDP,
        }
    }
}

/// Errors after which the socket still works (ICMP errors reported on some platforms).
fn transient(err: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionRefused, ConnectionReset, Interrupted, WouldBlock};
    matches!(
        err.kind(),
        ConnectionRefused | ConnectionReset | Interrupted | WouldBlock
    )
}

/// The host's addresses the relay must never talk to: every interface address, the listen
/// address and the advertised public IP.
fn own_addresses(listen_ip: IpAddr, advertised: IpAddr) -> Vec<IpAddr> {
    let mut own = vec![advertised];
    if !listen_ip.is_unspecified() {
        own.push(listen_ip);
    }
    match webrtc_util::ifaces::ifaces() {
        Ok(ifaces) => own.extend(ifaces.iter().filter_map(|i| i.addr.map(|a| a.ip()))),
        Err(err) => {
            tracing::warn!(%err, "cannot list the host's addresses; only the TURN addresses are refused as peers")
        }
    }
    own
}

/// `turn:HOST:PORT?transport=udp` (IPv6 hosts in brackets).
pub fn turn_url(addr: SocketAddr) -> String {
    format!("turn:{addr}?transport=udp")
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Accepts exactly the credentials issued by the [`CredentialPolicy`].
struct RestAuthHandler {
    policy: Arc<CredentialPolicy>,
}

impl AuthHandler for RestAuthHandler {
    fn auth_handle(
        &self,
        username: &str,
        realm: &str,
        src_addr: SocketAddr,
    ) -> Result<Vec<u8>, turn::Error> {
        self.policy
            .auth_key(username, realm, unix_now())
            .map_err(|err| {
                tracing::info!(%src_addr, %err, "TURN credentials refused");
                turn::Error::Other(err.to_string())
            })
    }
}

/// Allocates relay sockets on the TURN listen IP, each wrapped in a [`PeerFilterConn`].
struct FilteringRelayGenerator {
    bind_ip: IpAddr,
    relay_ip: IpAddr,
    peers: Arc<PeerPolicy>,
    bandwidth: Option<u64>,
    counters: TurnCounters,
}

#[async_trait]
impl RelayAddressGenerator for FilteringRelayGenerator {
    fn validate(&self) -> Result<(), turn::Error> {
        Ok(())
    }

    async fn allocate_conn(
        &self,
        use_ipv4: bool,
        requested_port: u16,
    ) -> Result<(Arc<dyn Conn + Send + Sync>, SocketAddr), turn::Error> {
        if use_ipv4 != self.bind_ip.is_ipv4() {
            return Err(turn::Error::ErrRequestedTransportMustBeUdp);
        }
        let socket = UdpSocket::bind(SocketAddr::new(self.bind_ip, requested_port))
            .await
            .map_err(|e| turn::Error::Other(format!("cannot bind relay socket: {e}")))?;
        let mut relay_addr = socket
            .local_addr()
            .map_err(|e| turn::Error::Other(format!("relay socket address: {e}")))?;
        relay_addr.set_ip(self.relay_ip);
        let conn = PeerFilterConn::new(Arc::new(socket), self.peers.clone(), self.bandwidth)
            .with_counters(self.counters.clone());
        // The crate asks for a relay socket only once the request passed every check, and
        // fails the allocation only if this function does.
        self.counters.allocations.inc();
        Ok((Arc::new(conn), relay_addr))
    }
}

/// A relay [`Conn`] that refuses to send to, and silently drops packets from, denied peers, and
/// drops what exceeds the allocation's bandwidth cap.
pub struct PeerFilterConn {
    inner: Arc<dyn Conn + Send + Sync>,
    peers: Arc<PeerPolicy>,
    /// (to peers, from peers) budgets when a cap is set.
    budgets: Option<Mutex<(ByteBudget, ByteBudget)>>,
    /// Relayed and capped bytes are added here.
    counters: TurnCounters,
}

impl PeerFilterConn {
    /// Wraps `inner`; `bandwidth` caps each direction in bytes per second.
    pub fn new(
        inner: Arc<dyn Conn + Send + Sync>,
        peers: Arc<PeerPolicy>,
        bandwidth: Option<u64>,
    ) -> Self {
        let now = Instant::now();
        Self {
            inner,
            peers,
            budgets: bandwidth
                .map(|b| Mutex::new((ByteBudget::new(b, now), ByteBudget::new(b, now)))),
            counters: TurnCounters::default(),
        }
    }

    /// Counts relayed and capped bytes in `counters` (by default in counters nobody reads).
    pub fn with_counters(mut self, counters: TurnCounters) -> Self {
        self.counters = counters;
        self
    }

    fn allowed(&self, peer: SocketAddr) -> bool {
        self.peers.allows(peer.ip())
    }

    /// Whether `len` more bytes fit the cap in one direction (`outbound`: towards peers).
    fn within_cap(&self, len: usize, outbound: bool) -> bool {
        let Some(budgets) = &self.budgets else {
            return true;
        };
        let Ok(mut b) = budgets.lock() else {
            return true;
        };
        let budget = if outbound { &mut b.0 } else { &mut b.1 };
        let within = budget.try_spend(len, Instant::now());
        if !within {
            self.counters.capped.inc_by(len as u64);
        }
        within
    }

    fn denied_error(&self, peer: SocketAddr) -> webrtc_util::Error {
        webrtc_util::Error::Other(format!(
            "relaying to {peer} denied ({:?}); start the server with --allow-loopback-peers for local development",
            self.peers.check(peer.ip()).err()
        ))
    }
}

#[async_trait]
impl Conn for PeerFilterConn {
    async fn connect(&self, addr: SocketAddr) -> webrtc_util::Result<()> {
        if !self.allowed(addr) {
            return Err(self.denied_error(addr));
        }
        self.inner.connect(addr).await
    }

    async fn recv(&self, buf: &mut [u8]) -> webrtc_util::Result<usize> {
        Ok(self.recv_from(buf).await?.0)
    }

    async fn recv_from(&self, buf: &mut [u8]) -> webrtc_util::Result<(usize, SocketAddr)> {
        loop {
            let (n, from) = self.inner.recv_from(buf).await?;
            if !self.allowed(from) {
                tracing::debug!(%from, "dropped relay packet from a denied peer");
            } else if self.within_cap(n, false) {
                self.counters.relayed_from_peers.inc_by(n as u64);
                return Ok((n, from));
            }
        }
    }

    async fn send(&self, buf: &[u8]) -> webrtc_util::Result<usize> {
        match self.inner.remote_addr() {
            Some(peer) if !self.allowed(peer) => Err(self.denied_error(peer)),
            _ => {
                let sent = self.inner.send(buf).await?;
                self.counters.relayed_to_peers.inc_by(sent as u64);
                Ok(sent)
            }
        }
    }

    async fn send_to(&self, buf: &[u8], target: SocketAddr) -> webrtc_util::Result<usize> {
        if !self.allowed(target) {
            tracing::info!(%target, "refused to relay to a denied peer");
            return Err(self.denied_error(target));
        }
        if !self.within_cap(buf.len(), true) {
            // Dropped like a congested link drops; the crate treats a short write as an error.
            return Ok(buf.len());
        }
        let sent = self.inner.send_to(buf, target).await?;
        self.counters.relayed_to_peers.inc_by(sent as u64);
        Ok(sent)
    }

    fn local_addr(&self) -> webrtc_util::Result<SocketAddr> {
        self.inner.local_addr()
    }

    fn remote_addr(&self) -> Option<SocketAddr> {
        self.inner.remote_addr()
    }

    async fn close(&self) -> webrtc_util::Result<()> {
        self.inner.close().await
    }

    fn as_any(&self) -> &(dyn Any + Send + Sync) {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allow_loopback_peers: bool) -> Arc<PeerPolicy> {
        Arc::new(PeerPolicy::new(allow_loopback_peers, []))
    }

    #[tokio::test]
    async fn filter_conn_drops_what_exceeds_the_bandwidth_cap() {
        let relay = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let peer_addr = peer.local_addr().unwrap();
        // 100 B/s: the second 100-byte datagram would need a second to pass.
        let counters = TurnCounters::default();
        let capped =
            PeerFilterConn::new(relay, policy(true), Some(100)).with_counters(counters.clone());
        assert_eq!(capped.send_to(&[1u8; 100], peer_addr).await.unwrap(), 100);
        assert_eq!(capped.send_to(&[2u8; 100], peer_addr).await.unwrap(), 100);
        assert_eq!(
            counters.relayed_to_peers.get(),
            100,
            "only what was sent is counted"
        );
        assert_eq!(counters.capped.get(), 100);
        let mut buf = [0u8; 200];
        let (n, _) = peer.recv_from(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], &[1u8; 100][..]);
        let second = tokio::time::timeout(
            std::time::Duration::from_millis(200),
            peer.recv_from(&mut buf),
        )
        .await;
        assert!(second.is_err(), "the datagram over the cap was relayed");
    }

    #[tokio::test]
    async fn filter_conn_denies_loopback_when_not_allowed() {
        let relay = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let peer_addr = peer.local_addr().unwrap();
        let strict = PeerFilterConn::new(relay.clone(), policy(false), None);
        assert!(strict.send_to(b"x", peer_addr).await.is_err());
        let lax = PeerFilterConn::new(relay.clone(), policy(true), None);
        assert_eq!(lax.send_to(b"ok", peer_addr).await.unwrap(), 2);
        let mut buf = [0u8; 8];
        let (n, _) = peer.recv_from(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"ok");
    }

    #[tokio::test]
    async fn filter_conn_drops_packets_from_denied_peers() {
        let relay = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let relay_addr = relay.local_addr().unwrap();
        let strict = PeerFilterConn::new(relay.clone(), policy(false), None);
        let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        peer.send_to(b"from loopback", relay_addr).await.unwrap();
        let mut buf = [0u8; 32];
        // The only packet is from a denied peer: recv_from keeps waiting.
        let got = tokio::time::timeout(
            std::time::Duration::from_millis(200),
            strict.recv_from(&mut buf),
        )
        .await;
        assert!(got.is_err(), "a packet from a denied peer was delivered");
    }

    #[test]
    fn turn_urls() {
        assert_eq!(
            turn_url("127.0.0.1:3478".parse().unwrap()),
            "turn:127.0.0.1:3478?transport=udp"
        );
        assert_eq!(
            turn_url("[::1]:3478".parse().unwrap()),
            "turn:[::1]:3478?transport=udp"
        );
    }

    #[test]
    fn advertised_ip_needs_public_ip_on_wildcard() {
        let mut cfg = TurnConfig::local();
        assert_eq!(cfg.advertised_ip(), Some("127.0.0.1".parse().unwrap()));
        cfg.listen = "0.0.0.0:3478".parse().unwrap();
        assert_eq!(cfg.advertised_ip(), None);
        cfg.public_ip = Some("203.0.113.5".parse().unwrap());
        assert_eq!(cfg.advertised_ip(), Some("203.0.113.5".parse().unwrap()));
    }
}
