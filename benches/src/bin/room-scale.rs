//! How join time, CPU and uplink grow with the members of a room call (a full mesh), measured
//! on real `call join` processes on loopback, with the 2-member room as the reference in the
//! same run.
//!
//! For each room size N (`--members 2,3,4,6,8`; 2 is always added) and each of `--runs` runs:
//! starts nothing new on the network side (the signaling server runs inside this tool, on
//! 127.0.0.1, and is not counted), creates N identities and a room with `call id new`, `call
//! room new/invite/sync`, then starts N `call join ROOM --ice-scope loopback --audio-in sine:F_i
//! --audio-out mix.wav --duration D` processes at once (with `--video`: also `--video --video-in
//! pattern --video-size WxH --video-out null`). From each one's stderr it takes:
//!
//! - **start → all connected**: from that process's start to its last `NAME is in the call
//!   (ID)` line naming the N-1 others; p50 and max over the members;
//! - **start → all heard**: to its first `levels:` line (printed once a second, so 1 s
//!   resolution) listing the N-1 others all at or above -50 dBFS (the engine's speaking
//!   threshold);
//! - **uplink**: the median `kbps up` of its once-a-second stats lines in the steady window:
//!   RTP payload bits sent to all peers together (no RTP/SRTP/UDP/IP headers, no RTCP, no
//!   ICE/DTLS/SCTP);
//! - **CPU**: utime+stime from `/proc/<pid>/stat` at the start and end of the steady window
//!   (from `--warmup` s after the last member connected to 1 s before the first `--duration`
//!   ends), divided by the window: cores;
//! - **all heard all**: after the calls end by themselves, each member's WAV mix must hold every
//!   other member's tone (Goertzel, ≥ 2 % of the strongest) and not its own (< 1 %), and every
//!   process must exit 0.
//!
//! It prints a markdown table: median (range) over the runs, CPU and uplink per member as a
//! ratio to the 2-member room's. Bounded: N ≤ 10, D ≤ 60 s, loopback only. Every child is
//! killed when the tool ends, fails or gets SIGINT/SIGTERM/SIGHUP (a SIGKILL of the tool
//! leaves the children to end at their own `--duration`).
//!
//! ```sh
//! cargo build --release -p call-cli -p benches --bin call --bin room-scale
//! target/release/room-scale --members 2,3,4,6,8 --runs 3 --duration 30
//! target/release/room-scale --members 2,3,6 --video --runs 3 --duration 30
//! ```
//!
//! The server runs with its embedded TURN, as `call-signaling` does by default, so every session
//! also gathers a relay candidate before its offer or answer goes out; `--no-turn` runs it
//! without (host candidates only), to see what TURN costs the set-up.
//!
//! The `call` binary is `--call PATH`, else `$CALL_BIN`, else the `call` next to this tool.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use benches::proc_cpu::{self, CpuTicks};
use benches::room_scale::{
    connected_id, hears_all, median, mix_hears_all, parse_levels, table_line, tone_power,
    uplink_kbps, Row, RunFigures, TABLE_HEADER,
};
use signaling::server::{Server, ServerConfig};

/// Most members a room of this tool may have (a mesh of 10 is 45 pairs on this machine).
const MAX_MEMBERS: usize = 10;
/// Longest call, s.
const MAX_DURATION: f64 = 60.0;
/// How long set-up steps and the calls' ends may take beyond what they should (a hang, not a
/// slow machine).
const PATIENCE: Duration = Duration::from_secs(30);
/// The steady window ends this long before the first member's `--duration` is over.
const END_MARGIN: Duration = Duration::from_secs(1);
/// A window shorter than this gives too few stats lines and CPU ticks to mean anything.
const MIN_WINDOW: Duration = Duration::from_secs(3);
/// Environment variables that would change what `call` does (as the CLI tests clear them).
const CALL_ENV: &[&str] = &[
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
    "DISPLAY",
    "RUST_LOG",
    "XDG_CONFIG_HOME",
];

