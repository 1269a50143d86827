//! Drawing I420 pictures into a window's 0RGB pixel buffer: BT.601 limited-range YUV to RGB,
//! nearest-neighbour scaling with the aspect ratio kept (black bars around), a grid of tiles
//! when several remote pictures are shown (a room's call), and the small self-view inset in the
//! bottom-right corner. Pure functions on buffers, used by the window sink's thread; the last
//! step before the screen.

use crate::video::VideoFrame;

/// The self-view is this fraction of the window's width (1/4).
const SELF_VIEW_DIVISOR: u32 = 4;
/// Gap between the self-view and the window's edges, in pixels.
const SELF_VIEW_MARGIN: u32 = 8;
/// Colour of the 1-pixel frame drawn around the self-view, so it stands out from the picture.
const SELF_VIEW_BORDER: u32 = 0x00c0_c0c0;
/// Colour of the window where no picture is (bars, gaps, before the first frame).
pub const BACKGROUND: u32 = 0x0000_0000;
/// Gap between neighbouring tiles of a grid, in pixels (none around the grid's edges, so one
/// tile fills the window exactly as a 1:1 call's picture does).
pub const GRID_GAP: u32 = 4;
/// Most tiles a grid shows: a mesh call is for small rooms (at least 8 members; 16 leaves
/// room). A window given pictures from more sources drops the extra ones (counted).
pub const MAX_TILES: usize = 16;

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

/// How a grid of tiles is laid out: `cols` across, `rows` down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GridShape {
    /// Tiles across.
    pub cols: u32,
    /// Tiles down.
    pub rows: u32,
}

/// The grid for `tiles` pictures of about `picture_w x picture_h` in a `window_w x window_h`
/// window: of the shapes without an empty column, the one in which the pictures, fitted in their
/// tiles with aspect kept, come out largest; on a tie the one with more columns (screens are
/// wider than tall). For 4:3 pictures in a 4:3 window that is 1→1x1, 2→2x1, 3–4→2x2, 5–6→3x2,
/// 7–9→3x3; a tall window stacks them instead (2→1x2, 5–6→2x3). No tiles: a 0x0 grid.
pub fn grid_shape(
    tiles: usize,
    window_w: u32,
    window_h: u32,
    picture_w: u32,
    picture_h: u32,
) -> GridShape {
    // At most MAX_TILES (16) in practice; clamped so the search stays small on any input.
    let n = tiles.min(MAX_TILES) as u32;
    if n == 0 {
        return GridShape { cols: 0, rows: 0 };
    }
    let (pw, ph) = (picture_w.max(1), picture_h.max(1));
    let mut best = GridShape { cols: n, rows: 1 };
    let mut best_area = 0u64;
    // Most columns first, so that on a tie (strictly larger wins) the wider shape stays.
    for cols in (1..=n).rev() {
        let rows = n.div_ceil(cols);
        if (cols - 1) * rows >= n {
            // An empty column (7 tiles as 6x2): as large as 4x2 at best, and emptier.
            continue;
        }
        let shape = GridShape { cols, rows };
        let tile = tile_size(shape, window_w, window_h);
        let r = fit(pw, ph, tile);
        let area = u64::from(r.width) * u64::from(r.height);
        if area > best_area {
            best = shape;
            best_area = area;
        }
    }
    best
}

/// The size of one tile of `shape` in a `window_w x window_h` window (at the origin).
fn tile_size(shape: GridShape, window_w: u32, window_h: u32) -> Rect {
    let gaps = |count: u32, side: u32| side.saturating_sub(GRID_GAP * count.saturating_sub(1));
    Rect {
        x: 0,
        y: 0,
        width: gaps(shape.cols, window_w) / shape.cols.max(1),
        height: gaps(shape.rows, window_h) / shape.rows.max(1),
    }
}

