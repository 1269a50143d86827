//! Helpers shared by the `call` binary's tests: running `call` as a subprocess with a clean
//! environment, collecting its output, and an in-process signaling server on loopback.
#![allow(dead_code)] // each test binary uses a different part

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use signaling::identity::CallId;
use signaling::server::{RunningServer, Server, ServerConfig};

pub mod tmux;
pub mod turn;

/// Longest any single `call` process may run before the test fails as hung.
pub const PROCESS_LIMIT: Duration = Duration::from_secs(20);

/// Environment variables that would change what `call` does; tests start from none of them.
pub const CALL_ENV: &[&str] = &[
    "CALL_CONFIG_DIR",
    "CALL_SERVER",
    "CALL_CA_CERT",
    "CALL_NAME",
    "CALL_AUDIO_IN",
    "CALL_AUDIO_OUT",
    "CALL_VIDEO_IN",
    "CALL_VIDEO_OUT",
    "CALL_VIDEO_SIZE",
    "CALL_FPS",
    "CALL_ICE_SERVERS",
    // Without a display the default video sink is null: tests never open a window.
    "DISPLAY",
    "RUST_LOG",
    "XDG_CONFIG_HOME",
];

/// A `call` command with a clean environment and stdin closed.
pub fn call() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_call"));
    for var in CALL_ENV {
        cmd.env_remove(var);
    }
    cmd.stdin(Stdio::null());
    cmd
}

/// A `call` command using `dir` as config dir (via `--config-dir`).
pub fn call_in(dir: &Path) -> Command {
    let mut cmd = call();
    cmd.arg("--config-dir").arg(dir);
    cmd
}

/// What a finished process printed.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// Panics with everything the process printed unless it exited 0.
    pub fn assert_success(&self, what: &str) -> &Self {
        assert!(
            self.status.success(),
            "{what} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }

    /// Panics unless the process exited non-zero.
    pub fn assert_failure(&self, what: &str) -> &Self {
        assert!(
            !self.status.success() && self.status.code().is_some(),
            "{what} should exit non-zero (not by a signal), got {}:\n--- stdout\n{}\n--- stderr\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }

    /// The non-empty lines of stderr.
    pub fn stderr_lines(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect()
    }

    /// Asserts the error contract: stderr is exactly one line, starting with `error:`; returns it.
    pub fn single_error_line(&self) -> &str {
        let lines = self.stderr_lines();
        assert_eq!(
            lines.len(),
            1,
            "expected exactly one line on stderr, got:\n{}",
            self.stderr
        );
        assert!(
            lines[0].starts_with("error:"),
            "the stderr line should start with `error:`: {}",
            lines[0]
        );
        lines[0]
    }
}

/// A spawned process whose output is collected on threads (so full pipes never block it).
pub struct Running {
    pub child: Child,
    pub stdout: Option<JoinHandle<String>>,
    pub stderr: Option<JoinHandle<String>>,
    /// Stderr as it arrives, for waiting on a line while the process runs.
    pub stderr_live: Arc<Mutex<Vec<u8>>>,
    /// Stdout as it arrives (e.g. the URL `call-signaling` prints once it is ready).
    pub stdout_live: Arc<Mutex<Vec<u8>>>,
    pub what: String,
}

/// Reads `pipe` to its end on a thread, mirroring what arrived so far into `live`.
pub fn drain(
    mut pipe: impl Read + Send + 'static,
    live: Arc<Mutex<Vec<u8>>>,
) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match pipe.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    bytes.extend_from_slice(&buf[..n]);
                    if let Ok(mut l) = live.lock() {
                        l.extend_from_slice(&buf[..n]);
                    }
                }
            }
        }
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

