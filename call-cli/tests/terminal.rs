//! What reaches a person's terminal: peer- and server-supplied text never carries raw escape
//! sequences or bidi controls (issue 7 item 11), and the accept prompt works in a real terminal
//! (item 12, driven through tmux).

mod support;

use signaling::envelope::EnvelopeKind;
use signaling::offer::{HangupBody, SignedSdp};
use support::tmux::{shell_quote, Tmux};
use support::*;

/// Text a hostile peer would like on someone's screen: clear it, home the cursor, print a fake
/// safety number, and reverse the rest with a bidi override.
const HOSTILE: &str =
    "\u{1b}[2J\u{1b}[Hsafety number: 000 000\u{202e}evil\u{2066}\nsecond line\u{7}";

/// What a hostile peer can put in a chat message (the chat frame refuses other controls): a
/// fake line after a line break, bidi overrides and isolates, a line separator.
const HOSTILE_CHAT: &str = "hi\nsafety number: 000 000\u{202e}evil\u{2066}\u{200f}\u{2028}\tend";

#[test]
fn peer_chat_text_is_escaped_on_the_terminal() {
    let server = TestServer::start();
    let (a, b) = (tempdir(), tempdir());
    new_id(a.path());
    let id_b = new_id(b.path());
    let listener = spawn_listener(&server, b.path(), "null", false);
    let dialer = run(
        call_in(a.path())
            .args(["dial", &id_b.to_string()])
            .args(["--audio-in", "silence", "--audio-out", "null"])
            .args(["--duration", "1", "--say", HOSTILE_CHAT])
            .args(conn_args(&server.url(), false)),
        "call dial --say <escape sequences>",
    );
    dialer.assert_success("call dial");
    let listener = listener.wait(PROCESS_LIMIT);
    listener.assert_success("call listen");
    assert_no_raw_controls("call listen (stdout)", &listener.stdout);
    assert_no_raw_controls("call listen (stderr)", &listener.stderr);
    let shown = listener
        .stdout
        .lines()
        .find(|l| l.contains("evil"))
        .unwrap_or_else(|| panic!("the chat line was not shown:\n{}", listener.stdout));
    assert!(
        shown.contains("\\u{202e}") && shown.contains("\\u{2028}") && shown.contains("hi\\nsafety"),
        "the escapes are visible, on one line: {shown}"
    );
}

#[test]
fn a_reject_reason_and_an_offer_error_are_escaped() {
    let server = TestServer::start();
    let url = server.url();
    let a = tempdir();
    let id_a = new_id(a.path());

    // A hostile callee: receives alice's offer and rejects it with a hostile reason.
    let (hostile_id, mut hostile) = server.silent_peer();
    let dialer = Running::spawn(
        call_in(a.path())
            .args(["dial", &hostile_id.to_string()])
            .args(["--audio-in", "silence", "--audio-out", "null"])
            .args(["--connect-timeout", "5"])
            .args(conn_args(&url, false)),
        "call dial (hostile callee)",
    );
    server.runtime.block_on(async {
        let offer = tokio::time::timeout(PROCESS_LIMIT, hostile.recv())
            .await
            .expect("the offer arrives")
            .expect("connection open")
            .expect("the offer opens");
        assert_eq!(offer.kind, EnvelopeKind::Offer);
        let offer = SignedSdp::parse(&offer.plaintext).expect("a signed offer");
        let reject = HangupBody {
            call_id: offer.call_id,
            reason: HOSTILE.into(),
        }
        .to_json();
        hostile
            .send(&id_a, EnvelopeKind::Reject, &reject)
            .await
            .expect("send the reject");
    });
    let dialer = dialer.wait(PROCESS_LIMIT);
    dialer.assert_failure("a rejected call");
    assert_no_raw_controls("call dial (stdout)", &dialer.stdout);
    assert_no_raw_controls("call dial (stderr)", &dialer.stderr);

    // A hostile caller: an offer whose body echoes hostile JSON field names in the error.
    let b = tempdir();
    let id_b = new_id(b.path());
    let mut listener = spawn_listener(&server, b.path(), "null", false);
    let body = format!(
        "{{{}: 1}}",
        serde_json::to_string(HOSTILE).expect("JSON string")
    );
    server.runtime.block_on(async {
        hostile
            .send(&id_b, EnvelopeKind::Offer, body.as_bytes())
            .await
            .expect("send the hostile offer");
    });
    listener.wait_for_stderr("refused a call from");
    let _ = listener.child.kill();
    let listener = listener.wait(PROCESS_LIMIT);
    assert_no_raw_controls("call listen (stderr)", &listener.stderr);
    assert!(
        listener.stderr.contains("[body_malformed]"),
        "the refusal names its protocol error code:\n{}",
        listener.stderr
    );
    assert!(
        listener.stderr.contains("\\x1b[2J"),
        "the hostile field name is shown escaped:\n{}",
        listener.stderr
    );
}

