//! `call-signaling`: the signaling server with embedded TURN, as a standalone binary.
//!
//! Prints exactly one line on stdout, the WebSocket URL, once it accepts connections
//! (e.g. `ws://127.0.0.1:8443/ws`); logs go to stderr (`RUST_LOG`, default `info`).
//! Stops gracefully on SIGINT or SIGTERM. Every flag can also come from a TOML file
//! (`--config FILE`, keys are the long flag names), below the environment and the command line.

use std::ffi::OsString;
use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory as _, FromArgMatches as _};
use signaling::server::config_file::file_args;
use signaling::server::mailbox::MailboxLimits;
use signaling::server::secret_file::read_turn_secret_file;
use signaling::server::{
    ClusterConfig, Limits, RateLimit, Server, ServerConfig, TlsPaths, TurnConfig, TurnLimits,
};
use signaling::turn_credentials::{TurnSecret, DEFAULT_CREDENTIAL_TTL_SECS, DEFAULT_MAX_TTL_SECS};

/// End-to-end encrypted signaling server for `call`, with an embedded TURN relay.
#[derive(Debug, clap::Parser)]
#[command(name = "call-signaling", version)]
struct Args {
    /// TOML file setting any of these flags (keys: the long flag names without `--`, e.g.
    /// `listen = "0.0.0.0:8443"`); the environment and the command line override it.
    #[arg(long, env = "CALL_SIGNALING_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,

    /// TCP address to serve Prometheus metrics on (GET /metrics, plain HTTP); off by default.
    /// Keep it on loopback or a private network: it is not the public port.
    #[arg(long, env = "CALL_METRICS_LISTEN", value_name = "ADDR")]
    metrics_listen: Option<SocketAddr>,

