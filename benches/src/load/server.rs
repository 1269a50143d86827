//! The server under load for `call-load`: the `call-signaling` binary as a child process (the
//! figures are its own CPU and memory), or a [`Server`] inside the tool (for tests), started with
//! the limits the load would otherwise hit raised; and many logins at once.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use signaling::client::{Client, ClientOptions};
use signaling::identity::Identity;
use signaling::server::{RateLimit, RunningServer, Server, ServerConfig, TurnConfig};
use tokio::sync::Semaphore;

/// Logins in flight at once (the server's per-address handshake limit is raised above it).
pub const CONCURRENT_LOGINS: usize = 128;

/// Which server to run and how.
#[derive(Debug, Clone, Default)]
pub struct ServerSpec {
    /// The `call-signaling` binary; `None` runs the server inside this process.
    pub bin: Option<PathBuf>,
    /// Extra `call-signaling` flags (not with an in-process server).
    pub extra_args: Vec<String>,
}

/// The limits raised for a run, as `call-signaling` flags.
#[derive(Debug, Clone)]
pub struct Raised {
    /// WebSockets in all and per address.
    pub connections: usize,
    /// Frames per second per connection.
    pub rate: f64,
    /// Burst of frames per connection.
    pub burst: u32,
    /// Envelopes per connection per 60 s (the server's replay window caps a sender's rate).
    pub replay: usize,
    /// UDP port of the embedded TURN server on 127.0.0.1; `None` runs no TURN.
    pub turn_port: Option<u16>,
}

impl Raised {
    /// The `call-signaling` flags that set these limits.
    pub fn flags(&self) -> Vec<String> {
        let mut flags = vec![
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
        ];
        match self.turn_port {
            Some(port) => {
                flags.push("--turn-listen".into());
                flags.push(format!("127.0.0.1:{port}"));
                // The peers are on loopback too (development only; refused by default).
                flags.push("--allow-loopback-peers".into());
            }
            None => flags.push("--no-turn".into()),
        }
        flags
    }
}

/// A free UDP port on 127.0.0.1 (free when this returns; the server binds it right after).
pub fn free_udp_port() -> Result<u16> {
    let s = UdpSocket::bind("127.0.0.1:0").context("binding a UDP socket to find a free port")?;
    Ok(s.local_addr()?.port())
}

/// The server under load: a child process, or one inside this process.
pub enum ServerUnderLoad {
    /// `call-signaling` as a child; killed on drop.
    Child {
        /// The process.
        child: Child,
        /// Its `ws://` URL.
        url: String,
    },
    /// A server in this process; `None` once stopped.
    InProcess(Option<RunningServer>),
}

impl ServerUnderLoad {
    /// The `ws://` URL clients dial.
    pub fn url(&self) -> String {
        match self {
            ServerUnderLoad::Child { url, .. } => url.clone(),
            ServerUnderLoad::InProcess(s) => s.as_ref().map(|s| s.url()).unwrap_or_default(),
        }
    }

    /// The process whose CPU and memory are the server's.
    pub fn pid(&self) -> u32 {
        match self {
            ServerUnderLoad::Child { child, .. } => child.id(),
            ServerUnderLoad::InProcess(_) => std::process::id(),
        }
    }

    /// True for a server inside this process (its CPU and RSS include the clients).
    pub fn in_process(&self) -> bool {
        matches!(self, ServerUnderLoad::InProcess(_))
    }

    /// Whether a child server is still running (an in-process one always is until stopped).
    pub fn alive(&mut self) -> bool {
        match self {
            ServerUnderLoad::Child { child, .. } => matches!(child.try_wait(), Ok(None)),
            ServerUnderLoad::InProcess(s) => s.is_some(),
        }
    }

    /// Shuts an in-process server down; a child is killed on drop.
    pub async fn stop(mut self) {
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

/// Starts the server with `raised` limits (printed on stderr).
pub async fn start_server(spec: &ServerSpec, raised: &Raised) -> Result<ServerUnderLoad> {
    eprintln!(
        "server limits raised for the run: {}",
        raised.flags().join(" ")
    );
    let Some(bin) = &spec.bin else {
        let mut cfg = ServerConfig::local();
        cfg.turn = raised.turn_port.map(|port| TurnConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], port)),
            ..TurnConfig::local()
        });
        cfg.limits.max_connections = raised.connections;
        cfg.limits.max_connections_per_ip = raised.connections;
        cfg.limits.max_handshakes_per_ip = 2 * CONCURRENT_LOGINS;
        cfg.limits.rate = RateLimit {
            per_second: raised.rate,
            burst: raised.burst,
        };
        cfg.limits.replay_capacity = raised.replay;
        return Ok(ServerUnderLoad::InProcess(Some(Server::start(cfg).await?)));
    };
    if !bin.is_file() {
        bail!(
            "no `call-signaling` binary at {}; build it with `cargo build --release -p signaling --bin call-signaling`, pass --server PATH, or use --in-process",
            bin.display()
        );
    }
    let mut child = Command::new(bin)
        .args(["--listen", "127.0.0.1:0"])
        .args(raised.flags())
        .args(&spec.extra_args)
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

/// Logs in `n` fresh identities, [`CONCURRENT_LOGINS`] at a time, with progress on stderr.
pub async fn connect_many(
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
            bail!("only {k} of {n} logins started in time");
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
