//! The command-line contract of `call`, tested on the real binary as a subprocess: identity files
//! and their permissions, the config dir resolution, `call verify`, real calls between two `call`
//! processes through an in-process signaling server (host and relay-only), and the error
//! contract (non-zero exit, one clear `error:` line on stderr).
//!
//! Every test uses its own temporary config dir and loopback-only ICE. Waits are bounded only to
//! turn a hang into a failure; no test asserts on timing.

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use signaling::identity::CallId;
use support::*;

// ---------------------------------------------------------------------------------------------
// Identity
// ---------------------------------------------------------------------------------------------

#[test]
fn id_new_creates_a_private_key_and_refuses_to_overwrite_it() {
    let tmp = tempdir();
    let dir = tmp.path().join("cfg");
    let key = dir.join("identity.key");

    let first = run(call_in(&dir).args(["id", "new"]), "call id new");
    first.assert_success("call id new");
    let id: CallId = last_line(&first.stdout)
        .parse()
        .expect("call id new prints the new ID");
    assert!(
        key.is_file(),
        "identity.key was not created in the config dir"
    );
    assert_eq!(mode(&key), 0o600, "identity.key must be mode 0600");
    let original = fs::read(&key).expect("read key");

    let second = run(call_in(&dir).args(["id", "new"]), "second call id new");
    second.assert_failure("a second `call id new`");
    let line = second.single_error_line();
    assert!(
        line.contains("--force"),
        "the error should mention --force: {line}"
    );
    assert_eq!(
        fs::read(&key).expect("read key"),
        original,
        "a refused `call id new` must leave the key unchanged"
    );

    let forced = run(
        call_in(&dir).args(["id", "new", "--force"]),
        "call id new --force",
    );
    forced.assert_success("call id new --force");
    let new_id: CallId = last_line(&forced.stdout)
        .parse()
        .expect("prints the new ID");
    assert_ne!(new_id, id, "--force must create a new identity");
    assert_ne!(fs::read(&key).expect("read key"), original);
    assert_eq!(mode(&key), 0o600, "the replaced key must be mode 0600 too");

    let show = run(call_in(&dir).args(["id", "show"]), "call id show");
    show.assert_success("call id show");
    assert_eq!(last_line(&show.stdout).parse::<CallId>().ok(), Some(new_id));
}

#[test]
fn id_show_prints_the_id_alone_on_the_last_line() {
    let tmp = tempdir();
    let id = new_id(tmp.path());
    let show = run(call_in(tmp.path()).args(["id", "show"]), "call id show");
    show.assert_success("call id show");
    let last = show
        .stdout
        .lines()
        .last()
        .expect("call id show prints something");
    assert_eq!(last, last.trim(), "the ID line must carry nothing else");
    let shown: CallId = last.parse().expect("the last line parses as a call ID");
    assert_eq!(
        shown, id,
        "`call id show` must print the ID `call id new` created"
    );
    assert_eq!(last, id.to_string(), "the ID is printed in canonical form");
}

#[test]
fn config_dir_from_call_config_dir_env() {
    let tmp = tempdir();
    let dir = tmp.path().join("from-env");
    let out = run(
        call().env("CALL_CONFIG_DIR", &dir).args(["id", "new"]),
        "CALL_CONFIG_DIR=... call id new",
    );
    out.assert_success("call id new with CALL_CONFIG_DIR");
    assert!(dir.join("identity.key").is_file());
}