/// Every child process still running: killed on SIGINT/SIGTERM/SIGHUP.
static CHILDREN: Mutex<Vec<u32>> = Mutex::new(Vec::new());

fn register(pid: u32) {
    if let Ok(mut c) = CHILDREN.lock() {
        c.push(pid);
    }
}

fn unregister(pid: u32) {
    if let Ok(mut c) = CHILDREN.lock() {
        c.retain(|&p| p != pid);
    }
}

/// SIGKILLs every registered child (with `kill`, so this crate needs no `unsafe`).
fn kill_all() -> usize {
    let pids: Vec<String> = match CHILDREN.lock() {
        Ok(c) => c.iter().map(u32::to_string).collect(),
        Err(_) => return 0,
    };
    if !pids.is_empty() {
        let _ = Command::new("kill")
            .arg("-KILL")
            .args(&pids)
            .stderr(Stdio::null())
            .status();
    }
    pids.len()
}

#[derive(Debug, Clone, PartialEq)]
struct Args {
    members: Vec<usize>,
    runs: usize,
    duration: f64,
    warmup: f64,
    video: Option<String>,
    fps: Option<u32>,
    call: PathBuf,
    /// Run the signaling server without its embedded TURN (no relay candidates to gather).
    no_turn: bool,
}

fn usage() -> &'static str {
    "usage: room-scale [--members 2,3,4,6,8] [--runs N] [--duration S (≤ 60)] [--warmup S] [--video] [--video-size WxH] [--fps N] [--no-turn] [--call PATH]"
}

fn parse_args(argv: impl IntoIterator<Item = String>) -> Result<Args> {
    let mut out = Args {
        members: vec![2, 3, 4, 6, 8],
        runs: 3,
        duration: 30.0,
        warmup: 2.0,
        video: None,
        fps: None,
        call: benches::tool::default_call_bin(),
        no_turn: false,
    };
    let mut video = false;
    let mut size = "320x240".to_owned();
    let mut it = argv.into_iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().with_context(|| format!("{name} takes a value"));
        match a.as_str() {
            "--members" => {
                out.members = value("--members")?
                    .split(',')
                    .map(|n| n.trim().parse::<usize>())
                    .collect::<Result<_, _>>()
                    .context("--members takes room sizes separated by commas, e.g. 2,3,4")?
            }
            "--runs" => out.runs = value("--runs")?.parse().context("--runs takes a number")?,
            "--duration" => {
                out.duration = value("--duration")?
                    .parse()
                    .context("--duration takes seconds")?
            }
            "--warmup" => {
                out.warmup = value("--warmup")?
                    .parse()
                    .context("--warmup takes seconds")?
            }
            "--video" => video = true,
            "--video-size" => size = value("--video-size")?,
            "--fps" => out.fps = Some(value("--fps")?.parse().context("--fps takes a number")?),
            "--call" => out.call = PathBuf::from(value("--call")?),
            "--no-turn" => out.no_turn = true,
            "-h" | "--help" => {
                println!("{}", usage());
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}; {}", usage()),
        }
    }
    if let Some(&n) = out
        .members
        .iter()
        .find(|&&n| !(2..=MAX_MEMBERS).contains(&n))
    {
        bail!("a room here has 2 to {MAX_MEMBERS} members, not {n}");
    }
    if !(out.duration > 0.0 && out.duration <= MAX_DURATION) {
        bail!("--duration must be more than 0 and at most {MAX_DURATION} s");
    }
    if !(out.warmup >= 0.0 && out.runs >= 1) {
        bail!("--warmup must be at least 0 and --runs at least 1");
    }
    // The reference: a 1:1-sized room, measured in the same run.
    out.members.push(2);
    out.members.sort_unstable();
    out.members.dedup();
    if video {
        out.video = Some(size);
    }
    Ok(out)
}

