//! Video sources giving I420 frames to the H.264 encoder: a camera (nokhwa), a deterministic
//! moving colour-bar pattern with a burned-in frame marker, and YUV4MPEG2 files. Like audio, the
//! caller paces: pattern and file sources return the next frame immediately; a camera blocks
//! until it has one. Decoded pictures go to a [`VideoSink`]: a Y4M file, null, or a window
//! ([`open_video_sink`]).
//! Every source delivers frames at the size passed to [`open_video_source`] (files and cameras
//! of another size are scaled, nearest neighbour).

pub mod camera;
pub mod pattern;
pub mod render;
pub mod sink;
#[cfg(feature = "window")]
pub mod window;
pub mod y4m;
pub mod y4m_sink;

use std::path::Path;

pub use camera::{camera_lines, list_cameras, CameraInfo, CameraSource};
pub use pattern::PatternSource;
#[cfg(feature = "window")]
pub use sink::WindowSink;
pub use sink::{open_video_sink, NullVideoSink, VideoSink, VideoSinkCounters, Y4mSink};
pub use y4m::Y4mSource;

use crate::error::VideoError;
use crate::spec::VideoInSpec;

/// Largest width or height [`open_video_source`] accepts.
pub const MAX_VIDEO_DIMENSION: u32 = 4096;
/// Highest frame rate [`open_video_source`] accepts.
pub const MAX_FPS: u32 = 120;

/// One planar YUV 4:2:0 (I420) picture. Chroma planes are `ceil(width/2) x ceil(height/2)`;
/// rows are tightly packed (stride = plane width).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoFrame {
    /// Width of the luma plane in pixels.
    pub width: u32,
    /// Height of the luma plane in pixels.
    pub height: u32,
    /// Luma, `width * height` bytes.
    pub y: Vec<u8>,
    /// Cb, `chroma_width * chroma_height` bytes.
    pub u: Vec<u8>,
    /// Cr, `chroma_width * chroma_height` bytes.
    pub v: Vec<u8>,
}

impl VideoFrame {
    /// Size of each chroma plane for a `width x height` picture.
    pub fn chroma_size(width: u32, height: u32) -> (u32, u32) {
        (width.div_ceil(2), height.div_ceil(2))
    }

    /// A frame filled with one YUV colour.
    pub fn filled(width: u32, height: u32, yuv: [u8; 3]) -> Self {
        let (cw, ch) = Self::chroma_size(width, height);
        let luma = width as usize * height as usize;
        let chroma = cw as usize * ch as usize;
        Self {
            width,
            height,
            y: vec![yuv[0]; luma],
            u: vec![yuv[1]; chroma],
            v: vec![yuv[2]; chroma],
        }
    }

    /// Whether the plane lengths match the dimensions.
    pub fn is_consistent(&self) -> bool {
        let (cw, ch) = Self::chroma_size(self.width, self.height);
        let chroma = cw as usize * ch as usize;
        self.y.len() == self.width as usize * self.height as usize
            && self.u.len() == chroma
            && self.v.len() == chroma
    }

    /// Scale to `width x height` by nearest neighbour (returns a clone if already that size).
    pub fn scaled(&self, width: u32, height: u32) -> VideoFrame {
        if self.width == width && self.height == height {
            return self.clone();
        }
        let (scw, sch) = Self::chroma_size(self.width, self.height);
        let (dcw, dch) = Self::chroma_size(width, height);
        VideoFrame {
            width,
            height,
            y: scale_plane(&self.y, self.width, self.height, width, height),
            u: scale_plane(&self.u, scw, sch, dcw, dch),
            v: scale_plane(&self.v, scw, sch, dcw, dch),
        }
    }
}

/// Nearest-neighbour scaling of one 8-bit plane. Out-of-range reads (inconsistent input)
/// give 0 rather than panicking.
fn scale_plane(src: &[u8], sw: u32, sh: u32, dw: u32, dh: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(dw as usize * dh as usize);
    for y in 0..dh {
        let sy = (u64::from(y) * u64::from(sh) / u64::from(dh.max(1))) as usize;
        for x in 0..dw {
            let sx = (u64::from(x) * u64::from(sw) / u64::from(dw.max(1))) as usize;
            out.push(src.get(sy * sw as usize + sx).copied().unwrap_or(0));
        }
    }
    out
}

/// BT.601 limited-range RGB to YUV.
pub fn rgb_to_yuv(r: u8, g: u8, b: u8) -> [u8; 3] {
    let (r, g, b) = (i32::from(r), i32::from(g), i32::from(b));
    let y = 16 + ((66 * r + 129 * g + 25 * b + 128) >> 8);
    let u = 128 + ((-38 * r - 74 * g + 112 * b + 128) >> 8);
    let v = 128 + ((112 * r - 94 * g - 18 * b + 128) >> 8);
    [
        y.clamp(0, 255) as u8,
        u.clamp(0, 255) as u8,
        v.clamp(0, 255) as u8,
    ]
}

