//! `call-signaling --redis`: two real `call-signaling` processes on one real Redis (its own
//! `redis-server`, loopback, persistence off), raw WebSocket clients with signed sealed
//! envelopes. Skipped with one line when `redis-server` is not installed
//! (`scripts/install-system-deps.sh` installs it; CI has it).

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::{init_tracing, Raw, SOON};
use rand::{Rng as _, SeedableRng as _};
use signaling::envelope::{Envelope, EnvelopeKind, ReplayCache};
use signaling::identity::{CallId, Identity};
use signaling::protocol::{answer_challenge, ClientFrame, ErrorCode, ServerFrame};
use signaling::server::cluster::store::RedisStore;
use signaling::server::mailbox::{Mailbox, MailboxLimits};
use tokio::io::AsyncBufReadExt as _;

const BIN: &str = env!("CARGO_BIN_EXE_call-signaling");

fn redis_server() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/bin", "/usr/sbin", "/usr/local/bin"].map(PathBuf::from))
        .map(|dir| dir.join("redis-server"))
        .find(|p| p.is_file())
}

/// `redis-server`, or `None` after one line saying why `test` is skipped.
fn redis_or_skip(test: &str) -> Option<PathBuf> {
    let found = redis_server();
    if found.is_none() {
        eprintln!(
            "SKIPPED {test}: `redis-server` is not installed (Debian package redis-server; scripts/install-system-deps.sh installs it)"
        );
    }
    found
}

fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The password of the tests' Redis.
const PASSWORD: &str = "test-password";

fn deploy(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy")
        .join(path)
}

/// A `redis-server` of the test's own, run from `deploy/redis/redis-call.conf` with loopback,
/// a free port, a password and a temporary directory instead of the file's; killed on drop.
struct Redis {
    bin: PathBuf,
    port: u16,
    dir: tempfile::TempDir,
    child: Option<tokio::process::Child>,
}

impl Redis {
    async fn start(bin: &Path) -> Redis {
        let mut redis = Redis {
            bin: bin.to_owned(),
            port: free_tcp_port(),
            dir: tempfile::tempdir().unwrap(),
            child: None,
        };
        redis.run().await;
        redis
    }

