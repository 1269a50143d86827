//! The frame marker burned into every test-pattern frame: a frame number and a capture time as a
//! strip of large black and white luma cells that survives H.264 at call bitrates, so a receiver
//! can count lost frames and measure glass-to-glass latency *after decoding*.
//!
//! Distance from the wire: none; this works on pictures. The sender's pattern
//! ([`super::pattern`]) writes it before encoding; receivers, tests and benches read it from the
//! decoded luma plane with [`read_marker`]. The layout is specified in `docs/protocol.md`
//! ("Video test pattern marker") so another implementation can measure us.
//!
//! Layout: a grid of [`GRID_COLS`] x [`GRID_ROWS`] square cells in the top-left corner, each
//! [`cell_size`] pixels (8, 16, 24... so cells sit on whole 4x4 transform blocks and a cell is
//! one flat DC value for the encoder). Column 0 and the last column are guard cells of known
//! colour; the 100 cells between them carry a 4-bit sync code and 96 message bits: frame number,
//! 48 bits of capture time and a CRC-16. Reading averages the centre of each cell and thresholds
//! at mid-grey, so coding noise and deblocking at cell edges do not flip bits.

use crc::{Crc, CRC_16_IBM_3740};

mod tally;
pub use tally::{MarkerTally, TallySummary};

/// Cells across the marker grid (2 guard columns and 20 data columns).
pub const GRID_COLS: usize = 22;
/// Cell rows in the marker grid.
pub const GRID_ROWS: usize = 5;
/// Smallest frame width that carries a marker (QCIF).
pub const MIN_WIDTH: usize = 176;
/// Smallest frame height that carries a marker (QCIF).
pub const MIN_HEIGHT: usize = 144;
/// Luma of a cell carrying a 1 (BT.601 limited-range white).
pub const WHITE: u8 = 235;
/// Luma of a cell carrying a 0 and of the strip background (BT.601 limited-range black).
pub const BLACK: u8 = 16;
/// A cell reads as 1 when the mean luma of its centre is at least this (mid-grey).
pub const THRESHOLD: u8 = 128;
/// Bits of capture time carried; [`Marker::capture_us`] is taken modulo 2^48 (8.9 years of µs).
pub const CAPTURE_BITS: u32 = 48;
/// Mask of the capture-time bits.
pub const CAPTURE_MASK: u64 = (1 << CAPTURE_BITS) - 1;

/// The fixed sync code in the first four data cells (1, 0, 1, 0).
const SYNC: [bool; 4] = [true, false, true, false];
/// Data cells per row (between the two guard columns).
const DATA_COLS: usize = GRID_COLS - 2;
/// Message bytes: u32be frame, u48be capture time, u16be CRC-16 of the first 10 bytes.
const MESSAGE_LEN: usize = 12;
/// CRC-16/CCITT-FALSE (a.k.a. CRC-16/IBM-3740): poly 0x1021, init 0xffff, no reflection.
const CRC16: Crc<u16> = Crc::<u16>::new(&CRC_16_IBM_3740);

/// What a marker carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Marker {
    /// Frame number, counting from 0 at the source (wraps at 2^32).
    pub frame: u32,
    /// Capture time in microseconds on a clock the sender chooses (the `call` pattern source
    /// uses unix time); only the low [`CAPTURE_BITS`] bits are written.
    pub capture_us: u64,
}

impl Marker {
    /// The marker as it reads back: the capture time reduced to [`CAPTURE_BITS`] bits.
    pub fn on_the_wire(self) -> Self {
        Self {
            frame: self.frame,
            capture_us: self.capture_us & CAPTURE_MASK,
        }
    }

    /// Microseconds from capture to `now_us` on the same clock, modulo 2^48, so it stays right
    /// across the wrap of the 48-bit field. A `now_us` before the capture gives a huge value.
    pub fn age_us(&self, now_us: u64) -> u64 {
        now_us.wrapping_sub(self.capture_us) & CAPTURE_MASK
    }

    /// The 12 message bytes: `u32be(frame) || u48be(capture_us) || u16be(crc)`.
    fn message(self) -> [u8; MESSAGE_LEN] {
        let mut m = [0u8; MESSAGE_LEN];
        m[..4].copy_from_slice(&self.frame.to_be_bytes());
        m[4..10].copy_from_slice(&(self.capture_us & CAPTURE_MASK).to_be_bytes()[2..]);
        let crc = CRC16.checksum(&m[..10]);
        m[10..].copy_from_slice(&crc.to_be_bytes());
        m
    }

    /// The 100 data-cell bits in cell order (sync code, then the message MSB first); `true` is
    /// a white cell. This is the test vector form of `docs/protocol.md`.
    pub fn cell_bits(self) -> [bool; DATA_COLS * GRID_ROWS] {
        let message = self.message();
        let mut bits = [false; DATA_COLS * GRID_ROWS];
        bits[..SYNC.len()].copy_from_slice(&SYNC);
        for (i, bit) in bits[SYNC.len()..].iter_mut().enumerate() {
            *bit = message[i / 8] & (0x80 >> (i % 8)) != 0;
        }
        bits
    }
}

