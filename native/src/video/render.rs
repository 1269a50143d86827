//! Drawing I420 pictures into a window's 0RGB pixel buffer: BT.601 limited-range YUV to RGB,
//! nearest-neighbour scaling with the aspect ratio kept (black bars around), and the small
//! self-view inset in the bottom-right corner. Pure functions on buffers, used by the window
//! sink's thread; the last step before the screen.

use crate::video::VideoFrame;

/// The self-view is this fraction of the window's width (1/4).
const SELF_VIEW_DIVISOR: u32 = 4;
/// Gap between the self-view and the window's edges, in pixels.
const SELF_VIEW_MARGIN: u32 = 8;
/// Colour of the 1-pixel frame drawn around the self-view, so it stands out from the picture.
const SELF_VIEW_BORDER: u32 = 0x00c0_c0c0;
/// Colour of the window where no picture is (bars, before the first frame).
pub const BACKGROUND: u32 = 0x0000_0000;

/// A rectangle in window pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    /// Left edge.
    pub x: u32,
    /// Top edge.
    pub y: u32,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
}

impl Rect {
    /// Whether the point lies inside.
    pub fn contains(&self, x: u32, y: u32) -> bool {
        x >= self.x && y >= self.y && x - self.x < self.width && y - self.y < self.height
    }
}

/// BT.601 limited-range YUV to RGB (the inverse of [`super::rgb_to_yuv`]), as 0x00RRGGBB.
pub fn yuv_to_rgb(y: u8, u: u8, v: u8) -> u32 {
    let c = 298 * (i32::from(y) - 16);
    let d = i32::from(u) - 128;
    let e = i32::from(v) - 128;
    let clip = |x: i32| ((x + 128) >> 8).clamp(0, 255) as u32;
    let r = clip(c + 409 * e);
    let g = clip(c - 100 * d - 208 * e);
    let b = clip(c + 516 * d);
    (r << 16) | (g << 8) | b
}

