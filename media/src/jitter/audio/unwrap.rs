//! Extension of wrapping RTP counters (16-bit sequence numbers, 32-bit timestamps) to `i64`.
//!
//! Each new value is placed at the position closest to the highest value seen so far, the
//! usual RFC 3550 approach: a forward step of less than half the counter range is progress,
//! anything else is a step back (a reordered or late packet).

/// Extends a 16-bit RTP sequence number to a monotonic `i64`.
#[derive(Debug, Clone, Default)]
pub(crate) struct SeqUnwrapper {
    highest: Option<i64>,
}

impl SeqUnwrapper {
    /// Returns the extended value of `seq` and records it as highest when it is newer.
    pub(crate) fn extend(&mut self, seq: u16) -> i64 {
        let ext = match self.highest {
            None => i64::from(seq),
            Some(h) => h + i64::from(seq.wrapping_sub(h as u16) as i16),
        };
        if self.highest.is_none_or(|h| ext > h) {
            self.highest = Some(ext);
        }
        ext
    }
}

/// Extends a 32-bit RTP timestamp to a monotonic `i64`.
#[derive(Debug, Clone, Default)]
pub(crate) struct TimestampUnwrapper {
    highest: Option<i64>,
}

impl TimestampUnwrapper {
    /// Returns the extended value of `ts` and records it as highest when it is newer.
    pub(crate) fn extend(&mut self, ts: u32) -> i64 {
        let ext = match self.highest {
            None => i64::from(ts),
            Some(h) => h + i64::from(ts.wrapping_sub(h as u32) as i32),
        };
        if self.highest.is_none_or(|h| ext > h) {
            self.highest = Some(ext);
        }
        ext
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_wraps_forward_and_back() {
        let mut u = SeqUnwrapper::default();
        assert_eq!(u.extend(65_534), 65_534);
        assert_eq!(u.extend(65_535), 65_535);
        assert_eq!(u.extend(0), 65_536);
        assert_eq!(
            u.extend(65_535),
            65_535,
            "reordered packet from before the wrap"
        );
        assert_eq!(u.extend(1), 65_537);
    }

    #[test]
    fn timestamp_wraps() {
        let mut u = TimestampUnwrapper::default();
        let start = u32::MAX - 959;
        assert_eq!(u.extend(start), i64::from(start));
        assert_eq!(u.extend(start.wrapping_add(960)), i64::from(start) + 960);
        assert_eq!(u.extend(start.wrapping_add(1920)), i64::from(start) + 1920);
        assert_eq!(u.extend(start), i64::from(start));
    }
}
