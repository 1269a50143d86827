//! Resource limits of the embedded TURN server (sans-IO): allocation quotas, permissions and
//! channels per allocation, a per-allocation bandwidth cap.
//!
//! Each allocation binds a UDP socket (a file descriptor) and every permission and channel is a
//! timer task in the `turn` crate, which bounds none of them. [`TurnLimits`] says how many are
//! allowed; [`PeerBook`] remembers which peers and channels each allocation has installed, so
//! the front door ([`super::turn_gate`]) can refuse the one too many with 508 before the crate
//! sees it; [`ByteBudget`] caps an allocation's relayed bytes per second.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use super::limits::RateLimit;

/// The `turn` crate's permission lifetime (RFC 8656 §9: 300 s).
pub const PERMISSION_LIFETIME: Duration = Duration::from_secs(300);
/// The `turn` crate's channel binding lifetime (RFC 8656 §12: 600 s).
pub const CHANNEL_LIFETIME: Duration = Duration::from_secs(600);

/// Limits of the embedded TURN server.
#[derive(Debug, Clone, PartialEq)]
pub struct TurnLimits {
    /// Allocations one call ID may hold at once (beyond: 486 Allocation Quota Reached).
    pub allocations_per_user: usize,
    /// Allocations the server holds at once (beyond: 508 Insufficient Capacity).
    pub max_allocations: usize,
    /// Distinct peer IPs with a permission, and channel bindings, per allocation (beyond: 508).
    pub permissions_per_allocation: usize,
    /// Relayed bytes per second per allocation and direction; `None` for no cap.
    pub bandwidth_per_allocation: Option<u64>,
    /// Answers sent without checking credentials (401/438 challenges, Binding answers) per
    /// source address (IPv4, or IPv6 /64).
    pub unauthenticated_rate: RateLimit,
    /// Replays of cached Allocate answers per destination address.
    pub replay_rate: RateLimit,
}

impl Default for TurnLimits {
    /// 10 allocations per user (a mesh call of 8 needs 7), 1000 in all, 64 peers per
    /// allocation, no bandwidth cap, 20 challenge answers/s (burst 200: a session needs two, a
    /// Binding and the first Allocate, and a NAT or loopback puts many behind one address: a
    /// room call of 10 there sets up 90 sessions at once; with a burst of 50 rooms of 6 or
    /// more waited 5 s for ICE to retry) and 1 replay/s (burst 8) per address.
    fn default() -> Self {
        Self {
            allocations_per_user: 10,
            max_allocations: 1000,
            permissions_per_allocation: 64,
            bandwidth_per_allocation: None,
            unauthenticated_rate: RateLimit {
                per_second: 20.0,
                burst: 200,
            },
            replay_rate: RateLimit {
                per_second: 1.0,
                burst: 8,
            },
        }
    }
}

/// The quota key of a TURN REST username `EXPIRY:CALL_ID`: the call ID, so fresh credentials
/// (a new expiry) do not buy a fresh quota.
pub fn quota_user(username: &str) -> &str {
    username.split_once(':').map_or(username, |(_, id)| id)
}

/// Why an allocation or a peer is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaRefusal {
    /// The user holds `allocations_per_user` allocations (486).
    UserQuota,
    /// The server holds `max_allocations` allocations (508).
    ServerFull,
    /// The allocation has `permissions_per_allocation` peers or channels (508).
    PeersFull,
}

impl TurnLimits {
    /// Whether one more allocation for a user holding `user_count`, with `total` in all, fits.
    pub fn admit_allocation(&self, user_count: usize, total: usize) -> Result<(), QuotaRefusal> {
        if total >= self.max_allocations {
            Err(QuotaRefusal::ServerFull)
        } else if user_count >= self.allocations_per_user {
            Err(QuotaRefusal::UserQuota)
        } else {
            Ok(())
        }
    }
}