impl Running {
    pub fn spawn(cmd: &mut Command, what: &str) -> Running {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("could not start {what}: {e}"));
        let stderr_live = Arc::new(Mutex::new(Vec::new()));
        let stdout_live = Arc::new(Mutex::new(Vec::new()));
        let stdout = drain(
            child.stdout.take().expect("stdout is piped"),
            Arc::clone(&stdout_live),
        );
        let stderr = drain(
            child.stderr.take().expect("stderr is piped"),
            Arc::clone(&stderr_live),
        );
        Running {
            child,
            stdout: Some(stdout),
            stderr: Some(stderr),
            stderr_live,
            stdout_live,
            what: what.to_owned(),
        }
    }

    /// Whether the process has exited already.
    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Waits until stderr contains `text`; fails the test if the process exits first.
    pub fn wait_for_stderr(&mut self, text: &str) {
        let deadline = Instant::now() + PROCESS_LIMIT;
        loop {
            let seen = self
                .stderr_live
                .lock()
                .map(|b| String::from_utf8_lossy(&b).contains(text))
                .unwrap_or(false);
            if seen {
                return;
            }
            assert!(
                !self.exited(),
                "{} exited before printing {text:?}",
                self.what
            );
            assert!(
                Instant::now() < deadline,
                "{} never printed {text:?}",
                self.what
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Waits for exit; kills the process and fails the test if it runs past `limit`.
    pub fn wait(mut self, limit: Duration) -> Output {
        let deadline = Instant::now() + limit;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(25))
                }
                Ok(None) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break None;
                }
                Err(e) => panic!("waiting for {}: {e}", self.what),
            }
        };
        let collect =
            |h: Option<JoinHandle<String>>| h.and_then(|h| h.join().ok()).unwrap_or_default();
        let stdout = collect(self.stdout.take());
        let stderr = collect(self.stderr.take());
        match status {
            Some(status) => Output {
                status,
                stdout,
                stderr,
            },
            None => panic!(
                "{} did not exit within {limit:?} and was killed:\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
                self.what
            ),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // Only reached when a test fails half-way: never leave a `call` process behind.
        if !self.exited() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs `cmd` to completion (bounded by [`PROCESS_LIMIT`]).
pub fn run(cmd: &mut Command, what: &str) -> Output {
    Running::spawn(cmd, what).wait(PROCESS_LIMIT)
}

/// A signaling server (with embedded TURN) on loopback, on its own runtime for the whole test.
pub struct TestServer {
    pub runtime: tokio::runtime::Runtime,
    pub server: Option<RunningServer>,
}

impl TestServer {
    pub fn start() -> TestServer {
        TestServer::start_with(ServerConfig::local())
    }

    /// Like [`TestServer::start`] with a configuration of the test's own.
    pub fn start_with(config: ServerConfig) -> TestServer {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let server = runtime
            .block_on(Server::start(config))
            .expect("signaling server starts on loopback");
        TestServer {
            runtime,
            server: Some(server),
        }
    }

    pub fn url(&self) -> String {
        self.server.as_ref().expect("server is running").url()
    }

    pub fn connected_clients(&self) -> usize {
        self.server
            .as_ref()
            .map_or(0, RunningServer::connected_clients)
    }

    /// Waits until `n` clients have authenticated, failing early if `listener` exits.
    pub fn wait_for_clients(&self, n: usize, listener: &mut Running) {
        let deadline = Instant::now() + PROCESS_LIMIT;
        while self.connected_clients() < n {
            assert!(
                !listener.exited(),
                "{} exited before registering with the server",
                listener.what
            );
            assert!(
                Instant::now() < deadline,
                "{} never registered with the signaling server",
                listener.what
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

impl TestServer {
    /// Stops the server now (closing every client connection).
    pub fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            self.runtime.block_on(server.shutdown());
        }
    }

    /// Stops the server and starts a new one on the same address (a restarted deployment).
    pub fn restart(&mut self) {
        let addr = self
            .server
            .as_ref()
            .expect("server is running")
            .local_addr();
        self.stop();
        let config = ServerConfig {
            listen: addr,
            ..ServerConfig::local()
        };
        // The port was ours a moment ago; binding again may need a few tries.
        for attempt in 0.. {
            match self.runtime.block_on(Server::start(config.clone())) {
                Ok(server) => {
                    self.server = Some(server);
                    return;
                }
                Err(e) if attempt < 50 => {
                    eprintln!("restarting the server on {addr}: {e}; retrying");
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => panic!("could not restart the server on {addr}: {e}"),
            }
        }
    }

    /// Waits until at least `n` clients are connected (any process).
    pub fn wait_for_any_clients(&self, n: usize) {
        let deadline = Instant::now() + PROCESS_LIMIT;
        while self.connected_clients() < n {
            assert!(
                Instant::now() < deadline,
                "only {} clients registered",
                self.connected_clients()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// A peer that is online but never answers: an authenticated client that reads nothing.
    pub fn silent_peer(&self) -> (CallId, signaling::client::Client) {
        let identity = Arc::new(signaling::identity::Identity::generate());
        let client = self
            .runtime
            .block_on(signaling::client::Client::connect(
                &self.url(),
                Arc::clone(&identity),
                signaling::client::ClientOptions::default(),
            ))
            .expect("a client connects to the test server");
        (identity.call_id(), client)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Creates an identity in `dir` with `call id new` and returns the printed ID.
pub fn new_id(dir: &Path) -> CallId {
    let out = run(call_in(dir).args(["id", "new"]), "call id new");
    out.assert_success("call id new");
    last_line(&out.stdout)
        .parse()
        .unwrap_or_else(|e| panic!("`call id new` printed no valid ID ({e}):\n{}", out.stdout))
}

pub fn last_line(text: &str) -> &str {
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
}

pub fn mode(path: &Path) -> u32 {
    fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// `id` with one character replaced by another one of the alphabet: still well-formed, wrong.
pub fn mistype(id: &CallId) -> String {
    let mut chars: Vec<char> = id.to_string().chars().collect();
    let i = 10;
    chars[i] = if chars[i] == 'a' { 'b' } else { 'a' };
    chars.into_iter().collect()
}

pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

pub fn safety_line(out: &Output) -> String {
    out.stdout
        .lines()
        .find_map(|l| l.strip_prefix("safety number:"))
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|| panic!("no safety number printed:\n{}", out.stdout))
}

/// Arguments shared by both ends of a test call.
pub fn conn_args(server: &str, relay_only: bool) -> Vec<String> {
    let mut args: Vec<String> = ["--server", server, "--quiet", "--ice-scope", "loopback"]
        .map(str::to_owned)
        .to_vec();
    if relay_only {
        args.push("--relay-only".to_owned());
    }
    args
}

/// `call listen --auto-accept` with silence in and `audio_out` out, registered with the server.
pub fn spawn_listener(
    server: &TestServer,
    dir: &Path,
    audio_out: impl AsRef<std::ffi::OsStr>,
    relay_only: bool,
) -> Running {
    let before = server.connected_clients();
    let mut listener = Running::spawn(
        call_in(dir)
            .args([
                "listen",
                "--auto-accept",
                "--audio-in",
                "silence",
                "--audio-out",
            ])
            .arg(audio_out)
            .args(conn_args(&server.url(), relay_only)),
        "call listen",
    );
    server.wait_for_clients(before + 1, &mut listener);
    listener
}

pub fn wav_seconds(path: &Path) -> f64 {
    let reader = hound::WavReader::open(path)
        .unwrap_or_else(|e| panic!("{} is not a WAV file: {e}", path.display()));
    let spec = reader.spec();
    f64::from(reader.duration()) / f64::from(spec.sample_rate)
}

/// Seconds of audio in the WAV at `path` once it holds at least `min` seconds, polling the file
/// (its header is rewritten every second while the call runs); panics after [`PROCESS_LIMIT`].
pub fn wait_for_wav_seconds(path: &Path, min: f64) -> f64 {
    let deadline = Instant::now() + PROCESS_LIMIT;
    loop {
        // The header may be mid-rewrite: an unreadable file is simply not there yet.
        let heard = hound::WavReader::open(path)
            .map(|r| f64::from(r.duration()) / f64::from(r.spec().sample_rate))
            .unwrap_or(0.0);
        if heard >= min {
            return heard;
        }
        assert!(
            Instant::now() < deadline,
            "{} never held {min} s of audio (last {heard} s)",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether the WAV header's data size covers every byte of the file: true after a clean
/// finalisation, false when samples were written after the last header rewrite (a killed call).
pub fn wav_header_covers_file(path: &Path) -> bool {
    let bytes = std::fs::read(path).expect("the WAV file is readable");
    let Some(at) = bytes.windows(4).position(|w| w == b"data") else {
        return false;
    };
    let size = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().expect("4 bytes"));
    at + 8 + size as usize == bytes.len()
}

/// Fails if `text` holds a character that must never reach a terminal raw: a control character
/// other than the line feed, or a Unicode bidi/format character or line/paragraph separator.
pub fn assert_no_raw_controls(what: &str, text: &str) {
    for c in text.chars() {
        let bidi_or_format = matches!(
            u32::from(c),
            0x061C | 0x200B..=0x200F | 0x2028..=0x202E | 0x2060..=0x206F | 0xFEFF
        );
        assert!(
            !(bidi_or_format || (c.is_control() && c != '\n')),
            "{what} printed a raw {c:?}:\n{text}"
        );
    }
}

/// `call room ARGS…` in `dir`, which must succeed; commands that talk to the server get
/// `--server`.
pub fn room(dir: &Path, server: &str, args: &[&str], what: &str) -> Output {
    let mut cmd = call_in(dir);
    cmd.arg("room").args(args);
    if !matches!(args[0], "new" | "list" | "show" | "history") {
        cmd.args(["--server", server]);
    }
    let out = run(&mut cmd, what);
    out.assert_success(what);
    out
}
