//! The window sink on a real X server: Xvfb (Debian `xvfb`) on a display number it picks itself,
//! H.264-decoded test-pattern pictures shown through `open_video_sink(window)`, a screenshot of
//! the window taken with `xwd` (Debian `x11-apps`) and read back here: the colour bars must be
//! there, scaled to the window, and the self-view in its corner.
//!
//! One test in this file, because it sets `DISPLAY` for the process. It skips (with a printed
//! reason) only when Xvfb or xwd is not installed, and its Escape part when xdotool is not;
//! scripts/install-system-deps.sh installs all three.
#![cfg(feature = "window")]

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use media::codec::h264::{H264Config, H264Decoder, H264Encoder, I420Frame};
use media::codec::pattern::TestPattern;
use native::{open_video_sink, VideoFrame, VideoOutSpec};

const TITLE: &str = "call";

/// Kills and reaps the X server however the test ends.
struct Xvfb(Child);

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn installed(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

/// Start Xvfb on a free display; returns the server and its display name (`:N`).
fn start_xvfb() -> (Xvfb, String) {
    // -displayfd 1: Xvfb picks a free display number and writes it to stdout once it accepts
    // connections, so there is no guessing of numbers and no waiting on a timer.
    let mut child = Command::new("Xvfb")
        .args([
            "-displayfd",
            "1",
            "-screen",
            "0",
            "800x600x24",
            "-nolisten",
            "tcp",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start Xvfb");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let number = line.trim();
    if number.is_empty() {
        let mut err = String::new();
        let _ = child.stderr.take().unwrap().read_to_string(&mut err);
        let _ = child.kill();
        let _ = child.wait();
        panic!("Xvfb did not start: {err}");
    }
    let display = format!(":{number}");
    (Xvfb(child), display)
}

/// An XWD (X Window Dump) image: the header fields this reader needs and 0xRRGGBB pixels.
struct Screenshot {
    width: u32,
    height: u32,
    pixels: Vec<u32>,
}

impl Screenshot {
    /// Parse a ZPixmap, 24/32-bit TrueColor dump (what `xwd` writes for a 24-bit Xvfb screen).
    fn parse(data: &[u8]) -> Screenshot {
        let field = |i: usize| u32::from_be_bytes(data[i * 4..i * 4 + 4].try_into().unwrap());
        let header_size = field(0) as usize;
        assert_eq!(field(1), 7, "XWD version");
        assert_eq!(field(2), 2, "ZPixmap");
        let (width, height) = (field(4), field(5));
        let lsb_first = field(7) == 0;
        let bits_per_pixel = field(11);
        let bytes_per_line = field(12) as usize;
        let masks = [field(14), field(15), field(16)];
        let colours = field(19) as usize;
        assert_eq!(
            bits_per_pixel, 32,
            "24-bit screen stored as 32 bits per pixel"
        );
        let start = header_size + colours * 12;
        let mut pixels = Vec::with_capacity(width as usize * height as usize);
        for y in 0..height as usize {
            let row = &data[start + y * bytes_per_line..];
            for x in 0..width as usize {
                let b: [u8; 4] = row[x * 4..x * 4 + 4].try_into().unwrap();
                let raw = if lsb_first {
                    u32::from_le_bytes(b)
                } else {
                    u32::from_be_bytes(b)
                };
                let channel = |mask: u32| (raw & mask) >> mask.trailing_zeros();
                pixels
                    .push((channel(masks[0]) << 16) | (channel(masks[1]) << 8) | channel(masks[2]));
            }
        }
        Screenshot {
            width,
            height,
            pixels,
        }
    }

    fn at(&self, x: u32, y: u32) -> [i32; 3] {
        let p = self.pixels[(y * self.width + x) as usize];
        [
            (p >> 16) as i32 & 255,
            (p >> 8) as i32 & 255,
            p as i32 & 255,
        ]
    }

    /// Longest run of pixels on row `y` within `tolerance` of `rgb` on every channel.
    fn longest_run(&self, y: u32, rgb: [i32; 3], tolerance: i32) -> u32 {
        let (mut best, mut run) = (0, 0);
        for x in 0..self.width {
            let p = self.at(x, y);
            if p.iter().zip(rgb).all(|(c, w)| (c - w).abs() <= tolerance) {
                run += 1;
                best = best.max(run);
            } else {
                run = 0;
            }
        }
        best
    }
}

fn window_screenshot(display: &str) -> Option<Screenshot> {
    let out = Command::new("xwd")
        .args(["-silent", "-display", display, "-name", TITLE])
        .stderr(Stdio::piped())
        .output()
        .expect("run xwd");
    if !out.status.success() {
        eprintln!("xwd: {}", String::from_utf8_lossy(&out.stderr).trim());
        return None;
    }
    if let Some(path) = std::env::var_os("CALL_WINDOW_SCREENSHOT") {
        std::fs::write(path, &out.stdout).unwrap();
    }
    Some(Screenshot::parse(&out.stdout))
}

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

    if !installed("Xvfb") || !installed("xwd") {
        eprintln!(
            "SKIPPED window_sink_shows_the_pattern_under_xvfb: Xvfb or xwd is not installed \
             (run scripts/install-system-deps.sh: packages xvfb and x11-apps)"
        );
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
    // The X server draws asynchronously: look again until the picture is there (bounded).
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last = String::from("no screenshot");
    loop {
        if let Some(shot) = window_screenshot(&display) {
            match check(&shot) {
                Ok(()) => break,
                Err(e) => last = e,
            }
        }
        assert!(
            Instant::now() < deadline,
            "the window never showed the pattern: {last}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
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
