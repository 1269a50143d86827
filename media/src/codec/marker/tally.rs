//! What a receiver decoded, by burned-in frame number: how many distinct frames arrived, which
//! are missing, whether they came in order, and how old each was when decoding completed
//! (glass-to-glass latency). Sans-IO: the caller passes the decode-complete time on the clock
//! the sender stamped capture times with. For tests and benches; it keeps one entry per frame.

use super::{Marker, MarkerError};

/// Collects [`read_marker`](super::read_marker) results of decoded pictures.
#[derive(Debug, Clone, Default)]
pub struct MarkerTally {
    /// Frame numbers in decode order.
    frames: Vec<u32>,
    /// Capture-to-decode ages in microseconds, in decode order.
    ages_us: Vec<u64>,
    /// Pictures whose marker could not be read.
    unreadable: u64,
}

/// Figures from a [`MarkerTally`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TallySummary {
    /// Pictures with a readable marker.
    pub decoded: u64,
    /// Pictures whose marker was damaged or absent.
    pub unreadable: u64,
    /// Distinct frame numbers decoded.
    pub distinct: u64,
    /// Pictures whose frame number was already decoded.
    pub duplicates: u64,
    /// Pictures decoded after one with a higher frame number.
    pub out_of_order: u64,
    /// Lowest and highest frame number decoded.
    pub range: Option<(u32, u32)>,
    /// Frame numbers inside `range` never decoded.
    pub missing_inside: u64,
    /// Median capture-to-decode age in microseconds (nearest rank).
    pub age_p50_us: Option<u64>,
    /// 95th percentile capture-to-decode age in microseconds (nearest rank).
    pub age_p95_us: Option<u64>,
}

impl MarkerTally {
    /// An empty tally.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one decoded picture: what reading its marker gave and when decoding completed
    /// (`decoded_us`, same clock as the capture times).
    pub fn record(&mut self, read: Result<Marker, MarkerError>, decoded_us: u64) {
        match read {
            Ok(marker) => {
                self.frames.push(marker.frame);
                self.ages_us.push(marker.age_us(decoded_us));
            }
            Err(_) => self.unreadable += 1,
        }
    }

    /// Distinct frames among `0..sent` that were decoded, as a fraction of `sent` (1.0 when
    /// nothing was sent).
    pub fn received_fraction(&self, sent: u32) -> f64 {
        if sent == 0 {
            return 1.0;
        }
        let mut seen: Vec<u32> = self.frames.iter().copied().filter(|&f| f < sent).collect();
        seen.sort_unstable();
        seen.dedup();
        seen.len() as f64 / f64::from(sent)
    }

    /// The figures so far. Frame numbers are taken as they are (no wrap at 2^32).
    pub fn summary(&self) -> TallySummary {
        let mut sorted = self.frames.clone();
        sorted.sort_unstable();
        sorted.dedup();
        let distinct = sorted.len() as u64;
        let range = sorted.first().zip(sorted.last()).map(|(&a, &b)| (a, b));
        let missing_inside = range.map_or(0, |(a, b)| u64::from(b - a) + 1 - distinct);
        let mut highest: Option<u32> = None;
        let mut out_of_order = 0;
        for &f in &self.frames {
            match highest {
                Some(h) if f < h => out_of_order += 1,
                _ => highest = Some(f),
            }
        }
        let mut ages = self.ages_us.clone();
        ages.sort_unstable();
        let rank = |p: usize| -> Option<u64> {
            let n = ages.len();
            (n > 0).then(|| ages[(n * p).div_ceil(100).clamp(1, n) - 1])
        };
        TallySummary {
            decoded: self.frames.len() as u64,
            unreadable: self.unreadable,
            distinct,
            duplicates: self.frames.len() as u64 - distinct,
            out_of_order,
            range,
            missing_inside,
            age_p50_us: rank(50),
            age_p95_us: rank(95),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marker(frame: u32, capture_us: u64) -> Result<Marker, MarkerError> {
        Ok(Marker { frame, capture_us })
    }

    #[test]
    fn counts_loss_order_duplicates_and_ages() {
        let mut t = MarkerTally::new();
        assert_eq!(t.summary(), TallySummary::default());
        // Frames 0..10 captured every 1000 µs and decoded 20-30 µs later; 3 and 7 lost,
        // 5 decoded twice, 8 before 6.
        for (frame, extra) in [(0, 20), (1, 21), (2, 22), (4, 24), (5, 25), (5, 25)] {
            t.record(
                marker(frame, u64::from(frame) * 1000),
                u64::from(frame) * 1000 + extra,
            );
        }
        t.record(marker(8, 8000), 8028);
        t.record(marker(6, 6000), 8030);
        t.record(marker(9, 9000), 9029);
        t.record(Err(MarkerError::NotFound), 9500);
        let s = t.summary();
        assert_eq!(s.decoded, 9);
        assert_eq!(s.unreadable, 1);
        assert_eq!(s.distinct, 8);
        assert_eq!(s.duplicates, 1);
        assert_eq!(s.out_of_order, 1);
        assert_eq!(s.range, Some((0, 9)));
        assert_eq!(s.missing_inside, 2);
        // Ages sorted: 20 21 22 24 25 25 28 29 2030 -> p50 = 5th = 25, p95 = 9th = 2030.
        assert_eq!(s.age_p50_us, Some(25));
        assert_eq!(s.age_p95_us, Some(2030));
        assert_eq!(t.received_fraction(10), 0.8);
        assert_eq!(t.received_fraction(5), 0.8);
        assert_eq!(t.received_fraction(0), 1.0);
    }

    #[test]
    fn ages_survive_the_48_bit_wrap() {
        let mut t = MarkerTally::new();
        t.record(marker(0, super::super::CAPTURE_MASK - 4), 5);
        assert_eq!(t.summary().age_p50_us, Some(10));
    }
}