#[derive(Debug, Default)]
struct Installed {
    peers: HashMap<IpAddr, Instant>,
    channels: HashMap<u16, Instant>,
}

impl Installed {
    fn expire(&mut self, now: Instant) {
        self.peers
            .retain(|_, at| now.saturating_duration_since(*at) < PERMISSION_LIFETIME);
        self.channels
            .retain(|_, at| now.saturating_duration_since(*at) < CHANNEL_LIFETIME);
    }
}

/// Permissions and channel bindings installed per allocation (keyed by the client's address,
/// which with one UDP listener identifies the allocation's 5-tuple).
#[derive(Debug, Default)]
pub struct PeerBook {
    by_client: HashMap<SocketAddr, Installed>,
}

impl PeerBook {
    /// Admits a CreatePermission (`channel == None`) or ChannelBind for `peers` on `client`'s
    /// allocation and records it, or refuses it when it would exceed `cap`.
    pub fn admit(
        &mut self,
        client: SocketAddr,
        peers: &[IpAddr],
        channel: Option<u16>,
        cap: usize,
        now: Instant,
    ) -> Result<(), QuotaRefusal> {
        let book = self.by_client.entry(client).or_default();
        book.expire(now);
        let new_peers = {
            let mut fresh: Vec<IpAddr> = peers
                .iter()
                .copied()
                .filter(|p| !book.peers.contains_key(p))
                .collect();
            fresh.sort();
            fresh.dedup();
            fresh
        };
        let new_channel = channel.filter(|c| !book.channels.contains_key(c));
        if book.peers.len() + new_peers.len() > cap
            || book.channels.len() + usize::from(new_channel.is_some()) > cap
        {
            return Err(QuotaRefusal::PeersFull);
        }
        for p in peers {
            book.peers.insert(*p, now);
        }
        if let Some(c) = channel {
            book.channels.insert(c, now);
        }
        Ok(())
    }

    /// Forgets `client` (its allocation is new or gone).
    pub fn forget(&mut self, client: SocketAddr) {
        self.by_client.remove(&client);
    }

    /// Keeps only the clients `live` says still have an allocation.
    pub fn retain_live(&mut self, live: impl Fn(&SocketAddr) -> bool) {
        self.by_client.retain(|c, _| live(c));
    }

    /// Allocations with a record.
    pub fn len(&self) -> usize {
        self.by_client.len()
    }

    /// Whether nothing is recorded.
    pub fn is_empty(&self) -> bool {
        self.by_client.is_empty()
    }
}

/// A byte-rate cap: `bytes_per_second` sustained, one second's worth as burst.
#[derive(Debug, Clone)]
pub struct ByteBudget {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl ByteBudget {
    /// A full budget at `now`.
    pub fn new(bytes_per_second: u64, now: Instant) -> Self {
        let rate = bytes_per_second as f64;
        Self {
            rate,
            tokens: rate,
            last: now,
        }
    }

