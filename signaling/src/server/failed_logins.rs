//! Failed logins per source (sans-IO): every refused `auth` costs its source (an IPv4 address
//! or IPv6 /64, as in [`ip_limits`](super::ip_limits)) one token of a bucket holding
//! `per_minute` tokens and refilled at `per_minute` a minute. A source with no token left is
//! refused at the WebSocket upgrade (HTTP 429), before the server spends a handshake and a
//! signature check on it.
//!
//! Why: answering a login costs the server one Ed25519 verification and a WebSocket handshake;
//! `call-load abuse` measured one address looping wrong-key logins at 3,500–3,800 a second,
//! half a core of this machine. An honest client fails a login only through a bug or a clock
//! far off, a few times.
//!
//! Memory: at most `max_sources` entries. When the table is full it is swept of the entries
//! that have refilled (at most once a second); the failures of a new source that still find
//! it full are not counted (fail open: the per-address connection and handshake caps still
//! hold) and show in [`FailedLogins::untracked`].

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::ip_limits::Source;

/// Sources tracked at most (about 64 bytes each).
pub const MAX_SOURCES: usize = 65_536;

/// A full table is swept at most this often (a sweep walks every entry).
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The failed-login budget of every source; see the module documentation.
#[derive(Debug)]
pub struct FailedLogins {
    per_minute: u32,
    max_sources: usize,
    buckets: HashMap<Source, Bucket>,
    last_sweep: Option<Instant>,
    untracked: u64,
}

/// Tokens of `bucket` at `now` (never above the budget).
fn refilled(bucket: &Bucket, per_minute: u32, now: Instant) -> f64 {
    let earned =
        now.saturating_duration_since(bucket.at).as_secs_f64() * f64::from(per_minute) / 60.0;
    (bucket.tokens + earned).min(f64::from(per_minute))
}

impl FailedLogins {
    /// At most `per_minute` failed logins a minute per source (0: no limit), tracking at most
    /// `max_sources` sources.
    pub fn new(per_minute: u32, max_sources: usize) -> Self {
        Self {
            per_minute,
            max_sources,
            buckets: HashMap::new(),
            last_sweep: None,
            untracked: 0,
        }
    }

    /// Whether `source` may try to log in at `now`.
    pub fn allows(&self, source: Source, now: Instant) -> bool {
        self.per_minute == 0
            || self
                .buckets
                .get(&source)
                .is_none_or(|b| refilled(b, self.per_minute, now) >= 1.0)
    }

    /// Counts a refused login of `source` at `now`.
    pub fn failed(&mut self, source: Source, now: Instant) {
        if self.per_minute == 0 {
            return;
        }
        if let Some(bucket) = self.buckets.get_mut(&source) {
            bucket.tokens = (refilled(bucket, self.per_minute, now) - 1.0).max(0.0);
            bucket.at = now;
            return;
        }
        if self.buckets.len() >= self.max_sources {
            self.sweep(now);
        }
        if self.buckets.len() >= self.max_sources {
            self.untracked += 1;
            return;
        }
        let tokens = f64::from(self.per_minute) - 1.0;
        self.buckets.insert(source, Bucket { tokens, at: now });
    }

    /// Sources currently tracked.
    pub fn sources(&self) -> usize {
        self.buckets.len()
    }

    /// Failures not counted because the table was full.
    pub fn untracked(&self) -> u64 {
        self.untracked
    }