// ---------------------------------------------------------------------------------------------
// The accept prompt in a real terminal (tmux)
// ---------------------------------------------------------------------------------------------

#[test]
fn the_accept_prompt_works_in_a_real_terminal() {
    if !Tmux::available() {
        eprintln!(
            "SKIPPED the_accept_prompt_works_in_a_real_terminal: tmux is not installed (scripts/install-system-deps.sh should install it)"
        );
        return;
    }
    let server = TestServer::start();
    let url = server.url();
    let (a, b, c) = (tempdir(), tempdir(), tempdir());
    let id_a = new_id(a.path());
    let id_b = new_id(b.path());
    let id_c = new_id(c.path());
    // The listener knows alice by name; carol is unknown to it.
    std::fs::write(b.path().join("known_peers"), format!("alice {id_a}\n")).expect("known_peers");

    let listen = [
        env!("CARGO_BIN_EXE_call"),
        "--config-dir",
        &b.path().display().to_string(),
        "listen",
        "--audio-in",
        "silence",
        "--audio-out",
        "null",
        "--quiet",
        "--ice-scope",
        "loopback",
        "--server",
        &url,
    ]
    .map(shell_quote)
    .join(" ");
    let tmux = Tmux::start(
        &b.path().join("tmux.sock"),
        &format!("env -u RUST_LOG {listen}; echo \"listener exited: $?\"; sleep 60"),
    );
    server.wait_for_any_clients(1);

    // Carol (unknown) calls: the prompt says so; "n" declines and carol is told.
    let carol = Running::spawn(
        call_in(c.path())
            .args(["dial", &id_b.to_string()])
            .args(["--audio-in", "silence", "--audio-out", "null"])
            .args(["--connect-timeout", "15"])
            .args(conn_args(&url, false)),
        "carol's call dial",
    );
    let screen = tmux.wait_for("accept? [y/N]", 1);
    assert!(
        screen.contains(&format!("incoming call from unknown caller {id_c}")),
        "the prompt names the unknown caller:\n{screen}"
    );
    assert!(screen.contains("WARNING"), "{screen}");
    let carol_sn = safety_line(&run(
        call_in(c.path()).args(["verify", &id_b.to_string()]),
        "call verify (carol)",
    ));
    assert!(
        screen.contains(&carol_sn),
        "the prompt shows the safety number:\n{screen}"
    );
    tmux.keys(&["n", "Enter"]);
    let carol = carol.wait(PROCESS_LIMIT);
    carol.assert_failure("a call declined at the prompt");
    let line = carol.single_error_line();
    assert!(line.contains("declined"), "carol is told: {line}");

    // Alice (known) calls: her name and the safety number; "y" accepts and the call connects.
    let alice = Running::spawn(
        call_in(a.path())
            .args(["dial", &id_b.to_string()])
            .args(["--audio-in", "sine:440", "--audio-out", "null"])
            .args(["--duration", "2", "--connect-timeout", "15"])
            .args(conn_args(&url, false)),
        "alice's call dial",
    );
    let screen = tmux.wait_for("accept? [y/N]", 2);
    assert!(
        screen.contains(&format!("incoming call from alice ({id_a})")),
        "the prompt names alice from known_peers:\n{screen}"
    );
    let alice_sn = safety_line(&run(
        call_in(a.path()).args(["verify", &id_b.to_string()]),
        "call verify (alice)",
    ));
    assert!(screen.contains(&alice_sn), "{screen}");
    tmux.keys(&["y", "Enter"]);
    let alice = alice.wait(PROCESS_LIMIT);
    alice.assert_success("a call accepted at the prompt");
    let screen = tmux.wait_for("listener exited: 0", 1);
    assert!(
        screen.contains(&format!("connected to alice ({id_a})")),
        "{screen}"
    );
}
