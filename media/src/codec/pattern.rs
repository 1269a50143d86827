//! Deterministic test-pattern video: moving colour bars in I420 with a [`Marker`] (frame number
//! and capture time) burned into a black strip at the top, for `--video-in pattern`, tests and
//! benches. The one generator of the workspace: `native`'s pattern source paints through
//! [`paint`] too.
//!
//! A frame is a pure function of `(width, height, marker)`: the motion follows the frame number
//! and the capture time is whatever the caller passes (the shell reads the clock), so two runs
//! with the same inputs produce identical pictures and bitstreams, and a receiver can read back
//! which frame it decoded and when it was captured ([`super::marker::read_marker`]).
//!
//! Pictures smaller than [`marker::MIN_WIDTH`] x [`marker::MIN_HEIGHT`] carry bars only.

use super::h264::I420Frame;
use super::marker::{self, Marker};

/// BT.601 limited-range YUV of the eight classic bars: white, yellow, cyan, green, magenta,
/// red, blue, black.
const BARS_YUV: [(u8, u8, u8); 8] = [
    (235, 128, 128),
    (210, 16, 146),
    (170, 166, 16),
    (145, 54, 34),
    (106, 202, 222),
    (81, 90, 240),
    (41, 240, 110),
    (16, 128, 128),
];

/// Pixels the bars move to the left per frame.
const SPEED_PX: usize = 4;

/// Frame rate of the nominal clock [`TestPattern::next_frame`] stamps frames with.
pub const NOMINAL_FPS: u64 = 30;

/// Generates frames of moving colour bars with a textured box bouncing over them and a marker
/// at the top.
#[derive(Debug, Clone)]
pub struct TestPattern {
    width: usize,
    height: usize,
    index: u64,
}

impl TestPattern {
    /// A generator for `width` x `height` frames (both even, as I420 needs), starting at frame 0.
    pub fn new(width: usize, height: usize) -> Self {
        Self {
            width,
            height,
            index: 0,
        }
    }

    /// The next frame, newly allocated, stamped with the nominal capture time
    /// `index * 1 s / NOMINAL_FPS` (for tests and benches that do not care about time).
    pub fn next_frame(&mut self) -> I420Frame {
        let mut frame = I420Frame::black(self.width, self.height);
        self.next_into(&mut frame);
        frame
    }

    /// The next frame, newly allocated, stamped with `capture_us`.
    pub fn next_frame_at(&mut self, capture_us: u64) -> I420Frame {
        let mut frame = I420Frame::black(self.width, self.height);
        self.next_into_at(&mut frame, capture_us);
        frame
    }

    /// Writes the next frame into `frame` (resized to this pattern's dimensions if needed)
    /// without allocating when the dimensions already match; nominal capture time as in
    /// [`Self::next_frame`].
    pub fn next_into(&mut self, frame: &mut I420Frame) {
        let capture_us = self.index * 1_000_000 / NOMINAL_FPS;
        self.next_into_at(frame, capture_us);
    }

    /// Writes the next frame, stamped with `capture_us`, into `frame` (see [`Self::next_into`]).
    pub fn next_into_at(&mut self, frame: &mut I420Frame, capture_us: u64) {
        let marker = Marker {
            // The marker's frame number wraps at 2^32 (4.5 years at 30 fps).
            frame: self.index as u32,
            capture_us,
        };
        write_pattern(frame, self.width, self.height, marker);
        self.index += 1;
    }

    /// Index of the frame the next call produces.
    pub fn index(&self) -> u64 {
        self.index
    }
}

/// Writes the pattern frame carrying `marker` of size `width` x `height` into `frame`.
pub fn write_pattern(frame: &mut I420Frame, width: usize, height: usize, marker: Marker) {
    frame.resize(width, height);
    let (w, h) = (frame.width(), frame.height());
    let (y, u, v) = frame.planes_mut();
    paint(y, u, v, w, h, marker);
}

