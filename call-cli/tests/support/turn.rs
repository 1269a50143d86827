//! TURN as operators run it, for the tests: a real coturn started from a config derived from
//! `deploy/coturn/turnserver.conf`, the `call-signaling` binary, and a call between two `call`
//! processes whose far end must hear the caller's tone. Everything can run on loopback or inside
//! a network namespace ([`Host`]); every process is killed when its handle drops.

use std::fs;
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use signaling::identity::CallId;

use super::{new_id, run, tempdir, Running, PROCESS_LIMIT};

/// The shared TURN secret of the tests (never a deployment's).
pub const TEST_SECRET: &str = "test-only-turn-secret-0f1e2d3c4b5a";

/// Where a process runs: on this machine's loopback, or inside a network namespace.
#[derive(Clone, Debug)]
pub struct Host {
    /// `ip netns exec NAME` first, or nothing.
    pub netns: Option<String>,
    /// The address its services listen on.
    pub ip: IpAddr,
}

impl Host {
    /// The test machine itself, on 127.0.0.1.
    pub fn loopback() -> Host {
        Host {
            netns: None,
            ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        }
    }

    /// `program` run here, with no `CALL_*` or `RUST_LOG` variable from the test's environment.
    pub fn command(&self, program: &Path) -> Command {
        let mut cmd = match &self.netns {
            Some(ns) => {
                // `ip netns exec` execs the program in place: the child's PID is the program's,
                // so killing the child kills it.
                let mut cmd = Command::new("ip");
                cmd.args(["netns", "exec", ns]).arg(program);
                cmd
            }
            None => Command::new(program),
        };
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("CALL_") {
                cmd.env_remove(key);
            }
        }
        cmd.env_remove("RUST_LOG").env_remove("DISPLAY");
        cmd.stdin(Stdio::null());
        cmd
    }

    /// `call --config-dir DIR` run here.
    pub fn call_in(&self, dir: &Path) -> Command {
        let mut cmd = self.command(Path::new(env!("CARGO_BIN_EXE_call")));
        cmd.arg("--config-dir").arg(dir);
        cmd
    }
}

/// `turnserver` (Debian package `coturn`), if installed.
pub fn turnserver() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/bin", "/usr/sbin", "/usr/local/bin"].map(PathBuf::from))
        .map(|dir| dir.join("turnserver"))
        .find(|p| p.is_file())
}

/// `turnserver`, or `None` after one line saying why `test` is skipped.
pub fn turnserver_or_skip(test: &str) -> Option<PathBuf> {
    let found = turnserver();
    if found.is_none() {
        eprintln!(
            "SKIPPED {test}: `turnserver` is not installed (Debian package coturn; scripts/install-system-deps.sh installs it)"
        );
    }
    found
}

/// The `call-signaling` binary next to `call` (`cargo test --workspace` builds both).
pub fn call_signaling_bin() -> PathBuf {
    let bin = Path::new(env!("CARGO_BIN_EXE_call")).with_file_name("call-signaling");
    assert!(
        bin.is_file(),
        "{} is missing: `cargo test --workspace` builds it; before `cargo test -p call-cli` run `cargo build -p signaling --bin call-signaling`",
        bin.display()
    );
    bin
}

