//! Calls that can only work through the relay: caller and callee live in two network
//! namespaces that cannot reach each other, each joined by a veth pair to a third namespace that
//! holds the signaling server and the TURN server (the embedded one, then a real coturn). The
//! third namespace does not forward, so the only path between the callers is relayed; the call
//! runs *without* `--relay-only`, and still has to pick a relay pair and carry the tone.
//!
//! ```text
//!  ns A (caller)                ns T (server, TURN)                  ns B (callee)
//!  va 10.99.1.1/30 ──veth── ta 10.99.1.2/30    tb 10.99.2.2/30 ──veth── vb 10.99.2.1/30
//!  route 10.99.0.1 via .1.2   lo 10.99.0.1/32: call-signaling :8443,  route 10.99.0.1 via .2.2
//!                             TURN :3478 and its relay ports; ip_forward = 0
//! ```
//!
//! Only the test's own namespaces and their 10.99.0.0/16 addresses are used; they are deleted
//! when the test ends, passes or fails (and ones left by a killed run are removed at the next).
//! Skipped with one line where `ip netns` or root is missing.

mod support;

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use support::tempdir;
use support::turn::{
    secret_file, tone_call, turnserver_or_skip, Coturn, Host, Side, Signaling, TestPeers,
};

/// Prefix of every namespace these tests create; the process ID follows.
const PREFIX: &str = "callt-";
/// The server namespace's service address (signaling and TURN).
const SERVICE_IP: &str = "10.99.0.1";

/// The three namespaces of one test; deleted on drop.
struct Net {
    names: Vec<String>,
    caller: Host,
    callee: Host,
    server: Host,
}

fn ip(args: &[&str]) -> Result<String, String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run `ip`: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Deletes namespaces left by runs whose process is gone (a SIGKILLed test runs no Drop).
fn remove_stale_namespaces() {
    let Ok(list) = ip(&["netns", "list"]) else {
        return;
    };
    for name in list.lines().filter_map(|l| l.split_whitespace().next()) {
        let Some(pid) = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split('-').next())
        else {
            continue;
        };
        if !Path::new("/proc").join(pid).exists() {
            let _ = ip(&["netns", "del", name]);
        }
    }
}

