//! Deterministic moving colour bars (`--video-in pattern`): eight vertical bars (white,
//! yellow, cyan, green, magenta, red, blue, black) that scroll left by a fixed number of pixels
//! per frame (one full width in about four seconds), with a small block that walks down the
//! frame so vertical motion is exercised too. Frame `n` depends only on `n` and the size.

use crate::error::VideoError;
use crate::video::{rgb_to_yuv, VideoFrame, VideoSource};

const BARS_RGB: [[u8; 3]; 8] = [
    [255, 255, 255],
    [255, 255, 0],
    [0, 255, 255],
    [0, 255, 0],
    [255, 0, 255],
    [255, 0, 0],
    [0, 0, 255],
    [0, 0, 0],
];

/// The colour-bar test pattern.
#[derive(Debug, Clone)]
pub struct PatternSource {
    width: u32,
    height: u32,
    fps: u32,
    index: u64,
}

impl PatternSource {
    /// A pattern of `width x height` meant for `fps` frames per second.
    pub fn new(width: u32, height: u32, fps: u32) -> Self {
        Self {
            width,
            height,
            fps: fps.max(1),
            index: 0,
        }
    }

    /// Frame number `n` of the pattern (what the `n`-th `next_frame` returns).
    pub fn frame_at(&self, n: u64) -> VideoFrame {
        let (w, h) = (self.width, self.height);
        let mut frame = VideoFrame::filled(w, h, [16, 128, 128]);
        if w == 0 || h == 0 {
            return frame;
        }
        let speed = u64::from((w / (4 * self.fps)).max(1));
        let offset = (n * speed % u64::from(w)) as u32;
        let bar_width = w.div_ceil(8);
        let colours = BARS_RGB.map(|[r, g, b]| rgb_to_yuv(r, g, b));
        let colour_at = |x: u32| colours[(((x + offset) % w) / bar_width).min(7) as usize];
        // The walking block: a 1/8-size square moving down one block-row per second.
        let block = (w.min(h) / 8).max(2);
        let block_x = (w / 2).saturating_sub(block / 2);
        let block_y =
            ((n / u64::from(self.fps)) * u64::from(block) % u64::from(h.max(block))) as u32;
        let in_block = |x: u32, y: u32| {
            x >= block_x && x < block_x + block && y >= block_y && y < block_y + block
        };
        let (cw, _) = VideoFrame::chroma_size(w, h);
        for y in 0..h {
            for x in 0..w {
                let [luma, cb, cr] = if in_block(x, y) {
                    [128, 128, 128]
                } else {
                    colour_at(x)
                };
                frame.y[(y * w + x) as usize] = luma;
                if x % 2 == 0 && y % 2 == 0 {
                    let ci = ((y / 2) * cw + x / 2) as usize;
                    frame.u[ci] = cb;
                    frame.v[ci] = cr;
                }
            }
        }
        frame
    }
}

impl VideoSource for PatternSource {
    fn next_frame(&mut self) -> Result<Option<VideoFrame>, VideoError> {
        let frame = self.frame_at(self.index);
        self.index += 1;
        Ok(Some(frame))
    }

    fn describe(&self) -> String {
        format!(
            "test pattern {}x{} @ {} fps",
            self.width, self.height, self.fps
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_moving() {
        let mut a = PatternSource::new(64, 48, 30);
        let b = PatternSource::new(64, 48, 30);
        let f0 = a.next_frame().unwrap().unwrap();
        let f1 = a.next_frame().unwrap().unwrap();
        assert!(f0.is_consistent());
        assert_eq!(f0, b.frame_at(0));
        assert_eq!(f1, b.frame_at(1));
        assert_ne!(f0.y, f1.y, "bars must move");
        // Eight distinct luma values of the bars appear in the first row.
        let mut row: Vec<u8> = f0.y[..64].to_vec();
        row.sort_unstable();
        row.dedup();
        assert!(row.len() >= 8, "{row:?}");
    }

    #[test]
    fn tiny_sizes_do_not_panic() {
        for (w, h) in [(2, 2), (4, 2), (2, 64), (1, 1)] {
            let f = PatternSource::new(w, h, 120).frame_at(12345);
            assert!(f.is_consistent());
        }
    }
}
