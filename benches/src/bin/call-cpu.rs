//! CPU seconds per call-second of each end of a real call between two `call` processes on
//! loopback, audio only or with 640x480@30 (or any `--size`/`--fps`) pattern video.
//!
//! Starts the signaling server (with embedded TURN) in this process, creates two identities
//! with `call id new`, runs `call listen --auto-accept` and `call dial` as child processes
//! (sine audio both ways, `--audio-out null`; with `--video` also `--video --video-in pattern
//! --video-out null --video-size WxH --fps N`), waits until both print `connected to`, lets the
//! call settle for `--warmup` seconds, then reads utime+stime from `/proc/<pid>/stat` of each
//! process at the start and the end of a `--seconds` window: CPU s / window s per side. Set-up
//! (key load, signaling, ICE, DTLS) is outside the window. Each side also writes
//! `--stats-json`; a video run prints the glass-to-glass figures found there (the pattern's
//! burned-in capture time vs decode-complete time), when the stats carry them.
//!
//! The `call` binary is taken from `--call PATH`, else `$CALL_BIN`, else next to this tool
//! (`target/release/call`); build it first:
//!
//! ```sh
//! cargo build --release -p call-cli -p benches --bin call --bin call-cpu
//! target/release/call-cpu --seconds 20 --runs 3                       # audio only
//! target/release/call-cpu --video --seconds 20 --runs 3               # 640x480@30 video
//! target/release/call-cpu --video --size 1280x720 --seconds 20        # 1280x720@30 video
//! ```
//! or `./scripts/call-cpu.sh [ARGS]`, which builds both and runs it.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use benches::burst::percentile;
use benches::proc_cpu::{self, CpuTicks};
use signaling::server::{RunningServer, Server, ServerConfig};

/// How long each phase may take before the tool gives up (a hang, not a slow machine).
const PATIENCE: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
struct Args {
    video: Option<VideoArgs>,
    seconds: f64,
    warmup: f64,
    runs: usize,
    call: PathBuf,
    keep: bool,
}

#[derive(Debug, Clone)]
struct VideoArgs {
    size: String,
    fps: u32,
}

fn usage() -> &'static str {
    "usage: call-cpu [--video] [--size WxH] [--fps N] [--seconds S] [--warmup S] [--runs N] [--call PATH] [--keep]"
}

fn args() -> Result<Args> {
    let mut video = false;
    let mut size = "640x480".to_owned();
    let mut fps = 30;
    let mut out = Args {
        video: None,
        seconds: 20.0,
        warmup: 2.0,
        runs: 1,
        call: benches::tool::default_call_bin(),
        keep: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().with_context(|| format!("{name} takes a value"));
        match a.as_str() {
            "--video" => video = true,
            "--size" => size = value("--size")?,
            "--fps" => fps = value("--fps")?.parse().context("--fps takes a number")?,
            "--seconds" => {
                out.seconds = value("--seconds")?
                    .parse()
                    .context("--seconds takes a number")?
            }
            "--warmup" => {
                out.warmup = value("--warmup")?
                    .parse()
                    .context("--warmup takes a number")?
            }
            "--runs" => out.runs = value("--runs")?.parse().context("--runs takes a number")?,
            "--call" => out.call = PathBuf::from(value("--call")?),
            "--keep" => out.keep = true,
            "-h" | "--help" => {
                println!("{}", usage());
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}; {}", usage()),
        }
    }
    if !(out.seconds >= 1.0 && out.warmup >= 0.0 && out.runs >= 1) {
        bail!("--seconds must be at least 1, --warmup at least 0, --runs at least 1");
    }
    if video {
        out.video = Some(VideoArgs { size, fps });
    }
    if let Some(why) = benches::tool::missing_call_bin(&out.call) {
        bail!(why);
    }
    Ok(out)
}

