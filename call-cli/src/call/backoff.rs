//! Reconnect delays for a listener that lost its signaling server: exponential backoff with
//! jitter, sans-IO (the caller supplies the random draw and does the sleeping).

use std::time::Duration;

/// First delay after a lost connection.
pub const FIRST_DELAY: Duration = Duration::from_millis(500);
/// Longest delay between attempts.
pub const MAX_DELAY: Duration = Duration::from_secs(30);

/// Delays 0.5 s, 1 s, 2 s, … doubling up to 30 s, each spread by ±25 % so that many listeners
/// of a restarted server do not all come back in the same instant.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { base: FIRST_DELAY }
    }
}

impl Backoff {
    /// The delay before the next attempt; `draw` in `[0, 1)` (a random number) picks the
    /// jitter. Advances to the next, longer delay.
    pub fn next_delay(&mut self, draw: f64) -> Duration {
        let draw = if draw.is_finite() {
            draw.clamp(0.0, 1.0)
        } else {
            0.5
        };
        let delay = self.base.mul_f64(0.75 + 0.5 * draw).min(MAX_DELAY);
        self.base = (self.base * 2).min(MAX_DELAY);
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn doubles_from_half_a_second_to_thirty() {
        let mut b = Backoff::default();
        let mid: Vec<u64> = (0..9)
            .map(|_| b.next_delay(0.5).as_millis() as u64)
            .collect();
        assert_eq!(
            mid,
            [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]
        );
    }

    proptest! {
        #[test]
        fn every_delay_is_within_its_jitter_band(draws in proptest::collection::vec(any::<f64>(), 1..40)) {
            let mut b = Backoff::default();
            let mut base = FIRST_DELAY;
            for draw in draws {
                let d = b.next_delay(draw);
                prop_assert!(d >= base.mul_f64(0.75).min(MAX_DELAY), "{d:?} below {base:?}");
                prop_assert!(d <= base.mul_f64(1.25).min(MAX_DELAY), "{d:?} above {base:?}");
                base = (base * 2).min(MAX_DELAY);
            }
        }
    }
}
