//! The test pattern as a video source (`--video-in pattern`): `media`'s moving colour bars with
//! a frame number and capture time burned in ([`media::codec::marker`]), so the receiver can
//! count lost frames and measure glass-to-glass latency after decoding.
//!
//! The picture is painted by [`media::codec::pattern::paint`], the one pattern generator of the
//! workspace: frame `n` is a pure function of `(n, capture time, size)`. This source is the shell
//! around it: it numbers frames and reads the capture clock (unix microseconds by default, so
//! two processes on one machine share it; tests pass their own clock).

use media::codec::marker::Marker;
use media::codec::pattern::paint;

use crate::error::VideoError;
use crate::video::{VideoFrame, VideoSource};

/// A clock giving capture times in microseconds.
pub type CaptureClock = Box<dyn FnMut() -> u64 + Send>;

/// Microseconds since the unix epoch (0 if the system clock is before it): the default capture
/// clock, which a receiver on the same machine compares against with [`Marker::age_us`].
pub fn unix_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// The test-pattern source.
pub struct PatternSource {
    width: u32,
    height: u32,
    fps: u32,
    index: u32,
    clock: CaptureClock,
}

impl std::fmt::Debug for PatternSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PatternSource")
            .field("width", &self.width)
            .field("height", &self.height)
            .field("fps", &self.fps)
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

impl PatternSource {
    /// A pattern of `width x height` meant for `fps` frames per second, stamped with
    /// [`unix_micros`] when each frame is taken.
    pub fn new(width: u32, height: u32, fps: u32) -> Self {
        Self::with_clock(width, height, fps, unix_micros)
    }

    /// Like [`Self::new`] with another capture clock (microseconds).
    pub fn with_clock(
        width: u32,
        height: u32,
        fps: u32,
        clock: impl FnMut() -> u64 + Send + 'static,
    ) -> Self {
        Self {
            width,
            height,
            fps: fps.max(1),
            index: 0,
            clock: Box::new(clock),
        }
    }

    /// Frame number `n` of the pattern stamped with `capture_us`: what the `n`-th
    /// `next_frame` returns when the clock reads `capture_us`. Sizes below
    /// [`media::codec::marker::MIN_WIDTH`] x
    /// [`media::codec::marker::MIN_HEIGHT`] get bars without a marker.
    pub fn frame_at(&self, n: u32, capture_us: u64) -> VideoFrame {
        let mut frame = VideoFrame::filled(self.width, self.height, [16, 128, 128]);
        let (w, h) = (self.width as usize, self.height as usize);
        let marker = Marker {
            frame: n,
            capture_us,
        };
        paint(&mut frame.y, &mut frame.u, &mut frame.v, w, h, marker);
        frame
    }

    /// Number of the frame the next `next_frame` returns.
    pub fn index(&self) -> u32 {
        self.index
    }
}

impl VideoSource for PatternSource {
    fn next_frame(&mut self) -> Result<Option<VideoFrame>, VideoError> {
        let capture_us = (self.clock)();
        let frame = self.frame_at(self.index, capture_us);
        self.index = self.index.wrapping_add(1);
        Ok(Some(frame))
    }

    fn describe(&self) -> String {
        format!(
            "test pattern {}x{} @ {} fps with frame marker",
            self.width, self.height, self.fps
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use media::codec::marker::{self, read_marker, MarkerError};

    fn stepping_clock() -> impl FnMut() -> u64 + Send {
        let mut t = 1_000_000;
        move || {
            t += 33_333;
            t
        }
    }

    #[test]
    fn deterministic_moving_and_marked() {
        let mut a = PatternSource::with_clock(320, 240, 30, stepping_clock());
        let b = PatternSource::new(320, 240, 30);
        let f0 = a.next_frame().unwrap().unwrap();
        let f1 = a.next_frame().unwrap().unwrap();
        assert!(f0.is_consistent());
        assert_eq!(f0, b.frame_at(0, 1_033_333));
        assert_eq!(f1, b.frame_at(1, 1_066_666));
        assert_ne!(f0.y, f1.y, "bars must move");
        assert_eq!(a.index(), 2);
        let read = |f: &VideoFrame| read_marker(&f.y, 320, 240, 320);
        assert_eq!(
            read(&f1),
            Ok(Marker {
                frame: 1,
                capture_us: 1_066_666
            })
        );
        // Eight distinct luma values of the bars appear in the first row below the marker.
        let top = marker::strip_height(320, 240) * 320;
        let mut row: Vec<u8> = f0.y[top..top + 320].to_vec();
        row.sort_unstable();
        row.dedup();
        assert!(row.len() >= 8, "{row:?}");
    }

    #[test]
    fn the_default_clock_is_unix_time() {
        let before = unix_micros();
        let mut source = PatternSource::new(176, 144, 30);
        let f = source.next_frame().unwrap().unwrap();
        let m = read_marker(&f.y, 176, 144, 176).unwrap();
        let after = unix_micros();
        assert_eq!(m.frame, 0);
        // Read back modulo 2^48; its age against the same clock is within the call.
        assert!(m.age_us(after) <= after - before, "{m:?}");
        assert!(before > 1_600_000_000_000_000, "clock is unix micros");
    }

    #[test]
    fn tiny_sizes_do_not_panic_and_carry_no_marker() {
        for (w, h) in [(2, 2), (4, 2), (2, 64), (1, 1), (175, 144), (321, 241)] {
            let f = PatternSource::new(w, h, 120).frame_at(12345, 6789);
            assert!(f.is_consistent());
        }
        let f = PatternSource::new(174, 144, 30).frame_at(1, 1);
        assert!(matches!(
            read_marker(&f.y, 174, 144, 174),
            Err(MarkerError::TooSmall { .. })
        ));
    }
}
