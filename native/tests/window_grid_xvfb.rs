//! The window sink's grid on a real X server (Xvfb, screenshots with `xwd`; see
//! tests/support/xvfb.rs): three sources of distinct solid colours, given in another order than
//! their keys, show as three tiles in key order (two on top, one centred below); after one is
//! forgotten the other two share the window side by side.
//!
//! One test in this file, because it sets `DISPLAY` for the process. It skips (with a printed
//! reason) only when Xvfb or xwd is not installed; scripts/install-system-deps.sh installs them.
#![cfg(feature = "window")]

mod support;

use std::time::Instant;

use native::video::rgb_to_yuv;
use native::{open_video_sink, VideoFrame, VideoOutSpec};

use support::xvfb::{near, start_xvfb, until_shown, xvfb_or_skip, Screenshot};

const RED: [i32; 3] = [255, 0, 0];
const GREEN: [i32; 3] = [0, 255, 0];
const BLUE: [i32; 3] = [0, 0, 255];
const BLACK: [i32; 3] = [0, 0, 0];

fn solid([r, g, b]: [i32; 3]) -> VideoFrame {
    VideoFrame::filled(320, 240, rgb_to_yuv(r as u8, g as u8, b as u8))
}

/// Each (x, y) must show its colour.
fn expect(shot: &Screenshot, points: &[((u32, u32), [i32; 3])]) -> Result<(), String> {
    if (shot.width, shot.height) != (640, 480) {
        return Err(format!("window is {}x{}", shot.width, shot.height));
    }
    for &((x, y), want) in points {
        let got = shot.at(x, y);
        if !near(got, want, 40) {
            return Err(format!("({x}, {y}) is {got:?}, not {want:?}"));
        }
    }
    Ok(())
}

#[test]
fn window_grid_shows_each_source_in_its_tile_under_xvfb() {
    if !xvfb_or_skip("window_grid_shows_each_source_in_its_tile_under_xvfb") {
        return;
    }
    let (_server, display) = start_xvfb();
    std::env::set_var("DISPLAY", &display);
    let mut sink = open_video_sink(&VideoOutSpec::Window, 640, 480, 30).unwrap();
    let now = Instant::now();
    // Keys 10, 20, 30 are red, green, blue; they arrive blue first.
    for (source, colour) in [(30, BLUE), (10, RED), (20, GREEN)] {
        sink.show_from(source, &solid(colour), now).unwrap();
    }
    // A 2x2 grid of 318x238 tiles with 4-pixel gaps: red top left, green top right, blue
    // centred below; the 320x240 pictures fill their tiles (318x238, aspect kept).
    until_shown(&display, "three tiles", |shot| {
        expect(
            shot,
            &[
                ((159, 119), RED),
                ((481, 119), GREEN),
                ((320, 361), BLUE),
                // Left of the bottom tile, and the gap between the top two.
                ((80, 361), BLACK),
                ((320, 119), BLACK),
            ],
        )
    });

    // The green member leaves: two tiles side by side (2x1), pictures centred vertically.
    sink.forget(20);
    until_shown(&display, "two tiles after one was forgotten", |shot| {
        expect(
            shot,
            &[
                ((159, 240), RED),
                ((481, 240), BLUE),
                // Above the pictures (they are 238 high, from y = 121) and in the gap.
                ((159, 60), BLACK),
                ((481, 60), BLACK),
                ((320, 240), BLACK),
            ],
        )
    });
    let counters = sink.counters();
    assert_eq!(counters.received, 3);
    assert_eq!(counters.too_many_sources, 0);
    sink.finish().unwrap();
}
