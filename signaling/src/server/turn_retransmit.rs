//! Answers retransmitted TURN Allocate requests with the original success response.
//!
//! RFC 8656 §7.2 (RFC 5766 §6.2): when a client retransmits an Allocate request because the
//! response was lost, the server must answer with the same success response, not treat it as a
//! second allocation. The `turn` crate answers such a retransmission with `437 Allocation
//! Mismatch`, so on a lossy path a client loses its relay candidate. [`AllocateCache`] (sans-IO)
//! remembers recent Allocate success responses by (client address, transaction ID), together
//! with the length and MESSAGE-INTEGRITY of the request that earned them: only a datagram with
//! the same length and the same MESSAGE-INTEGRITY is a retransmission (a transaction ID alone,
//! seen by anyone on the path, would let a spoofer reflect the larger answer at the client).
//! [`RetransmitConn`] wraps the TURN listening socket and shows the cache what the server sends.

use std::any::Any;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use webrtc_util::Conn;

/// STUN message type of an Allocate request.
pub const ALLOCATE_REQUEST: u16 = 0x0003;
/// STUN message type of an Allocate success response.
const ALLOCATE_SUCCESS: u16 = 0x0103;
/// STUN magic cookie (RFC 5389).
const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];
/// How long a response is kept: the client's whole retransmission schedule (RFC 5389 Rc=7 with
/// a 500 ms RTO spans 39.5 s).
const KEEP: Duration = Duration::from_secs(40);
/// Responses (and requests awaiting their response) remembered at most; the oldest are
/// forgotten first.
const CAPACITY: usize = 4096;

type Key = (SocketAddr, [u8; 12]);

/// What identifies a retransmission of an authenticated Allocate request: its length and its
/// MESSAGE-INTEGRITY value (an HMAC over everything before it, so a request with the same
/// integrity and length is the same request up to a trailing FINGERPRINT).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestPrint {
    /// Datagram length in bytes.
    pub len: usize,
    /// The MESSAGE-INTEGRITY attribute value.
    pub integrity: Vec<u8>,
}

#[derive(Debug)]
struct Entry {
    print: RequestPrint,
    response: Option<Vec<u8>>,
}

/// Recent authenticated Allocate requests and their success responses, keyed by client address
/// and transaction ID.
#[derive(Debug, Default)]
pub struct AllocateCache {
    entries: HashMap<Key, Entry>,
    order: VecDeque<(Instant, Key)>,
}

impl AllocateCache {
    /// Notes an authenticated Allocate request from `from` that is handed to the server, so its
    /// success response can be kept with the request's print.
    pub fn on_request(
        &mut self,
        from: SocketAddr,
        txid: [u8; 12],
        print: RequestPrint,
        now: Instant,
    ) {
        self.expire(now);
        let key = (from, txid);
        match self.entries.get_mut(&key) {
            // An answered request is never displaced by another with the same ID.
            Some(entry) if entry.response.is_some() => return,
            Some(entry) => entry.print = print,
            None => {
                let fresh = Entry {
                    print,
                    response: None,
                };
                self.entries.insert(key, fresh);
                self.order.push_back((now, key));
            }
        }
        while self.order.len() > CAPACITY {
            if let Some((_, old)) = self.order.pop_front() {
                self.entries.remove(&old);
            }
        }
    }

    /// Notes a datagram the server sends to `to`; keeps it if it is the Allocate success for a
    /// noted request.
    pub fn on_send(&mut self, to: SocketAddr, datagram: &[u8], now: Instant) {
        self.expire(now);
        if let Some((ALLOCATE_SUCCESS, txid)) = stun_header(datagram) {
            if let Some(entry) = self.entries.get_mut(&(to, txid)) {
                entry.response = Some(datagram.to_vec());
            }
        }
    }

    /// For an Allocate request from `from` with transaction `txid` and `print` (`None` when it
    /// carries no MESSAGE-INTEGRITY): the stored response if it retransmits a request that was
    /// already answered.
    pub fn on_receive(
        &mut self,
        from: SocketAddr,
        txid: [u8; 12],
        print: Option<&RequestPrint>,
        now: Instant,
    ) -> Option<&[u8]> {
        self.expire(now);
        let entry = self.entries.get(&(from, txid))?;
        if print != Some(&entry.print) {
            return None;
        }
        entry.response.as_deref()
    }

    /// Responses held.
    pub fn len(&self) -> usize {
        self.entries
            .values()
            .filter(|e| e.response.is_some())
            .count()
    }

    /// Whether no response is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn expire(&mut self, now: Instant) {
        while let Some((at, key)) = self.order.front() {
            if now.duration_since(*at) < KEEP {
                break;
            }
            self.entries.remove(key);
            self.order.pop_front();
        }
    }
}

