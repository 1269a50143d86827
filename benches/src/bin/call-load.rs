//! Load on the signaling server, with numbers: how much memory an idle authenticated
//! connection costs, and how many sealed envelopes per second it routes, at what CPU cost and
//! latency. Loopback only; bounded in connections and time.
//!
//! - `call-load idle --connections N` (N ≤ 19,000): N real logins (challenge-response, a fresh
//!   identity each), held; prints the server's resident size before and after, and per
//!   connection.
//! - `call-load route --pairs M --seconds S` (M ≤ 1,000, S ≤ 50): M sender → receiver pairs.
//!   For S seconds every sender seals and sends as fast as the server takes them (the
//!   per-connection rate limit is raised for the run): envelopes delivered per second and the
//!   server's CPU (utime+stime) per envelope. Then S seconds at half that rate, each plaintext
//!   carrying its send time: latency send → received and opened, p50/p99.
//!
//! - `call-load calls --calls K --seconds S` (K ≤ 50, S ≤ 60): K concurrent 1:1 calls through
//!   the server's embedded TURN (relay only, a tone each way): per call packets, loss and
//!   jitter; this tool's CPU per call and the server's (relay) CPU.
//! - `call-load abuse --pairs M --seconds S`: M well-behaved pairs sending 10 envelopes/s each,
//!   S seconds quiet, then S seconds while abusers flood TURN, hold slowloris connections,
//!   send malformed and oversized frames, log in with the wrong key and flood one receiver:
//!   latency p50/p99 quiet vs abused, the server's peak RSS, and whether it stayed up. The
//!   server runs with its default limits except the ones the well-behaved clients need.
//! - `call-load cost`: the per-envelope steps (Ed25519 verification, batch verification, the
//!   old and new parse, re-encoding, replay cache, the whole sans-IO session step) in-process.
//!
//! The server is the `call-signaling` binary as a child process (`--server PATH`, else
//! `$CALL_SIGNALING_BIN`, else the one next to this tool), started with `--listen 127.0.0.1:0
//! --no-turn` and the limits that would refuse the load raised (printed on stderr);
//! `--in-process` runs it inside this tool instead (then RSS and CPU include the clients: for
//! tests, not figures).
//!
//! ```sh
//! cargo build --release -p signaling -p benches --bin call-signaling --bin call-load
//! target/release/call-load idle --connections 10000
//! target/release/call-load route --pairs 8 --seconds 10
//! target/release/call-load calls --calls 10 --seconds 20
//! target/release/call-load abuse --pairs 8 --seconds 10
//! target/release/call-load cost
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use benches::load::abuse::{self, AbuseCounts, AbusePlan};
use benches::load::pairs::Pairs;
use benches::load::server::{connect_many, free_udp_port, start_server, Raised, ServerSpec};
use benches::load::{calls, cost};
use benches::load::{cpu_micros_per_envelope, kib_per_connection, quantile, read_vm_rss};
use benches::proc_cpu;
use clap::{Parser, Subcommand};
use signaling::client::{Client, ClientOptions};
use signaling::identity::Identity;

/// Most idle connections: the client side holds one descriptor per connection too, and the
/// hard open-file limit here is 20,000.
const MAX_CONNECTIONS: usize = 19_000;
/// Most sender/receiver pairs.
const MAX_PAIRS: usize = 1_000;
/// Longest phase of `route` and `abuse` (two phases: the whole run stays under two minutes).
const MAX_SECONDS: u64 = 50;
/// Most concurrent calls of `calls`, and their longest duration.
const MAX_CALLS: usize = 50;
const MAX_CALL_SECONDS: u64 = 60;
/// The whole run must end within this.
const RUN_LIMIT: Duration = Duration::from_secs(120);
/// Envelopes one connection may send per 60 s in `route` (server and receivers remember each
/// that long to refuse resends; the default 256 would cap a sender at about 4 per second).
const ROUTE_REPLAY: usize = 4_000_000;
/// How often each well-behaved sender of `abuse` sends (10 per second: under the default
/// per-connection rate limit of 20/s).
const ABUSE_EVERY: Duration = Duration::from_millis(100);
/// Envelopes per 60 s a well-behaved sender of `abuse` needs remembered (10/s × 60 s, and some).
const ABUSE_REPLAY: usize = 1_024;

