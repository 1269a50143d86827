//! Deterministic test-pattern video: moving colour bars in I420, for tests, benches and the
//! `native` crate's generated video source.
//!
//! Frame `n` is a pure function of `(width, height, n)`, so two runs produce identical
//! bitstreams and a receiver can check what it decoded.

use super::h264::I420Frame;

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
const SPEED_PX: u64 = 4;

/// Generates frames of moving colour bars with a bright box bouncing over them.
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

    /// The next frame, newly allocated.
    pub fn next_frame(&mut self) -> I420Frame {
        let mut frame = I420Frame::black(self.width, self.height);
        self.next_into(&mut frame);
        frame
    }

    /// Writes the next frame into `frame` (resized to this pattern's dimensions if needed)
    /// without allocating when the dimensions already match.
    pub fn next_into(&mut self, frame: &mut I420Frame) {
        write_pattern(frame, self.width, self.height, self.index);
        self.index += 1;
    }

    /// Index of the frame the next call produces.
    pub fn index(&self) -> u64 {
        self.index
    }
}

/// Writes pattern frame `index` of size `width` x `height` into `frame`.
pub fn write_pattern(frame: &mut I420Frame, width: usize, height: usize, index: u64) {
    frame.resize(width, height);
    let (w, h) = (frame.width(), frame.height());
    if w == 0 || h == 0 {
        return;
    }
    let bar_width = w.div_ceil(8).max(1);
    let shift = (index * SPEED_PX % w as u64) as usize;
    // A box of a quarter of the height bouncing vertically, moving right.
    let box_size = (h / 4).max(2) & !1;
    let travel_x = w.saturating_sub(box_size).max(1);
    let travel_y = h.saturating_sub(box_size).max(1);
    let box_x = (index as usize * 6) % travel_x;
    let phase = (index as usize * 3) % (2 * travel_y);
    let box_y = if phase < travel_y {
        phase
    } else {
        2 * travel_y - phase
    };

    let bar_at = |x: usize| BARS_YUV[((x + shift) % w / bar_width).min(7)];
    let in_box = |x: usize, y: usize| {
        x >= box_x && x < box_x + box_size && y >= box_y && y < box_y + box_size
    };

    let (y_plane, u_plane, v_plane) = frame.planes_mut();
    for (row, line) in y_plane.chunks_exact_mut(w).enumerate() {
        for (x, px) in line.iter_mut().enumerate() {
            *px = if in_box(x, row) {
                // A gradient inside the box gives the encoder texture to track.
                (128 + ((x + row) % 64) * 2) as u8
            } else {
                bar_at(x).0
            };
        }
    }
    let cw = w / 2;
    for (row, (u_line, v_line)) in u_plane
        .chunks_exact_mut(cw)
        .zip(v_plane.chunks_exact_mut(cw))
        .enumerate()
    {
        for (cx, (u, v)) in u_line.iter_mut().zip(v_line.iter_mut()).enumerate() {
            let (_, bu, bv) = if in_box(cx * 2, row * 2) {
                (0, 128, 128)
            } else {
                bar_at(cx * 2)
            };
            *u = bu;
            *v = bv;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        for (w, h) in [(0, 0), (2, 2), (3, 5), (17, 9), (640, 480)] {
            let f = TestPattern::new(w, h).next_frame();
            assert_eq!(f.y().len(), f.width() * f.height());
        }
    }
}