fn main() -> Result<()> {
    let args = parse_args(std::env::args().skip(1))?;
    if let Some(why) = benches::tool::missing_call_bin(&args.call) {
        bail!(why);
    }
    benches::tool::quiet_logs();
    let rt = tokio::runtime::Runtime::new()?;
    rt.spawn(kill_children_on_signal());
    let mut config = ServerConfig::local();
    if args.no_turn {
        config.turn = None;
    }
    let server = rt.block_on(Server::start(config))?;
    let ticks = proc_cpu::ticks_per_second();
    let mut media = match &args.video {
        Some(size) => format!("audio + video {size} pattern"),
        None => "audio only".to_owned(),
    };
    if args.no_turn {
        media.push_str(", server without TURN");
    }
    eprintln!(
        "{media}; rooms of {:?} members, {} run(s) each, {} s calls, CPU window from {} s after all connected; call = {}",
        args.members,
        args.runs,
        args.duration,
        args.warmup,
        args.call.display()
    );

    let mut rows = Vec::new();
    let mut failures = Vec::new();
    for &n in &args.members {
        let mut runs = Vec::new();
        for run in 1..=args.runs {
            eprint!("{n} members, run {run}/{}: ", args.runs);
            match one_run(&args, &server.url(), n, ticks) {
                Ok(r) => {
                    eprintln!(
                        "connected p50 {:.2} s max {:.2} s; heard max {:.2} s; CPU {:.3} cores per member; uplink {:.1} kbit/s per member; all heard all: {}",
                        r.connected_p50().unwrap_or(f64::NAN),
                        r.connected_max().unwrap_or(f64::NAN),
                        r.heard_max().unwrap_or(f64::NAN),
                        r.cpu_per_member(),
                        r.uplink_per_member(),
                        if r.all_ok() { "yes" } else { "NO" },
                    );
                    runs.push(r);
                }
                Err(e) => {
                    eprintln!("failed: {e:#}");
                    failures.push(format!("{n} members, run {run}: {e:#}"));
                }
            }
        }
        if !runs.is_empty() {
            rows.push(Row::of(&runs));
        }
    }
    rt.block_on(server.shutdown());

    println!(
        "{media}, {} s calls, release `call` processes on loopback:\n",
        args.duration
    );
    println!("{TABLE_HEADER}");
    match rows.iter().find(|r| r.members == 2) {
        Some(reference) => {
            for row in &rows {
                println!("{}", table_line(row, reference));
            }
        }
        None => println!("(no 2-member run succeeded: no reference for the ratios)"),
    }
    for f in &failures {
        println!("\nfailed: {f}");
    }
    Ok(())
}

/// On SIGINT, SIGTERM or SIGHUP: kill every child, then exit 130.
async fn kill_children_on_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        eprintln!("warning: cannot catch SIGTERM/SIGHUP; children are killed only on Ctrl-C");
        let _ = tokio::signal::ctrl_c().await;
        kill_all();
        std::process::exit(130);
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
        _ = hup.recv() => {}
    }
    let killed = kill_all();
    eprintln!("\ninterrupted: killed {killed} `call` process(es)");
    std::process::exit(130);
}

/// One `call join` process and what its stderr has shown so far.
struct Member {
    child: Child,
    started: Instant,
    /// Stderr lines with their arrival time (read by a thread, so the pipe never fills).
    lines: mpsc::Receiver<(Instant, String)>,
    /// The last lines, for error messages.
    tail: Vec<String>,
    connected: BTreeSet<String>,
    all_connected: Option<Instant>,
    all_heard: Option<Instant>,
    uplink: Vec<(Instant, f64)>,
    exit: Option<ExitStatus>,
}