#[derive(Parser)]
#[command(about = "Load on the signaling server: idle connections and routing, with numbers")]
struct Args {
    /// The `call-signaling` binary (else `$CALL_SIGNALING_BIN`, else next to this tool).
    #[arg(long, global = true)]
    server: Option<PathBuf>,
    /// Run the server inside this process (RSS and CPU then include the clients).
    #[arg(long, global = true)]
    in_process: bool,
    /// An extra `call-signaling` flag, e.g. `--server-arg=--ws-read-buffer-kib=4` (repeatable;
    /// not with `--in-process`).
    #[arg(long = "server-arg", global = true, allow_hyphen_values = true)]
    server_args: Vec<String>,
    #[command(subcommand)]
    what: What,
}

#[derive(Subcommand)]
enum What {
    /// Hold N authenticated idle connections; server RSS per connection.
    Idle {
        /// Connections to hold.
        #[arg(long, default_value_t = 1000)]
        connections: usize,
    },
    /// M sender/receiver pairs: envelopes/s, server CPU per envelope, latency at half rate.
    Route {
        /// Sender/receiver pairs.
        #[arg(long, default_value_t = 8)]
        pairs: usize,
        /// Seconds of each phase (full speed, then half rate).
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// K concurrent relay-only 1:1 calls through the embedded TURN: loss, jitter, CPU per call.
    Calls {
        /// Concurrent calls (two engines each, both in this tool).
        #[arg(long, default_value_t = 10)]
        calls: usize,
        /// Seconds each call lasts.
        #[arg(long, default_value_t = 20)]
        seconds: u64,
    },
    /// Well-behaved pairs quiet, then under abuse: latency, peak RSS, server alive.
    Abuse {
        /// Well-behaved sender/receiver pairs (10 envelopes/s each).
        #[arg(long, default_value_t = 8)]
        pairs: usize,
        /// Seconds of each phase (quiet, then abused).
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Unauthenticated TURN requests per second.
        #[arg(long, default_value_t = AbusePlan::default().turn_per_second)]
        turn_rate: u32,
        /// Slowloris connections.
        #[arg(long, default_value_t = AbusePlan::default().slowloris)]
        slowloris: usize,
        /// `send` frames per second of the flooding client.
        #[arg(long, default_value_t = AbusePlan::default().flood_per_second)]
        flood_rate: u32,
    },
    /// The per-envelope steps of the server, in-process, with one Ed25519 verify as reference.
    Cost {
        /// Envelopes measured per step.
        #[arg(long, default_value_t = 2048)]
        envelopes: usize,
        /// Passes per step (the best is kept).
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
}

fn spec(args: &Args) -> ServerSpec {
    if args.in_process {
        return ServerSpec::default();
    }
    let bin = args.server.clone().unwrap_or_else(|| {
        std::env::var_os("CALL_SIGNALING_BIN")
            .map(PathBuf::from)
            .or_else(|| {
                std::env::current_exe()
                    .ok()
                    .and_then(|p| p.parent().map(|d| d.join("call-signaling")))
            })
            .unwrap_or_else(|| PathBuf::from("call-signaling"))
    });
    ServerSpec {
        bin: Some(bin),
        extra_args: args.server_args.clone(),
    }
}

async fn idle(args: &Args, connections: usize) -> Result<()> {
    if !(1..=MAX_CONNECTIONS).contains(&connections) {
        bail!("--connections must be 1 to {MAX_CONNECTIONS} (each side holds one descriptor per connection)");
    }
    let start = Instant::now();
    let raised = Raised {
        connections: connections + 16,
        rate: 20.0,
        burst: 50,
        replay: 256,
        turn_port: None,
    };
    let server = start_server(&spec(args), &raised).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pid = server.pid();
    let before = read_vm_rss(pid)?;
    let clients = connect_many(
        &server.url(),
        connections,
        ClientOptions::default(),
        start + RUN_LIMIT,
    )
    .await?;
    let login_time = start.elapsed();
    // Let the server's per-connection tasks settle (first pings, allocator).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = read_vm_rss(pid)?;
    let alive = clients.len();
    println!(
        "| idle connections | server RSS before | after | growth per connection | logins took |"
    );
    println!("|---|---|---|---|---|");
    println!(
        "| {alive} | {:.1} MiB | {:.1} MiB | {:.1} KiB | {:.1} s |",
        before as f64 / 1024.0,
        after as f64 / 1024.0,
        kib_per_connection(before, after, alive),
        login_time.as_secs_f64(),
    );
    if args.in_process {
        println!("(in-process: the RSS includes this tool's clients)");
    }
    for c in clients {
        drop(c);
    }
    server.stop().await;
    Ok(())
}

fn ms(d: Option<Duration>) -> f64 {
    d.map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)
}

async fn route(args: &Args, pairs: usize, seconds: u64) -> Result<()> {
    if !(1..=MAX_PAIRS).contains(&pairs) {
        bail!("--pairs must be 1 to {MAX_PAIRS}");
    }
    if !(1..=MAX_SECONDS).contains(&seconds) {
        bail!("--seconds must be 1 to {MAX_SECONDS} (two phases of it run)");
    }
    let start = Instant::now();
    let raised = Raised {
        connections: 2 * pairs + 16,
        rate: 1e6,
        burst: 1_000_000,
        replay: ROUTE_REPLAY,
        turn_port: None,
    };
    let server = start_server(&spec(args), &raised).await?;
    let pairs_up = Pairs::connect(&server.url(), pairs, ROUTE_REPLAY, start + RUN_LIMIT).await?;
    let pid = server.pid();
    let ticks = proc_cpu::ticks_per_second();
    let phase = Duration::from_secs(seconds);

    // Phase 1: as fast as the server takes them.
    eprintln!("full speed for {seconds} s ({pairs} pairs)");
    let (cpu0, own0, n0, t0) = (
        proc_cpu::read(pid)?,
        proc_cpu::read(std::process::id())?,
        pairs_up.delivered(),
        Instant::now(),
    );
    pairs_up.full_speed(phase).await?;
    let (cpu1, own1, n1, t1) = (
        proc_cpu::read(pid)?,
        proc_cpu::read(std::process::id())?,
        pairs_up.delivered(),
        Instant::now(),
    );
    let wall = t1 - t0;
    let full = n1 - n0;
    let rate = full as f64 / wall.as_secs_f64();
    let server_cpu = cpu1.since(cpu0).seconds(ticks);
    let own_cpu = own1.since(own0).seconds(ticks);

    // Let the queues drain before the paced phase.
    tokio::time::sleep(Duration::from_secs(1)).await;

    // Phase 2: half that rate, paced per sender.
    let half = (rate / 2.0).max(1.0);
    let every = Duration::from_secs_f64(pairs as f64 / half);
    eprintln!("half rate ({half:.0}/s, one envelope per sender every {every:?}) for {seconds} s");
    let n2 = pairs_up.delivered();
    let window = pairs_up.paced(every, phase).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let paced_sent = pairs_up.delivered() - n2;
    let refused = pairs_up.refused();
    let lat = pairs_up.finish(&[window]).await?.remove(0);
    println!("| pairs | envelopes/s (full speed) | server CPU | server CPU per envelope | envelopes per server core-second | client CPU | paced rate | p50 | p99 | refused |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let per_env = cpu_micros_per_envelope(server_cpu, full);
    println!(
        "| {pairs} | {rate:.0} | {:.2} cores | {per_env:.1} µs | {:.0} | {:.2} cores | {:.0}/s | {:.2} ms | {:.2} ms | {refused} |",
        server_cpu / wall.as_secs_f64(),
        if per_env > 0.0 { 1e6 / per_env } else { 0.0 },
        own_cpu / wall.as_secs_f64(),
        paced_sent as f64 / phase.as_secs_f64(),
        ms(quantile(&lat, 0.5)),
        ms(quantile(&lat, 0.99)),
    );
    if server.in_process() {
        println!("(in-process: the server CPU includes this tool's clients)");
    }
    if lat.is_empty() {
        bail!("no envelope arrived in the paced phase");
    }
    server.stop().await;
    Ok(())
}

async fn run_calls(args: &Args, k: usize, seconds: u64) -> Result<()> {
    if !(1..=MAX_CALLS).contains(&k) {
        bail!("--calls must be 1 to {MAX_CALLS}");
    }
    if !(2..=MAX_CALL_SECONDS).contains(&seconds) {
        bail!("--seconds must be 2 to {MAX_CALL_SECONDS}");
    }
    let raised = Raised {
        connections: 2 * k + 16,
        rate: 20.0,
        burst: 50,
        replay: 256,
        turn_port: Some(free_udp_port()?),
    };
    let server = start_server(&spec(args), &raised).await?;
    let url = server.url();
    let callees = calls::start_callees(&url, k);
    // The callees log in before anyone dials them (a dial to an offline ID fails at once).
    tokio::time::sleep(Duration::from_millis(1000 + 20 * k as u64)).await;
    let ticks = proc_cpu::ticks_per_second();
    let (pid, own) = (server.pid(), std::process::id());
    eprintln!("{k} relay-only calls for {seconds} s");
    let dials = tokio::spawn({
        let url = url.clone();
        async move { calls::run_calls(&url, callees, seconds).await }
    });
    // CPU over the calls' steady middle: from 2 s after dialing to 1 s before they end.
    let settle = Duration::from_secs(2.min(seconds / 3));
    tokio::time::sleep(settle).await;
    let (s0, o0, t0) = (proc_cpu::read(pid)?, proc_cpu::read(own)?, Instant::now());
    tokio::time::sleep(Duration::from_secs(seconds) - settle - Duration::from_millis(500)).await;
    let (s1, o1, t1) = (proc_cpu::read(pid)?, proc_cpu::read(own)?, Instant::now());
    let results = dials.await?;
    let wall = (t1 - t0).as_secs_f64();
    let server_cores = s1.since(s0).seconds(ticks) / wall;
    let tool_cores = o1.since(o0).seconds(ticks) / wall;
    println!("| call | a→b sent / received | b→a sent / received | loss (worse side) | jitter (worse side) | relayed |");
    println!("|---|---|---|---|---|---|");
    let mut ok = Vec::new();
    for (i, r) in results.iter().enumerate() {
        match r {
            Ok(f) => {
                println!(
                    "| {i} | {} / {} | {} / {} | {:.2} % | {:.2} ms | {} |",
                    f.a_to_b.0,
                    f.a_to_b.1,
                    f.b_to_a.0,
                    f.b_to_a.1,
                    f.loss * 100.0,
                    f.jitter_ms,
                    if f.relayed { "yes" } else { "NO" }
                );
                ok.push(f.clone());
            }
            Err(e) => println!("| {i} | failed: {e} | | | | |"),
        }
    }
    let s = calls::summarize(&ok);
    println!();
    println!("| calls | ok | relayed | packets received / sent | loss mean / worst | jitter mean / worst | tool CPU | tool CPU per call | server (relay) CPU | server CPU per call |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    println!(
        "| {k} | {} | {} | {} / {} ({:.1} %) | {:.2} % / {:.2} % | {:.2} / {:.2} ms | {tool_cores:.2} cores | {:.1} % | {server_cores:.3} cores | {:.2} % |",
        s.ok,
        s.relayed,
        s.packets,
        s.sent,
        s.delivered() * 100.0,
        s.loss.0 * 100.0,
        s.loss.1 * 100.0,
        s.jitter_ms.0,
        s.jitter_ms.1,
        tool_cores * 100.0 / k as f64,
        server_cores * 100.0 / k as f64,
    );
    if server.in_process() {
        println!("(in-process: the server CPU includes this tool's calls)");
    }
    server.stop().await;
    if s.ok == 0 {
        bail!("no call connected");
    }
    Ok(())
}

/// Samples the server's RSS every 100 ms until `end`; returns the peak, KiB.
async fn peak_rss(pid: u32, end: Instant) -> u64 {
    let mut peak = 0;
    while Instant::now() < end {
        if let Ok(kib) = read_vm_rss(pid) {
            peak = peak.max(kib);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    peak
}

async fn run_abuse(args: &Args, pairs: usize, seconds: u64, plan: AbusePlan) -> Result<()> {
    if !(1..=64).contains(&pairs) {
        bail!("--pairs must be 1 to 64 (under the default 64 WebSockets per address with the abusers)");
    }
    if !(1..=MAX_SECONDS).contains(&seconds) {
        bail!("--seconds must be 1 to {MAX_SECONDS} (two phases of it run)");
    }
    if plan.slowloris > 2_000 || plan.turn_per_second > 100_000 || plan.flood_per_second > 100_000 {
        bail!(
            "at most 2000 slowloris connections, 100000 TURN requests/s and 100000 flood frames/s"
        );
    }
    let start = Instant::now();
    let turn_port = free_udp_port()?;
    // Default limits but what the well-behaved clients need: their logins at once, and a
    // replay window for 10 envelopes/s.
    let raised = Raised {
        connections: 10_000,
        rate: 20.0,
        burst: 50,
        replay: ABUSE_REPLAY,
        turn_port: Some(turn_port),
    };
    let mut server = start_server(&spec(args), &raised).await?;
    let url = server.url();
    let ws_addr: std::net::SocketAddr = url
        .trim_start_matches("ws://")
        .split('/')
        .next()
        .unwrap_or_default()
        .parse()?;
    let turn_addr = std::net::SocketAddr::from(([127, 0, 0, 1], turn_port));
    let pid = server.pid();
    let pairs_up = Pairs::connect(&url, pairs, ABUSE_REPLAY, start + RUN_LIMIT).await?;
    let rss_before = read_vm_rss(pid)?;
    let phase = Duration::from_secs(seconds);

    eprintln!("quiet: {pairs} pairs, one envelope each every {ABUSE_EVERY:?}, for {seconds} s");
    let quiet_end = Instant::now() + phase;
    let quiet_peak = tokio::spawn(peak_rss(pid, quiet_end));
    let ticks = proc_cpu::ticks_per_second();
    let (c0, t0) = (proc_cpu::read(pid)?, Instant::now());
    let quiet = pairs_up.paced(ABUSE_EVERY, phase).await?;
    let quiet_cores = proc_cpu::read(pid)?.since(c0).seconds(ticks) / t0.elapsed().as_secs_f64();
    let quiet_peak = quiet_peak.await?;

    eprintln!("abused: the same, with {plan:?}");
    let counts = Arc::new(AbuseCounts::default());
    let victim = pairs_up
        .receiver_id(0)
        .unwrap_or_else(|| Identity::generate().call_id());
    // The abusers start a moment before the measured window and stop with it.
    let end = Instant::now() + phase + Duration::from_millis(500);
    let mut abusers = tokio::task::JoinSet::new();
    abusers.spawn(abuse::turn_flood(turn_addr, plan, end, Arc::clone(&counts)));
    abusers.spawn(abuse::slowloris(ws_addr, plan, end, Arc::clone(&counts)));
    for _ in 0..plan.bad_frame_workers {
        abusers.spawn(abuse::bad_frames(url.clone(), end, Arc::clone(&counts)));
    }
    for worker in 0..plan.wrong_key_workers {
        abusers.spawn(abuse::wrong_key_logins(
            url.clone(),
            ws_addr,
            worker,
            victim,
            end,
            Arc::clone(&counts),
        ));
    }
    abusers.spawn(abuse::flood(
        url.clone(),
        victim,
        plan.flood_per_second,
        end,
        Arc::clone(&counts),
    ));
    let abused_peak = tokio::spawn(peak_rss(pid, end + Duration::from_secs(1)));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (c0, t0) = (proc_cpu::read(pid)?, Instant::now());
    let abused = pairs_up.paced(ABUSE_EVERY, phase).await?;
    let abused_cores = proc_cpu::read(pid)?.since(c0).seconds(ticks) / t0.elapsed().as_secs_f64();
    while abusers.join_next().await.is_some() {}
    let abused_peak = abused_peak.await?;
    let alive = server.alive();
    // A fresh login after the abuse: the server still serves.
    let fresh = tokio::time::timeout(
        Duration::from_secs(10),
        Client::connect(&url, Identity::generate(), ClientOptions::default()),
    )
    .await
    .map(|r| r.is_ok())
    .unwrap_or(false);
    let refused = pairs_up.refused();
    let lat = pairs_up.finish(&[quiet, abused]).await?;
    let (q, a) = (&lat[0], &lat[1]);
    println!("| phase | envelopes timed | p50 | p99 | server peak RSS | server CPU |");
    println!("|---|---|---|---|---|---|");
    for (phase, lat, peak, cores) in [
        ("quiet", q, quiet_peak, quiet_cores),
        ("abused", a, abused_peak, abused_cores),
    ] {
        println!(
            "| {phase} | {} | {:.2} ms | {:.2} ms | {:.1} MiB | {cores:.2} cores |",
            lat.len(),
            ms(quantile(lat, 0.5)),
            ms(quantile(lat, 0.99)),
            peak as f64 / 1024.0
        );
    }
    let ratio = |x: f64, y: f64| if x > 0.0 { y / x } else { f64::NAN };
    println!();
    println!(
        "p50 ×{:.2}, p99 ×{:.2} under abuse; RSS before {:.1} MiB; server alive: {}; fresh login after: {}; refusals to well-behaved senders: {refused}",
        ratio(ms(quantile(q, 0.5)), ms(quantile(a, 0.5))),
        ratio(ms(quantile(q, 0.99)), ms(quantile(a, 0.99))),
        rss_before as f64 / 1024.0,
        if alive { "yes" } else { "NO" },
        if fresh { "ok" } else { "FAILED" },
    );
    println!("abusers: {}", counts.summary());
    if server.in_process() {
        println!("(in-process: the RSS includes this tool's clients and abusers)");
    }
    server.stop().await;
    if !alive || !fresh {
        bail!("the server did not survive the abuse");
    }
    if counts
        .wrong_key_accepted
        .load(std::sync::atomic::Ordering::Relaxed)
        > 0
    {
        bail!("a wrong-key login was accepted");
    }
    if q.is_empty() || a.is_empty() {
        bail!("no envelope arrived in a measured phase");
    }
    Ok(())
}

fn main() -> Result<()> {
    benches::tool::quiet_logs();
    let args = Args::parse();
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => eprintln!("open-file limit of this tool: {limit}"),
        Err(err) => eprintln!("cannot raise the open-file limit: {err}"),
    }
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        match args.what {
            What::Idle { connections } => idle(&args, connections).await,
            What::Route { pairs, seconds } => route(&args, pairs, seconds).await,
            What::Calls { calls, seconds } => run_calls(&args, calls, seconds).await,
            What::Abuse {
                pairs,
                seconds,
                turn_rate,
                slowloris,
                flood_rate,
            } => {
                let plan = AbusePlan {
                    turn_per_second: turn_rate,
                    slowloris,
                    flood_per_second: flood_rate,
                    ..AbusePlan::default()
                };
                run_abuse(&args, pairs, seconds, plan).await
            }
            What::Cost { envelopes, rounds } => {
                print!("{}", cost::table(&cost::measure(envelopes, rounds)));
                Ok(())
            }
        }
    })
}