/// Paints the pattern frame carrying `marker` into tightly packed I420 planes of a `width` x
/// `height` picture (chroma `ceil(width/2)` x `ceil(height/2)`; odd sizes are fine). Planes
/// shorter than that are painted as far as they go.
pub fn paint(
    y_plane: &mut [u8],
    u_plane: &mut [u8],
    v_plane: &mut [u8],
    width: usize,
    height: usize,
    marker: Marker,
) {
    let (w, h) = (width, height);
    if w == 0 || h == 0 {
        return;
    }
    // The marker strip on top: black, neutral chroma, nothing moving over it.
    let strip = marker::strip_height(w, h).min(h);
    let bars_h = h - strip;
    let index = marker.frame as usize;
    let bar_width = w.div_ceil(8).max(1);
    let shift = index * SPEED_PX % w;
    // A box of a quarter of the bars' height bouncing vertically, moving right.
    let box_size = (bars_h / 4).max(2) & !1;
    let travel_x = w.saturating_sub(box_size).max(1);
    let travel_y = bars_h.saturating_sub(box_size).max(1);
    let box_x = index.wrapping_mul(6) % travel_x;
    let phase = index.wrapping_mul(3) % (2 * travel_y);
    let box_y = strip
        + if phase < travel_y {
            phase
        } else {
            2 * travel_y - phase
        };

    let bar_at = |x: usize| BARS_YUV[((x + shift) % w / bar_width).min(7)];
    let in_box = |x: usize, y: usize| {
        x >= box_x && x < box_x + box_size && y >= box_y && y < box_y + box_size
    };

    for (row, line) in y_plane.chunks_exact_mut(w).take(h).enumerate() {
        if row < strip {
            line.fill(marker::BLACK);
            continue;
        }
        for (x, px) in line.iter_mut().enumerate() {
            *px = if in_box(x, row) {
                // A gradient inside the box gives the encoder texture to track.
                (128 + ((x + row) % 64) * 2) as u8
            } else {
                bar_at(x).0
            };
        }
    }
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    for (row, (u_line, v_line)) in u_plane
        .chunks_exact_mut(cw)
        .zip(v_plane.chunks_exact_mut(cw))
        .take(ch)
        .enumerate()
    {
        for (cx, (u, v)) in u_line.iter_mut().zip(v_line.iter_mut()).enumerate() {
            let (_, bu, bv) = if row * 2 < strip || in_box(cx * 2, row * 2) {
                (0, 128, 128)
            } else {
                bar_at(cx * 2)
            };
            *u = bu;
            *v = bv;
        }
    }
    // Too small for a marker, or a short plane: bars only (documented above).
    let _ = marker::write_marker(y_plane, w, h, w, marker);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::marker::{read_marker, strip_height};

    #[test]
    fn deterministic_and_moving() {
        let mut a = TestPattern::new(64, 48);
        let mut b = TestPattern::new(64, 48);
        let a0 = a.next_frame();
        let b0 = b.next_frame();
        assert_eq!(a0, b0);
        let a1 = a.next_frame();
        assert_ne!(a0, a1, "consecutive frames must differ");
        assert_eq!(a.index(), 2);
    }

    #[test]
    fn odd_and_tiny_sizes_do_not_panic() {
        for (w, h) in [(0, 0), (2, 2), (3, 5), (17, 9), (176, 143), (640, 480)] {
            let f = TestPattern::new(w, h).next_frame();
            assert_eq!(f.y().len(), f.width() * f.height());
        }
        // Odd sizes and short planes through `paint` directly.
        for (w, h) in [(1usize, 1usize), (177, 145), (5, 3)] {
            let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
            let (mut y, mut u, mut v) = (vec![0; w * h], vec![0; cw * ch], vec![0; cw * ch]);
            paint(
                &mut y,
                &mut u,
                &mut v,
                w,
                h,
                Marker {
                    frame: 9,
                    capture_us: 9,
                },
            );
            let (mut y, mut u, mut v) = (vec![0; w * h / 2], vec![0; 1], vec![]);
            paint(
                &mut y,
                &mut u,
                &mut v,
                w,
                h,
                Marker {
                    frame: 9,
                    capture_us: 9,
                },
            );
        }
    }

    #[test]
    fn frames_carry_their_number_and_time() {
        let mut p = TestPattern::new(320, 240);
        let f0 = p.next_frame();
        let f1 = p.next_frame_at(987_654_321);
        let read = |f: &I420Frame| read_marker(f.y(), f.width(), f.height(), f.width()).unwrap();
        assert_eq!(
            read(&f0),
            Marker {
                frame: 0,
                capture_us: 0
            }
        );
        assert_eq!(
            read(&f1),
            Marker {
                frame: 1,
                capture_us: 987_654_321
            }
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]
        /// Whatever the size (odd ones too), frame number and time, the bars and the box leave
        /// the marker alone and it reads back.
        #[test]
        fn every_painted_frame_carries_its_marker(
            frame in proptest::prelude::any::<u32>(),
            capture_us in proptest::prelude::any::<u64>(),
            width in 176usize..1000,
            height in 144usize..600,
        ) {
            let marker = Marker { frame, capture_us };
            let (cw, ch) = (width.div_ceil(2), height.div_ceil(2));
            let mut y = vec![0; width * height];
            let (mut u, mut v) = (vec![0; cw * ch], vec![0; cw * ch]);
            paint(&mut y, &mut u, &mut v, width, height, marker);
            proptest::prop_assert_eq!(
                read_marker(&y, width, height, width),
                Ok(marker.on_the_wire())
            );
        }
    }

    #[test]
    fn nothing_moves_over_the_strip_and_the_bars_move_below_it() {
        let (w, h) = (320, 240);
        let strip = strip_height(w, h);
        assert_eq!(strip, 40);
        // Same marker, different motion phase: the strip is identical, the bars are not.
        let marker = |frame| Marker {
            frame,
            capture_us: 5,
        };
        let mut a = I420Frame::black(w, h);
        let mut b = I420Frame::black(w, h);
        write_pattern(&mut a, w, h, marker(7));
        write_pattern(&mut b, w, h, marker(8));
        let strip_of = |f: &I420Frame| f.y()[..strip * w].to_vec();
        let (sa, sb) = (strip_of(&a), strip_of(&b));
        let differing = sa.iter().zip(&sb).filter(|(x, y)| x != y).count();
        // Only the frame-number cells differ (7 = ...0111, 8 = ...1000, plus the CRC).
        assert!(differing > 0 && differing < sa.len() / 4, "{differing}");
        assert!(sa[22 * 8..w].iter().all(|&p| p == marker::BLACK));
        assert_ne!(a.y()[strip * w..], b.y()[strip * w..], "bars must move");
        // Chroma under the strip is neutral.
        assert!(a.u()[..strip / 2 * w / 2].iter().all(|&c| c == 128));
        // Eight distinct bar lumas on the first row below the strip.
        let mut row = a.y()[strip * w..(strip + 1) * w].to_vec();
        row.sort_unstable();
        row.dedup();
        assert!(row.len() >= 8, "{row:?}");
    }
}