    /// Redis shared by several instances behind one load balancer (redis://[:PASSWORD@]HOST[:PORT][/DB]):
    /// presence, routing between instances and the offline mailbox live there. Run Redis with
    /// persistence off (--save "" --appendonly no). A password is visible in `ps` when given
    /// here: prefer the environment variable or the config file.
    #[arg(
        long,
        env = "CALL_SIGNALING_REDIS",
        value_name = "URL",
        hide_env_values = true
    )]
    redis: Option<String>,

    /// TCP address to serve WebSockets on (path /ws). Port 0 picks a free port.
    #[arg(long, env = "CALL_SIGNALING_LISTEN", default_value = "127.0.0.1:8443")]
    listen: SocketAddr,

    /// Name put in every auth challenge: the DNS name or IP address clients dial (they check
    /// it). Default: the --listen IP; required when listening on a wildcard such as 0.0.0.0.
    #[arg(long, env = "CALL_SERVER_NAME")]
    server_name: Option<String>,

    /// UDP address of the embedded TURN server.
    #[arg(long, env = "CALL_TURN_LISTEN", default_value = "127.0.0.1:3478")]
    turn_listen: SocketAddr,

    /// Address advertised in turn: URLs and relay addresses (required if --turn-listen is a
    /// wildcard address such as 0.0.0.0).
    #[arg(long, env = "CALL_TURN_PUBLIC_IP")]
    turn_public_ip: Option<IpAddr>,

    /// Run no embedded TURN server.
    #[arg(long)]
    no_turn: bool,

    /// Shared secret for TURN REST credentials (random if absent; set it to share with coturn).
    /// Visible to other local users in `ps` when given here: prefer --turn-secret-file or the
    /// environment variable.
    #[arg(long, env = "CALL_TURN_SECRET", hide_env_values = true)]
    turn_secret: Option<String>,

    /// File holding the TURN shared secret (one line; must not be readable by group or others).
    #[arg(
        long,
        env = "CALL_TURN_SECRET_FILE",
        conflicts_with = "turn_secret",
        value_name = "PATH"
    )]
    turn_secret_file: Option<PathBuf>,

    /// Extra TURN URL to hand out (e.g. a coturn using the same secret); repeatable.
    #[arg(long = "turn-url", env = "CALL_TURN_URLS", value_delimiter = ',')]
    turn_urls: Vec<String>,

    /// Lifetime of issued TURN credentials, seconds.
    #[arg(long, env = "CALL_TURN_TTL", default_value_t = DEFAULT_CREDENTIAL_TTL_SECS)]
    turn_ttl: u64,

    /// Largest credential lifetime the embedded TURN server accepts, seconds.
    #[arg(long, env = "CALL_TURN_MAX_TTL", default_value_t = DEFAULT_MAX_TTL_SECS)]
    turn_max_ttl: u64,

    /// Allocations one call ID may hold on the embedded TURN server (more: 486).
    #[arg(long, env = "CALL_TURN_USER_QUOTA", default_value_t = TurnLimits::default().allocations_per_user)]
    turn_user_quota: usize,

    /// Allocations the embedded TURN server holds in all (more: 508).
    #[arg(long, env = "CALL_TURN_TOTAL_QUOTA", default_value_t = TurnLimits::default().max_allocations)]
    turn_total_quota: usize,

    /// Peers (permissions) and channels per TURN allocation (more: 508).
    #[arg(long, env = "CALL_TURN_MAX_PERMISSIONS", default_value_t = TurnLimits::default().permissions_per_allocation)]
    turn_max_permissions: usize,

    /// Relayed kbit/s per TURN allocation and direction; 0 for no cap.
    #[arg(long, env = "CALL_TURN_BANDWIDTH_KBPS", default_value_t = 0)]
    turn_bandwidth_kbps: u64,

    /// Allow the TURN relay to reach loopback/private/link-local peers (development only).
    #[arg(long, env = "CALL_ALLOW_LOOPBACK_PEERS")]
    allow_loopback_peers: bool,

    /// TLS certificate chain (PEM); serves wss:// together with --tls-key.
    #[arg(long, env = "CALL_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,

    /// TLS private key (PEM).
    #[arg(long, env = "CALL_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,

    /// Browser origin (scheme://host or scheme://host:port) allowed to open /ws; repeatable.
    /// Requests with any other Origin header are refused; clients that send none (not
    /// browsers) always pass.
    #[arg(
        long = "allow-origin",
        env = "CALL_ALLOW_ORIGINS",
        value_delimiter = ','
    )]
    allow_origins: Vec<String>,

    /// The URL people open to reach this server's page when it is not the listen address, e.g.
    /// https://call.example.org/ behind a reverse proxy: its origin may open /ws. The page at
    /// the listen address (and localhost on loopback) and at the server name is always allowed.
    #[arg(long, env = "CALL_PUBLIC_URL", value_name = "URL")]
    public_url: Option<String>,

    /// Seconds a connection has to authenticate.
    #[arg(long, default_value_t = 10)]
    auth_timeout: u64,

    /// Seconds without any traffic (including pongs) before a connection is closed.
    #[arg(long, default_value_t = 60)]
    idle_timeout: u64,

    /// Sustained frames per second allowed per connection.
    #[arg(long, default_value_t = 20.0)]
    rate: f64,

    /// Burst of frames allowed per connection.
    #[arg(long, default_value_t = 50)]
    burst: u32,

    /// Maximum simultaneous WebSocket connections.
    #[arg(long, default_value_t = Limits::default().max_connections)]
    max_connections: usize,

    /// Maximum simultaneous WebSockets from one IPv4 address or IPv6 /64.
    #[arg(long, default_value_t = Limits::default().max_connections_per_ip)]
    max_connections_per_ip: usize,

    /// Maximum simultaneous TLS/HTTP handshakes from one IPv4 address or IPv6 /64.
    #[arg(long, default_value_t = Limits::default().max_handshakes_per_ip)]
    max_handshakes_per_ip: usize,

    /// Failed logins allowed per minute from one IPv4 address or IPv6 /64 (refused with HTTP
    /// 429 beyond, until the address earns one back); 0 for no limit.
    #[arg(long, default_value_t = Limits::default().login_failures_per_minute)]
    login_failures_per_minute: u32,

    /// KiB one sender may have queued for one recipient.
    #[arg(long, default_value_t = Limits::default().sender_queue_bytes / 1024)]
    sender_queue_kib: usize,

    /// KiB queued for one recipient.
    #[arg(long, default_value_t = Limits::default().recipient_queue_bytes / 1024)]
    recipient_queue_kib: usize,

    /// MiB queued for all recipients together.
    #[arg(long, default_value_t = Limits::default().global_queue_bytes / (1024 * 1024))]
    global_queue_mib: usize,

    /// Largest HTTP request head before the WebSocket upgrade, KiB (at least 8).
    #[arg(long, default_value_t = Limits::default().http_max_request_head / 1024)]
    http_max_request_head_kib: usize,

    /// WebSocket read buffer per connection, KiB.
    #[arg(long, default_value_t = Limits::default().ws_read_buffer / 1024)]
    ws_read_buffer_kib: usize,

    /// Most unwritten bytes per WebSocket, KiB (at least one 64 KiB frame plus a close frame).
    #[arg(long, default_value_t = Limits::default().ws_max_write_buffer / 1024)]
    ws_max_write_buffer_kib: usize,

    /// Kernel send buffer per client socket, KiB (default: the system's autotuning).
    #[arg(long)]
    tcp_send_buffer_kib: Option<usize>,

    /// Seconds writing one frame to a client may take before the client is disconnected.
    #[arg(long, default_value_t = Limits::default().send_timeout.as_secs())]
    send_timeout: u64,

    /// Envelopes one connection may send within 60 s: each is remembered that long to refuse
    /// resends, so this also caps a connection's sustained rate (256 / 60 s ≈ 4 per second).
    #[arg(long, default_value_t = Limits::default().replay_capacity)]
    replay_capacity: usize,

    /// Verify every envelope's signature before routing it (receivers verify anyway; it costs
    /// one Ed25519 verification per envelope, most of the server's CPU per envelope).
    #[arg(long)]
    verify_signatures: bool,

    /// Seconds a room envelope waits in memory for an offline recipient (at most 86400:
    /// receivers refuse older ones).
    #[arg(long, default_value_t = MailboxLimits::default().ttl_secs, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    mailbox_ttl: u64,

    /// Room envelopes kept per offline recipient.
    #[arg(long, default_value_t = MailboxLimits::default().per_recipient_count)]
    mailbox_per_recipient: usize,

    /// KiB kept per offline recipient.
    #[arg(long, default_value_t = MailboxLimits::default().per_recipient_bytes / 1024)]
    mailbox_recipient_kib: usize,

    /// MiB kept in the mailbox for everyone together (memory only; lost on restart).
    #[arg(long, default_value_t = MailboxLimits::default().total_bytes / (1024 * 1024))]
    mailbox_mib: usize,
}

