//! Embedded TURN server tests: real allocations with webrtc-rs' TURN client on loopback.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use signaling::client::{Client, ClientOptions};
use signaling::identity::Identity;
use signaling::server::ServerConfig;
use signaling::turn_credentials::{CredentialPolicy, TurnSecret};
use tokio::net::UdpSocket;
use webrtc_util::Conn;

const SECRET: &[u8] = b"test secret";

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn config(allow_loopback_peers: bool) -> ServerConfig {
    ServerConfig {
        turn_secret: Some(TurnSecret::new(SECRET.to_vec()).unwrap()),
        max_ttl: 3600,
        allow_loopback_peers,
        ..test_config()
    }
}

/// Allocates with the given credentials; `Ok(relay)` or the error text.
async fn allocate(
    server: SocketAddr,
    username: &str,
    password: &str,
) -> Result<(turn::client::Client, impl Conn), String> {
    let client = turn_client(server, username, password).await;
    match tokio::time::timeout(SOON, client.allocate()).await {
        Ok(Ok(relay)) => Ok((client, relay)),
        Ok(Err(e)) => {
            let _ = client.close().await;
            Err(e.to_string())
        }
        Err(_) => {
            let _ = client.close().await;
            Err("timed out".into())
        }
    }
}

fn policy() -> CredentialPolicy {
    CredentialPolicy::new(TurnSecret::new(SECRET.to_vec()).unwrap(), 600, 3600).unwrap()
}

#[tokio::test]
async fn served_credentials_allocate_a_relay_that_relays() {
    init_tracing();
    let server = start(config(true)).await;
    let turn_addr = server.turn_addr().unwrap();
    let signaling_client = Client::connect(
        &server.url(),
        Identity::generate(),
        ClientOptions::default(),
    )
    .await
    .unwrap();
    let creds = signaling_client.turn_credentials().await.unwrap();
    let (client, relay) = allocate(turn_addr, &creds.username, &creds.password)
        .await
        .expect("allocation succeeds");
    let relay_addr = relay.local_addr().unwrap();
    assert_eq!(relay_addr.ip(), turn_addr.ip());
    assert_ne!(relay_addr.port(), turn_addr.port());

    // Relay to a loopback peer (allowed here) and back.
    let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    relay
        .send_to(b"via relay", peer.local_addr().unwrap())
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    let (n, from) = tokio::time::timeout(SOON, peer.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf[..n], b"via relay");
    assert_eq!(from, relay_addr);
    peer.send_to(b"back", relay_addr).await.unwrap();
    let (n, from) = tokio::time::timeout(SOON, relay.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf[..n], b"back");
    assert_eq!(from, peer.local_addr().unwrap());
    client.close().await.unwrap();
    server.shutdown().await;
}

#[tokio::test]
async fn bad_expired_and_too_long_credentials_are_refused() {
    init_tracing();
    let server = start(config(true)).await;
    let turn_addr = server.turn_addr().unwrap();
    let p = policy();
    let now = unix_now();

    let good = p.issue("someone", now, vec![]);
    let wrong_secret =
        CredentialPolicy::new(TurnSecret::new(b"other".to_vec()).unwrap(), 600, 3600).unwrap();
    let forged = wrong_secret.password_for(&good.username);
    assert!(
        allocate(turn_addr, &good.username, &forged).await.is_err(),
        "bad HMAC accepted"
    );

    let expired = format!("{}:someone", now - 10);
    assert!(
        allocate(turn_addr, &expired, &p.password_for(&expired))
            .await
            .is_err(),
        "expired accepted"
    );

    let too_long = format!("{}:someone", now + 7200);
    assert!(
        allocate(turn_addr, &too_long, &p.password_for(&too_long))
            .await
            .is_err(),
        "beyond max TTL accepted"
    );

    assert!(allocate(turn_addr, "not-a-rest-username", "x")
        .await
        .is_err());

    // The server survived all of that and still accepts good credentials.
    let (client, _relay) = allocate(turn_addr, &good.username, &good.password)
        .await
        .expect("good credentials work");
    client.close().await.unwrap();
    server.shutdown().await;
}

