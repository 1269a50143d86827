//! The window sink on a real X server: Xvfb (Debian `xvfb`) on a display number it picks itself,
//! H.264-decoded test-pattern pictures shown through `open_video_sink(window)`, a screenshot of
//! the window taken with `xwd` (Debian `x11-apps`) and read back here: the colour bars must be
//! there, scaled to the window, and the self-view in its corner.
//!
//! One test in this file, because it sets `DISPLAY` for the process. It skips (with a printed
//! reason) only when Xvfb or xwd is not installed, and its Escape part when xdotool is not;
//! scripts/install-system-deps.sh installs all three.
#![cfg(feature = "window")]

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use media::codec::h264::{H264Config, H264Decoder, H264Encoder, I420Frame};
use media::codec::pattern::TestPattern;
use native::{open_video_sink, VideoFrame, VideoOutSpec};

use support::xvfb::{installed, start_xvfb, until_shown, xvfb_or_skip, Screenshot, TITLE};

fn to_video_frame(f: &I420Frame) -> VideoFrame {
    VideoFrame {
        width: f.width() as u32,
        height: f.height() as u32,
        y: f.y().to_vec(),
        u: f.u().to_vec(),
        v: f.v().to_vec(),
    }
}

/// Pattern pictures as a receiver has them: encoded and decoded with H.264.
fn decoded_pattern(width: usize, height: usize, frames: usize) -> Vec<VideoFrame> {
    let mut pattern = TestPattern::new(width, height);
    let mut encoder = H264Encoder::new(H264Config {
        width,
        height,
        bitrate_bps: 1_500_000,
        fps: 30.0,
    })
    .unwrap();
    let mut decoder = H264Decoder::new().unwrap();
    let mut out = Vec::new();
    for i in 0..frames {
        let encoded = encoder.encode(&pattern.next_frame(), i == 0).unwrap();
        if let Some(picture) = decoder.decode(&encoded.data).unwrap() {
            out.push(to_video_frame(&picture));
        }
    }
    out
}

#[test]
fn window_sink_shows_the_pattern_under_xvfb() {
    // Without a display: one clear line, and no window library is touched.
    std::env::remove_var("DISPLAY");
    let err = open_video_sink(&VideoOutSpec::Window, 640, 480, 30)
        .err()
        .expect("no display must be an error");
    assert_eq!(
        err.to_string(),
        "no display: set DISPLAY or use --video-out file.y4m"
    );

    // A display that does not exist: one line naming the way out, no panic.
    std::env::set_var("DISPLAY", ":65000");
    let err = open_video_sink(&VideoOutSpec::Window, 640, 480, 30)
        .err()
        .expect("a missing display must be an error");
    assert!(matches!(err, native::VideoError::Window(_)), "{err:?}");
    let line = err.to_string();
    eprintln!("{line}");
    assert!(
        line.contains(":65000") && line.contains("--video-out file.y4m"),
        "{line}"
    );
    std::env::remove_var("DISPLAY");

    if !xvfb_or_skip("window_sink_shows_the_pattern_under_xvfb") {
        return;
    }
    let (_server, display) = start_xvfb();
    std::env::set_var("DISPLAY", &display);

    // 320x240 pictures in a 640x480 window: each of the eight bars (40 px) is drawn 80 px wide.
    let mut sink = open_video_sink(&VideoOutSpec::Window, 640, 480, 30).unwrap();
    assert!(sink.is_open());
    let pictures = decoded_pattern(320, 240, 10);
    assert!(!pictures.is_empty());
    let self_view = VideoFrame::filled(320, 240, native::video::rgb_to_yuv(0, 255, 0));
    let now = Instant::now();
    for picture in &pictures {
        sink.show(picture, now).unwrap();
        sink.show_self_view(&self_view, now).unwrap();
    }

    // Nominal RGB of the coloured bars (media::codec::pattern's BT.601 values converted back).
    let bars: [(&str, [i32; 3]); 6] = [
        ("yellow", [255, 255, 0]),
        ("cyan", [0, 255, 255]),
        ("green", [0, 255, 0]),
        ("magenta", [255, 0, 255]),
        ("red", [255, 0, 0]),
        ("blue", [0, 0, 255]),
    ];
    let tolerance = 40;
    // Below the marker strip and the bouncing box (at frame 9), above the self-view.
    let row = 300;
    let check = |shot: &Screenshot| -> Result<(), String> {
        if (shot.width, shot.height) != (640, 480) {
            return Err(format!("window is {}x{}", shot.width, shot.height));
        }
        for (name, rgb) in bars {
            let run = shot.longest_run(row, rgb, tolerance);
            // The bar is 80 px wide on screen; more than 60 proves it was scaled up.
            if run < 60 {
                return Err(format!("{name} bar: longest run {run} px on row {row}"));
            }
        }
        let corner = shot.at(640 - 8 - 80, 480 - 8 - 60);
        if !corner
            .iter()
            .zip([0, 255, 0])
            .all(|(c, w)| (c - w).abs() <= tolerance)
        {
            return Err(format!("self-view centre is {corner:?}, not green"));
        }
        Ok(())
    };
    until_shown(&display, "the pattern", check);
    assert!(sink.is_open());
    assert_eq!(sink.counters().received, pictures.len() as u64);

    // The user presses Escape in the window: it closes, the sink says so and keeps taking
    // pictures (the call goes on). Needs xdotool (Debian `xdotool`) to type the key.
    if installed("xdotool") {
        let typed = Command::new("xdotool")
            .args([
                "search",
                "--name",
                &format!("^{TITLE}$"),
                "key",
                "--window",
                "%1",
                "Escape",
            ])
            .env("DISPLAY", &display)
            .status()
            .expect("run xdotool");
        assert!(typed.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        while sink.is_open() {
            assert!(
                Instant::now() < deadline,
                "the window did not close on Escape"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        sink.show(&pictures[0], Instant::now()).unwrap();
    } else {
        eprintln!("SKIPPED the Escape part: xdotool is not installed");
    }
    sink.finish().unwrap();
    assert!(!sink.is_open());
}