impl Args {
    fn into_config(self) -> Result<ServerConfig, String> {
        let turn_secret = match (self.turn_secret, &self.turn_secret_file) {
            (Some(s), _) => Some(TurnSecret::new(s.into_bytes()).map_err(|e| e.to_string())?),
            (None, Some(path)) => Some(read_turn_secret_file(path).map_err(|e| e.to_string())?),
            (None, None) => None,
        };
        let limits = Limits {
            rate: RateLimit {
                per_second: self.rate,
                burst: self.burst,
            },
            auth_timeout: Duration::from_secs(self.auth_timeout),
            idle_timeout: Duration::from_secs(self.idle_timeout),
            ping_interval: Duration::from_secs((self.idle_timeout / 3).max(1)),
            max_connections: self.max_connections,
            max_connections_per_ip: self.max_connections_per_ip,
            max_handshakes_per_ip: self.max_handshakes_per_ip,
            login_failures_per_minute: self.login_failures_per_minute,
            sender_queue_bytes: self.sender_queue_kib.saturating_mul(1024),
            recipient_queue_bytes: self.recipient_queue_kib.saturating_mul(1024),
            global_queue_bytes: self.global_queue_mib.saturating_mul(1024 * 1024),
            send_timeout: Duration::from_secs(self.send_timeout.max(1)),
            replay_capacity: self.replay_capacity.max(1),
            verify_signatures: self.verify_signatures,
            tcp_send_buffer: self.tcp_send_buffer_kib.map(|k| k.saturating_mul(1024)),
            http_max_request_head: self.http_max_request_head_kib.saturating_mul(1024),
            ws_read_buffer: self.ws_read_buffer_kib.saturating_mul(1024),
            ws_max_write_buffer: self.ws_max_write_buffer_kib.saturating_mul(1024),
            mailbox: MailboxLimits {
                ttl_secs: self.mailbox_ttl,
                per_recipient_count: self.mailbox_per_recipient,
                per_recipient_bytes: self.mailbox_recipient_kib.saturating_mul(1024),
                total_bytes: self.mailbox_mib.saturating_mul(1024 * 1024),
                ..MailboxLimits::default()
            },
            ..Limits::default()
        };
        Ok(ServerConfig {
            listen: self.listen,
            server_name: self.server_name,
            turn: (!self.no_turn).then(|| TurnConfig {
                listen: self.turn_listen,
                public_ip: self.turn_public_ip,
                realm: "call".to_owned(),
                limits: TurnLimits {
                    allocations_per_user: self.turn_user_quota,
                    max_allocations: self.turn_total_quota,
                    permissions_per_allocation: self.turn_max_permissions,
                    bandwidth_per_allocation: (self.turn_bandwidth_kbps > 0)
                        .then(|| self.turn_bandwidth_kbps.saturating_mul(125)),
                    ..TurnLimits::default()
                },
            }),
            turn_secret,
            external_turn_urls: self.turn_urls,
            credential_ttl: self.turn_ttl,
            max_ttl: self.turn_max_ttl,
            allow_loopback_peers: self.allow_loopback_peers,
            allowed_origins: self.allow_origins,
            public_url: self.public_url,
            tls: match (self.tls_cert, self.tls_key) {
                (Some(cert), Some(key)) => Some(TlsPaths { cert, key }),
                _ => None,
            },
            limits,
            metrics_listen: self.metrics_listen,
            redis: self.redis.map(ClusterConfig::new),
        })
    }
}