    /// Drops the entries that have refilled (they are the same as no entry).
    fn sweep(&mut self, now: Instant) {
        if self
            .last_sweep
            .is_some_and(|last| now.saturating_duration_since(last) < SWEEP_INTERVAL)
        {
            return;
        }
        self.last_sweep = Some(now);
        let (per_minute, full) = (self.per_minute, f64::from(self.per_minute));
        self.buckets
            .retain(|_, b| refilled(b, per_minute, now) < full);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    fn v4(last: u8) -> Source {
        Source::of(IpAddr::V4(Ipv4Addr::new(192, 0, 2, last)))
    }

    #[test]
    fn a_source_is_refused_after_its_budget_and_earns_it_back() {
        let t0 = Instant::now();
        let mut f = FailedLogins::new(10, 100);
        for _ in 0..10 {
            assert!(f.allows(v4(1), t0));
            f.failed(v4(1), t0);
        }
        assert!(!f.allows(v4(1), t0), "the 11th try within the minute");
        assert!(f.allows(v4(2), t0), "another source is not affected");
        // One token a 6 s.
        assert!(!f.allows(v4(1), t0 + Duration::from_secs(5)));
        assert!(f.allows(v4(1), t0 + Duration::from_secs(6)));
        f.failed(v4(1), t0 + Duration::from_secs(6));
        assert!(!f.allows(v4(1), t0 + Duration::from_secs(7)));
        assert!(f.allows(v4(1), t0 + Duration::from_secs(66)));
    }

    #[test]
    fn an_ipv6_slash_64_is_one_source() {
        let t0 = Instant::now();
        let mut f = FailedLogins::new(2, 100);
        let a = Source::of(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, 1)));
        let b = Source::of(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 9, 9, 9, 9)));
        f.failed(a, t0);
        f.failed(b, t0);
        assert!(!f.allows(a, t0));
    }

    #[test]
    fn zero_means_no_limit() {
        let t0 = Instant::now();
        let mut f = FailedLogins::new(0, 100);
        for _ in 0..1000 {
            f.failed(v4(1), t0);
        }
        assert!(f.allows(v4(1), t0));
        assert_eq!(f.sources(), 0);
    }

    #[test]
    fn a_full_table_sweeps_refilled_sources_and_otherwise_fails_open() {
        let t0 = Instant::now();
        let mut f = FailedLogins::new(10, 3);
        for s in 1..=3 {
            f.failed(v4(s), t0);
        }
        f.failed(v4(4), t0);
        assert_eq!((f.sources(), f.untracked()), (3, 1));
        assert!(f.allows(v4(4), t0), "untracked sources are not refused");
        // A minute later the first three have refilled and make room.
        let later = t0 + Duration::from_secs(60);
        f.failed(v4(4), later);
        assert_eq!((f.sources(), f.untracked()), (1, 1));
    }

    #[test]
    fn sweeps_of_a_full_table_are_rate_limited() {
        let t0 = Instant::now();
        let mut f = FailedLogins::new(10, 2);
        f.failed(v4(1), t0);
        f.failed(v4(2), t0);
        // A new source every millisecond for 100 ms: one sweep, not a hundred (each would walk
        // the whole table); nothing had refilled, so none was taken.
        for ms in 0..100u64 {
            f.failed(v4(3), t0 + Duration::from_millis(ms));
        }
        assert_eq!(f.last_sweep, Some(t0));
        assert_eq!((f.sources(), f.untracked()), (2, 100));
    }

    proptest! {
        /// Any sequence of failures and checks: the table stays bounded and a source is
        /// refused only after `per_minute` failures within the last minute.
        #[test]
        fn bounded_and_never_refuses_a_source_below_its_budget(
            per_minute in 1u32..20,
            ops in prop::collection::vec((0u8..8, 0u64..20_000, any::<bool>()), 0..200),
        ) {
            let t0 = Instant::now();
            let mut f = FailedLogins::new(per_minute, 4);
            let mut clock = 0u64;
            let mut history: Vec<(u8, u64)> = Vec::new();
            for (src, step_ms, fail) in ops {
                clock += step_ms;
                let now = t0 + Duration::from_millis(clock);
                if fail {
                    f.failed(v4(src), now);
                    history.push((src, clock));
                } else if !f.allows(v4(src), now) {
                    let recent = history
                        .iter()
                        .filter(|&&(s, at)| s == src && clock - at < 60_000)
                        .count();
                    prop_assert!(recent >= 1, "refused with no failure in the last minute");
                }
                prop_assert!(f.sources() <= 4);
            }
        }
    }
}