/// Why no marker could be read from a picture.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MarkerError {
    /// The picture is smaller than any marker layout.
    #[error(
        "picture {width}x{height} is too small for a frame marker; use at least \
         {MIN_WIDTH}x{MIN_HEIGHT}"
    )]
    TooSmall {
        /// Width given.
        width: usize,
        /// Height given.
        height: usize,
    },
    /// The plane is shorter than `height` rows of `stride` bytes, or the stride is below the
    /// width: the caller passed inconsistent geometry.
    #[error(
        "luma plane of {len} bytes with stride {stride} cannot hold a {width}x{height} picture; \
         pass the decoder's real stride"
    )]
    BadPlane {
        /// Plane length in bytes.
        len: usize,
        /// Row stride given.
        stride: usize,
        /// Width given.
        width: usize,
        /// Height given.
        height: usize,
    },
    /// Guard or sync cells are not where they should be: this picture carries no marker (not
    /// the test pattern, or damaged beyond reading).
    #[error("no frame marker found (guard or sync cells do not match); is the sender using the test pattern?")]
    NotFound,
    /// The cells were found but the checksum does not match: a damaged picture; its numbers
    /// must not be trusted.
    #[error("frame marker damaged: checksum {found:#06x} does not match {computed:#06x}")]
    ChecksumMismatch {
        /// The CRC read from the picture.
        found: u16,
        /// The CRC of the frame number and time read from the picture.
        computed: u16,
    },
}

/// Side of one marker cell in pixels for a `width` x `height` picture: 8 times
/// `max(1, min(width / 320, height / 240))`, or `None` below [`MIN_WIDTH`] x [`MIN_HEIGHT`].
pub fn cell_size(width: usize, height: usize) -> Option<usize> {
    if width < MIN_WIDTH || height < MIN_HEIGHT {
        return None;
    }
    Some(8 * (width / 320).min(height / 240).max(1))
}

/// Height in pixels of the strip at the top of the picture reserved for the marker (the test
/// pattern paints it black and draws nothing else there), or 0 when the picture is too small.
pub fn strip_height(width: usize, height: usize) -> usize {
    cell_size(width, height).map_or(0, |s| s * GRID_ROWS)
}

/// Colour of every cell of the grid, row-major, for `marker`.
fn grid(marker: Marker) -> [[bool; GRID_COLS]; GRID_ROWS] {
    let data = marker.cell_bits();
    let mut cells = [[false; GRID_COLS]; GRID_ROWS];
    for (r, row) in cells.iter_mut().enumerate() {
        row[0] = r % 2 == 0;
        row[GRID_COLS - 1] = r % 2 != 0;
        row[1..GRID_COLS - 1].copy_from_slice(&data[r * DATA_COLS..(r + 1) * DATA_COLS]);
    }
    cells
}

fn check_plane(
    len: usize,
    width: usize,
    height: usize,
    stride: usize,
) -> Result<usize, MarkerError> {
    let s = cell_size(width, height).ok_or(MarkerError::TooSmall { width, height })?;
    let needed = (height - 1)
        .checked_mul(stride)
        .and_then(|n| n.checked_add(width));
    if stride < width || needed.is_none_or(|n| len < n) {
        return Err(MarkerError::BadPlane {
            len,
            stride,
            width,
            height,
        });
    }
    Ok(s)
}

/// Writes `marker`'s cells into a luma plane (`stride` bytes per row). Only the grid is
/// written; the caller keeps the rest of the [`strip_height`] strip plain black and the chroma
/// under it neutral, as the test pattern does.
pub fn write_marker(
    y_plane: &mut [u8],
    width: usize,
    height: usize,
    stride: usize,
    marker: Marker,
) -> Result<(), MarkerError> {
    let s = check_plane(y_plane.len(), width, height, stride)?;
    for (r, row) in grid(marker).iter().enumerate() {
        for py in r * s..(r + 1) * s {
            let line = &mut y_plane[py * stride..py * stride + GRID_COLS * s];
            for (cell, &white) in line.chunks_exact_mut(s).zip(row) {
                cell.fill(if white { WHITE } else { BLACK });
            }
        }
    }
    Ok(())
}

/// Reads the marker from a decoded luma plane (`stride` bytes per row).
pub fn read_marker(
    y_plane: &[u8],
    width: usize,
    height: usize,
    stride: usize,
) -> Result<Marker, MarkerError> {
    let s = check_plane(y_plane.len(), width, height, stride)?;
    // The centre half of the cell in each direction: away from deblocked edges.
    let (lo, hi) = (s / 4, s - s / 4);
    let count = ((hi - lo) * (hi - lo)) as u32;
    let cell = |r: usize, c: usize| -> bool {
        let mut sum = 0u32;
        for py in r * s + lo..r * s + hi {
            let start = py * stride + c * s;
            sum += y_plane[start + lo..start + hi]
                .iter()
                .map(|&p| u32::from(p))
                .sum::<u32>();
        }
        sum >= u32::from(THRESHOLD) * count
    };
    let mut data = [false; DATA_COLS * GRID_ROWS];
    for r in 0..GRID_ROWS {
        if cell(r, 0) != (r % 2 == 0) || cell(r, GRID_COLS - 1) != (r % 2 != 0) {
            return Err(MarkerError::NotFound);
        }
        for c in 1..GRID_COLS - 1 {
            data[r * DATA_COLS + c - 1] = cell(r, c);
        }
    }
    if data[..SYNC.len()] != SYNC {
        return Err(MarkerError::NotFound);
    }
    let mut m = [0u8; MESSAGE_LEN];
    for (i, &bit) in data[SYNC.len()..].iter().enumerate() {
        if bit {
            m[i / 8] |= 0x80 >> (i % 8);
        }
    }
    let found = u16::from_be_bytes([m[10], m[11]]);
    let computed = CRC16.checksum(&m[..10]);
    if found != computed {
        return Err(MarkerError::ChecksumMismatch { found, computed });
    }
    let mut capture = [0u8; 8];
    capture[2..].copy_from_slice(&m[4..10]);
    Ok(Marker {
        frame: u32::from_be_bytes([m[0], m[1], m[2], m[3]]),
        capture_us: u64::from_be_bytes(capture),
    })
}

#[cfg(test)]
mod tests;
