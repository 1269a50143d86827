//! `Bitrate`: bits per second as a small newtype, so rates are never confused with byte counts.

use std::fmt;

/// A rate in bits per second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Bitrate(u64);

impl Bitrate {
    /// Zero bits per second.
    pub const ZERO: Bitrate = Bitrate(0);

    /// `bps` bits per second.
    pub const fn from_bps(bps: u64) -> Self {
        Bitrate(bps)
    }

    /// `kbps` kilobits (1000 bits) per second.
    pub const fn from_kbps(kbps: u64) -> Self {
        Bitrate(kbps.saturating_mul(1000))
    }

    /// Bits per second.
    pub const fn bps(self) -> u64 {
        self.0
    }

    /// Kilobits per second, rounded down.
    pub const fn kbps(self) -> u64 {
        self.0 / 1000
    }

    /// `self - other`, or zero when `other` is larger.
    pub const fn saturating_sub(self, other: Bitrate) -> Bitrate {
        Bitrate(self.0.saturating_sub(other.0))
    }

    /// Rounds a float rate (bits per second); NaN and negatives become zero, infinity saturates.
    pub(crate) fn from_f64(bps: f64) -> Bitrate {
        // `as` saturates and maps NaN to 0, which is what a rate wants.
        Bitrate(bps.round() as u64)
    }

    /// The rate as a float, for the controllers' arithmetic.
    pub(crate) fn as_f64(self) -> f64 {
        self.0 as f64
    }
}

impl fmt::Display for Bitrate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} kbit/s", self.kbps())
    }
}
