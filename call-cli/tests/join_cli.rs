//! `call join` between real `call` processes over a real signaling server on loopback: three
//! members of a room join its call, each sending its own tone; each one's mix holds the two
//! other tones and not its own; one is killed with SIGKILL and the two others drop it and go on.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use support::*;

fn room(dir: &Path, server: &str, args: &[&str], what: &str) -> Output {
    let mut cmd = call_in(dir);
    cmd.arg("room").args(args);
    if !matches!(args[0], "new") {
        cmd.args(["--server", server]);
    }
    let out = run(&mut cmd, what);
    out.assert_success(what);
    out
}

/// Power at `freq` Hz (Goertzel).
fn power(samples: &[i16], freq: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * freq / 48_000.0;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s0 = f64::from(x) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    s1 * s1 + s2 * s2 - coeff * s1 * s2
}

fn samples(path: &Path) -> Vec<i16> {
    hound::WavReader::open(path)
        .expect("a WAV file")
        .samples::<i16>()
        .map(|s| s.expect("a sample"))
        .collect()
}

const TONES: [f64; 3] = [500.0, 800.0, 1100.0];

#[test]
fn three_call_join_processes_hear_each_other_and_drop_a_killed_one() {
    let server = TestServer::start();
    let url = server.url();
    let dirs = [tempdir(), tempdir(), tempdir()];
    new_id(dirs[0].path());
    let ids = [
        new_id(dirs[1].path()).to_string(),
        new_id(dirs[2].path()).to_string(),
    ];
    let created = room(
        dirs[0].path(),
        &url,
        &["new", "Band", "--as", "Alice"],
        "new",
    );
    let room_id = last_line(&created.stdout).to_owned();
    for (id, name) in ids.iter().zip(["Bob", "Carol"]) {
        room(
            dirs[0].path(),
            &url,
            &["invite", &room_id, id, "--name", name],
            "invite",
        );
    }
    for d in &dirs[1..] {
        room(d.path(), &url, &["sync"], "sync");
    }

    let wavs: Vec<_> = dirs.iter().map(|d| d.path().join("mix.wav")).collect();
    let mut members: Vec<Running> = dirs
        .iter()
        .zip(&wavs)
        .zip(TONES)
        .map(|((d, wav), tone)| {
            let mut cmd = call_in(d.path());
            cmd.args(["join", &room_id, "--quiet", "--duration", "12"])
                .args(["--server", &url, "--ice-scope", "loopback"])
                .args(["--audio-in", &format!("sine:{tone}"), "--audio-out"])
                .arg(wav);
            Running::spawn(&mut cmd, "call join")
        })
        .collect();
    for (m, others) in
        members
            .iter_mut()
            .zip([["Bob", "Carol"], ["Alice", "Carol"], ["Alice", "Bob"]])
    {
        for o in others {
            m.wait_for_stderr(&format!("{o} is in the call"));
        }
    }
    // Everyone hears everyone for a while, then Carol dies without a word.
    std::thread::sleep(Duration::from_secs(2));
    let mut carol = members.pop().unwrap();
    carol.child.kill().expect("SIGKILL");
    let killed = Instant::now();
    for m in &mut members {
        m.wait_for_stderr("Carol left the call (Lost)");
    }
    eprintln!(
        "the killed member was dropped by both others after {:?}",
        killed.elapsed()
    );
    for m in members {
        let out = m.wait(Duration::from_secs(30));
        out.assert_success("call join");
    }
    drop(carol);
    // Each mix holds both other tones (Carol's from before she died) and not its own.
    for (i, wav) in wavs.iter().take(2).enumerate() {
        let s = samples(wav);
        let p: Vec<f64> = TONES.iter().map(|f| power(&s, *f)).collect();
        let top = p.iter().copied().fold(f64::MIN, f64::max);
        for (j, pj) in p.iter().enumerate() {
            if i == j {
                assert!(*pj < top * 0.01, "member {i} hears itself: {p:?}");
            } else {
                assert!(*pj > top * 0.02, "member {i} does not hear {j}: {p:?}");
            }
        }
    }
}
