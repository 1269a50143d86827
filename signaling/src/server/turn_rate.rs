//! Per-address answer budgets for the TURN listener (sans-IO).
//!
//! Whatever the TURN server sends without first checking credentials (401/438 challenges,
//! Binding answers, replays from the Allocate cache) goes to a source address anyone can spoof,
//! and is larger than the request: a reflection amplifier. [`AddressBudget`] gives each
//! destination (an IPv4 address, or an IPv6 /64) a token bucket; the table is bounded, and when
//! it is full of active addresses the newcomers share one overflow bucket.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::limits::{RateLimit, TokenBucket};

/// Addresses tracked at most.
pub const DEFAULT_TABLE_CAPACITY: usize = 16_384;
/// The table is swept at most this often when full (a sweep is linear in its size).
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// Token buckets per destination address, bounded in memory.
#[derive(Debug)]
pub struct AddressBudget {
    limit: RateLimit,
    capacity: usize,
    table: HashMap<IpAddr, (TokenBucket, Instant)>,
    overflow: TokenBucket,
    last_sweep: Option<Instant>,
}

impl AddressBudget {
    /// `limit` per address, at most `capacity` addresses tracked; newcomers beyond that share
    /// one bucket of `limit` scaled by 16.
    pub fn new(limit: RateLimit, capacity: usize, now: Instant) -> Self {
        let overflow = RateLimit {
            per_second: limit.per_second * 16.0,
            burst: limit.burst.saturating_mul(16),
        };
        Self {
            limit,
            capacity: capacity.max(1),
            table: HashMap::new(),
            overflow: TokenBucket::new(overflow, now),
            last_sweep: None,
        }
    }

    /// Takes one answer from `to`'s budget; `false` means: send nothing.
    pub fn try_take(&mut self, to: IpAddr, now: Instant) -> bool {
        let key = aggregate(to);
        if !self.table.contains_key(&key) && self.table.len() >= self.capacity {
            self.sweep(now);
        }
        if let Some((bucket, last)) = self.table.get_mut(&key) {
            *last = now;
            return bucket.try_take(now);
        }
        if self.table.len() >= self.capacity {
            return self.overflow.try_take(now);
        }
        let mut bucket = TokenBucket::new(self.limit, now);
        let ok = bucket.try_take(now);
        self.table.insert(key, (bucket, now));
        ok
    }

    /// Addresses tracked right now.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether no address is tracked.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Forgets addresses idle long enough for their bucket to be full again: such an entry
    /// behaves exactly like a new one.
    fn sweep(&mut self, now: Instant) {
        if self
            .last_sweep
            .is_some_and(|at| now.saturating_duration_since(at) < SWEEP_INTERVAL)
        {
            return;
        }
        self.last_sweep = Some(now);
        let refill = if self.limit.per_second > 0.0 {
            Duration::from_secs_f64(f64::from(self.limit.burst) / self.limit.per_second)
        } else {
            Duration::MAX
        };
        self.table
            .retain(|_, (_, last)| now.saturating_duration_since(*last) < refill);
    }
}

/// IPv6 sources count per /64 (one subscriber's network); IPv4-mapped addresses as IPv4.
fn aggregate(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(bits.into())
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn limit() -> RateLimit {
        RateLimit {
            per_second: 1.0,
            burst: 3,
        }
    }

    #[test]
    fn each_address_has_its_own_burst() {
        let t0 = Instant::now();
        let mut b = AddressBudget::new(limit(), 16, t0);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let c: IpAddr = "192.0.2.2".parse().unwrap();
        assert!((0..3).all(|_| b.try_take(a, t0)));
        assert!(!b.try_take(a, t0), "a fourth answer within the burst");
        assert!(b.try_take(c, t0), "another address is not affected");
        assert!(b.try_take(a, t0 + Duration::from_secs(1)), "refilled");
    }

    #[test]
    fn ipv6_counts_per_64() {
        let t0 = Instant::now();
        let mut b = AddressBudget::new(limit(), 16, t0);
        for i in 0..3u16 {
            let ip = IpAddr::V6(format!("2a00:1450:4001:1::{i:x}").parse().unwrap());
            assert!(b.try_take(ip, t0));
        }
        assert!(!b.try_take("2a00:1450:4001:1::ffff".parse().unwrap(), t0));
        assert!(b.try_take("2a00:1450:4001:2::1".parse().unwrap(), t0));
    }

    #[test]
    fn full_table_uses_the_overflow_bucket_and_idle_entries_are_swept() {
        let t0 = Instant::now();
        let mut b = AddressBudget::new(limit(), 4, t0);
        for i in 0..4u8 {
            assert!(b.try_take(IpAddr::from([198, 51, 100, i]), t0));
        }
        // Newcomers share the overflow bucket: 16 × burst, then nothing.
        let newcomers = (0..100u8)
            .filter(|i| b.try_take(IpAddr::from([203, 0, 113, *i]), t0))
            .count();
        assert_eq!(newcomers, 48);
        assert_eq!(b.len(), 4);
        // After the refill time the old entries are worth nothing and make room.
        let later = t0 + Duration::from_secs(4);
        assert!(b.try_take(IpAddr::from([192, 0, 2, 9]), later));
        assert_eq!(b.len(), 1);
    }

    proptest! {
        #[test]
        fn table_never_exceeds_capacity(addrs in proptest::collection::vec(any::<u32>(), 0..300), step_ms in 0u64..50) {
            let t0 = Instant::now();
            let mut b = AddressBudget::new(limit(), 32, t0);
            for (i, a) in addrs.iter().enumerate() {
                let now = t0 + Duration::from_millis(step_ms * i as u64);
                b.try_take(IpAddr::from(a.to_be_bytes()), now);
                prop_assert!(b.len() <= 32);
            }
        }
    }
}