/// Where each of `tiles` tiles of `shape` goes in a `window_w x window_h` window: row by row,
/// left to right, with [`GRID_GAP`] between tiles, the grid centred (the pixels that do not
/// divide evenly are shared out as margins) and a last row that is not full centred too. At
/// most [`MAX_TILES`] and as many as the shape holds.
pub fn grid_tiles(tiles: usize, shape: GridShape, window_w: u32, window_h: u32) -> Vec<Rect> {
    let n = tiles
        .min(MAX_TILES)
        .min(shape.cols as usize * shape.rows as usize);
    let tile = tile_size(shape, window_w, window_h);
    let span = |count: u32, size: u32| count * size + GRID_GAP * count.saturating_sub(1);
    let top = window_h.saturating_sub(span(shape.rows, tile.height)) / 2;
    (0..n as u32)
        .map(|i| {
            let (row, col) = (i / shape.cols, i % shape.cols);
            let in_row = (n as u32 - row * shape.cols).min(shape.cols);
            let left = window_w.saturating_sub(span(in_row, tile.width)) / 2;
            Rect {
                x: left + col * (tile.width + GRID_GAP),
                y: top + row * (tile.height + GRID_GAP),
                width: tile.width,
                height: tile.height,
            }
        })
        .collect()
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
    let remotes: Vec<&VideoFrame> = remote.into_iter().collect();
    compose_grid(buffer, window_w, window_h, &remotes, local);
}