#[test]
fn config_dir_falls_back_to_xdg_config_home() {
    let tmp = tempdir();
    let xdg = tmp.path().join("xdg");
    let home = tmp.path().join("home");
    fs::create_dir_all(&home).expect("mkdir home");
    let out = run(
        call()
            .env("XDG_CONFIG_HOME", &xdg)
            .env("HOME", &home)
            .args(["id", "new"]),
        "XDG_CONFIG_HOME=... call id new",
    );
    out.assert_success("call id new with XDG_CONFIG_HOME");
    let key = xdg.join("call").join("identity.key");
    assert!(key.is_file(), "the key should be at {}", key.display());
    assert_eq!(mode(&key), 0o600);
    assert!(
        !home.join(".config").exists(),
        "with XDG_CONFIG_HOME set, nothing goes to ~/.config"
    );

    // And without XDG_CONFIG_HOME: ~/.config/call.
    let out = run(
        call().env("HOME", &home).args(["id", "new"]),
        "HOME=... call id new",
    );
    out.assert_success("call id new with only HOME");
    assert!(home.join(".config/call/identity.key").is_file());
}

#[test]
fn id_show_without_identity_suggests_id_new() {
    let tmp = tempdir();
    let out = run(call_in(tmp.path()).args(["id", "show"]), "call id show");
    out.assert_failure("`call id show` without an identity");
    let line = out.single_error_line();
    assert!(
        line.contains("call id new"),
        "the error should suggest `call id new`: {line}"
    );
    assert!(
        out.stdout.trim().is_empty(),
        "no ID may be printed: {}",
        out.stdout
    );
}

#[test]
fn a_key_readable_by_others_is_refused() {
    let tmp = tempdir();
    new_id(tmp.path());
    let key = tmp.path().join("identity.key");
    fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).expect("chmod 644");
    let out = run(call_in(tmp.path()).args(["id", "show"]), "call id show");
    out.assert_failure("`call id show` with a 0644 key");
    let line = out.single_error_line();
    assert!(
        line.contains("chmod 600") && line.contains("644"),
        "the error should name the mode and the fix: {line}"
    );
    assert!(
        out.stdout.trim().is_empty(),
        "no ID may be printed: {}",
        out.stdout
    );
}

// ---------------------------------------------------------------------------------------------
// Verify and ID input
// ---------------------------------------------------------------------------------------------

#[test]
fn verify_prints_the_same_safety_number_on_both_sides() {
    let (a, b) = (tempdir(), tempdir());
    let (id_a, id_b) = (new_id(a.path()), new_id(b.path()));
    let on_a = run(
        call_in(a.path()).args(["verify", &id_b.to_string()]),
        "call verify (A)",
    );
    on_a.assert_success("call verify on A");
    let on_b = run(
        call_in(b.path()).args(["verify", &id_a.to_string()]),
        "call verify (B)",
    );
    on_b.assert_success("call verify on B");
    let (sn_a, sn_b) = (safety_line(&on_a), safety_line(&on_b));
    assert_eq!(sn_a, sn_b, "both sides must see the same safety number");
    let digits: String = sn_a.chars().filter(char::is_ascii_digit).collect();
    assert_eq!(digits.len(), 60, "a safety number has 60 digits: {sn_a}");

    // A third party gets a different number with A.
    let c = tempdir();
    let id_c = new_id(c.path());
    let on_a_c = run(
        call_in(a.path()).args(["verify", &id_c.to_string()]),
        "call verify (A, C)",
    );
    on_a_c.assert_success("call verify A-C");
    assert_ne!(safety_line(&on_a_c), sn_a);
}

#[test]
fn verify_rejects_a_mistyped_id() {
    let (a, b) = (tempdir(), tempdir());
    new_id(a.path());
    let id_b = new_id(b.path());
    let typo = mistype(&id_b);
    let out = run(
        call_in(a.path()).args(["verify", &typo]),
        "call verify typo",
    );
    out.assert_failure("`call verify` with a mistyped ID");
    let line = out.single_error_line();
    assert!(
        line.contains("checksum") || line.contains("mistyped"),
        "the error should say the ID was mistyped: {line}"
    );
    assert!(
        !out.stdout.contains("safety number"),
        "no safety number for a mistyped ID: {}",
        out.stdout
    );
}