impl Net {
    /// Creates the topology, or says in one line why this machine cannot.
    fn create(test: &str) -> Option<Net> {
        let uid = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default();
        if uid != "0" {
            eprintln!("SKIPPED {test}: network namespaces need root (uid {uid:?})");
            return None;
        }
        remove_stale_namespaces();
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let tag = format!(
            "{PREFIX}{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let (a, b, t) = (format!("{tag}-a"), format!("{tag}-b"), format!("{tag}-t"));
        if let Err(e) = ip(&["netns", "add", &a]) {
            eprintln!("SKIPPED {test}: `ip netns` is not available here: {e}");
            return None;
        }
        let mut net = Net {
            names: vec![a.clone()],
            caller: Host {
                netns: Some(a.clone()),
                ip: "10.99.1.1".parse().unwrap(),
            },
            callee: Host {
                netns: Some(b.clone()),
                ip: "10.99.2.1".parse().unwrap(),
            },
            server: Host {
                netns: Some(t.clone()),
                ip: SERVICE_IP.parse().unwrap(),
            },
        };
        for name in [&b, &t] {
            ip(&["netns", "add", name]).expect("a second namespace");
            net.names.push(name.clone());
        }
        let steps: Vec<Vec<&str>> = vec![
            vec!["-n", &a, "link", "set", "lo", "up"],
            vec!["-n", &b, "link", "set", "lo", "up"],
            vec!["-n", &t, "link", "set", "lo", "up"],
            vec!["-n", &t, "addr", "add", "10.99.0.1/32", "dev", "lo"],
            // A <-> T
            vec![
                "-n", &a, "link", "add", "va", "type", "veth", "peer", "name", "ta", "netns", &t,
            ],
            vec!["-n", &a, "addr", "add", "10.99.1.1/30", "dev", "va"],
            vec!["-n", &t, "addr", "add", "10.99.1.2/30", "dev", "ta"],
            vec!["-n", &a, "link", "set", "va", "up"],
            vec!["-n", &t, "link", "set", "ta", "up"],
            vec!["-n", &a, "route", "add", "10.99.0.1/32", "via", "10.99.1.2"],
            // B <-> T
            vec![
                "-n", &b, "link", "add", "vb", "type", "veth", "peer", "name", "tb", "netns", &t,
            ],
            vec!["-n", &b, "addr", "add", "10.99.2.1/30", "dev", "vb"],
            vec!["-n", &t, "addr", "add", "10.99.2.2/30", "dev", "tb"],
            vec!["-n", &b, "link", "set", "vb", "up"],
            vec!["-n", &t, "link", "set", "tb", "up"],
            vec!["-n", &b, "route", "add", "10.99.0.1/32", "via", "10.99.2.2"],
        ];
        for step in steps {
            // On failure `net` drops here and deletes what was made.
            ip(&step).unwrap_or_else(|e| panic!("building the test network: {e}"));
        }
        net.assert_isolated();
        Some(net)
    }

    /// The premise of the test: A and B have no route to each other, T does not forward.
    fn assert_isolated(&self) {
        let (a, b, t) = (&self.names[0], &self.names[1], &self.names[2]);
        for (from, to) in [(a, "10.99.2.1"), (b, "10.99.1.1")] {
            assert!(
                ip(&["-n", from, "route", "get", to]).is_err(),
                "{from} has a route to {to}: the callers could reach each other directly"
            );
        }
        let forward = Command::new("ip")
            .args(["netns", "exec", t, "cat", "/proc/sys/net/ipv4/ip_forward"])
            .output()
            .expect("read ip_forward");
        assert_eq!(
            String::from_utf8_lossy(&forward.stdout).trim(),
            "0",
            "the server namespace forwards packets"
        );
    }

    fn call_args(&self, url: &str) -> Vec<String> {
        // Not --relay-only: the network alone must force the relay. Every interface (the
        // default off loopback), so host candidates are offered and fail.
        ["--server", url, "--ice-scope", "all"]
            .map(str::to_owned)
            .to_vec()
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for name in &self.names {
            if let Err(e) = ip(&["netns", "del", name]) {
                eprintln!("could not delete the test namespace {name}: {e}");
            }
        }
    }
}

/// Runs the tone call between the namespaces and checks it went through the relay.
fn call_across(net: &Net, sig: &mut Signaling) {
    let url = sig.url.clone();
    let outcome = tone_call(
        sig,
        Side {
            host: &net.caller,
            args: net.call_args(&url),
            env: vec![],
        },
        Side {
            host: &net.callee,
            args: net.call_args(&url),
            env: vec![],
        },
    );
    assert_eq!(
        outcome.stats["candidate_type"].as_str(),
        Some("relay"),
        "{}",
        outcome.stats
    );
}

#[test]
fn call_between_isolated_namespaces_through_the_embedded_turn() {
    let Some(net) = Net::create("call_between_isolated_namespaces_through_the_embedded_turn")
    else {
        return;
    };
    // TEST ONLY: --allow-loopback-peers, because here the relay addresses are the server's own
    // private 10.99.0.1, which the embedded TURN refuses to relay to by default.
    let mut sig = Signaling::start(
        &net.server,
        &[
            format!("--listen={SERVICE_IP}:8443"),
            format!("--turn-listen={SERVICE_IP}:3478"),
            "--allow-loopback-peers".into(),
        ],
    );
    call_across(&net, &mut sig);
}

#[test]
fn call_between_isolated_namespaces_through_coturn() {
    let test = "call_between_isolated_namespaces_through_coturn";
    let Some(turnserver) = turnserver_or_skip(test) else {
        return;
    };
    let Some(net) = Net::create(test) else {
        return;
    };
    let coturn = Coturn::start(&turnserver, &net.server, 3478, TestPeers::NamespaceNet);
    let dir = tempdir();
    let secret = secret_file(dir.path());
    let mut sig = Signaling::start(
        &net.server,
        &[
            format!("--listen={SERVICE_IP}:8443"),
            "--no-turn".into(),
            format!("--turn-url={}", coturn.url()),
            format!("--turn-secret-file={}", secret.display()),
        ],
    );
    call_across(&net, &mut sig);
}