#[tokio::test]
async fn loopback_peers_are_denied_by_default() {
    init_tracing();
    let server = start(config(false)).await;
    let turn_addr = server.turn_addr().unwrap();
    let creds = policy().issue("someone", unix_now(), vec![]);
    let (client, relay) = allocate(turn_addr, &creds.username, &creds.password)
        .await
        .expect("allocation succeeds");
    let relay_addr = relay.local_addr().unwrap();
    let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    // Outbound: the relay refuses to send to 127.0.0.1.
    for _ in 0..3 {
        let _ = relay
            .send_to(b"to loopback", peer.local_addr().unwrap())
            .await;
    }
    let mut buf = [0u8; 64];
    let got = tokio::time::timeout(Duration::from_millis(500), peer.recv_from(&mut buf)).await;
    assert!(got.is_err(), "a packet was relayed to a loopback peer");
    // Inbound: packets from 127.0.0.1 are dropped.
    peer.send_to(b"from loopback", relay_addr).await.unwrap();
    let got = tokio::time::timeout(Duration::from_millis(500), relay.recv_from(&mut buf)).await;
    assert!(got.is_err(), "a packet from a loopback peer was relayed");
    client.close().await.unwrap();
    server.shutdown().await;
}

// ---- Raw STUN/TURN client: exact control over what is sent, and the answer codes seen. ----

use signaling::server::{TurnConfig, TurnLimits};
use stun::agent::TransactionId;
use stun::attributes::{ATTR_NONCE, ATTR_REALM, ATTR_USERNAME};
use stun::error_code::ErrorCodeAttribute;
use stun::integrity::MessageIntegrity;
use stun::message::{
    Getter, Message, MessageType, Method, Setter, CLASS_ERROR_RESPONSE, CLASS_REQUEST,
    CLASS_SUCCESS_RESPONSE, METHOD_ALLOCATE, METHOD_CREATE_PERMISSION,
};
use stun::textattrs::TextAttribute;
use turn::proto::peeraddr::PeerAddress;
use turn::proto::reqtrans::RequestedTransport;
use turn::proto::PROTO_UDP;

type Attrs = Vec<Box<dyn Setter>>;

/// A TURN client speaking raw STUN on its own UDP socket (one socket = one 5-tuple).
struct RawTurn {
    sock: UdpSocket,
    server: SocketAddr,
    username: String,
    password: String,
    realm: String,
    nonce: Option<String>,
}

/// What came back: the message class and, for errors, the code.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    Success,
    Error(u16),
}

impl RawTurn {
    async fn new(server: SocketAddr, username: &str, password: &str) -> Self {
        Self {
            sock: UdpSocket::bind("127.0.0.1:0").await.unwrap(),
            server,
            username: username.to_owned(),
            password: password.to_owned(),
            realm: "call".to_owned(),
            nonce: None,
        }
    }

    fn build(&self, method: Method, attrs: Attrs, signed: bool) -> Message {
        let mut setters: Attrs = vec![
            Box::new(TransactionId::new()),
            Box::new(MessageType::new(method, CLASS_REQUEST)),
        ];
        setters.extend(attrs);
        if signed {
            setters.push(Box::new(TextAttribute::new(
                ATTR_USERNAME,
                self.username.clone(),
            )));
            setters.push(Box::new(TextAttribute::new(ATTR_REALM, self.realm.clone())));
            setters.push(Box::new(TextAttribute::new(
                ATTR_NONCE,
                self.nonce.clone().unwrap_or_default(),
            )));
            setters.push(Box::new(MessageIntegrity::new_long_term_integrity(
                self.username.clone(),
                self.realm.clone(),
                self.password.clone(),
            )));
        }
        let mut m = Message::new();
        m.build(&setters).unwrap();
        m
    }

    /// Sends `raw` and waits for the answer to transaction `txid` (None: no answer soon).
    async fn exchange(&self, raw: &[u8], txid: TransactionId, wait: Duration) -> Option<Message> {
        self.sock.send_to(raw, self.server).await.unwrap();
        self.answer(txid, wait).await
    }

