//! Answers retransmitted TURN Allocate requests with the original success response.
//!
//! RFC 8656 §7.2 (RFC 5766 §6.2): when a client retransmits an Allocate request because the
//! response was lost, the server must answer with the same success response, not treat it as a
//! second allocation. The `turn` crate answers such a retransmission with `437 Allocation
//! Mismatch`, so on a lossy path a client loses its relay candidate. [`AllocateCache`] (sans-IO)
//! remembers recent Allocate success responses by (client address, transaction ID);
//! [`RetransmitConn`] wraps the TURN listening socket and consults it.

use std::any::Any;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use webrtc_util::Conn;

/// STUN message type of an Allocate request.
const ALLOCATE_REQUEST: u16 = 0x0003;
/// STUN message type of an Allocate success response.
const ALLOCATE_SUCCESS: u16 = 0x0103;
/// STUN magic cookie (RFC 5389).
const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];
/// How long a response is kept: the client's whole retransmission schedule (RFC 5389 Rc=7 with
/// a 500 ms RTO spans 39.5 s).
const KEEP: Duration = Duration::from_secs(40);
/// Responses remembered at most; the oldest are forgotten first.
const CAPACITY: usize = 4096;

type Key = (SocketAddr, [u8; 12]);

/// Recent Allocate success responses, keyed by client address and transaction ID.
#[derive(Debug, Default)]
pub struct AllocateCache {
    responses: HashMap<Key, Vec<u8>>,
    order: VecDeque<(Instant, Key)>,
}

impl AllocateCache {
    /// Notes a datagram the server sends to `to`; keeps it if it is an Allocate success.
    pub fn on_send(&mut self, to: SocketAddr, datagram: &[u8], now: Instant) {
        self.expire(now);
        if let Some((ALLOCATE_SUCCESS, txid)) = stun_header(datagram) {
            let key = (to, txid);
            if self.responses.insert(key, datagram.to_vec()).is_none() {
                self.order.push_back((now, key));
            }
            while self.order.len() > CAPACITY {
                if let Some((_, old)) = self.order.pop_front() {
                    self.responses.remove(&old);
                }
            }
        }
    }

    /// For a datagram received from `from`: the stored response if it retransmits an Allocate
    /// request that was already answered.
    pub fn on_receive(&mut self, from: SocketAddr, datagram: &[u8], now: Instant) -> Option<&[u8]> {
        self.expire(now);
        match stun_header(datagram) {
            Some((ALLOCATE_REQUEST, txid)) => self.responses.get(&(from, txid)).map(Vec::as_slice),
            _ => None,
        }
    }

    /// Responses held.
    pub fn len(&self) -> usize {
        self.responses.len()
    }

    /// Whether no response is held.
    pub fn is_empty(&self) -> bool {
        self.responses.is_empty()
    }

    fn expire(&mut self, now: Instant) {
        while let Some((at, key)) = self.order.front() {
            if now.duration_since(*at) < KEEP {
                break;
            }
            self.responses.remove(key);
            self.order.pop_front();
        }
    }
}

/// Message type and transaction ID of a STUN message, or `None` for anything else.
fn stun_header(d: &[u8]) -> Option<(u16, [u8; 12])> {
    if d.len() < 20 || d[0] & 0xC0 != 0 || d[4..8] != MAGIC_COOKIE {
        return None;
    }
    let kind = u16::from_be_bytes([d[0], d[1]]);
    let mut txid = [0u8; 12];
    txid.copy_from_slice(&d[8..20]);
    Some((kind, txid))
}

/// The TURN listening socket with [`AllocateCache`] in front of the `turn` crate's server.
pub struct RetransmitConn {
    inner: Arc<dyn Conn + Send + Sync>,
    cache: Mutex<AllocateCache>,
}

impl RetransmitConn {
    /// Wraps the server's listening socket.
    pub fn new(inner: Arc<dyn Conn + Send + Sync>) -> Self {
        Self {
            inner,
            cache: Mutex::new(AllocateCache::default()),
        }
    }
}

#[async_trait]
impl Conn for RetransmitConn {
    async fn connect(&self, addr: SocketAddr) -> webrtc_util::Result<()> {
        self.inner.connect(addr).await
    }

    async fn recv(&self, buf: &mut [u8]) -> webrtc_util::Result<usize> {
        Ok(self.recv_from(buf).await?.0)
    }

    async fn recv_from(&self, buf: &mut [u8]) -> webrtc_util::Result<(usize, SocketAddr)> {
        loop {
            let (n, from) = self.inner.recv_from(buf).await?;
            let cached = self.cache.lock().ok().and_then(|mut c| {
                c.on_receive(from, &buf[..n], Instant::now())
                    .map(<[u8]>::to_vec)
            });
            match cached {
                Some(response) => {
                    tracing::debug!(%from, "answered a retransmitted Allocate from the cache");
                    let _ = self.inner.send_to(&response, from).await;
                }
                None => return Ok((n, from)),
            }
        }
    }

    async fn send(&self, buf: &[u8]) -> webrtc_util::Result<usize> {
        self.inner.send(buf).await
    }

    async fn send_to(&self, buf: &[u8], target: SocketAddr) -> webrtc_util::Result<usize> {
        if let Ok(mut c) = self.cache.lock() {
            c.on_send(target, buf, Instant::now());
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

    fn stun(kind: u16, txid: u8) -> Vec<u8> {
        let mut d = vec![0u8; 20];
        d[..2].copy_from_slice(&kind.to_be_bytes());
        d[4..8].copy_from_slice(&MAGIC_COOKIE);
        d[8..20].fill(txid);
        d
    }

    #[test]
    fn retransmitted_allocate_gets_the_same_response() {
        let t0 = Instant::now();
        let client: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let other: SocketAddr = "127.0.0.1:5001".parse().unwrap();
        let mut cache = AllocateCache::default();
        assert!(cache
            .on_receive(client, &stun(ALLOCATE_REQUEST, 1), t0)
            .is_none());
        let response = stun(ALLOCATE_SUCCESS, 1);
        cache.on_send(client, &response, t0);
        assert_eq!(
            cache.on_receive(client, &stun(ALLOCATE_REQUEST, 1), t0),
            Some(&response[..])
        );
        // Another transaction, another client, or another message type is not a retransmission.
        assert!(cache
            .on_receive(client, &stun(ALLOCATE_REQUEST, 2), t0)
            .is_none());
        assert!(cache
            .on_receive(other, &stun(ALLOCATE_REQUEST, 1), t0)
            .is_none());
        assert!(cache.on_receive(client, &stun(0x0004, 1), t0).is_none());
        // Forgotten after the retransmission window.
        assert!(cache
            .on_receive(client, &stun(ALLOCATE_REQUEST, 1), t0 + KEEP)
            .is_none());
        assert!(cache.is_empty());
    }

    #[test]
    fn only_allocate_successes_are_kept_and_the_cache_is_bounded() {
        let t0 = Instant::now();
        let mut cache = AllocateCache::default();
        let client: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        cache.on_send(client, &stun(0x0113, 1), t0); // Allocate error
        cache.on_send(client, b"not stun at all, just some bytes", t0);
        assert!(cache.is_empty());
        for port in 0..(CAPACITY as u16 + 10) {
            cache.on_send(
                SocketAddr::from(([127, 0, 0, 1], port)),
                &stun(ALLOCATE_SUCCESS, 1),
                t0,
            );
        }
        assert_eq!(cache.len(), CAPACITY);
    }
}