/// Compose one window picture with several remote pictures: background, each picture fitted
/// in its tile of the grid ([`grid_shape`], shaped for the first picture; [`grid_tiles`], in
/// the order given; at most [`MAX_TILES`]), then the self-view (if any) in the bottom-right
/// corner. One picture fills the whole window, as [`compose`] draws it.
pub fn compose_grid(
    buffer: &mut Vec<u32>,
    window_w: u32,
    window_h: u32,
    remotes: &[&VideoFrame],
    local: Option<&VideoFrame>,
) {
    buffer.clear();
    buffer.resize(window_w as usize * window_h as usize, BACKGROUND);
    if let Some(first) = remotes.first() {
        let shape = grid_shape(remotes.len(), window_w, window_h, first.width, first.height);
        let tiles = grid_tiles(remotes.len(), shape, window_w, window_h);
        for (frame, tile) in remotes.iter().zip(tiles) {
            draw_frame(
                buffer,
                window_w,
                frame,
                fit(frame.width, frame.height, tile),
            );
        }
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
            count in 0usize..20,
        ) {
            let remote = VideoFrame::filled(rw, rh, [100, 50, 200]);
            let mut local = VideoFrame::filled(lw, lh, [60, 200, 90]);
            if broken {
                local.y.truncate(local.y.len() / 2);
            }
            let mut buffer = Vec::new();
            compose(&mut buffer, ww, wh, Some(&remote), Some(&local));
            prop_assert_eq!(buffer.len(), ww as usize * wh as usize);
            let remotes = vec![&remote; count];
            compose_grid(&mut buffer, ww, wh, &remotes, Some(&local));
            prop_assert_eq!(buffer.len(), ww as usize * wh as usize);
        }

        #[test]
        fn grid_tiles_stay_inside_and_apart(n in 0usize..40, ww in 0u32..2000, wh in 0u32..2000, pw in 0u32..2000, ph in 0u32..2000) {
            let shape = grid_shape(n, ww, wh, pw, ph);
            let tiles = grid_tiles(n, shape, ww, wh);
            prop_assert_eq!(tiles.len(), n.min(MAX_TILES));
            prop_assert!(shape.cols * shape.rows >= tiles.len() as u32);
            for (i, a) in tiles.iter().enumerate() {
                // A window too small for the gaps gets empty tiles (drawn as nothing).
                let empty = a.width == 0 || a.height == 0;
                prop_assert!(empty || (a.x + a.width <= ww && a.y + a.height <= wh), "{:?}", a);
                for b in &tiles[i + 1..] {
                    let apart = a.x + a.width + GRID_GAP <= b.x
                        || b.x + b.width + GRID_GAP <= a.x
                        || a.y + a.height + GRID_GAP <= b.y
                        || b.y + b.height + GRID_GAP <= a.y;
                    prop_assert!(apart || empty, "{:?} {:?}", a, b);
                }
            }
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
    fn grid_shapes_use_the_window_best() {
        let shape = |n, ww, wh, pw, ph| {
            let g = grid_shape(n, ww, wh, pw, ph);
            (g.cols, g.rows)
        };
        // Landscape windows (4:3 pictures in 4:3, 16:9 in 16:9): the table.
        let table = [
            (1, (1, 1)),
            (2, (2, 1)),
            (3, (2, 2)),
            (4, (2, 2)),
            (5, (3, 2)),
            (6, (3, 2)),
            (7, (3, 3)),
            (8, (3, 3)),
            (9, (3, 3)),
            (16, (4, 4)),
        ];
        for (n, want) in table {
            assert_eq!(shape(n, 640, 480, 320, 240), want, "{n} in 640x480");
            assert_eq!(shape(n, 1280, 720, 640, 360), want, "{n} in 1280x720");
        }
        // A tall window stacks: 2 above each other, 6 as two columns of three.
        assert_eq!(shape(2, 480, 640, 320, 240), (1, 2));
        assert_eq!(shape(6, 480, 640, 320, 240), (2, 3));
        // A very wide window puts three side by side.
        assert_eq!(shape(3, 1600, 300, 320, 240), (3, 1));
        // Nothing to show; more than the cap is laid out as the cap.
        assert_eq!(shape(0, 640, 480, 320, 240), (0, 0));
        assert_eq!(shape(40, 640, 480, 320, 240), (4, 4));
    }

    #[test]
    fn grid_tiles_have_gaps_and_a_centred_last_row() {
        let shape = grid_shape(3, 640, 480, 320, 240);
        let tiles = grid_tiles(3, shape, 640, 480);
        // Two tiles of (640 - 4) / 2 = 318 by (480 - 4) / 2 = 238 on top, one centred below.
        let rect = |x, y| Rect {
            x,
            y,
            width: 318,
            height: 238,
        };
        assert_eq!(tiles, vec![rect(0, 0), rect(322, 0), rect(161, 242)]);
        // One tile is the whole window, exactly.
        let one = grid_tiles(1, grid_shape(1, 640, 480, 320, 240), 640, 480);
        assert_eq!(one, vec![rect_of(640, 480)]);
    }

    fn rect_of(width: u32, height: u32) -> Rect {
        Rect {
            x: 0,
            y: 0,
            width,
            height,
        }
    }

    #[test]
    fn grid_shows_each_picture_in_its_tile() {
        let colours: [[i32; 3]; 3] = [[255, 0, 0], [0, 255, 0], [0, 0, 255]];
        let frames: Vec<VideoFrame> = colours
            .iter()
            .map(|&[r, g, b]| VideoFrame::filled(64, 48, rgb_to_yuv(r as u8, g as u8, b as u8)))
            .collect();
        let refs: Vec<&VideoFrame> = frames.iter().collect();
        let (w, h) = (640u32, 480u32);
        let mut buffer = Vec::new();
        compose_grid(&mut buffer, w, h, &refs, None);
        let at = |x: u32, y: u32| channels(buffer[(y * w + x) as usize]);
        let near =
            |got: [i32; 3], want: [i32; 3]| got.iter().zip(want).all(|(g, w)| (g - w).abs() <= 3);
        let tiles = grid_tiles(3, grid_shape(3, w, h, 64, 48), w, h);
        for (tile, want) in tiles.iter().zip(colours) {
            let centre = at(tile.x + tile.width / 2, tile.y + tile.height / 2);
            assert!(near(centre, want), "{tile:?}: {centre:?} vs {want:?}");
        }
        // Between the top two tiles is the gap; beside the bottom one, background.
        assert_eq!(buffer[(100 * w + 319) as usize], BACKGROUND);
        assert_eq!(buffer[(360 * w + 20) as usize], BACKGROUND);
        // One picture in the grid is drawn exactly as a 1:1 call's picture.
        let mut single = Vec::new();
        compose(&mut single, w, h, Some(&frames[0]), Some(&frames[1]));
        compose_grid(&mut buffer, w, h, &refs[..1], Some(&frames[1]));
        assert_eq!(buffer, single);
        let whole = fit(64, 48, rect_of(w, h));
        let corner = channels(buffer[(whole.y * w + whole.x) as usize]);
        assert!(near(corner, colours[0]), "{corner:?}");
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
