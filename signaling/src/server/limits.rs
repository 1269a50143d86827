//! Per-connection limits (sans-IO): a token bucket for the frame rate.

use std::time::{Duration, Instant};

/// Rate-limit settings: a sustained rate and a burst.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Frames per second allowed on average.
    pub per_second: f64,
    /// Frames allowed at once after a quiet period (bucket size).
    pub burst: u32,
}

impl Default for RateLimit {
    /// 20 frames/s sustained, bursts of 50: ample for call set-up (offer, answer, a few dozen
    /// ICE candidates) and far below what would load the server.
    fn default() -> Self {
        Self {
            per_second: 20.0,
            burst: 50,
        }
    }
}

/// A token bucket. Time is an argument; it never reads a clock.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    limit: RateLimit,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket at `now`.
    pub fn new(limit: RateLimit, now: Instant) -> Self {
        Self {
            limit,
            tokens: f64::from(limit.burst),
            last: now,
        }
    }

    /// Takes one token if available; `false` means the frame must be dropped.
    pub fn try_take(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// When the next token will be available (`now` if one is available already).
    pub fn next_token_at(&mut self, now: Instant) -> Instant {
        self.refill(now);
        if self.tokens >= 1.0 || self.limit.per_second <= 0.0 {
            return now;
        }
        let wait = (1.0 - self.tokens) / self.limit.per_second;
        now + Duration::from_secs_f64(wait)
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        let rate = self.limit.per_second.max(0.0);
        self.tokens = (self.tokens + elapsed * rate).min(f64::from(self.limit.burst));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refuse_then_refill() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(
            RateLimit {
                per_second: 10.0,
                burst: 3,
            },
            t0,
        );
        assert!(b.try_take(t0));
        assert!(b.try_take(t0));
        assert!(b.try_take(t0));
        assert!(!b.try_take(t0));
        assert_eq!(b.next_token_at(t0), t0 + Duration::from_millis(100));
        assert!(!b.try_take(t0 + Duration::from_millis(50)));
        assert!(b.try_take(t0 + Duration::from_millis(150)));
        // Long quiet: refills only up to the burst.
        let later = t0 + Duration::from_secs(100);
        for _ in 0..3 {
            assert!(b.try_take(later));
        }
        assert!(!b.try_take(later));
    }

    #[test]
    fn time_going_backwards_is_harmless() {
        let t0 = Instant::now() + Duration::from_secs(10);
        let mut b = TokenBucket::new(
            RateLimit {
                per_second: 1.0,
                burst: 1,
            },
            t0,
        );
        assert!(b.try_take(t0));
        assert!(!b.try_take(t0 - Duration::from_secs(5)));
        assert!(b.try_take(t0 + Duration::from_secs(1)));
    }

    #[test]
    fn sustained_rate_is_enforced() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(
            RateLimit {
                per_second: 20.0,
                burst: 5,
            },
            t0,
        );
        let mut passed = 0;
        // 1000 frames over 10 simulated seconds (100/s): about 5 + 200 pass.
        for i in 0..1000u64 {
            if b.try_take(t0 + Duration::from_millis(i * 10)) {
                passed += 1;
            }
        }
        assert!((200..=206).contains(&passed), "{passed}");
    }
}