/// `deploy/coturn/turnserver.conf` as shipped.
pub fn deploy_coturn_config() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/coturn/turnserver.conf");
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Settings whose values a test must choose (deploy/'s are for a real machine).
const TEST_CHOSEN: &[&str] = &[
    "listening-port",
    "listening-ip",
    "relay-ip",
    "external-ip",
    "static-auth-secret",
    "realm",
    "log-file",
    "pidfile",
    "userdb",
];

/// Which peers the test's coturn must relay to, beyond what deploy/'s config allows.
#[derive(Clone, Copy, Debug)]
pub enum TestPeers {
    /// Loopback (both callers' relay addresses are 127.0.0.1).
    Loopback,
    /// The namespaces' own 10.99.0.0/16 addresses.
    NamespaceNet,
}

/// deploy/'s coturn config with the listener, secret and logs of the test, and the one peer
/// range the test needs let through. Nothing else is changed, so a setting coturn refuses or a
/// policy that breaks relaying fails the test.
pub fn coturn_test_config(
    deploy: &str,
    host: &Host,
    port: u16,
    dir: &Path,
    peers: TestPeers,
) -> String {
    const DENIED_LOOPBACK: &str = "denied-peer-ip=127.0.0.0-127.255.255.255";
    assert!(
        deploy.lines().any(|l| l.trim() == DENIED_LOOPBACK),
        "deploy/coturn/turnserver.conf no longer denies loopback peers ({DENIED_LOOPBACK})"
    );
    let mut out = String::from("# Derived from deploy/coturn/turnserver.conf for a test.\n");
    for line in deploy.lines() {
        let key = line.split('=').next().unwrap_or("").trim();
        if TEST_CHOSEN.contains(&key) {
            continue;
        }
        // TEST ONLY: on loopback both relay addresses are 127.0.0.1, so the relays must reach
        // each other there. coturn lets an allowed-peer-ip override a denied one, but loopback
        // is also refused by coturn's own default, which only allow-loopback-peers lifts: so
        // the denied loopback range goes and allow-loopback-peers comes (below). A deployment
        // keeps both refusals.
        if matches!(peers, TestPeers::Loopback) && line.trim() == DENIED_LOOPBACK {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out.push_str("\n# --- chosen by the test ---\n");
    out.push_str(&format!(
        "listening-ip={ip}\nrelay-ip={ip}\nlistening-port={port}\nstatic-auth-secret={TEST_SECRET}\nrealm=call-test\nlog-file={log}\npidfile={pid}\nuserdb={db}\n",
        ip = host.ip,
        log = dir.join("turn.log").display(),
        pid = dir.join("turn.pid").display(),
        db = dir.join("turndb").display(),
    ));
    match peers {
        TestPeers::Loopback => out.push_str("# TEST ONLY (see above): relay between loopback addresses.\nallow-loopback-peers\n"),
        // TEST ONLY: the namespaces' addresses are private (10/8, denied above); an allowed
        // range overrides a denied one in coturn.
        TestPeers::NamespaceNet => out.push_str(
            "# TEST ONLY: the test's own namespace addresses.\nallowed-peer-ip=10.99.0.0-10.99.255.255\n",
        ),
    }
    out
}

/// A free UDP port on `ip` (bound and released: good enough for a test's own listener).
pub fn free_udp_port(ip: IpAddr) -> u16 {
    UdpSocket::bind(SocketAddr::new(ip, 0))
        .and_then(|s| s.local_addr())
        .expect("a free UDP port on loopback")
        .port()
}

/// A running coturn; killed on drop.
pub struct Coturn {
    pub running: Running,
    pub addr: SocketAddr,
    pub log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Coturn {
    /// Starts `turnserver` on `host` with the test config and waits until it serves.
    pub fn start(turnserver: &Path, host: &Host, port: u16, peers: TestPeers) -> Coturn {
        let dir = tempdir();
        let conf = dir.path().join("turnserver.conf");
        let text = coturn_test_config(&deploy_coturn_config(), host, port, dir.path(), peers);
        // 0600 like the deployed file: it holds the secret.
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&conf)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .expect("write the coturn config");
        let log = dir.path().join("turn.log");
        let mut cmd = host.command(turnserver);
        cmd.arg("-c").arg(&conf);
        let mut running = Running::spawn(&mut cmd, "turnserver");
        let deadline = Instant::now() + PROCESS_LIMIT;
        loop {
            let text = fs::read_to_string(&log).unwrap_or_default();
            if text.contains("Total General servers") {
                break;
            }
            if running.exited() || Instant::now() > deadline {
                let out = running.wait(Duration::from_secs(1));
                panic!(
                    "coturn did not start:\n--- log\n{text}\n--- stderr\n{}\n--- config\n{}",
                    out.stderr,
                    fs::read_to_string(&conf).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Coturn {
            running,
            addr: SocketAddr::new(host.ip, port),
            log,
            _dir: dir,
        }
    }

    /// The `turn:` URL clients use.
    pub fn url(&self) -> String {
        format!("turn:{}?transport=udp", self.addr)
    }

    /// What coturn logged so far.
    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Coturn {
    fn drop(&mut self) {
        // A failed test shows what the relay saw; `running` then kills coturn.
        if std::thread::panicking() {
            eprintln!("--- coturn log\n{}", self.log_text());
        }
    }
}

/// A file holding [`TEST_SECRET`], mode 0600 (call-signaling refuses a readable one).
pub fn secret_file(dir: &Path) -> PathBuf {
    let path = dir.join("turn-secret");
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .and_then(|mut f| writeln!(f, "{TEST_SECRET}"))
        .expect("write the secret file");
    path
}

/// A running `call-signaling`; killed on drop.
pub struct Signaling {
    pub running: Running,
    pub url: String,
}

impl Signaling {
    /// Starts `call-signaling ARGS` on `host` and waits for the URL it prints once ready.
    pub fn start(host: &Host, args: &[String]) -> Signaling {
        let mut cmd = host.command(&call_signaling_bin());
        cmd.args(args).env("RUST_LOG", "info");
        let mut running = Running::spawn(&mut cmd, "call-signaling");
        let deadline = Instant::now() + PROCESS_LIMIT;
        let url = loop {
            let out = running
                .stdout_live
                .lock()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            if let Some(line) = out.lines().find(|l| l.starts_with("ws")) {
                break line.trim().to_owned();
            }
            assert!(
                !running.exited() && Instant::now() < deadline,
                "call-signaling printed no URL"
            );
            std::thread::sleep(Duration::from_millis(25));
        };
        Signaling { running, url }
    }

    /// Waits until the server logged `id` in (its `client authenticated` line).
    pub fn wait_for_login(&mut self, id: &CallId, listener: &mut Running) {
        let deadline = Instant::now() + PROCESS_LIMIT;
        let needle = format!("id={id}");
        loop {
            let seen = self
                .running
                .stderr_live
                .lock()
                .map(|b| String::from_utf8_lossy(&b).contains(&needle))
                .unwrap_or(false);
            if seen {
                return;
            }
            assert!(!listener.exited(), "call listen exited before logging in");
            assert!(Instant::now() < deadline, "call listen never logged in");
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

/// One side of a test call: where it runs and its extra flags.
pub struct Side<'a> {
    pub host: &'a Host,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
}

/// Both ends' output, the dialer's stats and the listener's WAV (already checked for the tone).
pub struct CallOutcome {
    pub dialer: super::Output,
    pub listener: super::Output,
    pub stats: serde_json::Value,
}

/// `call listen` on `callee` and `call dial` (a 440 Hz tone for 3 s) on `caller`, both through
/// `sig`; checks both exit 0 and the listener's WAV holds the tone.
pub fn tone_call(sig: &mut Signaling, caller: Side<'_>, callee: Side<'_>) -> CallOutcome {
    let (da, db) = (tempdir(), tempdir());
    new_id(da.path());
    let id_b = new_id(db.path());
    let heard = db.path().join("heard.wav");
    let stats = da.path().join("stats.json");
    let mut listener = Running::spawn(
        callee
            .host
            .call_in(db.path())
            .args([
                "listen",
                "--auto-accept",
                "--quiet",
                "--audio-in",
                "silence",
            ])
            .arg("--audio-out")
            .arg(&heard)
            .args(&callee.args)
            .envs(callee.env.iter().map(|(k, v)| (k, v))),
        "call listen",
    );
    sig.wait_for_login(&id_b, &mut listener);
    let dialer = run(
        caller
            .host
            .call_in(da.path())
            .args(["dial", &id_b.to_string(), "--quiet"])
            .args(["--audio-in", "sine:440", "--audio-out", "null"])
            .args(["--duration", "3", "--stats-json"])
            .arg(&stats)
            .args(&caller.args)
            .envs(caller.env.iter().map(|(k, v)| (k, v))),
        "call dial",
    );
    let listener = listener.wait(PROCESS_LIMIT);
    dialer.assert_success("call dial");
    listener.assert_success("call listen");
    let json: serde_json::Value =
        serde_json::from_slice(&fs::read(&stats).expect("stats.json")).expect("stats.json is JSON");
    assert_tone(&heard, 440.0);
    // For the record (run with --nocapture): how long the relayed call took to carry audio.
    eprintln!(
        "first audio after {} ms over a {} pair, rtt {} ms",
        json["first_audio_ms"], json["candidate_type"], json["rtt_ms"]
    );
    CallOutcome {
        dialer,
        listener,
        stats: json,
    }
}

/// Power at `freq` Hz of 48 kHz samples (Goertzel).
fn power(samples: &[i16], freq: f64) -> f64 {
    media::codec::pcm::tone_power(samples, 48_000.0, freq)
}

/// The WAV holds over 1.5 s of audio in which `freq` stands far above other frequencies.
pub fn assert_tone(path: &Path, freq: f64) {
    let samples: Vec<i16> = hound::WavReader::open(path)
        .unwrap_or_else(|e| panic!("{} is not a WAV file: {e}", path.display()))
        .samples::<i16>()
        .map(|s| s.expect("a 16-bit sample"))
        .collect();
    let secs = samples.len() as f64 / 48_000.0;
    assert!(secs > 1.5, "the listener wrote only {secs:.2} s of audio");
    let p = power(&samples, freq);
    for other in [freq * 0.5, freq * 1.5, 1000.0, 2000.0] {
        let q = power(&samples, other);
        assert!(
            p > 100.0 * q,
            "no {freq} Hz tone in {}: power {p:.3e} vs {q:.3e} at {other} Hz",
            path.display()
        );
    }
}
