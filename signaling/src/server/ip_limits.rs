//! Per-source caps: connections and handshakes per IPv4 address or per IPv6 /64 (one host
//! usually owns a whole /64), so that one host cannot take every slot of the server.
//!
//! Counting is in memory, one small entry per source with something open; an entry disappears
//! with its last slot.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};

/// The unit a cap applies to: an IPv4 address (IPv4-mapped IPv6 included) or an IPv6 /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// One IPv4 address.
    V4([u8; 4]),
    /// The first 64 bits of an IPv6 address.
    V6Prefix(u64),
}

impl Source {
    /// The source an address counts against.
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Source::V4(v4.octets()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Source::V4(v4.octets()),
                None => Source::V6Prefix(prefix64(&v6)),
            },
        }
    }
}

fn prefix64(v6: &Ipv6Addr) -> u64 {
    (u128::from(*v6) >> 64) as u64
}

/// What is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A TCP connection not yet upgraded to a WebSocket (TLS handshake, HTTP request).
    Handshake,
    /// An open WebSocket.
    Connection,
}

#[derive(Debug, Default)]
struct Counts {
    handshakes: usize,
    connections: usize,
}

impl Counts {
    fn get(&mut self, kind: Kind) -> &mut usize {
        match kind {
            Kind::Handshake => &mut self.handshakes,
            Kind::Connection => &mut self.connections,
        }
    }
}

/// Caps per source.
#[derive(Debug)]
pub struct PerSourceLimits {
    max_handshakes: usize,
    max_connections: usize,
    counts: Mutex<HashMap<Source, Counts>>,
}

impl PerSourceLimits {
    /// At most `max_handshakes` handshakes and `max_connections` WebSockets per source.
    pub fn new(max_handshakes: usize, max_connections: usize) -> Arc<Self> {
        Arc::new(Self {
            max_handshakes,
            max_connections,
            counts: Mutex::new(HashMap::new()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Source, Counts>> {
        // Counters are updated in one step each; a poisoned lock is still consistent.
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a slot of `kind` for `ip`, or `None` when its source is at the cap.
    pub fn try_acquire(self: &Arc<Self>, ip: IpAddr, kind: Kind) -> Option<SourceSlot> {
        let source = Source::of(ip);
        let max = match kind {
            Kind::Handshake => self.max_handshakes,
            Kind::Connection => self.max_connections,
        };
        let mut counts = self.lock();
        let entry = counts.entry(source).or_default();
        if *entry.get(kind) >= max {
            if entry.handshakes == 0 && entry.connections == 0 {
                counts.remove(&source);
            }
            return None;
        }
        *entry.get(kind) += 1;
        Some(SourceSlot {
            limits: self.clone(),
            source,
            kind,
        })
    }

    /// Open slots of `kind` for `ip`'s source.
    pub fn count(&self, ip: IpAddr, kind: Kind) -> usize {
        self.lock()
            .get_mut(&Source::of(ip))
            .map_or(0, |c| *c.get(kind))
    }

    /// Number of sources with something open.
    pub fn sources(&self) -> usize {
        self.lock().len()
    }
}

/// One counted handshake or connection; released on drop.
#[derive(Debug)]
pub struct SourceSlot {
    limits: Arc<PerSourceLimits>,
    source: Source,
    kind: Kind,
}

impl Drop for SourceSlot {
    fn drop(&mut self) {
        let mut counts = self.limits.lock();
        if let Some(entry) = counts.get_mut(&self.source) {
            let n = entry.get(self.kind);
            *n = n.saturating_sub(1);
            if entry.handshakes == 0 && entry.connections == 0 {
                counts.remove(&self.source);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn caps_apply_per_ipv4_address_and_per_ipv6_64() {
        let limits = PerSourceLimits::new(1, 2);
        let a1 = limits
            .try_acquire(ip("10.0.0.1"), Kind::Connection)
            .unwrap();
        let _a2 = limits
            .try_acquire(ip("10.0.0.1"), Kind::Connection)
            .unwrap();
        assert!(limits
            .try_acquire(ip("10.0.0.1"), Kind::Connection)
            .is_none());
        // The mapped form is the same host.
        assert!(limits
            .try_acquire(ip("::ffff:10.0.0.1"), Kind::Connection)
            .is_none());
        let _b = limits
            .try_acquire(ip("10.0.0.2"), Kind::Connection)
            .unwrap();
        // Handshakes are counted separately.
        let h = limits.try_acquire(ip("10.0.0.1"), Kind::Handshake).unwrap();
        assert!(limits
            .try_acquire(ip("10.0.0.1"), Kind::Handshake)
            .is_none());
        drop(a1);
        assert!(limits
            .try_acquire(ip("10.0.0.1"), Kind::Connection)
            .is_some());

        let _v6 = limits
            .try_acquire(ip("2001:db8::1"), Kind::Handshake)
            .unwrap();
        assert!(limits
            .try_acquire(ip("2001:db8::ffff:1234"), Kind::Handshake)
            .is_none());
        assert!(limits
            .try_acquire(ip("2001:db8:0:1::1"), Kind::Handshake)
            .is_some());
        drop(h);
        assert_eq!(limits.count(ip("10.0.0.1"), Kind::Handshake), 0);
    }

    #[test]
    fn entries_vanish_with_their_last_slot() {
        let limits = PerSourceLimits::new(1, 1);
        let slot = limits.try_acquire(ip("10.0.0.1"), Kind::Handshake).unwrap();
        assert!(limits
            .try_acquire(ip("10.0.0.1"), Kind::Handshake)
            .is_none());
        assert_eq!(limits.sources(), 1);
        drop(slot);
        assert_eq!(limits.sources(), 0);
        // A refusal with nothing open leaves no entry behind.
        let zero = PerSourceLimits::new(0, 0);
        assert!(zero.try_acquire(ip("10.0.0.1"), Kind::Connection).is_none());
        assert_eq!(zero.sources(), 0);
    }
}