impl Member {
    fn spawn(cmd: &mut Command) -> Result<Member> {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("could not start `call join`")?;
        let started = Instant::now();
        register(child.id());
        let stderr = child.stderr.take().context("stderr is piped")?;
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send((Instant::now(), line)).is_err() {
                    break;
                }
            }
        });
        Ok(Member {
            child,
            started,
            lines,
            tail: Vec::new(),
            connected: BTreeSet::new(),
            all_connected: None,
            all_heard: None,
            uplink: Vec::new(),
            exit: None,
        })
    }

    /// Takes in the lines that arrived; `others` is N-1.
    fn pump(&mut self, others: usize) {
        while let Ok((at, line)) = self.lines.try_recv() {
            if let Some(id) = connected_id(&line) {
                self.connected.insert(id.to_owned());
                if self.connected.len() >= others && self.all_connected.is_none() {
                    self.all_connected = Some(at);
                }
            } else if let Ok(levels) = parse_levels(&line) {
                if self.all_heard.is_none() && hears_all(&levels, others) {
                    self.all_heard = Some(at);
                }
            } else if let Some(kbps) = uplink_kbps(&line) {
                self.uplink.push((at, kbps));
            }
            if self.tail.len() == 20 {
                self.tail.remove(0);
            }
            self.tail.push(line);
        }
    }

    fn exited(&mut self) -> Result<bool> {
        if self.exit.is_none() {
            if let Some(status) = self.child.try_wait()? {
                unregister(self.child.id());
                self.exit = Some(status);
            }
        }
        Ok(self.exit.is_some())
    }

    fn cpu(&self) -> Result<CpuTicks> {
        Ok(proc_cpu::read(self.child.id())?)
    }

    fn since_start(&self, at: Option<Instant>) -> Option<f64> {
        at.map(|t| t.saturating_duration_since(self.started).as_secs_f64())
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        // Only on an early error: never leave a call running behind the tool.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        unregister(self.child.id());
    }
}

/// The tone member `i` sends: 400 Hz, 650 Hz, … (250 Hz apart, none a harmonic of another's
/// Goertzel bin over seconds of audio).
fn tone(i: usize) -> u32 {
    400 + 250 * i as u32
}

fn name(i: usize) -> String {
    format!("Member{:02}", i + 1)
}