    /// Spends `len` bytes if the budget allows; `false` means: drop the datagram.
    pub fn try_spend(&mut self, len: usize, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.tokens = (self.tokens + elapsed * self.rate).min(self.rate);
        let len = len as f64;
        if self.tokens >= len {
            self.tokens -= len;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use proptest::prelude::*;

    #[test]
    fn the_answer_budget_covers_a_ten_member_room_behind_one_address() {
        // A room call of 10 behind one NAT sets up 10 × 9 sessions at once, each needing a
        // Binding answer and a 401 challenge before it can send its offer or answer; with a
        // burst of 50, rooms of 6 waited 5 s for ICE to give up (docs/performance.md).
        let sessions = 10 * 9;
        assert!(TurnLimits::default().unauthenticated_rate.burst >= 2 * sessions);
    }

    #[test]
    fn quota_user_is_the_call_id() {
        assert_eq!(quota_user("1700000600:abc"), "abc");
        assert_eq!(quota_user("1700009999:abc"), "abc");
        assert_eq!(quota_user("no-colon"), "no-colon");
    }

    #[test]
    fn allocation_quotas() {
        let l = TurnLimits {
            allocations_per_user: 2,
            max_allocations: 3,
            ..TurnLimits::default()
        };
        assert_eq!(l.admit_allocation(0, 0), Ok(()));
        assert_eq!(l.admit_allocation(1, 2), Ok(()));
        assert_eq!(l.admit_allocation(2, 2), Err(QuotaRefusal::UserQuota));
        assert_eq!(l.admit_allocation(0, 3), Err(QuotaRefusal::ServerFull));
    }

    #[test]
    fn peers_are_capped_refreshes_are_free_and_expiry_makes_room() {
        let t0 = Instant::now();
        let client: SocketAddr = "192.0.2.1:5000".parse().unwrap();
        let mut book = PeerBook::default();
        let ip = |i: u8| IpAddr::from([198, 51, 100, i]);
        assert_eq!(book.admit(client, &[ip(1), ip(2)], None, 3, t0), Ok(()));
        assert_eq!(book.admit(client, &[ip(3)], None, 3, t0), Ok(()));
        assert_eq!(
            book.admit(client, &[ip(4)], None, 3, t0),
            Err(QuotaRefusal::PeersFull)
        );
        // Refreshing an installed peer is always allowed.
        assert_eq!(book.admit(client, &[ip(1)], None, 3, t0), Ok(()));
        // Another allocation has its own cap.
        let other: SocketAddr = "192.0.2.1:5001".parse().unwrap();
        assert_eq!(book.admit(other, &[ip(4)], None, 3, t0), Ok(()));
        // Permissions not refreshed expire and free their place.
        let later = t0 + PERMISSION_LIFETIME;
        assert_eq!(book.admit(client, &[ip(4)], None, 3, later), Ok(()));
        book.forget(other);
        assert_eq!(book.len(), 1);
    }

    #[test]
    fn channels_are_capped() {
        let t0 = Instant::now();
        let client: SocketAddr = "192.0.2.1:5000".parse().unwrap();
        let mut book = PeerBook::default();
        let peer = [IpAddr::from([198, 51, 100, 1])];
        assert_eq!(book.admit(client, &peer, Some(0x4000), 2, t0), Ok(()));
        assert_eq!(book.admit(client, &peer, Some(0x4001), 2, t0), Ok(()));
        assert_eq!(book.admit(client, &peer, Some(0x4001), 2, t0), Ok(()));
        assert_eq!(
            book.admit(client, &peer, Some(0x4002), 2, t0),
            Err(QuotaRefusal::PeersFull)
        );
    }

    #[test]
    fn byte_budget_caps_a_second_of_traffic() {
        let t0 = Instant::now();
        let mut b = ByteBudget::new(1000, t0);
        assert!(b.try_spend(600, t0));
        assert!(!b.try_spend(600, t0));
        assert!(b.try_spend(400, t0));
        assert!(b.try_spend(500, t0 + Duration::from_millis(500)));
        assert!(!b.try_spend(1, t0 + Duration::from_millis(500)));
    }

    proptest! {
        #[test]
        fn book_never_exceeds_the_cap(ops in proptest::collection::vec((0u8..40, proptest::option::of(0u16..40), 0u64..100), 0..200)) {
            let t0 = Instant::now();
            let client: SocketAddr = "192.0.2.1:5000".parse().unwrap();
            let mut book = PeerBook::default();
            let mut now = t0;
            for (peer, channel, dt) in ops {
                now += Duration::from_secs(dt);
                let _ = book.admit(client, &[IpAddr::from([198, 51, 100, peer])], channel.map(|c| 0x4000 + c), 8, now);
                let rec = &book.by_client[&client];
                prop_assert!(rec.peers.len() <= 8 && rec.channels.len() <= 8);
            }
        }
    }
}