    async fn answer(&self, txid: TransactionId, wait: Duration) -> Option<Message> {
        let mut buf = [0u8; 1500];
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let (n, _) = tokio::time::timeout_at(deadline, self.sock.recv_from(&mut buf))
                .await
                .ok()?
                .unwrap();
            let mut m = Message {
                raw: buf[..n].to_vec(),
                ..Message::default()
            };
            if m.decode().is_ok() && m.transaction_id == txid {
                return Some(m);
            }
        }
    }

    /// A signed request with the 401/438 dance; returns the answer and the request sent last.
    async fn call(&mut self, method: Method, attrs: impl Fn() -> Attrs) -> (Answer, Message) {
        for _ in 0..3 {
            let signed = self.nonce.is_some();
            let req = self.build(method, attrs(), signed);
            let res = self
                .exchange(&req.raw, req.transaction_id, SOON)
                .await
                .expect("the TURN server answers");
            let answer = classify(&res);
            if matches!(answer, Answer::Error(401 | 438)) {
                self.nonce = Some(TextAttribute::get_from_as(&res, ATTR_NONCE).unwrap().text);
                let realm = TextAttribute::get_from_as(&res, ATTR_REALM).unwrap().text;
                assert_eq!(realm, "call");
                if signed && answer == Answer::Error(401) {
                    return (answer, req);
                }
                continue;
            }
            return (answer, req);
        }
        panic!("no answer but 401/438 three times");
    }

    async fn allocate(&mut self) -> (Answer, Message) {
        self.call(METHOD_ALLOCATE, || {
            vec![Box::new(RequestedTransport {
                protocol: PROTO_UDP,
            })]
        })
        .await
    }

    async fn permit(&mut self, peers: &[SocketAddr]) -> Answer {
        let peers = peers.to_vec();
        self.call(METHOD_CREATE_PERMISSION, move || {
            peers
                .iter()
                .map(|p| {
                    Box::new(PeerAddress {
                        ip: p.ip(),
                        port: p.port(),
                    }) as Box<dyn Setter>
                })
                .collect()
        })
        .await
        .0
    }
}

fn classify(m: &Message) -> Answer {
    if m.typ.class == CLASS_SUCCESS_RESPONSE {
        return Answer::Success;
    }
    assert_eq!(m.typ.class, CLASS_ERROR_RESPONSE, "{m}");
    let mut code = ErrorCodeAttribute::default();
    code.get_from(m).unwrap();
    Answer::Error(code.code.0)
}

fn turn_config(limits: TurnLimits, allow_loopback_peers: bool) -> ServerConfig {
    ServerConfig {
        turn: Some(TurnConfig {
            limits,
            ..TurnConfig::local()
        }),
        ..config(allow_loopback_peers)
    }
}

/// An unsigned Allocate request (what a client sends first, and what a spoofer sends).
fn bare_allocate(txid: TransactionId) -> Message {
    let mut m = Message::new();
    m.build(&[
        Box::new(txid),
        Box::new(MessageType::new(METHOD_ALLOCATE, CLASS_REQUEST)),
        Box::new(RequestedTransport {
            protocol: PROTO_UDP,
        }),
    ])
    .unwrap();
    m
}

#[tokio::test]
async fn unauthenticated_requests_leave_no_state_behind() {
    // Issue 7 item 7: 100,000 unauthenticated requests (no integrity, or a nonce this server
    // never issued) must not grow any table. "Memory stays flat" is measured by counting the
    // entries of every table the TURN server keeps per request: the turn crate's nonce map
    // (which grew by one entry per request before), the answer budgets, the caches.
    init_tracing();
    let limits = TurnLimits {
        // Answer everything, so each answer proves the request was processed.
        unauthenticated_rate: signaling::server::RateLimit {
            per_second: 1e9,
            burst: u32::MAX,
        },
        ..TurnLimits::default()
    };
    let server = start(turn_config(limits, true)).await;
    let turn_addr = server.turn_addr().unwrap();
    let before = server.turn_stats().await.unwrap();
    let client = RawTurn::new(turn_addr, "0:nobody", "x").await;
    let mut forged = RawTurn::new(turn_addr, "1:nobody", "x").await;
    forged.nonce = Some("0123456789abcdef0123456789abcdef01234567".into());
    const TOTAL: usize = 100_000;
    const BATCH: usize = 200;
    let mut nonces = std::collections::HashSet::new();
    for batch in 0..TOTAL / BATCH {
        let mut txids = Vec::with_capacity(BATCH);
        for i in 0..BATCH {
            let m = if i % 2 == 0 {
                bare_allocate(TransactionId::new())
            } else {
                forged.build(METHOD_ALLOCATE, vec![], true)
            };
            client.sock.send_to(&m.raw, turn_addr).await.unwrap();
            txids.push(m.transaction_id);
        }
        for (i, txid) in txids.into_iter().enumerate() {
            let res = client
                .answer(txid, SOON)
                .await
                .unwrap_or_else(|| panic!("no answer to request {i} of batch {batch}"));
            let want = if i % 2 == 0 { 401 } else { 438 };
            assert_eq!(classify(&res), Answer::Error(want));
            if batch == 0 {
                nonces.insert(TextAttribute::get_from_as(&res, ATTR_NONCE).unwrap().text);
            }
        }
    }
    let after = server.turn_stats().await.unwrap();
    assert_eq!(after.crate_nonces, 0, "the turn crate's nonce map grew");
    assert_eq!(after.allocations, 0);
    assert_eq!(after.cached_answers, before.cached_answers);
    assert!(
        after.gate.unauthenticated_budgets <= 1,
        "one budget per source address: {after:?}"
    );
    assert_eq!(after.gate.permission_books, 0);
    // Nonces are stateless: 40 characters, a MAC of time and source (so repeats are expected
    // within one second), and no table holds them.
    assert!(nonces.iter().all(|n| n.len() == 40), "{nonces:?}");

    // A real client still gets through with the nonce it is given.
    let creds = policy().issue("someone", unix_now(), vec![]);
    let mut real = RawTurn::new(turn_addr, &creds.username, &creds.password).await;
    assert_eq!(real.allocate().await.0, Answer::Success);
    assert_eq!(server.turn_stats().await.unwrap().crate_nonces, 0);
    server.shutdown().await;
}