/// The largest rectangle with the picture's aspect ratio that fits in `area`, centred in it.
/// Empty (zero-sized) when either the picture or the area is.
pub fn fit(picture_w: u32, picture_h: u32, area: Rect) -> Rect {
    if picture_w == 0 || picture_h == 0 || area.width == 0 || area.height == 0 {
        return Rect {
            x: area.x,
            y: area.y,
            width: 0,
            height: 0,
        };
    }
    // Width if the height fills the area; if that is too wide, the width fills it instead.
    let (pw, ph) = (u64::from(picture_w), u64::from(picture_h));
    let (aw, ah) = (u64::from(area.width), u64::from(area.height));
    let (w, h) = if pw * ah / ph <= aw {
        (pw * ah / ph, ah)
    } else {
        (aw, ph * aw / pw)
    };
    // Both are at most the area's sides, which are u32.
    let (w, h) = (w.max(1) as u32, h.max(1) as u32);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

/// Where the self-view goes in a `window_w x window_h` window for a `picture_w x picture_h`
/// local picture: a quarter of the window's width, aspect kept, in the bottom-right corner.
/// `None` when the window is too small to hold one.
pub fn self_view_rect(
    window_w: u32,
    window_h: u32,
    picture_w: u32,
    picture_h: u32,
) -> Option<Rect> {
    let width = window_w / SELF_VIEW_DIVISOR;
    let height = window_h / SELF_VIEW_DIVISOR;
    if width < 16 || height < 16 || window_w < width + 2 * SELF_VIEW_MARGIN {
        return None;
    }
    let area = Rect {
        x: window_w - SELF_VIEW_MARGIN - width,
        y: window_h.checked_sub(SELF_VIEW_MARGIN + height)?,
        width,
        height,
    };
    let mut rect = fit(picture_w, picture_h, area);
    // Sit in the corner, not in the middle of the quarter-sized box.
    rect.x = area.x + area.width - rect.width;
    rect.y = area.y + area.height - rect.height;
    (rect.width > 0 && rect.height > 0).then_some(rect)
}

/// Draw `frame` scaled into `rect` of a `buffer_w`-wide 0RGB buffer. Parts of `rect` outside
/// the buffer are clipped; an inconsistent frame (planes shorter than its size says) is not
/// drawn.
pub fn draw_frame(buffer: &mut [u32], buffer_w: u32, frame: &VideoFrame, rect: Rect) {
    if !frame.is_consistent() || frame.width == 0 || frame.height == 0 || buffer_w == 0 {
        return;
    }
    let buffer_h = (buffer.len() / buffer_w as usize) as u32;
    let (cw, _) = VideoFrame::chroma_size(frame.width, frame.height);
    let columns: Vec<(u32, usize)> = (rect.x..rect.x.saturating_add(rect.width).min(buffer_w))
        .map(|x| {
            let sx = u64::from(x - rect.x) * u64::from(frame.width) / u64::from(rect.width);
            (x, sx as usize)
        })
        .collect();
    for y in rect.y..rect.y.saturating_add(rect.height).min(buffer_h) {
        let sy =
            (u64::from(y - rect.y) * u64::from(frame.height) / u64::from(rect.height)) as usize;
        let luma_row = sy * frame.width as usize;
        let chroma_row = sy / 2 * cw as usize;
        let out_row = y as usize * buffer_w as usize;
        for &(x, sx) in &columns {
            // In range: sx < frame.width, sy < frame.height and the planes are consistent.
            let luma = frame.y[luma_row + sx];
            let ci = chroma_row + sx / 2;
            buffer[out_row + x as usize] = yuv_to_rgb(luma, frame.u[ci], frame.v[ci]);
        }
    }
}

/// Draw a 1-pixel frame just outside `rect` (clipped to the buffer).
fn draw_border(buffer: &mut [u32], buffer_w: u32, rect: Rect, colour: u32) {
    let buffer_h = (buffer.len() / buffer_w.max(1) as usize) as u32;
    let left = rect.x.saturating_sub(1);
    let top = rect.y.saturating_sub(1);
    let right = rect.x + rect.width;
    let bottom = rect.y + rect.height;
    let mut put = |x: u32, y: u32| {
        if x < buffer_w && y < buffer_h {
            buffer[y as usize * buffer_w as usize + x as usize] = colour;
        }
    };
    for x in left..=right {
        put(x, top);
        put(x, bottom);
    }
    for y in top..=bottom {
        put(left, y);
        put(right, y);
    }
}

/// Compose one window picture: background, the remote picture fitted to the whole window,
/// then the self-view (if any) in the bottom-right corner. `buffer` must hold
/// `window_w * window_h` pixels (it is resized if not).
pub fn compose(
    buffer: &mut Vec<u32>,
    window_w: u32,
    window_h: u32,
    remote: Option<&VideoFrame>,
    local: Option<&VideoFrame>,
) {
    buffer.clear();
    buffer.resize(window_w as usize * window_h as usize, BACKGROUND);
    let whole = Rect {
        x: 0,
        y: 0,
        width: window_w,
        height: window_h,
    };
    if let Some(frame) = remote {
        draw_frame(
            buffer,
            window_w,
            frame,
            fit(frame.width, frame.height, whole),
        );
    }
    if let Some(frame) = local {
        if let Some(rect) = self_view_rect(window_w, window_h, frame.width, frame.height) {
            draw_frame(buffer, window_w, frame, rect);
            draw_border(buffer, window_w, rect, SELF_VIEW_BORDER);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::video::rgb_to_yuv;
    use proptest::prelude::*;

    fn channels(rgb: u32) -> [i32; 3] {
        [
            (rgb >> 16) as i32 & 255,
            (rgb >> 8) as i32 & 255,
            rgb as i32 & 255,
        ]
    }

    #[test]
    fn conversion_matches_reference_colours() {
        // Nominal limited-range values of black, white and the primaries (BT.601).
        let cases = [
            ((16, 128, 128), [0, 0, 0]),
            ((235, 128, 128), [255, 255, 255]),
            ((81, 90, 240), [255, 0, 0]),
            ((145, 54, 34), [0, 255, 0]),
            ((41, 240, 110), [0, 0, 255]),
            ((210, 16, 146), [255, 255, 0]),
        ];
        for ((y, u, v), want) in cases {
            let got = channels(yuv_to_rgb(y, u, v));
            for (g, w) in got.iter().zip(want) {
                assert!((g - w).abs() <= 2, "{y},{u},{v}: {got:?} vs {want:?}");
            }
        }
    }

    proptest! {
        #[test]
        fn round_trip_through_yuv_is_close(r: u8, g: u8, b: u8) {
            let [y, u, v] = rgb_to_yuv(r, g, b);
            let got = channels(yuv_to_rgb(y, u, v));
            for (c, want) in got.iter().zip([r, g, b]) {
                // Limited range quantises to 219/224 levels: a few steps of error.
                prop_assert!((c - i32::from(want)).abs() <= 4, "{:?} -> {:?}", (r, g, b), got);
            }
        }

        #[test]
        fn composing_any_sizes_never_panics(
            ww in 0u32..300, wh in 0u32..300,
            rw in 0u32..64, rh in 0u32..64,
            lw in 0u32..64, lh in 0u32..64,
            broken: bool,
        ) {
            let remote = VideoFrame::filled(rw, rh, [100, 50, 200]);
            let mut local = VideoFrame::filled(lw, lh, [60, 200, 90]);
            if broken {
                local.y.truncate(local.y.len() / 2);
            }
            let mut buffer = Vec::new();
            compose(&mut buffer, ww, wh, Some(&remote), Some(&local));
            prop_assert_eq!(buffer.len(), ww as usize * wh as usize);
        }

        #[test]
        fn fit_keeps_aspect_and_stays_inside(pw in 1u32..5000, ph in 1u32..5000, aw in 1u32..3000, ah in 1u32..3000) {
            let area = Rect { x: 5, y: 7, width: aw, height: ah };
            let r = fit(pw, ph, area);
            prop_assert!(r.x >= area.x && r.y >= area.y);
            prop_assert!(r.x + r.width <= area.x + aw && r.y + r.height <= area.y + ah);
            // One side fills the area (up to rounding to at least one pixel).
            prop_assert!(r.width == aw || r.height == ah);
        }
    }

    #[test]
    fn letterbox_and_self_view_layout() {
        // A 4:3 picture in a 16:9 window: bars left and right, picture full height.
        let r = fit(
            640,
            480,
            Rect {
                x: 0,
                y: 0,
                width: 1280,
                height: 720,
            },
        );
        assert_eq!(
            r,
            Rect {
                x: 160,
                y: 0,
                width: 960,
                height: 720
            }
        );
        // The self-view is a quarter of the width, in the bottom-right corner.
        let s = self_view_rect(640, 480, 640, 480).unwrap();
        assert_eq!(
            s,
            Rect {
                x: 472,
                y: 352,
                width: 160,
                height: 120
            }
        );
        assert!(self_view_rect(40, 40, 640, 480).is_none());
    }

    #[test]
    fn composed_window_shows_remote_and_self_view() {
        // Remote: left half red, right half blue. Local: green.
        let mut remote = VideoFrame::filled(64, 48, rgb_to_yuv(255, 0, 0));
        let [_, bu, bv] = rgb_to_yuv(0, 0, 255);
        let by = rgb_to_yuv(0, 0, 255)[0];
        for row in 0..48 {
            for x in 32..64 {
                remote.y[row * 64 + x] = by;
            }
        }
        for row in 0..24 {
            for x in 16..32 {
                remote.u[row * 32 + x] = bu;
                remote.v[row * 32 + x] = bv;
            }
        }
        let local = VideoFrame::filled(64, 48, rgb_to_yuv(0, 255, 0));
        let (w, h) = (256u32, 192u32);
        let mut buffer = Vec::new();
        compose(&mut buffer, w, h, Some(&remote), Some(&local));
        let at = |x: u32, y: u32| channels(buffer[(y * w + x) as usize]);
        let near =
            |got: [i32; 3], want: [i32; 3]| got.iter().zip(want).all(|(g, w)| (g - w).abs() <= 3);
        assert!(near(at(10, 10), [255, 0, 0]), "{:?}", at(10, 10));
        assert!(near(at(200, 10), [0, 0, 255]), "{:?}", at(200, 10));
        let s = self_view_rect(w, h, 64, 48).unwrap();
        assert!(near(at(s.x + s.width / 2, s.y + s.height / 2), [0, 255, 0]));
        assert!(near(at(s.x - 1, s.y + 2), channels(SELF_VIEW_BORDER)));
        // Without frames the window is background.
        compose(&mut buffer, w, h, None, None);
        assert!(buffer.iter().all(|&p| p == BACKGROUND));
    }
}