    /// (Re)starts the server on the same port and waits until it answers.
    async fn run(&mut self) {
        let child = tokio::process::Command::new(&self.bin)
            .arg(deploy("redis/redis-call.conf"))
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--requirepass", PASSWORD, "--daemonize", "no", "--dir"])
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let client = redis::Client::open(self.url()).unwrap();
        for _ in 0..100 {
            if let Ok(mut conn) = client.get_multiplexed_async_connection().await {
                if redis::cmd("PING")
                    .query_async::<String>(&mut conn)
                    .await
                    .is_ok()
                {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("redis-server on port {} does not answer", self.port);
    }

    async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.unwrap();
        }
    }

    fn url(&self) -> String {
        format!("redis://:{PASSWORD}@127.0.0.1:{}/0", self.port)
    }
}

/// How an instance is given the Redis URL.
#[derive(Debug, Clone, Copy)]
enum Via {
    Flag,
    Env,
    ConfigFile,
}

/// A `call-signaling --redis` process, killed on drop; its log goes to a file kept in `dir`.
struct Instance {
    child: tokio::process::Child,
    url: String,
    log: PathBuf,
}

impl Instance {
    async fn start(redis_url: &str, via: Via, dir: &Path, name: &str, extra: &[&str]) -> Instance {
        let log = dir.join(format!("{name}.log"));
        let (child, out) = spawn_signaling(redis_url, via, &log, extra).await;
        let url = out.unwrap_or_else(|e| panic!("instance {name} did not start: {e}"));
        Instance { child, url, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Starts the binary; its printed URL, or its log if it exited.
async fn spawn_signaling(
    redis_url: &str,
    via: Via,
    log: &Path,
    extra: &[&str],
) -> (tokio::process::Child, Result<String, String>) {
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.args(["--listen", "127.0.0.1:0", "--no-turn"])
        .args(extra)
        .env_remove("CALL_SIGNALING_REDIS")
        .env_remove("CALL_SIGNALING_CONFIG");
    match via {
        Via::Flag => {
            cmd.args(["--redis", redis_url]);
        }
        Via::Env => {
            cmd.env("CALL_SIGNALING_REDIS", redis_url);
        }
        Via::ConfigFile => {
            use std::os::unix::fs::PermissionsExt as _;
            let file = log.with_extension("toml");
            std::fs::write(&file, format!("redis = {redis_url:?}\n")).unwrap();
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
            cmd.arg("--config").arg(file);
        }
    }
    let mut child = cmd
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let line = tokio::time::timeout(
        SOON * 2,
        tokio::io::BufReader::new(stdout).lines().next_line(),
    )
    .await
    .expect("the binary prints its URL or exits")
    .unwrap();
    match line {
        Some(url) => (child, Ok(url)),
        None => (child, Err(std::fs::read_to_string(log).unwrap_or_default())),
    }
}

/// Logs in as `who`; answers the connection and the welcome's `kept`.
async fn login(url: &str, who: &Identity) -> (Raw, u64) {
    let (mut raw, c) = Raw::connect(url).await;
    raw.send_text(answer_challenge(who, &c.server, &c.nonce, c.ts).to_json())
        .await;
    match raw.next_frame().await {
        Some(ServerFrame::Welcome { id, kept }) => {
            assert_eq!(id, who.call_id());
            (raw, kept)
        }
        other => panic!("expected welcome, got {other:?}"),
    }
}

async fn send(
    raw: &mut Raw,
    from: &Identity,
    to: &CallId,
    kind: EnvelopeKind,
    body: &[u8],
) -> Envelope {
    let env = Envelope::seal(from, to, kind, body, unix_now()).unwrap();
    let frame = ClientFrame::Send {
        envelope: serde_json::to_value(&env).unwrap(),
    };
    raw.send_text(frame.to_json()).await;
    env
}

/// The next frame must deliver `sent`, and it must open for `me` with its body intact.
async fn expect_delivered(raw: &mut Raw, me: &Identity, sent: &Envelope, body: &[u8]) {
    match raw.next_frame().await {
        Some(ServerFrame::Deliver { envelope }) => {
            assert_eq!(&envelope, sent);
            let opened = envelope
                .open(me, unix_now(), &mut ReplayCache::new(16))
                .expect("the delivered envelope opens for its recipient");
            assert_eq!(opened.plaintext, body);
        }
        other => panic!("expected {} delivered, got {other:?}", sent.kind),
    }
}

/// The next frame if one arrives within `wait`.
async fn next_frame_within(raw: &mut Raw, wait: Duration) -> Option<ServerFrame> {
    tokio::time::timeout(wait, raw.next_frame())
        .await
        .ok()
        .flatten()
}

/// Nothing arrives for a moment (a sent error frame would).
async fn expect_quiet(raw: &mut Raw) {
    use futures::StreamExt as _;
    if let Ok(msg) = tokio::time::timeout(Duration::from_millis(300), raw.ws.next()).await {
        panic!("expected nothing, got {msg:?}");
    }
}

struct Setup {
    redis: Redis,
    a: Instance,
    b: Instance,
    dir: tempfile::TempDir,
}

/// Redis and two instances: A given `--redis`, B the URL `b_via`.
async fn setup(test: &str, b_via: Via, extra: &[&str]) -> Option<Setup> {
    let bin = redis_or_skip(test)?;
    init_tracing();
    let redis = Redis::start(&bin).await;
    let dir = tempfile::tempdir().unwrap();
    let a = Instance::start(&redis.url(), Via::Flag, dir.path(), "a", extra).await;
    let b = Instance::start(&redis.url(), b_via, dir.path(), "b", extra).await;
    assert_ne!(a.url, b.url);
    Some(Setup { redis, a, b, dir })
}

fn ident(n: u8) -> Identity {
    Identity::from_seed([n; 32])
}

#[tokio::test]
async fn clients_on_two_instances_talk_both_ways() {
    let Some(s) = setup("clients_on_two_instances_talk_both_ways", Via::Env, &[]).await else {
        return;
    };
    let (alice, bob, carol) = (ident(1), ident(2), ident(3));
    let (mut on_a, _) = login(&s.a.url, &alice).await;
    let (mut on_b, _) = login(&s.b.url, &bob).await;

    // A call's set-up and end, across the instances.
    let offer = send(
        &mut on_a,
        &alice,
        &bob.call_id(),
        EnvelopeKind::Offer,
        b"offer sdp",
    )
    .await;
    expect_delivered(&mut on_b, &bob, &offer, b"offer sdp").await;
    let answer = send(
        &mut on_b,
        &bob,
        &alice.call_id(),
        EnvelopeKind::Answer,
        b"answer sdp",
    )
    .await;
    expect_delivered(&mut on_a, &alice, &answer, b"answer sdp").await;
    let hangup = send(
        &mut on_a,
        &alice,
        &bob.call_id(),
        EnvelopeKind::Hangup,
        b"bye",
    )
    .await;
    expect_delivered(&mut on_b, &bob, &hangup, b"bye").await;
    // A room message, the other way.
    let msg = send(
        &mut on_b,
        &bob,
        &alice.call_id(),
        EnvelopeKind::RoomMessage,
        b"hi room",
    )
    .await;
    expect_delivered(&mut on_a, &alice, &msg, b"hi room").await;

    // Nobody anywhere: an offer is answered not_online, as on one instance.
    send(
        &mut on_a,
        &alice,
        &carol.call_id(),
        EnvelopeKind::Offer,
        b"x",
    )
    .await;
    on_a.expect_error(ErrorCode::NotOnline).await;
    // The instances' own checks stay in front: a resend is refused by the sender's instance.
    let frame = ClientFrame::Send {
        envelope: serde_json::to_value(&offer).unwrap(),
    };
    on_a.send_text(frame.to_json()).await;
    on_a.expect_error(ErrorCode::Replayed).await;
    expect_quiet(&mut on_b).await;
    drop(s.dir);
}

/// Waits until the Redis mailbox holds `n` envelopes for `to`.
async fn wait_kept(redis: &Redis, to: &CallId, n: usize) {
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    for _ in 0..100 {
        let len: usize = redis::cmd("LLEN")
            .arg(format!("call:mbox:{to}"))
            .query_async(&mut conn)
            .await
            .unwrap();
        if len >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the mailbox of {to} never held {n} envelopes");
}

#[tokio::test]
async fn the_mailbox_kept_on_one_instance_is_delivered_on_the_other() {
    let Some(s) = setup(
        "the_mailbox_kept_on_one_instance_is_delivered_on_the_other",
        Via::ConfigFile,
        &["--mailbox-per-recipient", "3"],
    )
    .await
    else {
        return;
    };
    let (alice, bob, carol) = (ident(1), ident(2), ident(3));
    let (mut on_a, _) = login(&s.a.url, &alice).await;
    let (mut bob_b, _) = login(&s.b.url, &bob).await;
    let mut kept = Vec::new();
    for i in 0..3 {
        let body = format!("kept {i}");
        let kind = if i == 0 {
            EnvelopeKind::RoomState
        } else {
            EnvelopeKind::RoomMessage
        };
        // From both instances, interleaved.
        let (raw, who) = if i == 1 {
            (&mut bob_b, &bob)
        } else {
            (&mut on_a, &alice)
        };
        kept.push((
            send(raw, who, &carol.call_id(), kind, body.as_bytes()).await,
            body,
        ));
        // Sends are not acknowledged: wait until Redis holds it, so the order is the test's.
        wait_kept(&s.redis, &carol.call_id(), i + 1).await;
    }
    // The per-recipient cap holds across instances: the fourth is refused, wherever it comes from.
    send(
        &mut bob_b,
        &bob,
        &carol.call_id(),
        EnvelopeKind::RoomMessage,
        b"over",
    )
    .await;
    bob_b.expect_error(ErrorCode::MailboxFull).await;
    expect_quiet(&mut on_a).await;

    // Carol logs in on B: the three, in order, then what is sent after her login.
    let (mut carol_b, n) = login(&s.b.url, &carol).await;
    assert_eq!(n, 3, "welcome counts the kept envelopes");
    for (env, body) in &kept {
        expect_delivered(&mut carol_b, &carol, env, body.as_bytes()).await;
    }
    let live = send(
        &mut on_a,
        &alice,
        &carol.call_id(),
        EnvelopeKind::RoomMessage,
        b"live",
    )
    .await;
    expect_delivered(&mut carol_b, &carol, &live, b"live").await;
    // Delivered once: a second login finds nothing kept.
    drop(carol_b);
    let (_carol_a, n) = login(&s.a.url, &carol).await;
    assert_eq!(n, 0);
    drop(s.dir);
}

#[tokio::test]
async fn a_killed_instance_drops_only_its_clients_who_reconnect_to_the_other() {
    let Some(mut s) = setup(
        "a_killed_instance_drops_only_its_clients_who_reconnect_to_the_other",
        Via::Flag,
        &[],
    )
    .await
    else {
        return;
    };
    let (alice, dave, bob, erin) = (ident(1), ident(4), ident(2), ident(5));
    let (mut alice_a, _) = login(&s.a.url, &alice).await;
    let (_dave_a, _) = login(&s.a.url, &dave).await;
    let (mut bob_b, _) = login(&s.b.url, &bob).await;
    let (mut erin_b, _) = login(&s.b.url, &erin).await;
    let first = send(
        &mut bob_b,
        &bob,
        &alice.call_id(),
        EnvelopeKind::Offer,
        b"1",
    )
    .await;
    expect_delivered(&mut alice_a, &alice, &first, b"1").await;

    s.a.child.start_kill().unwrap();
    s.a.child.wait().await.unwrap();
    assert!(alice_a.expect_closed().await.is_empty());

    // B's clients go on among themselves.
    let env = send(
        &mut bob_b,
        &bob,
        &erin.call_id(),
        EnvelopeKind::Offer,
        b"b-local",
    )
    .await;
    expect_delivered(&mut erin_b, &erin, &env, b"b-local").await;
    // Dave's presence still names the dead instance: not a black hole, an honest not_online.
    // (Redis learns of the dead instance's closed subscription shortly after the kill: until
    // then a publish still counts it, so a few tries may go unanswered.)
    let mut answered = None;
    for _ in 0..50 {
        send(
            &mut bob_b,
            &bob,
            &dave.call_id(),
            EnvelopeKind::Offer,
            b"lost?",
        )
        .await;
        if let Some(frame) = next_frame_within(&mut bob_b, Duration::from_millis(200)).await {
            answered = Some(frame);
            break;
        }
    }
    assert!(
        matches!(
            answered,
            Some(ServerFrame::Error {
                code: ErrorCode::NotOnline,
                ..
            })
        ),
        "{answered:?}"
    );

    // Alice reconnects to B and is reachable again, from B and through it.
    let (mut alice_b, _) = login(&s.b.url, &alice).await;
    let env = send(
        &mut bob_b,
        &bob,
        &alice.call_id(),
        EnvelopeKind::Offer,
        b"again",
    )
    .await;
    expect_delivered(&mut alice_b, &alice, &env, b"again").await;
    let env = send(
        &mut alice_b,
        &alice,
        &erin.call_id(),
        EnvelopeKind::RoomMessage,
        b"hey",
    )
    .await;
    expect_delivered(&mut erin_b, &erin, &env, b"hey").await;
    drop(s.dir);
}

#[tokio::test]
async fn a_login_on_another_instance_displaces_the_old_connection() {
    let Some(s) = setup(
        "a_login_on_another_instance_displaces_the_old_connection",
        Via::Flag,
        &[],
    )
    .await
    else {
        return;
    };
    let (alice, bob) = (ident(1), ident(2));
    let (mut alice_a, _) = login(&s.a.url, &alice).await;
    let (mut bob_a, _) = login(&s.a.url, &bob).await;
    let (mut alice_b, _) = login(&s.b.url, &alice).await;
    alice_a.expect_error(ErrorCode::Replaced).await;
    assert!(alice_a.expect_closed().await.is_empty());
    // Bob, on A, now reaches Alice's connection on B.
    let env = send(
        &mut bob_a,
        &bob,
        &alice.call_id(),
        EnvelopeKind::Offer,
        b"to b",
    )
    .await;
    expect_delivered(&mut alice_b, &alice, &env, b"to b").await;
    // And the displaced connection's cleanup did not remove the newer presence.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let env = send(
        &mut bob_a,
        &bob,
        &alice.call_id(),
        EnvelopeKind::Answer,
        b"still",
    )
    .await;
    expect_delivered(&mut alice_b, &alice, &env, b"still").await;
    drop(s.dir);
}

#[tokio::test]
async fn losing_redis_keeps_local_routing_and_refuses_remote_with_recipient_busy() {
    let Some(mut s) = setup(
        "losing_redis_keeps_local_routing_and_refuses_remote_with_recipient_busy",
        Via::Flag,
        &["--metrics-listen", "127.0.0.1:0"],
    )
    .await
    else {
        return;
    };
    let (alice, dave, bob) = (ident(1), ident(4), ident(2));
    let (mut alice_a, _) = login(&s.a.url, &alice).await;
    let (mut dave_a, _) = login(&s.a.url, &dave).await;
    let (mut bob_b, _) = login(&s.b.url, &bob).await;

    s.redis.kill().await;
    let env = send(
        &mut alice_a,
        &alice,
        &dave.call_id(),
        EnvelopeKind::Offer,
        b"local",
    )
    .await;
    expect_delivered(&mut dave_a, &dave, &env, b"local").await;
    send(
        &mut alice_a,
        &alice,
        &bob.call_id(),
        EnvelopeKind::Offer,
        b"remote",
    )
    .await;
    alice_a.expect_error(ErrorCode::RecipientBusy).await;

    // Redis comes back (empty: nothing was on disk); the instances reconnect by themselves and
    // write their clients' presence again.
    s.redis.run().await;
    let mut delivered = false;
    for attempt in 0..60 {
        let body = format!("retry {attempt}");
        let env = send(
            &mut alice_a,
            &alice,
            &bob.call_id(),
            EnvelopeKind::Offer,
            body.as_bytes(),
        )
        .await;
        match alice_a_or_bob(&mut alice_a, &mut bob_b).await {
            Some(ServerFrame::Deliver { envelope }) => {
                assert_eq!(envelope, env);
                delivered = true;
                break;
            }
            Some(ServerFrame::Error { code, .. }) => {
                assert!(
                    matches!(code, ErrorCode::RecipientBusy | ErrorCode::NotOnline),
                    "{code}"
                );
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(
        delivered,
        "routing across instances did not come back after Redis did\nA: {}\nB: {}",
        s.a.log(),
        s.b.log()
    );
    assert!(s.a.log().contains("Redis lost"), "{}", s.a.log());
    let errors = scrape_counter(&s.a.log(), "call_signaling_redis_errors_total").await;
    assert!(errors >= 1.0, "Redis errors counted: {errors}");
    drop(s.dir);
}

/// The value of `name` on the `/metrics` page of the instance whose log is `log`.
async fn scrape_counter(log: &str, name: &str) -> f64 {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let line = log
        .lines()
        .find(|l| l.contains("serving metrics"))
        .expect("the instance serves metrics");
    let addr = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("addr="))
        .expect("the metrics address is logged");
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut page = String::new();
    tcp.read_to_string(&mut page).await.unwrap();
    page.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{name} not on the page: {page}"))
}

/// The sender's error, or the recipient's delivery, whichever comes first.
async fn alice_a_or_bob(alice: &mut Raw, bob: &mut Raw) -> Option<ServerFrame> {
    tokio::select! {
        f = alice.next_frame() => f,
        f = bob.next_frame() => f,
    }
}

#[tokio::test]
async fn an_unreachable_redis_at_start_is_one_clear_error_and_a_failed_exit() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("redis://:hunter2@127.0.0.1:{}/0", free_tcp_port());
    let (mut child, out) = spawn_signaling(&url, Via::Flag, &dir.path().join("log"), &[]).await;
    let log = out.expect_err("the server must not start");
    assert!(
        log.contains("cannot reach Redis at redis://***@127.0.0.1:"),
        "{log}"
    );
    assert!(!log.contains("hunter2"), "the password leaked: {log}");
    assert!(!child.wait().await.unwrap().success());
}

/// The Redis mailbox and the in-memory one answer the same to the same seeded random
/// operations (bounds, order, expiry, accounting).
#[tokio::test]
async fn the_redis_mailbox_enforces_the_same_bounds_as_the_memory_one() {
    let Some(bin) = redis_or_skip("the_redis_mailbox_enforces_the_same_bounds_as_the_memory_one")
    else {
        return;
    };
    let redis = Redis::start(&bin).await;
    let limits = MailboxLimits {
        ttl_secs: 100,
        per_recipient_count: 4,
        per_recipient_bytes: 40,
        per_sender_bytes: 25,
        total_bytes: 2_000,
    };
    let id = |n: u8| ident(n).call_id();
    for seed in 0..8u64 {
        let store = RedisStore::connect(&redis.url(), limits)
            .await
            .unwrap()
            .with_prefix(format!("t{seed}:"));
        let mut memory = Mailbox::new(limits);
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut now = 1_000u64;
        for step in 0..150 {
            now += rng.gen_range(0..30);
            let who: u8 = rng.gen_range(0..6);
            let to = id(who / 2 + 50);
            match rng.gen_range(0..4) {
                0 | 1 => {
                    let frame = "p".repeat(rng.gen_range(0..30));
                    let want = memory.push(id(who), to, frame.clone(), now);
                    let got = store.keep(&id(who), &to, &frame, now).await.unwrap();
                    assert_eq!(got, want, "seed {seed} step {step}: push");
                }
                2 => {
                    let want = memory.take(&to, now);
                    let got = store.take(&to, now).await.unwrap();
                    assert_eq!(got, want, "seed {seed} step {step}: take");
                }
                _ => {
                    memory.expire(now);
                    store.expire(now).await.unwrap();
                }
            }
            let got = store.mailbox_stats().await.unwrap();
            assert_eq!(got, memory.stats(), "seed {seed} step {step}: stats");
        }
    }
    // Nothing on disk, even at a clean shutdown of a Redis that held a mailbox.
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _ = redis::cmd("SHUTDOWN").query_async::<()>(&mut conn).await;
    let mut redis = redis;
    if let Some(child) = redis.child.as_mut() {
        child.wait().await.unwrap();
    }
    let files: Vec<_> = std::fs::read_dir(redis.dir.path()).unwrap().collect();
    assert!(files.is_empty(), "Redis wrote {files:?}");
}

/// The deploy files keep Redis off the disk and from evicting silently.
#[test]
fn the_deployed_redis_keeps_nothing_on_disk() {
    let conf = std::fs::read_to_string(deploy("redis/redis-call.conf")).unwrap();
    let active: Vec<&str> = conf
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    for needed in ["save \"\"", "appendonly no", "maxmemory-policy noeviction"] {
        assert!(active.contains(&needed), "redis-call.conf lacks `{needed}`");
    }
    let unit = std::fs::read_to_string(deploy("systemd/redis-call.service")).unwrap();
    let exec = unit.lines().find(|l| l.starts_with("ExecStart=")).unwrap();
    assert!(exec.contains("--save \"\" --appendonly no"), "{exec}");
}

/// The presence scripts on a real Redis: a login displaces (a kick on the old instance's
/// channel), a refresh finds what another instance took and writes back what lapsed or what an
/// older connection of the same instance still holds, a logout deletes only its own token, and
/// a presence whose instance nobody listens for does not swallow envelopes.
#[tokio::test]
async fn presence_scripts_decide_displacement_refresh_and_logout() {
    use futures::StreamExt as _;
    use signaling::server::cluster::presence::{InstanceId, PresenceToken};
    use signaling::server::cluster::scripts::RouteAnswer;
    let Some(bin) = redis_or_skip("presence_scripts_decide_displacement_refresh_and_logout") else {
        return;
    };
    let redis = Redis::start(&bin).await;
    let store = RedisStore::connect(&redis.url(), MailboxLimits::default())
        .await
        .unwrap();
    let ttl = Duration::from_secs(30);
    let (a, b) = (InstanceId::from_u64(0xa), InstanceId::from_u64(0xb));
    let token = |instance, conn| PresenceToken { instance, conn };
    let (x, y, from) = (ident(1).call_id(), ident(2).call_id(), ident(3).call_id());
    let chan = |i: InstanceId| store.channel(&i.to_string());
    let mut on_a = store.subscribe(&chan(a)).await.unwrap().into_on_message();
    let now = unix_now();

    let first = store
        .login(&x, token(a, 1), ttl, &chan(a), now)
        .await
        .unwrap();
    assert_eq!((first.kept, first.displaced), (0, None));
    let second = store
        .login(&x, token(b, 5), ttl, &chan(b), now)
        .await
        .unwrap();
    assert_eq!(second.displaced, Some(token(a, 1)));
    let kick = tokio::time::timeout(SOON, on_a.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kick.get_payload_bytes(), format!("k {x} 1").as_bytes());

    // A still believes it holds X: its refresh learns otherwise. Y lapsed: written back.
    let lost = store
        .refresh(a, &[(x, token(a, 1)), (y, token(a, 2))], ttl)
        .await
        .unwrap();
    assert_eq!(lost, [x]);
    // B's newer connection refreshes before its login script ran: not a displacement.
    let lost = store.refresh(b, &[(x, token(b, 6))], ttl).await.unwrap();
    assert!(lost.is_empty());
    assert!(
        !store.logout(&x, token(b, 5)).await.unwrap(),
        "no longer its token"
    );
    assert!(store.logout(&x, token(b, 6)).await.unwrap());
    assert_eq!(
        store.route(&from, &x, false, "f", now).await.unwrap(),
        RouteAnswer::Offline
    );
    // Y's presence names A, whose channel someone listens on: published.
    assert_eq!(
        store.route(&from, &y, false, "f", now).await.unwrap(),
        RouteAnswer::Delivered
    );
    // Nobody listens for A any more: Y is offline at once, and its presence is gone.
    drop(on_a);
    let mut answer = RouteAnswer::Delivered;
    for _ in 0..100 {
        answer = store.route(&from, &y, false, "f", now).await.unwrap();
        if answer != RouteAnswer::Delivered {
            break;
        }
        // Redis notices the closed subscriber connection shortly.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(answer, RouteAnswer::Offline);
    assert_eq!(
        store.route(&from, &y, true, "f", now).await.unwrap(),
        RouteAnswer::Kept,
        "a mailbox kind is kept for the recipient that is now offline"
    );
}

/// Not a check, a figure: one-way latency (send → delivered) of sequential envelopes between
/// two clients on the same instance and on two instances, in the same run, so their ratio is
/// what Redis adds. `cargo test -p signaling --test redis -- --ignored --nocapture`.
#[tokio::test]
#[ignore = "a measurement, not a check: run it by name"]
async fn report_cross_instance_latency() {
    let Some(s) = setup(
        "report_cross_instance_latency",
        Via::Flag,
        &[
            "--rate",
            "1000",
            "--burst",
            "1000",
            "--replay-capacity",
            "5000",
        ],
    )
    .await
    else {
        return;
    };
    let (alice, bob, carol) = (ident(1), ident(2), ident(3));
    let (mut alice_a, _) = login(&s.a.url, &alice).await;
    let (mut bob_a, _) = login(&s.a.url, &bob).await;
    let (mut carol_b, _) = login(&s.b.url, &carol).await;
    const N: usize = 1000;
    let mut report = Vec::new();
    for (name, to, rx) in [
        ("same instance", &bob, &mut bob_a),
        ("across instances", &carol, &mut carol_b),
    ] {
        let mut micros = Vec::with_capacity(N);
        for i in 0..N {
            let env = Envelope::seal(
                &alice,
                &to.call_id(),
                EnvelopeKind::Offer,
                &i.to_le_bytes(),
                unix_now(),
            )
            .unwrap();
            let frame = ClientFrame::Send {
                envelope: serde_json::to_value(&env).unwrap(),
            }
            .to_json();
            let start = std::time::Instant::now();
            alice_a.send_text(frame).await;
            match rx.next_frame().await {
                Some(ServerFrame::Deliver { envelope }) => assert_eq!(envelope, env),
                other => panic!("{other:?}"),
            }
            micros.push(start.elapsed().as_micros() as u64);
        }
        micros.sort_unstable();
        let (p50, p99) = (micros[N / 2], micros[N * 99 / 100]);
        report.push((name, p50, p99));
    }
    for (name, p50, p99) in &report {
        println!("{name}: p50 {p50} µs, p99 {p99} µs over {N} sequential envelopes");
    }
    println!(
        "across / same: p50 x{:.2}, p99 x{:.2}",
        report[1].1 as f64 / report[0].1 as f64,
        report[1].2 as f64 / report[0].2 as f64
    );
}