#[tokio::test]
async fn unauthenticated_answers_are_budgeted_per_source() {
    // Issue 7 item 7: answers sent without checking credentials go to a spoofable address;
    // one source gets its burst, then the sustained rate.
    init_tracing();
    let limits = TurnLimits {
        unauthenticated_rate: signaling::server::RateLimit {
            per_second: 1.0,
            burst: 5,
        },
        ..TurnLimits::default()
    };
    let server = start(turn_config(limits, true)).await;
    let turn_addr = server.turn_addr().unwrap();
    let client = RawTurn::new(turn_addr, "0:nobody", "x").await;
    let started = std::time::Instant::now();
    let mut answered = 0;
    for _ in 0..50 {
        let m = bare_allocate(TransactionId::new());
        if client
            .exchange(&m.raw, m.transaction_id, Duration::from_millis(20))
            .await
            .is_some()
        {
            answered += 1;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    // Burst plus what the rate refilled meanwhile (before: all 50 were answered).
    let allowed = 5 + elapsed.ceil() as usize;
    assert!(
        (5..=allowed).contains(&answered),
        "{answered} answers in {elapsed:.1} s"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn allocation_quotas_answer_486_and_508_and_signaling_keeps_accepting() {
    // Issue 7 item 8: per-user quota 2, global quota 3.
    init_tracing();
    let limits = TurnLimits {
        allocations_per_user: 2,
        max_allocations: 3,
        ..TurnLimits::default()
    };
    let server = start(turn_config(limits, true)).await;
    let turn_addr = server.turn_addr().unwrap();
    let p = policy();
    let alice = p.issue("alice", unix_now(), vec![]);
    let mut alices = Vec::new();
    for _ in 0..2 {
        let mut c = RawTurn::new(turn_addr, &alice.username, &alice.password).await;
        assert_eq!(c.allocate().await.0, Answer::Success);
        alices.push(c);
    }
    let mut third = RawTurn::new(turn_addr, &alice.username, &alice.password).await;
    assert_eq!(third.allocate().await.0, Answer::Error(486));
    // Fresh credentials (another expiry) are the same user.
    let again = p.issue("alice", unix_now() + 5, vec![]);
    assert_ne!(again.username, alice.username);
    let mut fourth = RawTurn::new(turn_addr, &again.username, &again.password).await;
    assert_eq!(fourth.allocate().await.0, Answer::Error(486));

    let bob = p.issue("bob", unix_now(), vec![]);
    let mut b1 = RawTurn::new(turn_addr, &bob.username, &bob.password).await;
    assert_eq!(b1.allocate().await.0, Answer::Success);
    let mut b2 = RawTurn::new(turn_addr, &bob.username, &bob.password).await;
    assert_eq!(b2.allocate().await.0, Answer::Error(508));
    assert_eq!(server.turn_stats().await.unwrap().allocations, 3);

    // The refusals are signed with the user's key (RFC 8489 §9.2.4).
    let (_, req) = b2.allocate().await;
    let res = b2
        .exchange(&req.raw, req.transaction_id, SOON)
        .await
        .unwrap();
    let mut res = res;
    MessageIntegrity::new_long_term_integrity(bob.username.clone(), "call".into(), bob.password)
        .check(&mut res)
        .expect("the 508 carries a valid MESSAGE-INTEGRITY");

    // The signaling listener still accepts connections and serves credentials.
    let client = Client::connect(
        &server.url(),
        Identity::generate(),
        ClientOptions::default(),
    )
    .await
    .expect("signaling still accepts connections");
    assert!(client.turn_credentials().await.is_ok());
    server.shutdown().await;
}

#[tokio::test]
async fn permissions_per_allocation_are_capped_and_denied_peers_get_403() {
    // Issue 7 items 8 and 9: a cap of 3 peers per allocation, and CreatePermission for a
    // peer the policy denies is refused at once.
    init_tracing();
    let limits = TurnLimits {
        permissions_per_allocation: 3,
        ..TurnLimits::default()
    };
    let server = start(turn_config(limits, false)).await;
    let turn_addr = server.turn_addr().unwrap();
    let creds = policy().issue("carol", unix_now(), vec![]);
    let mut c = RawTurn::new(turn_addr, &creds.username, &creds.password).await;
    assert_eq!(c.allocate().await.0, Answer::Success);
    let peer = |i: u8| SocketAddr::from(([81, 2, 69, i], 4000));
    assert_eq!(c.permit(&[peer(1), peer(2)]).await, Answer::Success);
    assert_eq!(c.permit(&[peer(3)]).await, Answer::Success);
    assert_eq!(c.permit(&[peer(4)]).await, Answer::Error(508));
    // Refreshing an installed peer is fine.
    assert_eq!(c.permit(&[peer(1)]).await, Answer::Success);
    for denied in [
        "10.0.0.1:53",
        "127.0.0.1:8443",
        "203.0.113.9:1",
        "192.0.0.170:1",
        "240.0.0.1:1",
    ] {
        assert_eq!(
            c.permit(&[denied.parse().unwrap()]).await,
            Answer::Error(403),
            "{denied}"
        );
    }
    server.shutdown().await;
}

#[tokio::test]
async fn allocate_replays_need_the_same_integrity_and_are_budgeted() {
    // Issue 7 item 10.
    init_tracing();
    let limits = TurnLimits {
        replay_rate: signaling::server::RateLimit {
            per_second: 0.5,
            burst: 3,
        },
        ..TurnLimits::default()
    };
    let server = start(turn_config(limits, true)).await;
    let turn_addr = server.turn_addr().unwrap();
    let creds = policy().issue("dave", unix_now(), vec![]);
    let mut c = RawTurn::new(turn_addr, &creds.username, &creds.password).await;
    let (answer, req) = c.allocate().await;
    assert_eq!(answer, Answer::Success);

    // A true retransmission (same bytes) gets the original success again.
    let replay = c
        .exchange(&req.raw, req.transaction_id, SOON)
        .await
        .expect("a retransmission is answered");
    assert_eq!(classify(&replay), Answer::Success);

    // The same transaction ID without MESSAGE-INTEGRITY (what a spoofer who saw the ID can
    // send) is not a retransmission: it gets a 401 challenge, not the relay address.
    let spoof = bare_allocate(req.transaction_id);
    let res = c
        .exchange(&spoof.raw, spoof.transaction_id, SOON)
        .await
        .unwrap();
    assert_eq!(classify(&res), Answer::Error(401));

    // Same length, another integrity value: not a replay either (the crate then answers 437
    // for the 5-tuple that already has an allocation, or 400 for the bad integrity).
    let mut tampered = req.raw.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 0xff;
    let res = c
        .exchange(&tampered, req.transaction_id, SOON)
        .await
        .unwrap();
    assert_ne!(classify(&res), Answer::Success);

    // Replays to one destination are budgeted: 3 more at most right now (one was used).
    let mut replays = 0;
    for _ in 0..20 {
        let res = c
            .exchange(&req.raw, req.transaction_id, Duration::from_millis(50))
            .await;
        if res.is_some_and(|m| classify(&m) == Answer::Success) {
            replays += 1;
        }
    }
    assert!(
        (1..=4).contains(&replays),
        "{replays} replays of one answer"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn binary_raises_the_open_file_limit_to_the_hard_limit() {
    // Issue 7 item 8: start with a low soft limit; the server raises it to the hard one.
    init_tracing();
    let bin = env!("CARGO_BIN_EXE_call-signaling");
    let mut child = tokio::process::Command::new("sh")
        .args([
            "-c",
            "ulimit -Sn 256 && exec \"$0\" --listen 127.0.0.1:0 --turn-listen 127.0.0.1:0",
            bin,
        ])
        .env("RUST_LOG", "error")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let url = tokio::time::timeout(SOON, lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(url.starts_with("ws://"), "{url}");
    let pid = child.id().unwrap();
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let fields: Vec<&str> = line.split_whitespace().collect();
    let (soft, hard) = (fields[3], fields[4]);
    assert_eq!(soft, hard, "{line}");
    assert_ne!(soft, "256", "{line}");
    child.kill().await.unwrap();
}
