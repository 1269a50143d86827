//! `room-scale` leaves no process behind: interrupted (SIGINT, SIGTERM) while its `call join`
//! children run, it kills them all. The children are a stand-in `call` (a shell script that
//! answers the set-up commands and then sleeps as `join` would run), so the test needs no
//! release build of `call` and cannot depend on calls connecting.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A stand-in for `call`: `id new` and `room new` print an ID, `join` writes its PID to
/// `$ROOM_SCALE_TEST_PIDS` and sleeps; everything else succeeds.
const FAKE_CALL: &str = r#"#!/bin/sh
case " $* " in
  *" id new "*) echo aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa ;;
  *" room new "*) echo bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb ;;
  *" join "*) echo $$ >> "$ROOM_SCALE_TEST_PIDS"; exec sleep 120 ;;
  *) echo ok ;;
esac
"#;

/// Whether process `pid` still runs (a zombie, dead but not yet reaped, counts as gone).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X')),
        Err(_) => false,
    }
}

fn pids(file: &Path) -> Vec<u32> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

fn interrupted_with(signal: &str) {
    let dir = tempfile::tempdir().unwrap();
    let call = dir.path().join("call");
    let mut f = std::fs::File::create(&call).unwrap();
    f.write_all(FAKE_CALL.as_bytes()).unwrap();
    drop(f);
    std::fs::set_permissions(&call, std::fs::Permissions::from_mode(0o755)).unwrap();
    let pid_file = dir.path().join("pids");

    let mut tool = Command::new(env!("CARGO_BIN_EXE_room-scale"))
        .args([
            "--members",
            "3",
            "--runs",
            "1",
            "--duration",
            "60",
            "--call",
        ])
        .arg(&call)
        .env("ROOM_SCALE_TEST_PIDS", &pid_file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The 2-member reference room comes first: its two joins.
    let deadline = Instant::now() + Duration::from_secs(30);
    while pids(&pid_file).len() < 2 {
        assert!(
            Instant::now() < deadline,
            "room-scale did not start its joins"
        );
        assert!(tool.try_wait().unwrap().is_none(), "room-scale ended early");
        std::thread::sleep(Duration::from_millis(50));
    }
    // The tool registers a child as soon as `spawn` returns; the script may write its PID first.
    std::thread::sleep(Duration::from_millis(300));
    let children = pids(&pid_file);
    assert!(children.iter().all(|&p| alive(p)), "the joins run");

    Command::new("kill")
        .args([signal, &tool.id().to_string()])
        .status()
        .unwrap();
    let status = tool.wait().unwrap();
    assert_eq!(status.code(), Some(130), "exit status after {signal}");

    // SIGKILL is delivered at once but a process takes a moment to die.
    let deadline = Instant::now() + Duration::from_secs(5);
    while children.iter().any(|&p| alive(p)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let left: Vec<u32> = children.iter().copied().filter(|&p| alive(p)).collect();
    // Clean up after a failure too, so the test itself leaves nothing behind.
    for p in &left {
        let _ = Command::new("kill")
            .args(["-KILL", &p.to_string()])
            .status();
    }
    assert!(
        left.is_empty(),
        "processes left behind after {signal}: {left:?}"
    );
}

#[test]
fn ctrl_c_kills_every_call_join() {
    interrupted_with("-INT");
}

#[test]
fn sigterm_kills_every_call_join() {
    interrupted_with("-TERM");
}