fn main() -> Result<()> {
    let args = args()?;
    benches::tool::quiet_logs();
    let rt = tokio::runtime::Runtime::new()?;
    let server = rt.block_on(Server::start(ServerConfig::local()))?;
    let ticks = proc_cpu::ticks_per_second();
    let mode = match &args.video {
        Some(v) => format!("video {}@{}", v.size, v.fps),
        None => "audio only".to_owned(),
    };
    eprintln!(
        "{mode}: {} run(s), {:.0} s window after {:.0} s warm-up; call = {}",
        args.runs,
        args.seconds,
        args.warmup,
        args.call.display()
    );

    let mut results = Vec::new();
    for run in 1..=args.runs {
        let r = one_run(&args, &server, ticks).with_context(|| format!("run {run}"))?;
        eprintln!(
            "run {run}: dialer {:.4}, listener {:.4} CPU s per call-second",
            r.dialer, r.listener
        );
        results.push(r);
    }
    rt.block_on(server.shutdown());

    println!("| call | runs | window s | dialer CPU s/s | listener CPU s/s | both |");
    println!("|---|---|---|---|---|---|");
    let median = |f: fn(&RunResult) -> f64| {
        let mut v: Vec<f64> = results.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        percentile(&v, 0.5).unwrap_or(f64::NAN)
    };
    println!(
        "| {mode} | {} | {:.0} | {:.4} | {:.4} | {:.4} |",
        results.len(),
        args.seconds,
        median(|r| r.dialer),
        median(|r| r.listener),
        median(|r| r.dialer + r.listener),
    );
    if results.len() > 1 {
        println!("(medians over the runs; each run's figures are on stderr)");
    }
    if args.video.is_some() {
        for (side, i) in [("dialer", 0), ("listener", 1)] {
            for (run, r) in results.iter().enumerate() {
                let v = &r.video[i];
                if v.glass_to_glass.is_empty() {
                    println!(
                        "{side}, run {}: no glass-to-glass figures in --stats-json",
                        run + 1
                    );
                } else {
                    println!(
                        "{side}, run {}: glass-to-glass (ms) {}",
                        run + 1,
                        v.glass_to_glass.join("; ")
                    );
                }
                if !v.counters.is_empty() {
                    println!("  {}", v.counters.join("; "));
                }
            }
        }
    }
    Ok(())
}

struct RunResult {
    dialer: f64,
    listener: f64,
    /// What each side's stats say about video (dialer, listener).
    video: [VideoFigures; 2],
}

/// A running `call` child whose stderr lines arrive on a channel (read by a thread, so the pipe
/// never fills and blocks the call).
struct Peer {
    child: Child,
    lines: mpsc::Receiver<String>,
    /// Every line seen, for the error message if something goes wrong.
    seen: Vec<String>,
}

