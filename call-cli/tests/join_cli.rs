//! `call join` between real `call` processes over a real signaling server on loopback: three
//! (and six) members of a room join its call, each sending its own tone; a line typed by one
//! reaches every other member once; one is killed with SIGKILL and the others drop it and go
//! on; each one's mix holds every other tone and not its own.

mod support;

use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use support::*;

/// Power at `freq` Hz of 48 kHz samples (Goertzel).
fn power(samples: &[i16], freq: f64) -> f64 {
    media::codec::pcm::tone_power(samples, 48_000.0, freq)
}

fn samples(path: &Path) -> Vec<i16> {
    hound::WavReader::open(path)
        .expect("a WAV file")
        .samples::<i16>()
        .map(|s| s.expect("a sample"))
        .collect()
}

const TONES: [f64; 6] = [500.0, 800.0, 1100.0, 1400.0, 1700.0, 2000.0];
const NAMES: [&str; 6] = ["Alice", "Bob", "Carol", "Dave", "Erin", "Frank"];

/// `n` members (the first creates the room and invites the others) join its call; Alice types
/// a line; the last member is killed; the mixes and the chat are checked.
fn conference_of_processes(n: usize) {
    let server = TestServer::start();
    let url = server.url();
    let dirs: Vec<_> = (0..n).map(|_| tempdir()).collect();
    new_id(dirs[0].path());
    let ids: Vec<String> = dirs[1..]
        .iter()
        .map(|d| new_id(d.path()).to_string())
        .collect();
    let created = room(
        dirs[0].path(),
        &url,
        &["new", "Band", "--as", NAMES[0]],
        "new",
    );
    let room_id = last_line(&created.stdout).to_owned();
    for (id, name) in ids.iter().zip(&NAMES[1..]) {
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
            cmd.args(["join", &room_id, "--quiet", "--duration", "20"])
                .args(["--server", &url, "--ice-scope", "loopback"])
                .args(["--audio-in", &format!("sine:{tone}"), "--audio-out"])
                .arg(wav)
                .stdin(Stdio::piped());
            Running::spawn(&mut cmd, "call join")
        })
        .collect();
    let started = Instant::now();
    for (i, m) in members.iter_mut().enumerate() {
        for (j, other) in NAMES[..n].iter().enumerate() {
            if i != j {
                m.wait_for_stderr(&format!("{other} is in the call"));
            }
        }
    }
    eprintln!(
        "{n} members: everyone in the call {:?} after the processes started",
        started.elapsed()
    );
    // Alice types a line: it goes to the room, so every other member shows it.
    let line = "hello from the first member";
    let stdin = members[0].child.stdin.as_mut().expect("stdin is piped");
    writeln!(stdin, "{line}").expect("typed");
    // Everyone hears everyone for a while, then the last member dies without a word.
    std::thread::sleep(Duration::from_secs(2));
    let mut dead = members.pop().unwrap();
    dead.child.kill().expect("SIGKILL");
    let killed = Instant::now();
    let dead_name = NAMES[n - 1];
    for m in &mut members {
        m.wait_for_stderr(&format!("{dead_name} left the call (Lost)"));
    }
    eprintln!(
        "the killed member was dropped by all {} others after {:?}",
        n - 1,
        killed.elapsed()
    );
    let outs: Vec<Output> = members
        .into_iter()
        .map(|m| {
            let out = m.wait(Duration::from_secs(60));
            out.assert_success("call join");
            out
        })
        .collect();
    drop(dead);
    for (i, out) in outs.iter().enumerate().skip(1) {
        let shown = out.stdout.lines().filter(|l| l.contains(line)).count();
        assert_eq!(
            shown, 1,
            "member {i} shows the typed line once:\n{}",
            out.stdout
        );
    }
    // Each mix holds every other tone (the dead member's from before it died) and not its own.
    for (i, wav) in wavs.iter().take(n - 1).enumerate() {
        let s = samples(wav);
        let p: Vec<f64> = TONES[..n].iter().map(|f| power(&s, *f)).collect();
        let top = p.iter().copied().fold(f64::MIN, f64::max);
        for (j, pj) in p.iter().enumerate() {
            if i == j {
                assert!(*pj < top * 0.01, "member {i} hears itself: {p:?}");
            } else {
                // The dead member was heard for a few seconds of the twenty.
                let share = if j == n - 1 { 0.001 } else { 0.02 };
                assert!(*pj > top * share, "member {i} does not hear {j}: {p:?}");
            }
        }
    }
}

#[test]
fn three_call_join_processes_hear_each_other_chat_and_drop_a_killed_one() {
    conference_of_processes(3);
}

#[test]
fn six_call_join_processes_hear_each_other_chat_and_drop_a_killed_one() {
    conference_of_processes(6);
}
