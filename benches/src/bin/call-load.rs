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
//! ```

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use benches::load::{
    cpu_micros_per_envelope, kib_per_connection, quantile, read_vm_rss, stamp_of, stamped_plaintext,
};
use benches::proc_cpu;
use clap::{Parser, Subcommand};
use signaling::client::{Client, ClientOptions, ClientReceiver};
use signaling::envelope::{EnvelopeKind, ReplayLimits};
use signaling::identity::Identity;
use signaling::server::{RateLimit, RunningServer, Server, ServerConfig};
use tokio::sync::Semaphore;

/// Most idle connections: the client side holds one descriptor per connection too, and the
/// hard open-file limit here is 20,000.
const MAX_CONNECTIONS: usize = 19_000;
/// Most sender/receiver pairs.
const MAX_PAIRS: usize = 1_000;
/// Longest phase of `route` (two phases: the whole run stays under two minutes).
const MAX_SECONDS: u64 = 50;
/// Logins in flight at once (the server's per-address handshake limit is raised above it).
const CONCURRENT_LOGINS: usize = 128;
/// The whole run must end within this.
const RUN_LIMIT: Duration = Duration::from_secs(120);
/// Envelopes one connection may send per 60 s in `route` (server and receivers remember each
/// that long to refuse resends; the default 256 would cap a sender at about 4 per second).
const ROUTE_REPLAY: usize = 4_000_000;
/// Plaintext bytes per routed envelope: about an ICE candidate's.
const BODY_BYTES: usize = 200;

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
}

/// The server under load: a child process, or one inside this process.
enum ServerUnderLoad {
    Child {
        child: Child,
        url: String,
    },
    /// `None` once stopped.
    InProcess(Option<RunningServer>),
}

impl ServerUnderLoad {
    fn url(&self) -> String {
        match self {
            ServerUnderLoad::Child { url, .. } => url.clone(),
            ServerUnderLoad::InProcess(s) => s.as_ref().map(|s| s.url()).unwrap_or_default(),
        }
    }

    fn pid(&self) -> u32 {
        match self {
            ServerUnderLoad::Child { child, .. } => child.id(),
            ServerUnderLoad::InProcess(_) => std::process::id(),
        }
    }

    /// Shuts an in-process server down; a child is killed on drop.
    async fn stop(mut self) {
        if let ServerUnderLoad::InProcess(s) = &mut self {
            if let Some(s) = s.take() {
                s.shutdown().await;
            }
        }
    }
}