impl Peer {
    fn spawn(cmd: &mut Command, name: &'static str) -> Result<Peer> {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("could not start the {name}"))?;
        let stderr = child.stderr.take().context("stderr is piped")?;
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Peer {
            child,
            lines,
            seen: Vec::new(),
        })
    }

    /// Waits for a stderr line starting with `prefix`.
    fn wait_for(&mut self, prefix: &str, name: &str) -> Result<()> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let hit = line.starts_with(prefix);
                    self.seen.push(line);
                    if hit {
                        return Ok(());
                    }
                }
                Err(_) => bail!(
                    "the {name} did not print `{prefix}` within {PATIENCE:?}; its stderr:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    fn cpu(&self) -> Result<CpuTicks> {
        Ok(proc_cpu::read(self.child.id())?)
    }

    /// Waits for the process to exit (it hangs up by itself at the end of `--duration`).
    fn finish(mut self, name: &str) -> Result<()> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait()? {
                self.seen.extend(self.lines.try_iter());
                if !status.success() {
                    bail!(
                        "the {name} exited with {status}; its stderr:\n{}",
                        self.seen.join("\n")
                    );
                }
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                bail!("the {name} did not end within {PATIENCE:?} of its --duration");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        // Only on an early error: never leave a call running behind the tool.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn one_run(args: &Args, server: &RunningServer, ticks: u64) -> Result<RunResult> {
    let dir = tempfile::Builder::new().prefix("call-cpu").tempdir()?;
    let (a_dir, b_dir) = (dir.path().join("alice"), dir.path().join("bob"));
    let bob_id = new_identity(&args.call, &b_dir)?;
    new_identity(&args.call, &a_dir)?;
    let (a_json, b_json) = (dir.path().join("alice.json"), dir.path().join("bob.json"));
    let url = server.url();

    let before = server.connected_clients();
    let mut listener = Peer::spawn(
        call_command(args, &b_dir)
            .args(["listen", "--auto-accept"])
            .args(common_args(args, &url, &b_json, "sine:660")),
        "listener",
    )?;
    // The listener must be registered before the offer is routed to it.
    let registered = Instant::now();
    while server.connected_clients() == before {
        if let Some(status) = listener.child.try_wait()? {
            // Give the reader thread a moment to pass on the last lines.
            std::thread::sleep(Duration::from_millis(100));
            listener.seen.extend(listener.lines.try_iter());
            bail!(
                "the listener exited with {status} before logging in; its stderr:\n{}",
                listener.seen.join("\n")
            );
        }
        if registered.elapsed() > PATIENCE {
            bail!(
                "the listener did not log in; its stderr:\n{}",
                listener.seen.join("\n")
            );
        }
        // The server runs on the runtime's worker threads; this thread only waits.
        std::thread::sleep(Duration::from_millis(10));
    }
    // The dialer hangs up by itself once warm-up and window are over (plus a margin).
    let duration = args.warmup + args.seconds + 1.0;
    let mut dialer = Peer::spawn(
        call_command(args, &a_dir)
            .args(["dial", &bob_id, "--duration", &format!("{duration}")])
            .args(common_args(args, &url, &a_json, "sine:440")),
        "dialer",
    )?;
    dialer.wait_for("connected to", "dialer")?;
    listener.wait_for("connected to", "listener")?;
    std::thread::sleep(Duration::from_secs_f64(args.warmup));

    let (d0, l0, t0) = (dialer.cpu()?, listener.cpu()?, Instant::now());
    std::thread::sleep(Duration::from_secs_f64(args.seconds));
    let (d1, l1, t1) = (dialer.cpu()?, listener.cpu()?, Instant::now());
    let wall = t1 - t0;

    dialer.finish("dialer")?;
    listener.finish("listener")?;
    let video = [video_figures(&a_json), video_figures(&b_json)];
    if args.keep {
        let kept = dir.keep();
        eprintln!("kept the stats JSON in {}", kept.display());
    }
    Ok(RunResult {
        dialer: proc_cpu::cpu_per_second(d1.since(d0), ticks, wall),
        listener: proc_cpu::cpu_per_second(l1.since(l0), ticks, wall),
        video,
    })
}

/// `call` with the identity directory; the subcommand and its options follow.
fn call_command(args: &Args, config_dir: &Path) -> Command {
    let mut cmd = Command::new(&args.call);
    cmd.arg("--config-dir").arg(config_dir);
    cmd
}

/// The options both ends take: server, generated audio, no playback, stats file, video.
fn common_args(args: &Args, url: &str, json: &Path, tone: &str) -> Vec<String> {
    let mut v: Vec<String> = [
        "--server",
        url,
        "--audio-in",
        tone,
        "--audio-out",
        "null",
        "--stats-json",
    ]
    .map(str::to_owned)
    .into();
    v.push(json.display().to_string());
    if let Some(video) = &args.video {
        v.extend(
            [
                "--video",
                "--video-in",
                "pattern",
                "--video-out",
                "null",
                "--video-size",
                &video.size,
                "--fps",
                &video.fps.to_string(),
            ]
            .map(str::to_owned),
        );
    }
    v
}

