//! `call listen` as a long-running service, and what callers see of it: a listener survives a
//! restart of its signaling server, a listener in a call answers other callers `busy` at once,
//! and a `call chat` session carries no audio.

mod support;

use std::fs;

use support::*;

/// Arguments of a call end that prints its statistics lines (no `--quiet`).
fn loud_conn_args(server: &str) -> Vec<String> {
    ["--server", server, "--ice-scope", "loopback"]
        .map(str::to_owned)
        .to_vec()
}

#[test]
fn a_listener_reconnects_after_the_server_restarts() {
    let mut server = TestServer::start();
    let (a, b) = (tempdir(), tempdir());
    new_id(a.path());
    let id_b = new_id(b.path());
    let mut listener = spawn_listener(&server, b.path(), "null", false);

    server.restart();
    listener.wait_for_stderr("reconnected to");
    server.wait_for_clients(1, &mut listener);

    let dialer = run(
        call_in(a.path())
            .args(["dial", &id_b.to_string()])
            .args(["--audio-in", "sine:440", "--audio-out", "null"])
            .args(["--duration", "1"])
            .args(conn_args(&server.url(), false)),
        "call dial after the restart",
    );
    dialer.assert_success("call dial after the server restarted");
    let listener = listener.wait(PROCESS_LIMIT);
    listener.assert_success("call listen across a server restart");
    let lost = listener
        .stderr
        .lines()
        .filter(|l| l.contains("lost the signaling server"))
        .count();
    assert_eq!(
        lost, 1,
        "one line says the server was lost:\n{}",
        listener.stderr
    );
}

#[test]
fn a_listener_in_a_call_answers_busy_at_once() {
    let server = TestServer::start();
    let url = server.url();
    let (a, b, c) = (tempdir(), tempdir(), tempdir());
    new_id(a.path());
    let id_b = new_id(b.path());
    let id_c = new_id(c.path());
    let listener = spawn_listener(&server, b.path(), "null", false);
    let mut first = Running::spawn(
        call_in(a.path())
            .args(["dial", &id_b.to_string()])
            .args(["--audio-in", "sine:440", "--audio-out", "null"])
            .args(["--duration", "4"])
            .args(conn_args(&url, false)),
        "first call dial",
    );
    first.wait_for_stderr("connected to");

    // The connect timeout is long: only an immediate `busy` makes this call end quickly, and a
    // timeout would say "no answer", which the assertions refuse.
    let second = run(
        call_in(c.path())
            .args(["dial", &id_b.to_string()])
            .args(["--audio-in", "silence", "--audio-out", "null"])
            .args(["--connect-timeout", "15"])
            .args(conn_args(&url, false)),
        "second call dial (busy)",
    );
    second.assert_failure("calling a listener that is in a call");
    let line = second.single_error_line();
    assert!(line.contains("busy"), "the caller is told `busy`: {line}");

    let first = first.wait(PROCESS_LIMIT);
    first.assert_success("the first call is not disturbed");
    let listener = listener.wait(PROCESS_LIMIT);
    listener.assert_success("call listen");
    assert!(
        listener
            .stderr
            .lines()
            .any(|l| l.contains("missed call from") && l.contains(&id_c.to_string())),
        "the listener shows the missed call:\n{}",
        listener.stderr
    );
}

#[test]
fn call_chat_carries_no_audio_and_shows_known_names() {
    let server = TestServer::start();
    let url = server.url();
    let (a, b) = (tempdir(), tempdir());
    new_id(a.path());
    let id_b = new_id(b.path());
    let chat_stats = a.path().join("chat.json");
    let listen_stats = b.path().join("listen.json");

    let mut listener = Running::spawn(
        call_in(b.path())
            .args(["listen", "--auto-accept", "--audio-in", "sine:440"])
            .args(["--audio-out", "null", "--say", "hello from bob"])
            .arg("--stats-json")
            .arg(&listen_stats)
            .args(loud_conn_args(&url)),
        "call listen",
    );
    server.wait_for_clients(1, &mut listener);
    let chat = run(
        call_in(a.path())
            .args(["chat", &id_b.to_string(), "--name", "bob"])
            .args(["--duration", "2", "--stats-json"])
            .arg(&chat_stats)
            .args(loud_conn_args(&url)),
        "call chat",
    );
    chat.assert_success("call chat");
    let listener = listener.wait(PROCESS_LIMIT);
    listener.assert_success("call listen");

    assert!(
        chat.stdout
            .lines()
            .any(|l| l.ends_with("] bob: hello from bob")),
        "chat lines show the known_peers name:\n{}",
        chat.stdout
    );
    for (what, out) in [("call chat", &chat), ("call listen", &listener)] {
        for audio in ["kbps", "dBFS", "pkts"] {
            assert!(
                !out.stderr.contains(audio),
                "{what} printed audio statistics ({audio}) in a chat-only call:\n{}",
                out.stderr
            );
        }
    }
    let json = |path: &std::path::Path| -> serde_json::Value {
        serde_json::from_slice(&fs::read(path).expect("stats file")).expect("stats JSON")
    };
    let (chat_json, listen_json) = (json(&chat_stats), json(&listen_stats));
    assert_eq!(
        chat_json["packets_received"].as_u64(),
        Some(0),
        "no audio reached the chat side: {chat_json}"
    );
    assert_eq!(
        listen_json["packets_sent"].as_u64(),
        Some(0),
        "the listener sent no audio to a chat-only caller: {listen_json}"
    );
}
