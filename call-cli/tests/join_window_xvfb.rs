//! `call join --video-out window` in a three-member room's call, as real `call` processes over
//! a real signaling server on loopback, with Alice's window on an Xvfb display (screenshots with
//! `xwd`; helpers shared with `native`'s window tests): her window shows Bob's and Carol's
//! pattern pictures in two tiles side by side; when Carol is killed and dropped, Bob's tile
//! fills the window. Skips with one line when Xvfb or xwd is not installed
//! (scripts/install-system-deps.sh installs them).

mod support;
#[path = "../../native/tests/support/xvfb.rs"]
mod xvfb;

use std::path::Path;

use support::*;
use xvfb::{near, start_xvfb, until_shown, xvfb_or_skip, Screenshot};

/// The pattern's coloured bars (white and black left out: they are not told from the
/// background and the gaps).
const BARS: [[i32; 3]; 6] = [
    [255, 255, 0],
    [0, 255, 255],
    [0, 255, 0],
    [255, 0, 255],
    [255, 0, 0],
    [0, 0, 255],
];

/// Longest run on row `y` between `x0` and `x1` of pixels near `rgb`.
fn run_between(shot: &Screenshot, y: u32, x0: u32, x1: u32, rgb: [i32; 3]) -> u32 {
    let (mut best, mut run) = (0, 0);
    for x in x0..x1.min(shot.width) {
        if near(shot.at(x, y), rgb, 40) {
            run += 1;
            best = best.max(run);
        } else {
            run = 0;
        }
    }
    best
}

/// Whether row `y` between `x0` and `x1` shows the pattern: at least four of its six coloured
/// bars (the bars move and a box bounces over them), each at least `bar` pixels wide.
fn pattern_between(shot: &Screenshot, y: u32, x0: u32, x1: u32, bar: u32) -> Result<(), String> {
    let seen = BARS
        .iter()
        .filter(|&&rgb| run_between(shot, y, x0, x1, rgb) >= bar)
        .count();
    if seen >= 4 {
        Ok(())
    } else {
        Err(format!("row {y}, x {x0}..{x1}: {seen} of 6 bars"))
    }
}

fn black_row(shot: &Screenshot, y: u32) -> Result<(), String> {
    match (0..shot.width).find(|&x| !near(shot.at(x, y), [0, 0, 0], 24)) {
        Some(x) => Err(format!("({x}, {y}) is {:?}, not background", shot.at(x, y))),
        None => Ok(()),
    }
}

fn size(shot: &Screenshot) -> Result<(), String> {
    match (shot.width, shot.height) {
        (640, 480) => Ok(()),
        (w, h) => Err(format!("window is {w}x{h}")),
    }
}

#[test]
fn a_room_call_window_shows_a_tile_per_member_under_xvfb() {
    if !xvfb_or_skip("a_room_call_window_shows_a_tile_per_member_under_xvfb") {
        return;
    }
    let (_x, display) = start_xvfb();
    let server = TestServer::start();
    let url = server.url();
    let dirs = [tempdir(), tempdir(), tempdir()];
    new_id(dirs[0].path());
    let created = room(
        dirs[0].path(),
        &url,
        &["new", "Band", "--as", "Alice"],
        "new",
    );
    let room_id = last_line(&created.stdout).to_owned();
    for (d, name) in dirs[1..].iter().zip(["Bob", "Carol"]) {
        let id = new_id(d.path()).to_string();
        let invite = ["invite", &room_id, &id, "--name", name];
        room(dirs[0].path(), &url, &invite, "invite");
    }
    for d in &dirs[1..] {
        room(d.path(), &url, &["sync"], "sync");
    }

    // Alice only watches (a 640x480 window); Bob and Carol send 320x240 pattern pictures.
    let join = |dir: &Path, video: &[&str]| {
        let mut cmd = call_in(dir);
        cmd.args(["join", &room_id, "--quiet", "--duration", "30"])
            .args(["--server", &url, "--ice-scope", "loopback"])
            .args(["--audio-in", "sine:440", "--audio-out", "null", "--video"])
            .args(["--fps", "10"])
            .args(video);
        cmd
    };
    let mut alice_cmd = join(
        dirs[0].path(),
        &[
            "--video-in",
            "none",
            "--video-out",
            "window",
            "--video-size",
            "640x480",
        ],
    );
    alice_cmd.env("DISPLAY", &display);
    let sender = [
        "--video-in",
        "pattern",
        "--video-out",
        "null",
        "--video-size",
        "320x240",
    ];
    let mut alice = Running::spawn(&mut alice_cmd, "alice: call join --video-out window");
    let bob = Running::spawn(&mut join(dirs[1].path(), &sender), "bob: call join");
    let mut carol = Running::spawn(&mut join(dirs[2].path(), &sender), "carol: call join");
    for other in ["Bob", "Carol"] {
        alice.wait_for_stderr(&format!("{other} is in the call"));
    }

    // Two tiles of 318x480 side by side, 4 pixels apart; each 4:3 picture 318x238 centred
    // vertically (y 121..359): background above and below, the pattern in each tile.
    until_shown(&display, "two members' tiles", |shot| {
        size(shot)?;
        black_row(shot, 60)?;
        black_row(shot, 420)?;
        pattern_between(shot, 280, 0, 318, 20)?;
        pattern_between(shot, 280, 322, 640, 20)
    });

    // Carol dies; once Alice has dropped her, Bob's picture fills the window (top to bottom).
    carol.child.kill().expect("SIGKILL");
    alice.wait_for_stderr("Carol left the call (Lost)");
    until_shown(&display, "one tile after a member was dropped", |shot| {
        size(shot)?;
        pattern_between(shot, 420, 0, 640, 40)
    });
    drop((alice, bob, carol));
}