/// Creates an identity in `dir` (0700) and returns its call ID (the last line `call id new`
/// prints on stdout).
fn new_identity(call: &Path, dir: &Path) -> Result<String> {
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .mode(0o700)
            .recursive(true)
            .create(dir)?;
    }
    last_line(
        Command::new(call)
            .arg("--config-dir")
            .arg(dir)
            .args(["id", "new"]),
    )
}

fn last_line(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().context("could not run `call`")?;
    if !out.status.success() {
        bail!(
            "`call` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .map(|l| l.trim().to_owned())
        .context("`call` printed no ID")
}

/// The video counters shown next to the glass-to-glass figures, so a reader sees that video
/// flowed at the asked size and rate (W3C webrtc-stats names, as `call --stats-json` uses).
const VIDEO_COUNTERS: [&str; 7] = [
    "framesSent",
    "framesDecoded",
    "framesDropped",
    "framesPerSecond",
    "frameWidth",
    "frameHeight",
    "freezeCount",
];

/// What one side's `--stats-json` says about video: glass-to-glass figures (any number whose
/// path mentions "glass", wherever the stats put it: flat, nested or per track) and the
/// [`VIDEO_COUNTERS`], each as `path = value`.
#[derive(Debug, Default, Clone)]
struct VideoFigures {
    glass_to_glass: Vec<String>,
    counters: Vec<String>,
}

fn video_figures(json: &Path) -> VideoFigures {
    let Ok(text) = std::fs::read_to_string(json) else {
        return VideoFigures::default();
    };
    let Ok(value) = serde_json::from_str::<serde_json::Value>(&text) else {
        return VideoFigures::default();
    };
    figures_of(&value)
}

fn figures_of(value: &serde_json::Value) -> VideoFigures {
    let mut all = Vec::new();
    number_leaves(value, String::new(), &mut all);
    let mut out = VideoFigures::default();
    for (path, n) in all {
        let last = path.rsplit('.').next().unwrap_or(&path);
        if path.to_ascii_lowercase().contains("glass") {
            out.glass_to_glass.push(format!("{path} = {n}"));
        } else if VIDEO_COUNTERS.contains(&last) {
            out.counters.push(format!("{path} = {n}"));
        }
    }
    out
}

/// Every number in `v` with its path (`a.b[2].c`).
fn number_leaves(v: &serde_json::Value, path: String, out: &mut Vec<(String, String)>) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, child) in map {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                number_leaves(child, p, out);
            }
        }
        serde_json::Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                number_leaves(child, format!("{path}[{i}]"), out);
            }
        }
        serde_json::Value::Number(n) => out.push((path, n.to_string())),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(json: &str) -> Vec<String> {
        figures_of(&serde_json::from_str(json).unwrap()).glass_to_glass
    }

    #[test]
    fn glass_to_glass_figures_are_found_flat_nested_and_per_track() {
        assert_eq!(
            found(r#"{"frames_decoded": 5, "glass_to_glass_p50_ms": 41.5, "x": {"p95": 1}}"#),
            vec!["glass_to_glass_p50_ms = 41.5"]
        );
        assert_eq!(
            found(r#"{"video": [{"glass_to_glass": {"p50_ms": 40, "p95_ms": 52.5}}]}"#),
            vec![
                "video[0].glass_to_glass.p50_ms = 40",
                "video[0].glass_to_glass.p95_ms = 52.5"
            ]
        );
        assert!(found(r#"{"jitter_ms": 1.0, "first_audio_ms": 60}"#).is_empty());
    }

    #[test]
    fn video_counters_are_picked_by_their_webrtc_stats_names() {
        let f = figures_of(
            &serde_json::from_str(
                r#"{"frames_decoded": 9, "video_received": {"framesDecoded": 211, "frameWidth": 640, "glassToGlassP50Ms": 2.5}}"#,
            )
            .unwrap(),
        );
        assert_eq!(
            f.counters,
            vec![
                "video_received.frameWidth = 640",
                "video_received.framesDecoded = 211"
            ]
        );
        assert_eq!(
            f.glass_to_glass,
            vec!["video_received.glassToGlassP50Ms = 2.5"]
        );
    }
}