#[test]
fn dial_rejects_a_mistyped_id_without_calling() {
    let server = TestServer::start();
    let (a, b) = (tempdir(), tempdir());
    new_id(a.path());
    let id_b = new_id(b.path());
    let out = run(
        call_in(a.path()).args([
            "dial",
            &mistype(&id_b),
            "--server",
            &server.url(),
            "--audio-in",
            "silence",
            "--audio-out",
            "null",
            "--quiet",
            "--ice-scope",
            "loopback",
        ]),
        "call dial typo",
    );
    out.assert_failure("`call dial` with a mistyped ID");
    let line = out.single_error_line();
    assert!(line.contains("not a valid call ID"), "{line}");
}

#[test]
fn dial_not_an_id_fails_clearly() {
    let tmp = tempdir();
    new_id(tmp.path());
    let out = run(
        call_in(tmp.path()).args([
            "dial",
            "not-an-id",
            "--audio-in",
            "silence",
            "--audio-out",
            "null",
            "--ice-scope",
            "loopback",
        ]),
        "call dial not-an-id",
    );
    out.assert_failure("`call dial not-an-id`");
    let line = out.single_error_line();
    assert!(
        line.contains("not-an-id") && line.contains("not a valid call ID"),
        "the error should name the bad input: {line}"
    );
}

#[test]
fn unknown_subcommand_and_missing_argument_exit_non_zero() {
    let out = run(call().arg("frobnicate"), "call frobnicate");
    out.assert_failure("an unknown subcommand");
    let out = run(call().arg("dial"), "call dial");
    out.assert_failure("`call dial` without an ID");
    assert!(out.stderr.contains("<PEER>"), "{}", out.stderr);
}

// ---------------------------------------------------------------------------------------------
// Calls
// ---------------------------------------------------------------------------------------------

/// A real call between two `call` processes; checks exits, stats, the WAV and the chat text.
fn real_call(relay_only: bool) {
    let server = TestServer::start();
    let url = server.url();
    let (a, b) = (tempdir(), tempdir());
    new_id(a.path());
    let id_b = new_id(b.path());
    let heard: PathBuf = b.path().join("heard.wav");
    let stats: PathBuf = a.path().join("stats.json");

    let listener = spawn_listener(&server, b.path(), &heard, relay_only);

    let dialer = run(
        call_in(a.path())
            .args(["dial", &id_b.to_string()])
            .args(["--audio-in", "sine:440", "--audio-out", "null"])
            .args(["--duration", "2", "--say", "hello", "--stats-json"])
            .arg(&stats)
            .args(conn_args(&url, relay_only)),
        "call dial",
    );
    let listener = listener.wait(PROCESS_LIMIT);
    dialer.assert_success("call dial");
    listener.assert_success("call listen");

    let json: serde_json::Value =
        serde_json::from_slice(&fs::read(&stats).expect("stats.json")).expect("stats.json is JSON");
    let received = json["packets_received"]
        .as_u64()
        .unwrap_or_else(|| panic!("stats.json has no packets_received: {json}"));
    assert!(received > 0, "the dialer received no audio packets: {json}");
    assert!(json["packets_sent"].as_u64().unwrap_or(0) > 0, "{json}");
    let expected_candidate = if relay_only { "relay" } else { "host" };
    assert_eq!(
        json["candidate_type"].as_str(),
        Some(expected_candidate),
        "the call should run over a {expected_candidate} candidate: {json}"
    );

    let secs = wav_seconds(&heard);
    assert!(secs > 1.5, "the listener wrote only {secs:.2} s of audio");

    assert!(
        listener.stdout.lines().any(|l| l.ends_with(": hello")),
        "the listener should print the chat text `hello` on stdout:\n{}",
        listener.stdout
    );
    // --quiet: nothing on stderr but the listener's own start line and no errors.
    for out in [&dialer, &listener] {
        assert!(
            !out.stderr.contains("error"),
            "a successful call printed an error:\n{}",
            out.stderr
        );
    }
}

