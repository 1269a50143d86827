//! `--ice-server` as a user meets it: a bad value ends `call` before anything connects, with one
//! line that says which flag and what is wrong, and never the password it held.

mod support;

use support::{call_in, new_id, run, tempdir};

#[test]
fn a_bad_ice_server_is_one_error_line_without_the_password() {
    let dir = tempdir();
    let id = new_id(dir.path());
    for (value, expected) in [
        (
            "turn:alice:sup3rsecret@relay.test:70000",
            "--ice-server #2: \"70000\" is not a port number (1 to 65535)",
        ),
        ("turns:alice:sup3rsecret@relay.test", "relays over UDP only"),
        ("turn:relay.test", "turn: URLs need credentials"),
    ] {
        let out = run(
            call_in(dir.path())
                .args(["dial", &id.to_string(), "--server", "ws://127.0.0.1:9/ws"])
                .args(["--ice-server", "stun:stun.test", "--ice-server", value]),
            "call dial --ice-server",
        );
        out.assert_failure("call dial with a bad --ice-server");
        let line = out.single_error_line();
        assert!(line.contains(expected), "{value}: {line}");
        assert!(!out.stderr.contains("sup3rsecret"), "{}", out.stderr);
    }
}
