//! Embedded TURN server (webrtc-rs `turn`) accepting exactly our REST-style credentials.
//!
//! Distance from the wire: this owns one UDP socket for TURN and one UDP socket per relay
//! allocation. Authentication goes through [`CredentialPolicy`]; every relay socket is wrapped
//! in a [`PeerFilterConn`] that drops traffic to and from peers the [`peer_policy`] denies.
//!
//! [`peer_policy`]: super::peer_policy

use std::any::Any;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use tokio::net::UdpSocket;
use turn::auth::AuthHandler;
use turn::relay::RelayAddressGenerator;
use webrtc_util::Conn;

use super::turn_retransmit::RetransmitConn;

use super::peer_policy::{denied_range, peer_allowed};
use crate::turn_credentials::CredentialPolicy;

/// Where and how the embedded TURN server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnConfig {
    /// UDP address of the TURN listener (port 0 picks a free port).
    pub listen: SocketAddr,
    /// The address advertised to clients (in the `turn:` URL and as relay address).
    /// Required when `listen` is a wildcard address; defaults to the listen IP.
    pub public_ip: Option<IpAddr>,
    /// The TURN realm.
    pub realm: String,
}

impl TurnConfig {
    /// TURN on `127.0.0.1:0`, realm `call`.
    pub fn local() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            public_ip: None,
            realm: "call".to_owned(),
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
    /// The turn crate refused to start.
    #[error("the TURN server failed to start: {0}")]
    Start(#[from] turn::Error),
}

/// A running embedded TURN server.
pub struct EmbeddedTurn {
    server: turn::server::Server,
    addr: SocketAddr,
    advertised: SocketAddr,
}

impl std::fmt::Debug for EmbeddedTurn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedTurn")
            .field("addr", &self.addr)
            .finish()
    }
}

impl EmbeddedTurn {
    /// Binds the TURN socket and starts serving.
    pub async fn start(
        cfg: &TurnConfig,
        policy: Arc<CredentialPolicy>,
        allow_loopback_peers: bool,
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
        let server = turn::server::Server::new(turn::server::config::ServerConfig {
            conn_configs: vec![turn::server::config::ConnConfig {
                conn: Arc::new(RetransmitConn::new(Arc::new(socket))),
                relay_addr_generator: Box::new(FilteringRelayGenerator {
                    bind_ip: cfg.listen.ip(),
                    relay_ip: advertised_ip,
                    allow_loopback_peers,
                }),
            }],
            realm: cfg.realm.clone(),
            auth_handler: Arc::new(RestAuthHandler { policy }),
            channel_bind_timeout: std::time::Duration::from_secs(0),
            alloc_close_notify: None,
        })
        .await?;
        tracing::info!(%addr, allow_loopback_peers, "embedded TURN server listening");
        Ok(Self {
            server,
            addr,
            advertised: SocketAddr::new(advertised_ip, addr.port()),
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

    /// Stops the server, closing its listener and all allocations.
    pub async fn close(&self) {
        if let Err(err) = self.server.close().await {
            tracing::warn!(%err, "closing the TURN server failed");
        }
    }
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
    allow_loopback_peers: bool,
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
        let conn = PeerFilterConn::new(Arc::new(socket), self.allow_loopback_peers);
        Ok((Arc::new(conn), relay_addr))
    }
}

/// A relay [`Conn`] that refuses to send to, and silently drops packets from, denied peers.
pub struct PeerFilterConn {
    inner: Arc<dyn Conn + Send + Sync>,
    allow_loopback_peers: bool,
}

impl PeerFilterConn {
    /// Wraps `inner`; with `allow_loopback_peers` every peer is allowed.
    pub fn new(inner: Arc<dyn Conn + Send + Sync>, allow_loopback_peers: bool) -> Self {
        Self {
            inner,
            allow_loopback_peers,
        }
    }

    fn allowed(&self, peer: SocketAddr) -> bool {
        peer_allowed(peer.ip(), self.allow_loopback_peers)
    }
}

fn denied_error(peer: SocketAddr) -> webrtc_util::Error {
    webrtc_util::Error::Other(format!(
        "relaying to {peer} denied ({:?} range); start the server with --allow-loopback-peers for local development",
        denied_range(peer.ip())
    ))
}

#[async_trait]
impl Conn for PeerFilterConn {
    async fn connect(&self, addr: SocketAddr) -> webrtc_util::Result<()> {
        if !self.allowed(addr) {
            return Err(denied_error(addr));
        }
        self.inner.connect(addr).await
    }

    async fn recv(&self, buf: &mut [u8]) -> webrtc_util::Result<usize> {
        Ok(self.recv_from(buf).await?.0)
    }

    async fn recv_from(&self, buf: &mut [u8]) -> webrtc_util::Result<(usize, SocketAddr)> {
        loop {
            let (n, from) = self.inner.recv_from(buf).await?;
            if self.allowed(from) {
                return Ok((n, from));
            }
            tracing::debug!(%from, "dropped relay packet from a denied peer");
        }
    }

    async fn send(&self, buf: &[u8]) -> webrtc_util::Result<usize> {
        match self.inner.remote_addr() {
            Some(peer) if !self.allowed(peer) => Err(denied_error(peer)),
            _ => self.inner.send(buf).await,
        }
    }

    async fn send_to(&self, buf: &[u8], target: SocketAddr) -> webrtc_util::Result<usize> {
        if !self.allowed(target) {
            tracing::info!(%target, "refused to relay to a denied peer");
            return Err(denied_error(target));
        }
        self.inner.send_to(buf, target).await
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

    #[tokio::test]
    async fn filter_conn_denies_loopback_when_not_allowed() {
        let relay = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let peer_addr = peer.local_addr().unwrap();
        let strict = PeerFilterConn::new(relay.clone(), false);
        assert!(strict.send_to(b"x", peer_addr).await.is_err());
        let lax = PeerFilterConn::new(relay.clone(), true);
        assert_eq!(lax.send_to(b"ok", peer_addr).await.unwrap(), 2);
        let mut buf = [0u8; 8];
        let (n, _) = peer.recv_from(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"ok");
    }

    #[tokio::test]
    async fn filter_conn_drops_packets_from_denied_peers() {
        let relay = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let relay_addr = relay.local_addr().unwrap();
        let strict = PeerFilterConn::new(relay.clone(), false);
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