#[test]
fn call_between_two_processes_host_candidates() {
    real_call(false);
}

#[test]
fn call_between_two_processes_relay_only() {
    real_call(true);
}

#[test]
fn dialing_an_id_nobody_listens_for_fails_with_one_error_line() {
    let server = TestServer::start();
    let (a, b) = (tempdir(), tempdir());
    new_id(a.path());
    let absent = new_id(b.path());
    let out = run(
        call_in(a.path())
            .args(["dial", &absent.to_string()])
            .args(["--audio-in", "silence", "--audio-out", "null"])
            .args(["--connect-timeout", "2"])
            .args(conn_args(&server.url(), false)),
        "call dial (nobody listening)",
    );
    out.assert_failure("dialing an ID nobody listens for");
    let line = out.single_error_line();
    assert!(
        line.contains("not connected") && line.contains("call listen"),
        "the error should say the peer is not online: {line}"
    );
}

#[test]
fn a_peer_that_never_answers_hits_the_connect_timeout() {
    let server = TestServer::start();
    let (silent_id, silent) = server.silent_peer();
    let a = tempdir();
    new_id(a.path());
    let out = run(
        call_in(a.path())
            .args(["dial", &silent_id.to_string()])
            .args(["--audio-in", "silence", "--audio-out", "null"])
            .args(["--connect-timeout", "2"])
            .args(conn_args(&server.url(), false)),
        "call dial (peer never answers)",
    );
    out.assert_failure("dialing a peer that never answers");
    let line = out.single_error_line();
    assert!(line.contains("no answer within 2 s"), "{line}");
    drop(silent);
}

#[test]
fn a_listener_without_a_terminal_declines_unless_auto_accept() {
    let server = TestServer::start();
    let url = server.url();
    let (a, b) = (tempdir(), tempdir());
    new_id(a.path());
    let id_b = new_id(b.path());
    let mut listener = Running::spawn(
        call_in(b.path())
            .args(["listen", "--audio-in", "silence", "--audio-out", "null"])
            .args(conn_args(&url, false)),
        "call listen (no --auto-accept)",
    );
    server.wait_for_clients(1, &mut listener);
    let out = run(
        call_in(a.path())
            .args(["dial", &id_b.to_string()])
            .args(["--audio-in", "silence", "--audio-out", "null"])
            .args(["--connect-timeout", "5"])
            .args(conn_args(&url, false)),
        "call dial (declined)",
    );
    out.assert_failure("a declined call");
    let line = out.single_error_line();
    assert!(line.contains("declined"), "{line}");
    listener.wait_for_stderr("--auto-accept");
}

#[test]
fn a_connected_call_survives_losing_the_signaling_server() {
    let mut server = TestServer::start();
    let url = server.url();
    let (a, b) = (tempdir(), tempdir());
    new_id(a.path());
    let id_b = new_id(b.path());
    let mut listener = spawn_listener(&server, b.path(), "null", false);
    let mut dialer = Running::spawn(
        call_in(a.path())
            .args(["dial", &id_b.to_string()])
            .args(["--audio-in", "sine:440", "--audio-out", "null"])
            .args(["--duration", "2"])
            .args(conn_args(&url, false)),
        "call dial",
    );
    dialer.wait_for_stderr("connected to");
    listener.wait_for_stderr("connected to");
    server.stop();
    let dialer = dialer.wait(PROCESS_LIMIT);
    let listener = listener.wait(PROCESS_LIMIT);
    dialer.assert_success("call dial after the server went away");
    listener.assert_success("call listen after the server went away");
    for out in [&dialer, &listener] {
        let lost = out
            .stderr
            .lines()
            .filter(|l| l.contains("signaling connection lost"))
            .count();
        assert!(
            lost <= 1,
            "losing signaling should be reported once, not {lost} times:\n{}",
            out.stderr.lines().take(20).collect::<Vec<_>>().join("\n")
        );
    }
}