impl Drop for ServerUnderLoad {
    fn drop(&mut self) {
        if let ServerUnderLoad::Child { child, .. } = self {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The limits raised for the run, as `call-signaling` flags.
struct Raised {
    connections: usize,
    rate: f64,
    burst: u32,
    /// Envelopes per connection per 60 s (the server's replay window caps a sender's rate).
    replay: usize,
}

impl Raised {
    fn flags(&self) -> Vec<String> {
        vec![
            "--max-connections".into(),
            self.connections.to_string(),
            "--max-connections-per-ip".into(),
            self.connections.to_string(),
            "--max-handshakes-per-ip".into(),
            (2 * CONCURRENT_LOGINS).to_string(),
            "--rate".into(),
            self.rate.to_string(),
            "--burst".into(),
            self.burst.to_string(),
            "--replay-capacity".into(),
            self.replay.to_string(),
        ]
    }
}

fn server_bin(args: &Args) -> PathBuf {
    if let Some(p) = &args.server {
        return p.clone();
    }
    if let Some(p) = std::env::var_os("CALL_SIGNALING_BIN") {
        return PathBuf::from(p);
    }
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("call-signaling")))
        .unwrap_or_else(|| PathBuf::from("call-signaling"))
}

async fn start_server(args: &Args, raised: &Raised) -> Result<ServerUnderLoad> {
    eprintln!(
        "server limits raised for the run: {}",
        raised.flags().join(" ")
    );
    if args.in_process {
        let mut cfg = ServerConfig::local();
        cfg.turn = None;
        cfg.limits.max_connections = raised.connections;
        cfg.limits.max_connections_per_ip = raised.connections;
        cfg.limits.max_handshakes_per_ip = 2 * CONCURRENT_LOGINS;
        cfg.limits.rate = RateLimit {
            per_second: raised.rate,
            burst: raised.burst,
        };
        cfg.limits.replay_capacity = raised.replay;
        return Ok(ServerUnderLoad::InProcess(Some(Server::start(cfg).await?)));
    }
    let bin = server_bin(args);
    if !bin.is_file() {
        bail!(
            "no `call-signaling` binary at {}; build it with `cargo build --release -p signaling --bin call-signaling`, pass --server PATH, or use --in-process",
            bin.display()
        );
    }
    let mut child = Command::new(&bin)
        .args(["--listen", "127.0.0.1:0", "--no-turn"])
        .args(raised.flags())
        .args(&args.server_args)
        .env(
            "RUST_LOG",
            std::env::var("CALL_LOAD_SERVER_LOG").unwrap_or_else(|_| "error".into()),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let stdout = child.stdout.take().context("server stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let mut server = ServerUnderLoad::Child {
        child,
        url: String::new(),
    };
    let line = rx
        .recv_timeout(Duration::from_secs(10))
        .context("call-signaling did not print its URL within 10 s")?;
    let url = line.trim().to_string();
    if !url.starts_with("ws://") {
        bail!("call-signaling printed {url:?} instead of its ws:// URL");
    }
    if let ServerUnderLoad::Child { url: u, .. } = &mut server {
        *u = url;
    }
    Ok(server)
}

/// Logs in `n` fresh identities, `CONCURRENT_LOGINS` at a time, with progress on stderr.
async fn connect_many(
    url: &str,
    n: usize,
    opts: ClientOptions,
    deadline: Instant,
) -> Result<Vec<Client>> {
    let gate = Arc::new(Semaphore::new(CONCURRENT_LOGINS));
    let mut tasks = tokio::task::JoinSet::new();
    for k in 0..n {
        let permit = Arc::clone(&gate).acquire_owned().await?;
        let (url, opts) = (url.to_string(), opts.clone());
        tasks.spawn(async move {
            let client = Client::connect(&url, Identity::generate(), opts).await;
            drop(permit);
            (k, client)
        });
        if Instant::now() > deadline {
            bail!("only {k} of {n} logins started within {RUN_LIMIT:?}");
        }
    }
    let mut clients: Vec<Option<Client>> = (0..n).map(|_| None).collect();
    let mut done = 0;
    while let Some(joined) = tasks.join_next().await {
        let (k, client) = joined?;
        clients[k] = Some(client.with_context(|| format!("login {k} of {n}"))?);
        done += 1;
        if done % 1000 == 0 || done == n {
            eprintln!("logged in: {done}/{n}");
        }
    }
    Ok(clients.into_iter().flatten().collect())
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
    };
    let server = start_server(args, &raised).await?;
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

/// What one receiver saw: envelopes opened, and (send time, latency) of each.
struct Received {
    latencies: Vec<(Duration, Duration)>,
}

async fn receive(mut rx: ClientReceiver, origin: Instant, count: Arc<AtomicU64>) -> Received {
    let mut latencies = Vec::new();
    while let Some(got) = rx.recv().await {
        let Ok(inc) = got else { continue };
        if let Some(sent) = stamp_of(&inc.plaintext) {
            latencies.push((sent, origin.elapsed().saturating_sub(sent)));
        }
        count.fetch_add(1, Ordering::Relaxed);
    }
    Received { latencies }
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
    };
    let server = start_server(args, &raised).await?;
    let opts = ClientOptions {
        recv_queue: 8192,
        replay_limits: ReplayLimits {
            per_sender: ROUTE_REPLAY,
            ..ReplayLimits::default()
        },
        ..ClientOptions::default()
    };
    let clients = connect_many(&server.url(), 2 * pairs, opts, start + RUN_LIMIT).await?;
    let origin = Instant::now();
    let delivered = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let mut senders = Vec::new();
    let mut receivers = Vec::new();
    let mut it = clients.into_iter();
    while let (Some(s), Some(r)) = (it.next(), it.next()) {
        let to = r.id();
        let (stx, mut srx) = s.split();
        // The sender's own inbox: `recipient_busy` and other refusals, counted.
        let refused = Arc::clone(&refused);
        tokio::spawn(async move {
            while let Some(got) = srx.recv().await {
                if let Err(err) = got {
                    if refused.fetch_add(1, Ordering::Relaxed) < 3 {
                        eprintln!("a sender was told: {err}");
                    }
                }
            }
        });
        let (_rtx, rrx) = r.split();
        receivers.push(tokio::spawn(receive(rrx, origin, Arc::clone(&delivered))));
        senders.push((stx, to, _rtx));
    }
    let pid = server.pid();
    let ticks = proc_cpu::ticks_per_second();
    let phase = Duration::from_secs(seconds);

    // Phase 1: as fast as the server takes them.
    eprintln!("full speed for {seconds} s ({pairs} pairs)");
    let (cpu0, own0, n0, t0) = (
        proc_cpu::read(pid)?,
        proc_cpu::read(std::process::id())?,
        delivered.load(Ordering::Relaxed),
        Instant::now(),
    );
    let end = t0 + phase;
    let mut tasks = tokio::task::JoinSet::new();
    for (stx, to, _) in &senders {
        let (stx, to) = (stx.clone(), *to);
        tasks.spawn(async move {
            while Instant::now() < end {
                let body = stamped_plaintext(origin.elapsed(), BODY_BYTES);
                stx.send(&to, EnvelopeKind::Candidate, &body).await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    let (cpu1, own1, n1, t1) = (
        proc_cpu::read(pid)?,
        proc_cpu::read(std::process::id())?,
        delivered.load(Ordering::Relaxed),
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
    let t2 = Instant::now();
    let end = t2 + phase;
    let from = t2 - origin + Duration::from_millis(500);
    let until = end - origin;
    for (stx, to, _) in &senders {
        let (stx, to) = (stx.clone(), *to);
        tasks.spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            while Instant::now() < end {
                tick.tick().await;
                let body = stamped_plaintext(origin.elapsed(), BODY_BYTES);
                stx.send(&to, EnvelopeKind::Candidate, &body).await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let paced_sent = delivered.load(Ordering::Relaxed) - n1;
    drop(senders); // Closes the connections; the receivers end.
    let mut lat = Vec::new();
    for r in receivers {
        let got = tokio::time::timeout(Duration::from_secs(5), r)
            .await
            .context("a receiver did not end after its connection closed")??;
        lat.extend(
            got.latencies
                .into_iter()
                .filter(|(sent, _)| *sent >= from && *sent < until)
                .map(|(_, l)| l),
        );
    }
    lat.sort_unstable();
    let ms = |d: Option<Duration>| d.map_or(f64::NAN, |d| d.as_secs_f64() * 1e3);
    println!("| pairs | envelopes/s (full speed) | server CPU | server CPU per envelope | envelopes per server core-second | client CPU | paced rate | p50 | p99 | refused |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let per_env = cpu_micros_per_envelope(server_cpu, full);
    println!(
        "| {pairs} | {rate:.0} | {:.2} cores | {per_env:.1} µs | {:.0} | {:.2} cores | {:.0}/s | {:.2} ms | {:.2} ms | {} |",
        server_cpu / wall.as_secs_f64(),
        if per_env > 0.0 { 1e6 / per_env } else { 0.0 },
        own_cpu / wall.as_secs_f64(),
        paced_sent as f64 / phase.as_secs_f64(),
        ms(quantile(&lat, 0.5)),
        ms(quantile(&lat, 0.99)),
        refused.load(Ordering::Relaxed),
    );
    if args.in_process {
        println!("(in-process: the server CPU includes this tool's clients)");
    }
    if lat.is_empty() {
        bail!("no envelope arrived in the paced phase");
    }
    server.stop().await;
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
        }
    })
}
