//! `call room …` between real `call` processes over a real signaling server on loopback: an
//! invitation and messages sent while a member is offline reach it, in order, through the
//! server's mailbox; rooms and history survive restarts; a removed member gets its removal and
//! none of what is sent after; peer text reaches the terminal escaped.

mod support;

use support::*;

fn texts(history_json: &str) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(history_json).expect("history --json is JSON");
    v.as_array()
        .expect("an array")
        .iter()
        .map(|m| m["text"].as_str().expect("text").to_owned())
        .collect()
}

#[test]
fn an_offline_member_gets_the_invitation_and_messages_in_order_and_keeps_them() {
    let server = TestServer::start();
    let url = server.url();
    let (a, b) = (tempdir(), tempdir());
    new_id(a.path());
    let bob = new_id(b.path());
    let created = room(
        a.path(),
        &url,
        &["new", "Book club", "--as", "Alice"],
        "room new",
    );
    let room_id = last_line(&created.stdout).to_owned();
    let bob_text = bob.to_string();
    room(
        a.path(),
        &url,
        &["invite", &room_id, &bob_text, "--name", "Bob"],
        "invite",
    );
    for n in 1..=3 {
        let text = format!("message {n}");
        room(a.path(), &url, &["send", "Book club", &text], "send");
    }
    // Bob was never connected: everything waited in the server's mailbox.
    let sync = room(b.path(), &url, &["sync"], "bob syncs");
    assert!(
        sync.stderr.contains("joined room Book club"),
        "{}",
        sync.stderr
    );
    let shown: Vec<_> = sync.stdout.lines().collect();
    assert_eq!(shown.len(), 3, "{}", sync.stdout);
    for (n, line) in shown.iter().enumerate() {
        assert!(
            line.contains(&format!("Alice: message {}", n + 1)),
            "{line}"
        );
    }
    // A new process (a restart) finds the room and the history on disk.
    let history = room(
        b.path(),
        &url,
        &["history", "Book club", "--json"],
        "history",
    );
    assert_eq!(
        texts(&history.stdout),
        ["message 1", "message 2", "message 3"]
    );
    let show = room(b.path(), &url, &["show", &room_id], "show");
    assert!(show.stdout.contains("admin   Alice"), "{}", show.stdout);
    assert!(show.stdout.contains("safety number"), "{}", show.stdout);
    // Bob answers; Alice (offline meanwhile) gets the reply with its quote.
    let first_id = serde_json::from_str::<serde_json::Value>(&history.stdout).unwrap()[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    room(
        b.path(),
        &url,
        &["send", "Book club", "yes!", "--reply", &first_id[..8]],
        "reply",
    );
    let sync = room(a.path(), &url, &["sync"], "alice syncs");
    assert!(
        sync.stdout
            .contains(&format!("Bob: ↪ #{} yes!", &first_id[..8])),
        "{}",
        sync.stdout
    );
}

/// Alice's room with Bob and Carol invited (both offline until they sync).
struct Three {
    a: tempfile::TempDir,
    b: tempfile::TempDir,
    c: tempfile::TempDir,
    carol: String,
    room_id: String,
}

fn three_members(url: &str) -> Three {
    let (a, b, c) = (tempdir(), tempdir(), tempdir());
    new_id(a.path());
    let bob = new_id(b.path()).to_string();
    let carol = new_id(c.path()).to_string();
    let room_id = last_line(&room(a.path(), url, &["new", "club"], "new").stdout).to_owned();
    room(a.path(), url, &["invite", &room_id, &bob], "invite bob");
    room(a.path(), url, &["invite", &room_id, &carol], "invite carol");
    Three {
        a,
        b,
        c,
        carol,
        room_id,
    }
}

#[test]
fn a_removed_member_is_told_and_gets_nothing_after() {
    let server = TestServer::start();
    let url = server.url();
    let Three {
        a,
        b,
        c,
        carol,
        room_id,
    } = three_members(&url);
    room(a.path(), &url, &["send", &room_id, "before"], "send before");
    room(
        a.path(),
        &url,
        &["remove", &room_id, &carol],
        "remove carol",
    );
    room(a.path(), &url, &["send", &room_id, "after"], "send after");
    let carol_sync = room(c.path(), &url, &["sync"], "carol syncs");
    assert!(
        carol_sync.stdout.contains("before"),
        "{}",
        carol_sync.stdout
    );
    assert!(
        !carol_sync.stdout.contains("after"),
        "{}",
        carol_sync.stdout
    );
    assert!(
        carol_sync.stderr.contains("you were removed from room"),
        "{}",
        carol_sync.stderr
    );
    let list = room(c.path(), &url, &["list"], "carol lists");
    assert!(list.stdout.contains("you: removed"), "{}", list.stdout);
    let bob_sync = room(b.path(), &url, &["sync"], "bob syncs");
    assert!(bob_sync.stdout.contains("before") && bob_sync.stdout.contains("after"));
    // Carol can no longer send.
    let mut cmd = call_in(c.path());
    cmd.args(["room", "send", &room_id, "hello?", "--server", &url]);
    let out = run(&mut cmd, "carol sends");
    out.assert_failure("a removed member sends");
    assert!(
        out.single_error_line().contains("no longer a member"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_mistyped_room_id_is_refused_with_one_line() {
    let dir = tempdir();
    new_id(dir.path());
    let created = run(call_in(dir.path()).args(["room", "new", "r"]), "room new");
    created.assert_success("room new");
    let mut id: Vec<char> = last_line(&created.stdout).chars().collect();
    id[3] = if id[3] == 'a' { 'b' } else { 'a' };
    let typo: String = id.into_iter().collect();
    let out = run(
        call_in(dir.path()).args(["room", "show", &typo]),
        "show typo",
    );
    out.assert_failure("a mistyped room");
    assert!(out.single_error_line().contains("typo"), "{}", out.stderr);
}

/// `call room chat` in a real terminal: what Bob types reaches Alice's room, Alice's message
/// (with a mention of Bob and a hostile bidi override) appears on Bob's screen, escaped and
/// marked, and Ctrl-D leaves.
#[test]
fn room_chat_works_in_a_real_terminal() {
    use support::tmux::{shell_quote, Tmux};
    if !Tmux::available() {
        eprintln!("SKIPPED room_chat_works_in_a_real_terminal: tmux is not installed (scripts/install-system-deps.sh installs it)");
        return;
    }
    let server = TestServer::start();
    let url = server.url();
    let (a, b) = (tempdir(), tempdir());
    new_id(a.path());
    let bob = new_id(b.path()).to_string();
    let room_id = last_line(&room(a.path(), &url, &["new", "club", "--as", "Alice"], "new").stdout)
        .to_owned();
    room(
        a.path(),
        &url,
        &["invite", &room_id, &bob, "--name", "Bob"],
        "invite",
    );
    let chat = [
        env!("CARGO_BIN_EXE_call"),
        "--config-dir",
        &b.path().display().to_string(),
        "room",
        "chat",
        &room_id,
        "--server",
        &url,
    ]
    .map(shell_quote)
    .join(" ");
    let tmux = Tmux::start(
        &b.path().join("tmux.sock"),
        &format!("env -u RUST_LOG {chat}; echo \"chat exited: $?\"; sleep 60"),
    );
    tmux.wait_for("Ctrl-D to leave", 1);
    tmux.keys(&["hello from bob", "Enter"]);
    room(
        a.path(),
        &url,
        &["send", &room_id, "hi @Bob \u{202e}evil"],
        "alice sends",
    );
    let screen = tmux.wait_for("evil", 1);
    let line = screen
        .lines()
        .find(|l| l.contains("evil"))
        .expect("the line is on screen");
    assert!(line.starts_with("! ["), "a mention is marked: {line}");
    assert!(line.contains("Alice: hi @Bob \\u{202e}evil"), "{line}");
    tmux.keys(&["C-d"]);
    tmux.wait_for("chat exited: 0", 1);
    // Bob's line reached Alice's history: taken from the mailbox by her `room send` above or,
    // if Bob's chat sent it after that, by this sync.
    room(a.path(), &url, &["sync"], "alice syncs");
    let history = room(
        a.path(),
        &url,
        &["history", &room_id, "--json"],
        "alice's history",
    );
    let mut got = texts(&history.stdout);
    got.sort();
    assert_eq!(got, ["hello from bob", "hi @Bob \u{202e}evil"]);
}

/// A room state sent just before `call` exits still reaches the server: the client used to
/// leave without reading the server's close reply, the kernel then reset the connection, and
/// the server dropped the frames it had not read yet (one invite in five lost a member's update).
#[test]
fn every_update_sent_before_exit_reaches_an_offline_member() {
    let server = TestServer::start();
    let url = server.url();
    for round in 0..8 {
        let Three {
            b, carol, room_id, ..
        } = three_members(&url);
        let sync = room(b.path(), &url, &["sync"], "bob syncs");
        let show = room(b.path(), &url, &["show", &room_id], "bob shows");
        assert!(
            show.stdout.contains(&carol),
            "round {round}: bob's room lacks carol (the second invite's state was lost)\n{}\n{}",
            sync.stderr,
            show.stdout
        );
    }
}