#[test]
fn audio_in_device_without_a_device_suggests_sine() {
    let has_input = native::list_audio_devices()
        .map(|devices| devices.iter().any(|d| d.input))
        .unwrap_or(false);
    if has_input {
        eprintln!("note: this machine has an audio input device; skipping the no-device test");
        return;
    }
    let server = TestServer::start();
    let (a, b) = (tempdir(), tempdir());
    new_id(a.path());
    let id_b = new_id(b.path());
    let out = run(
        call_in(a.path())
            .args(["dial", &id_b.to_string()])
            .args(["--audio-in", "device", "--audio-out", "null"])
            .args(["--connect-timeout", "2"])
            .args(conn_args(&server.url(), false)),
        "call dial --audio-in device",
    );
    out.assert_failure("`--audio-in device` without a device");
    let line = out.single_error_line();
    assert!(
        line.contains("sine"),
        "the error should suggest sine:HZ: {line}"
    );
    assert_eq!(
        line.matches("no audio input device").count(),
        1,
        "the cause must not be repeated: {line}"
    );
}

#[test]
fn chat_from_stdin_is_delivered_and_end_of_input_hangs_up() {
    let server = TestServer::start();
    let url = server.url();
    let (a, b) = (tempdir(), tempdir());
    new_id(a.path());
    let id_b = new_id(b.path());
    let listener = spawn_listener(&server, b.path(), "null", false);

    // Both lines are typed (piped) before the chat channel opens; neither may be lost, and the
    // end of input hangs up only after they were sent.
    let mut chat = call_in(a.path());
    chat.args(["chat", &id_b.to_string()])
        .args(conn_args(&url, false))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = chat.spawn().expect("call chat starts");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin is piped");
        stdin.write_all(b"first line\nsecond line\n").unwrap();
    }
    let out = child.wait_with_output().expect("call chat exits");
    assert!(
        out.status.success(),
        "call chat: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listener = listener.wait(PROCESS_LIMIT);
    listener.assert_success("call listen");
    let first = listener.stdout.find(": first line");
    let second = listener.stdout.find(": second line");
    assert!(
        matches!((first, second), (Some(f), Some(s)) if f < s),
        "the listener printed both lines in order: {}",
        listener.stdout
    );
}

#[test]
fn sigterm_hangs_up_cleanly_on_both_sides() {
    let server = TestServer::start();
    let url = server.url();
    let (a, b) = (tempdir(), tempdir());
    new_id(a.path());
    let id_b = new_id(b.path());
    let heard = b.path().join("heard.wav");
    let listener = spawn_listener(&server, b.path(), &heard, false);
    let mut dialer = Running::spawn(
        call_in(a.path())
            .args(["dial", &id_b.to_string()])
            .args([
                "--audio-in",
                "sine:440",
                "--audio-out",
                "null",
                "--duration",
                "60",
            ])
            .args(conn_args(&url, false)),
        "call dial",
    );
    dialer.wait_for_stderr("connected to");
    // Wait for audio to reach the listener's file rather than for a fixed time: on a loaded
    // machine 500 ms after "connected" was sometimes not enough.
    let heard_before = wait_for_wav_seconds(&heard, 0.2);
    let status = Command::new("kill")
        .args(["-TERM", &dialer.child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let dialer = dialer.wait(PROCESS_LIMIT);
    dialer.assert_success("call dial after SIGTERM");
    let listener = listener.wait(PROCESS_LIMIT);
    listener.assert_success("call listen after the peer's SIGTERM");
    // The WAV file was finalised: its header covers every sample, including what was heard
    // before the hang-up.
    assert!(
        wav_seconds(&heard) >= heard_before,
        "the listener kept what it heard"
    );
    assert!(
        wav_header_covers_file(&heard),
        "the WAV header was rewritten at the end"
    );
}