/// Message type and transaction ID of a STUN message, or `None` for anything else.
pub(crate) fn stun_header(d: &[u8]) -> Option<(u16, [u8; 12])> {
    if d.len() < 20 || d[0] & 0xC0 != 0 || d[4..8] != MAGIC_COOKIE {
        return None;
    }
    let kind = u16::from_be_bytes([d[0], d[1]]);
    let mut txid = [0u8; 12];
    txid.copy_from_slice(&d[8..20]);
    Some((kind, txid))
}

/// The TURN listening socket as the `turn` crate sees it: sends pass through and are shown to
/// the [`AllocateCache`] (the front door in [`super::turn`] reads from the socket itself).
pub struct RetransmitConn {
    inner: Arc<dyn Conn + Send + Sync>,
    cache: Arc<Mutex<AllocateCache>>,
}

impl RetransmitConn {
    /// Wraps the server's listening socket; `cache` is shared with the front door.
    pub fn new(inner: Arc<dyn Conn + Send + Sync>, cache: Arc<Mutex<AllocateCache>>) -> Self {
        Self { inner, cache }
    }
}

#[async_trait]
impl Conn for RetransmitConn {
    async fn connect(&self, addr: SocketAddr) -> webrtc_util::Result<()> {
        self.inner.connect(addr).await
    }

    async fn recv(&self, buf: &mut [u8]) -> webrtc_util::Result<usize> {
        self.inner.recv(buf).await
    }

    async fn recv_from(&self, buf: &mut [u8]) -> webrtc_util::Result<(usize, SocketAddr)> {
        self.inner.recv_from(buf).await
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
        // Every allocation "closes" the server socket it shares when it ends (the `turn`
        // crate's Allocation::close); the socket stays open until the server stops.
        Ok(())
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

    fn print(mi: u8) -> RequestPrint {
        RequestPrint {
            len: 120,
            integrity: vec![mi; 20],
        }
    }

    #[test]
    fn retransmitted_allocate_gets_the_same_response() {
        let t0 = Instant::now();
        let client: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let other: SocketAddr = "127.0.0.1:5001".parse().unwrap();
        let mut cache = AllocateCache::default();
        assert!(cache
            .on_receive(client, [1; 12], Some(&print(7)), t0)
            .is_none());
        cache.on_request(client, [1; 12], print(7), t0);
        // Requested but not yet answered: nothing to replay.
        assert!(cache
            .on_receive(client, [1; 12], Some(&print(7)), t0)
            .is_none());
        let response = stun(ALLOCATE_SUCCESS, 1);
        cache.on_send(client, &response, t0);
        assert_eq!(
            cache.on_receive(client, [1; 12], Some(&print(7)), t0),
            Some(&response[..])
        );
        // Another transaction or another client is not a retransmission.
        assert!(cache
            .on_receive(client, [2; 12], Some(&print(7)), t0)
            .is_none());
        assert!(cache
            .on_receive(other, [1; 12], Some(&print(7)), t0)
            .is_none());
        // Forgotten after the retransmission window.
        assert!(cache
            .on_receive(client, [1; 12], Some(&print(7)), t0 + KEEP)
            .is_none());
        assert!(cache.is_empty());
    }

    #[test]
    fn a_replay_needs_the_same_length_and_integrity() {
        let t0 = Instant::now();
        let client: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let mut cache = AllocateCache::default();
        cache.on_request(client, [1; 12], print(7), t0);
        cache.on_send(client, &stun(ALLOCATE_SUCCESS, 1), t0);
        // A spoofer who saw the transaction ID but cannot compute the integrity gets nothing:
        // no integrity, another integrity, or another length.
        assert!(cache.on_receive(client, [1; 12], None, t0).is_none());
        assert!(cache
            .on_receive(client, [1; 12], Some(&print(8)), t0)
            .is_none());
        let shorter = RequestPrint {
            len: 20,
            ..print(7)
        };
        assert!(cache
            .on_receive(client, [1; 12], Some(&shorter), t0)
            .is_none());
        assert!(cache
            .on_receive(client, [1; 12], Some(&print(7)), t0)
            .is_some());
    }

    #[test]
    fn only_allocate_successes_for_noted_requests_are_kept_and_the_cache_is_bounded() {
        let t0 = Instant::now();
        let mut cache = AllocateCache::default();
        let client: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        cache.on_send(client, &stun(ALLOCATE_SUCCESS, 3), t0); // no request noted
        cache.on_request(client, [1; 12], print(1), t0);
        cache.on_send(client, &stun(0x0113, 1), t0); // Allocate error
        cache.on_send(client, b"not stun at all, just some bytes", t0);
        assert!(cache.is_empty());
        for port in 0..(CAPACITY as u16 + 10) {
            let to = SocketAddr::from(([127, 0, 0, 1], port));
            cache.on_request(to, [1; 12], print(1), t0);
            cache.on_send(to, &stun(ALLOCATE_SUCCESS, 1), t0);
        }
        assert_eq!(cache.len(), CAPACITY);
    }
}