/// The parsed flags: the command line over the environment over the `--config` file (if any)
/// over the defaults. Exits (status 2) with one clear line when the file is refused.
fn parse_flags() -> ArgMatches {
    // First only to learn which flags the command line and the environment set, and where the
    // file is: lenient, since a flag may need another (`--tls-cert` needs `--tls-key`) that
    // only the file gives. The second parse, with the file's values, checks everything.
    let first = match Args::command()
        .ignore_errors(true)
        .try_get_matches_from(std::env::args_os())
    {
        Ok(matches) => matches,
        Err(err) => err.exit(),
    };
    if first.value_source("turn_secret") == Some(ValueSource::CommandLine) {
        tracing::warn!(
            "--turn-secret on the command line is visible to other local users (ps, /proc); \
             use --turn-secret-file PATH or CALL_TURN_SECRET instead"
        );
    }
    let redis_password_on_argv = first
        .get_one::<String>("redis")
        .is_some_and(|url| url.split('/').nth(2).is_some_and(|host| host.contains('@')));
    if first.value_source("redis") == Some(ValueSource::CommandLine) && redis_password_on_argv {
        tracing::warn!(
            "--redis with a password on the command line is visible to other local users (ps, \
             /proc); use CALL_SIGNALING_REDIS or the config file (mode 0600) instead"
        );
    }
    let mut argv: Vec<OsString> = std::env::args_os().collect();
    let path = first.get_one::<PathBuf>("config").cloned();
    if let Some(path) = &path {
        match file_args(&Args::command(), &first, path) {
            Ok(extra) => {
                let at = argv.len().min(1);
                argv.splice(at..at, extra);
            }
            Err(err) => {
                eprintln!("call-signaling: {err}");
                std::process::exit(2);
            }
        }
    }
    match Args::command().try_get_matches_from(argv) {
        Ok(matches) => matches,
        Err(err) => {
            if let Some(path) = path.filter(|_| err.use_stderr()) {
                eprintln!(
                    "call-signaling: with the values of the config file {}:",
                    path.display()
                );
            }
            err.exit()
        }
    }
}

/// SIGINT and SIGTERM, listened for from before the URL is printed: a supervisor or a test that
/// reads the URL and stops the server at once must find the handlers there (registered later,
/// a loaded machine could deliver SIGTERM first and kill the server without a clean stop).
struct StopSignals {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    int: Option<tokio::signal::unix::Signal>,
}