/// Convert packed RGB24 (`src_w x src_h`) to an I420 frame of `width x height`, scaling by
/// nearest neighbour; chroma is taken from the top-left pixel of each 2x2 block.
/// Missing input bytes read as black.
pub fn rgb_to_i420(rgb: &[u8], src_w: u32, src_h: u32, width: u32, height: u32) -> VideoFrame {
    let pixel = |x: u32, y: u32| -> [u8; 3] {
        let sx = u64::from(x) * u64::from(src_w) / u64::from(width.max(1));
        let sy = u64::from(y) * u64::from(src_h) / u64::from(height.max(1));
        let i = ((sy * u64::from(src_w) + sx) * 3) as usize;
        match rgb.get(i..i + 3) {
            Some(p) => rgb_to_yuv(p[0], p[1], p[2]),
            None => rgb_to_yuv(0, 0, 0),
        }
    };
    let mut frame = VideoFrame::filled(width, height, [0, 128, 128]);
    let (cw, _) = VideoFrame::chroma_size(width, height);
    for y in 0..height {
        for x in 0..width {
            let [luma, cb, cr] = pixel(x, y);
            frame.y[(y * width + x) as usize] = luma;
            if x % 2 == 0 && y % 2 == 0 {
                let ci = ((y / 2) * cw + x / 2) as usize;
                frame.u[ci] = cb;
                frame.v[ci] = cr;
            }
        }
    }
    frame
}

/// A source of I420 video frames.
pub trait VideoSource: Send {
    /// The next frame; `Ok(None)` at end of stream (files).
    fn next_frame(&mut self) -> Result<Option<VideoFrame>, VideoError>;
    /// One line saying what this source is, for logs and the terminal.
    fn describe(&self) -> String;
}

pub(crate) fn check_size(width: u32, height: u32, fps: u32) -> Result<(), VideoError> {
    let bad = |reason| VideoError::BadSize {
        width,
        height,
        fps,
        reason,
    };
    if width == 0 || height == 0 {
        return Err(bad("width and height must be non-zero"));
    }
    if width % 2 != 0 || height % 2 != 0 {
        return Err(bad("width and height must be even for 4:2:0 video"));
    }
    if width > MAX_VIDEO_DIMENSION || height > MAX_VIDEO_DIMENSION {
        return Err(bad("width and height must be at most 4096"));
    }
    if fps == 0 || fps > MAX_FPS {
        return Err(bad("frame rate must be 1 to 120"));
    }
    Ok(())
}

/// Open the video source a spec names, delivering `width x height` frames (even, at most 4096)
/// meant to be pulled `fps` times a second. `VideoInSpec::None` gives [`VideoError::Disabled`].
pub fn open_video_source(
    spec: &VideoInSpec,
    width: u32,
    height: u32,
    fps: u32,
) -> Result<Box<dyn VideoSource>, VideoError> {
    check_size(width, height, fps)?;
    Ok(match spec {
        VideoInSpec::Camera(selector) => {
            Box::new(CameraSource::open(selector.as_ref(), width, height, fps)?)
        }
        VideoInSpec::Pattern => {
            if media::codec::marker::cell_size(width as usize, height as usize).is_none() {
                return Err(VideoError::BadSize {
                    width,
                    height,
                    fps,
                    reason: "the test pattern needs at least 176x144 to carry its frame marker",
                });
            }
            Box::new(PatternSource::new(width, height, fps))
        }
        VideoInSpec::File(path) => {
            Box::new(Y4mSource::open(Path::new(path), width, height, false)?)
        }
        VideoInSpec::None => return Err(VideoError::Disabled),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_checked() {
        for (w, h, fps) in [
            (0, 480, 30),
            (641, 480, 30),
            (8192, 480, 30),
            (640, 480, 0),
            (640, 480, 1000),
            (174, 144, 30),
            (176, 142, 30),
        ] {
            let err = open_video_source(&VideoInSpec::Pattern, w, h, fps)
                .err()
                .unwrap();
            assert!(matches!(err, VideoError::BadSize { .. }), "{err}");
        }
        assert!(matches!(
            open_video_source(&VideoInSpec::None, 640, 480, 30)
                .err()
                .unwrap(),
            VideoError::Disabled
        ));
    }

    #[test]
    fn scaling_keeps_planes_consistent() {
        let f = VideoFrame::filled(7, 5, [1, 2, 3]);
        assert!(f.is_consistent());
        let s = f.scaled(16, 10);
        assert!(s.is_consistent());
        assert!(s.y.iter().all(|&b| b == 1) && s.u.iter().all(|&b| b == 2));
    }

    #[test]
    fn rgb_conversion() {
        assert_eq!(rgb_to_yuv(0, 0, 0), [16, 128, 128]);
        assert_eq!(rgb_to_yuv(255, 255, 255), [235, 128, 128]);
        let rgb = [255u8, 0, 0].repeat(4 * 4);
        let f = rgb_to_i420(&rgb, 4, 4, 8, 6);
        assert!(f.is_consistent());
        assert!(f.y.iter().all(|&b| b == rgb_to_yuv(255, 0, 0)[0]));
        // Short input does not panic.
        let f = rgb_to_i420(&[1, 2], 4, 4, 4, 4);
        assert!(f.is_consistent());
    }

    #[test]
    fn camera_missing_is_a_clear_error() {
        // On a machine without a camera this must be an error naming the alternatives;
        // with a camera it may succeed. It must never panic.
        match open_video_source(&VideoInSpec::Camera(None), 640, 480, 30) {
            Ok(mut source) => {
                let _ = source.next_frame();
            }
            Err(e) => {
                let msg = e.to_string();
                eprintln!("camera: {msg}");
                assert!(msg.contains("--video-in pattern"), "{msg}");
                assert!(msg.contains("file.y4m"), "{msg}");
            }
        }
    }
}
