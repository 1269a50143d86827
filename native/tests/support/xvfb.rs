//! An X server for window tests: Xvfb (Debian `xvfb`) on a display number it picks itself, and
//! screenshots of a window taken with `xwd` (Debian `x11-apps`) read back as 0xRRGGBB pixels.
//! Shared by the window tests of `native` and `call-cli` (which includes this file by path).
#![allow(dead_code)] // each test file uses its own part

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};

/// The title of the windows `call` opens, by which `xwd` finds them.
pub const TITLE: &str = "call";

/// Kills and reaps the X server however the test ends.
pub struct Xvfb(Child);

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Whether `program` is on `PATH`.
pub fn installed(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

/// Whether Xvfb and xwd are installed; when not, prints the one line that says `test` was
/// skipped and why.
pub fn xvfb_or_skip(test: &str) -> bool {
    let ok = installed("Xvfb") && installed("xwd");
    if !ok {
        eprintln!(
            "SKIPPED {test}: Xvfb or xwd is not installed \
             (run scripts/install-system-deps.sh: packages xvfb and x11-apps)"
        );
    }
    ok
}

/// Start Xvfb on a free display; returns the server and its display name (`:N`).
pub fn start_xvfb() -> (Xvfb, String) {
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
pub struct Screenshot {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// 0xRRGGBB, row by row.
    pub pixels: Vec<u32>,
}

impl Screenshot {
    /// Parse a ZPixmap, 24/32-bit TrueColor dump (what `xwd` writes for a 24-bit Xvfb screen).
    pub fn parse(data: &[u8]) -> Screenshot {
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

    /// The pixel at (`x`, `y`) as [r, g, b].
    pub fn at(&self, x: u32, y: u32) -> [i32; 3] {
        let p = self.pixels[(y * self.width + x) as usize];
        [
            (p >> 16) as i32 & 255,
            (p >> 8) as i32 & 255,
            p as i32 & 255,
        ]
    }

    /// Longest run of pixels on row `y` within `tolerance` of `rgb` on every channel.
    pub fn longest_run(&self, y: u32, rgb: [i32; 3], tolerance: i32) -> u32 {
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

/// A screenshot of the window titled [`TITLE`]; `None` while it cannot be taken (no window yet).
pub fn window_screenshot(display: &str) -> Option<Screenshot> {
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

/// Take screenshots of the window until `check` accepts one (the X server draws
/// asynchronously), for at most 20 s; then fail with `what` and `check`'s last complaint.
pub fn until_shown(display: &str, what: &str, check: impl Fn(&Screenshot) -> Result<(), String>) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut last = String::from("no screenshot");
    loop {
        if let Some(shot) = window_screenshot(display) {
            match check(&shot) {
                Ok(()) => return,
                Err(e) => last = e,
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the window never showed {what}: {last}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Whether two [r, g, b] colours are within `tolerance` on every channel.
pub fn near(got: [i32; 3], want: [i32; 3], tolerance: i32) -> bool {
    got.iter()
        .zip(want)
        .all(|(g, w)| (g - w).abs() <= tolerance)
}