impl StopSignals {
    fn listen() -> StopSignals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let listen = |kind: SignalKind, name: &str| match signal(kind) {
                Ok(s) => Some(s),
                Err(err) => {
                    tracing::warn!(%err, "cannot listen for {name}");
                    None
                }
            };
            StopSignals {
                term: listen(SignalKind::terminate(), "SIGTERM"),
                int: listen(SignalKind::interrupt(), "SIGINT"),
            }
        }
        #[cfg(not(unix))]
        StopSignals {}
    }

    /// Until one of them arrives.
    async fn wait(&mut self) {
        #[cfg(unix)]
        {
            async fn next(s: &mut Option<tokio::signal::unix::Signal>) {
                match s {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending().await,
                }
            }
            tokio::select! {
                _ = next(&mut self.term) => {}
                _ = next(&mut self.int) => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Raises the soft open-file limit to the hard limit: every TURN allocation holds a socket, and
/// at the usual soft limit of 1024 about a thousand of them stop the listener from accepting.
fn raise_open_file_limit(cfg: &ServerConfig) {
    let needed = cfg.limits.max_connections as u64
        + cfg
            .turn
            .as_ref()
            .map_or(0, |t| t.limits.max_allocations as u64)
        + 256;
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) if limit < needed => tracing::warn!(
            limit,
            needed,
            "the open-file limit is below --max-connections + --turn-total-quota + 256; raise the hard limit (ulimit -Hn) or lower them"
        ),
        Ok(limit) => tracing::debug!(limit, "open-file limit"),
        Err(err) => tracing::warn!(%err, "cannot raise the open-file limit"),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let matches = parse_flags();
    let args = match Args::from_arg_matches(&matches) {
        Ok(args) => args,
        Err(err) => err.exit(),
    };
    let cfg = match args.into_config() {
        Ok(cfg) => cfg,
        Err(err) => {
            eprintln!("call-signaling: {err}");
            return ExitCode::from(2);
        }
    };
    raise_open_file_limit(&cfg);
    let mut stop = StopSignals::listen();
    let server = match Server::start(cfg).await {
        Ok(server) => server,
        Err(err) => {
            eprintln!("call-signaling: {err}");
            return ExitCode::FAILURE;
        }
    };
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "{}", server.url());
    let _ = stdout.flush();
    let token = server.shutdown_token();
    tokio::select! {
        _ = stop.wait() => tracing::info!("signal received; shutting down"),
        _ = token.cancelled() => {}
    }
    server.shutdown().await;
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/call-signaling.toml.example"
    );

    /// The example file's values, as the binary reads them without flags (a `CALL_*` variable
    /// in the test's environment would override one, as it does for the binary).
    fn example_config() -> ServerConfig {
        let cmd = Args::command();
        let first = cmd
            .clone()
            .try_get_matches_from(["call-signaling"])
            .unwrap();
        let extra = file_args(&cmd, &first, std::path::Path::new(EXAMPLE)).unwrap();
        let mut argv: Vec<OsString> = vec!["call-signaling".into()];
        argv.extend(extra);
        let matches = Args::command().try_get_matches_from(argv).unwrap();
        let mut args = Args::from_arg_matches(&matches).unwrap();
        // The example names a secret file that does not exist here.
        args.turn_secret_file = None;
        args.into_config().unwrap()
    }

    #[test]
    fn the_example_file_parses_into_its_values() {
        let cfg = example_config();
        assert_eq!(cfg.listen, "0.0.0.0:8443".parse().unwrap());
        assert_eq!(cfg.server_name.as_deref(), Some("call.example.org"));
        assert_eq!(cfg.metrics_listen, Some("127.0.0.1:9464".parse().unwrap()));
        let turn = cfg.turn.expect("TURN runs");
        assert_eq!(turn.public_ip, Some("203.0.113.10".parse().unwrap()));
    }

    #[test]
    fn the_example_file_names_every_flag() {
        let text = std::fs::read_to_string(EXAMPLE).unwrap();
        let keys: Vec<&str> = text
            .lines()
            .map(|l| l.trim_start_matches(['#', ' ']))
            .filter_map(|l| l.split_once(" =").map(|(k, _)| k))
            .collect();
        for arg in Args::command().get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            if long == "config" {
                continue;
            }
            assert!(
                keys.contains(&long),
                "deploy/call-signaling.toml.example does not mention `{long}`: add a line \
                 `# {long} = …` so the example documents every flag"
            );
        }
    }
}