fn one_run(args: &Args, url: &str, n: usize, ticks: u64) -> Result<RunFigures> {
    let dir = tempfile::Builder::new().prefix("room-scale").tempdir()?;
    let dirs: Vec<PathBuf> = (0..n).map(|i| dir.path().join(name(i))).collect();
    let ids: Vec<String> = dirs
        .iter()
        .map(|d| new_identity(&args.call, d))
        .collect::<Result<_>>()?;
    let room = last_line(
        call_in(&args.call, &dirs[0]).args(["room", "new", "Scale", "--as", &name(0)]),
        "room new",
    )?;
    for (i, id) in ids.iter().enumerate().skip(1) {
        run_call(
            call_in(&args.call, &dirs[0])
                .args(["room", "invite", &room, id, "--name", &name(i)])
                .args(["--server", url]),
            "room invite",
        )?;
    }
    for d in &dirs[1..] {
        run_call(
            call_in(&args.call, d).args(["room", "sync", "--server", url]),
            "room sync",
        )?;
    }

    let wavs: Vec<PathBuf> = dirs.iter().map(|d| d.join("mix.wav")).collect();
    let mut members: Vec<Member> = Vec::with_capacity(n);
    for (i, d) in dirs.iter().enumerate() {
        let mut cmd = call_in(&args.call, d);
        cmd.args(["join", &room, "--server", url, "--ice-scope", "loopback"])
            .args(["--duration", &args.duration.to_string()])
            .args(["--audio-in", &format!("sine:{}", tone(i)), "--audio-out"])
            .arg(&wavs[i]);
        if let Some(size) = &args.video {
            cmd.args(["--video", "--video-in", "pattern", "--video-out", "null"])
                .args(["--video-size", size]);
            if let Some(fps) = args.fps {
                cmd.args(["--fps", &fps.to_string()]);
            }
        }
        members.push(Member::spawn(&mut cmd)?);
    }
    let first_start = members[0].started;
    let others = n - 1;
    let calls_end = first_start + Duration::from_secs_f64(args.duration);

    // Until everyone is connected to everyone (or too late to measure anything).
    let last_chance = calls_end
        .checked_sub(END_MARGIN + MIN_WINDOW)
        .unwrap_or(first_start);
    let all_connected = loop {
        pump(&mut members, others);
        if let Some(t) = members.iter().map(|m| m.all_connected).max().flatten() {
            if members.iter().all(|m| m.all_connected.is_some()) {
                break t;
            }
        }
        for m in &mut members {
            if m.exited()? {
                bail!(
                    "a member ended before everyone was connected ({:?}); its stderr ends:\n{}",
                    m.exit,
                    m.tail.join("\n")
                );
            }
        }
        if Instant::now() > last_chance {
            let missing: Vec<String> = members
                .iter()
                .enumerate()
                .filter(|(_, m)| m.all_connected.is_none())
                .map(|(i, m)| format!("{} ({}/{others})", name(i), m.connected.len()))
                .collect();
            bail!(
                "not everyone was connected {:.0} s after the start, too late for a {} s window (raise --duration): {}",
                last_chance.duration_since(first_start).as_secs_f64(),
                MIN_WINDOW.as_secs(),
                missing.join(", ")
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };

    // The steady window.
    let window_start = all_connected + Duration::from_secs_f64(args.warmup);
    let window_end = calls_end - END_MARGIN;
    if window_end < window_start + MIN_WINDOW {
        bail!(
            "everyone was connected {:.1} s after the start: the window to {:.0} s is under {} s (raise --duration or lower --warmup)",
            all_connected.duration_since(first_start).as_secs_f64(),
            window_end.duration_since(first_start).as_secs_f64(),
            MIN_WINDOW.as_secs()
        );
    }
    wait_pumping(&mut members, others, window_start);
    let (cpu0, t0) = (cpu_all(&members)?, Instant::now());
    wait_pumping(&mut members, others, window_end);
    let (cpu1, t1) = (cpu_all(&members)?, Instant::now());

    // The calls end by themselves at their --duration.
    let give_up = calls_end + PATIENCE;
    loop {
        pump(&mut members, others);
        let mut all = true;
        for m in &mut members {
            all &= m.exited()?;
        }
        if all {
            break;
        }
        if Instant::now() > give_up {
            bail!("a member did not end within {PATIENCE:?} of its --duration");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // The reader threads may still hold the last lines.
    std::thread::sleep(Duration::from_millis(100));
    pump(&mut members, others);

    let wall = t1 - t0;
    let tones: Vec<f64> = (0..n).map(|i| f64::from(tone(i))).collect();
    let mut figures = RunFigures {
        members: n,
        connected_s: Vec::new(),
        heard_s: Vec::new(),
        cpu_cores: Vec::new(),
        uplink_kbps: Vec::new(),
        mix_ok: Vec::new(),
        exit_ok: Vec::new(),
    };
    for (i, m) in members.iter().enumerate() {
        figures
            .connected_s
            .push(m.since_start(m.all_connected).unwrap_or(f64::NAN));
        figures.heard_s.push(m.since_start(m.all_heard));
        figures.cpu_cores.push(proc_cpu::cpu_per_second(
            cpu1[i].since(cpu0[i]),
            ticks,
            wall,
        ));
        let in_window: Vec<f64> = m
            .uplink
            .iter()
            .filter(|(at, _)| (t0..=t1).contains(at))
            .map(|(_, kbps)| *kbps)
            .collect();
        figures
            .uplink_kbps
            .push(median(&in_window).unwrap_or(f64::NAN));
        let samples = wav_samples(&wavs[i]).unwrap_or_default();
        let powers: Vec<f64> = tones.iter().map(|&f| tone_power(&samples, f)).collect();
        figures.mix_ok.push(mix_hears_all(&powers, i));
        figures
            .exit_ok
            .push(m.exit.is_some_and(|status| status.success()));
    }
    Ok(figures)
}

fn pump(members: &mut [Member], others: usize) {
    for m in members {
        m.pump(others);
    }
}

/// Sleeps until `until`, reading the members' lines as they come.
fn wait_pumping(members: &mut [Member], others: usize, until: Instant) {
    while Instant::now() < until {
        pump(members, others);
        std::thread::sleep(Duration::from_millis(20).min(until - Instant::now().min(until)));
    }
    pump(members, others);
}

fn cpu_all(members: &[Member]) -> Result<Vec<CpuTicks>> {
    members.iter().map(Member::cpu).collect()
}

fn wav_samples(path: &Path) -> Result<Vec<i16>> {
    let reader = hound::WavReader::open(path)
        .with_context(|| format!("no WAV mix at {}", path.display()))?;
    Ok(reader.into_samples::<i16>().map_while(Result::ok).collect())
}

/// `call` with the identity directory and a clean environment; the subcommand follows.
fn call_in(call: &Path, config_dir: &Path) -> Command {
    let mut cmd = Command::new(call);
    for var in CALL_ENV {
        cmd.env_remove(var);
    }
    cmd.arg("--config-dir").arg(config_dir);
    cmd
}

/// Creates an identity in `dir` (0700) and returns its call ID.
fn new_identity(call: &Path, dir: &Path) -> Result<String> {
    std::fs::DirBuilder::new()
        .mode(0o700)
        .recursive(true)
        .create(dir)?;
    last_line(call_in(call, dir).args(["id", "new"]), "id new")
}

/// Runs a short `call` command (registered, so a signal kills it too); its stdout.
fn run_call(cmd: &mut Command, what: &str) -> Result<String> {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("could not run `call {what}`"))?;
    let pid = child.id();
    register(pid);
    let out = child.wait_with_output();
    unregister(pid);
    let out = out.with_context(|| format!("`call {what}` did not finish"))?;
    if !out.status.success() {
        bail!(
            "`call {what}` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The last stdout line of a `call` command that prints an ID there.
fn last_line(cmd: &mut Command, what: &str) -> Result<String> {
    run_call(cmd, what)?
        .lines()
        .last()
        .map(|l| l.trim().to_owned())
        .with_context(|| format!("`call {what}` printed nothing"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(a: &[&str]) -> Result<Args> {
        parse_args(a.iter().map(|s| s.to_string()))
    }

    #[test]
    fn the_two_member_reference_is_always_measured() {
        let a = parse(&["--members", "6,3", "--runs", "2"]).unwrap();
        assert_eq!(a.members, vec![2, 3, 6]);
        assert_eq!(a.runs, 2);
        assert_eq!(a.video, None);
        let a = parse(&["--video", "--members", "2,3"]).unwrap();
        assert_eq!(a.video.as_deref(), Some("320x240"));
        assert_eq!(a.members, vec![2, 3]);
    }

    #[test]
    fn rooms_and_calls_are_bounded() {
        assert!(parse(&["--members", "2,11"]).is_err());
        assert!(parse(&["--members", "1"]).is_err());
        assert!(parse(&["--duration", "61"]).is_err());
        assert!(parse(&["--duration", "0"]).is_err());
        assert!(parse(&["--runs", "0"]).is_err());
        assert!(parse(&["--members", "2,x"]).is_err());
        assert!(parse(&["--members", "10", "--duration", "60"]).is_ok());
    }

    #[test]
    fn kill_all_kills_registered_children() {
        let mut child = Command::new("sleep").arg("60").spawn().unwrap();
        register(child.id());
        assert!(kill_all() >= 1);
        let status = child.wait().unwrap();
        assert!(!status.success(), "killed by a signal: {status:?}");
        unregister(child.id());
    }
}
