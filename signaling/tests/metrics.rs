//! `/metrics` scraped from a real server while real clients log in, route envelopes through it
//! and relay through its embedded TURN server: the counters must move, not just exist.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;

use common::*;
use signaling::client::{Client, ClientError, ClientOptions};
use signaling::envelope::EnvelopeKind;
use signaling::identity::Identity;
use signaling::protocol::{answer_challenge, ErrorCode};
use signaling::server::{ServerConfig, METRICS_PATH};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpStream, UdpSocket};
use webrtc_util::Conn;

/// `GET path` over plain HTTP/1.1; returns the status code (0 when the connection was closed
/// or reset without an answer) and the body.
async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.expect("connects");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).await.is_err() {
        return (0, String::new());
    }
    let mut response = String::new();
    let read = tokio::time::timeout(SOON, stream.read_to_string(&mut response))
        .await
        .expect("the response (or the close) arrives");
    if read.is_err() {
        return (0, String::new());
    }
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Every sample of a scrape, by its name with labels (as exposed).
type Samples = HashMap<String, f64>;

async fn scrape(addr: SocketAddr) -> Samples {
    let (status, body) = http_get(addr, METRICS_PATH).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.ends_with("# EOF\n"), "not a whole exposition: {body}");
    // The body has a known length, so it is sent as is (not chunked).
    body.lines()
        .filter(|l| l.starts_with("call_signaling_"))
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            Some((name.to_owned(), value.parse().ok()?))
        })
        .collect()
}

fn get(samples: &Samples, name: &str) -> f64 {
    *samples
        .get(name)
        .unwrap_or_else(|| panic!("{name} missing from the scrape: {samples:#?}"))
}

fn config() -> ServerConfig {
    ServerConfig {
        metrics_listen: Some("127.0.0.1:0".parse().unwrap()),
        allow_loopback_peers: true,
        ..test_config()
    }
}

async fn allocate(
    turn_addr: SocketAddr,
    username: &str,
    password: &str,
) -> (turn::client::Client, impl Conn) {
    let client = turn_client(turn_addr, username, password).await;
    let relay = tokio::time::timeout(SOON, client.allocate())
        .await
        .expect("the allocation answers")
        .expect("the allocation succeeds");
    (client, relay)
}

#[tokio::test]
async fn counters_move_while_clients_route_envelopes_and_relay_through_turn() {
    init_tracing();
    let server = start(config()).await;
    let metrics_addr = server.metrics_addr().expect("a metrics listener");
    assert_ne!(metrics_addr, server.local_addr());
    let before = scrape(metrics_addr).await;

    // Two real clients log in; a third login fails.
    let mut alice = Client::connect(
        &server.url(),
        Identity::generate(),
        ClientOptions::default(),
    )
    .await
    .unwrap();
    let mut bob = Client::connect(
        &server.url(),
        Identity::generate(),
        ClientOptions::default(),
    )
    .await
    .unwrap();
    let (mut raw, challenge) = Raw::connect(&server.url()).await;
    let wrong_server = answer_challenge(
        &Identity::generate(),
        "not-this-server",
        &challenge.nonce,
        challenge.ts,
    );
    raw.send_text(wrong_server.to_json()).await;
    raw.expect_error(ErrorCode::AuthFailed).await;

    // Routed: delivered, refused (recipient offline), kept (a room message for later).
    alice
        .send(&bob.id(), EnvelopeKind::Offer, b"hello bob")
        .await
        .unwrap();
    let got = tokio::time::timeout(SOON, bob.recv())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(got.plaintext, b"hello bob");
    let offline = Identity::generate().call_id();
    alice
        .send(&offline, EnvelopeKind::Offer, b"anyone?")
        .await
        .unwrap();
    match tokio::time::timeout(SOON, alice.recv()).await.unwrap() {
        Some(Err(ClientError::Server { code, .. })) => assert_eq!(code, ErrorCode::NotOnline),
        other => panic!("expected not_online, got {other:?}"),
    }
    alice
        .send(&offline, EnvelopeKind::RoomMessage, b"for later")
        .await
        .unwrap();

    // A TURN allocation relaying both ways to a loopback peer.
    let creds = alice.turn_credentials().await.unwrap();
    let turn_addr = server.turn_addr().unwrap();
    let (turn_client, relay) = allocate(turn_addr, &creds.username, &creds.password).await;
    let relay_addr = relay.local_addr().unwrap();
    let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    relay
        .send_to(b"via relay", peer.local_addr().unwrap())
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    let (n, _) = tokio::time::timeout(SOON, peer.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf[..n], b"via relay");
    peer.send_to(b"back", relay_addr).await.unwrap();
    let (n, _) = tokio::time::timeout(SOON, relay.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf[..n], b"back");

    // The envelope that was kept is in the mailbox by now (it was routed before the TURN
    // request, which the server answered in order on alice's connection).
    let after = scrape(metrics_addr).await;
    if std::env::var_os("PRINT_SCRAPE").is_some() {
        eprintln!("{}", http_get(metrics_addr, METRICS_PATH).await.1);
    }
    let moved = |name: &str| get(&after, name) - get(&before, name);
    assert_eq!(moved("call_signaling_logins_total{result=\"ok\"}"), 2.0);
    assert_eq!(
        moved("call_signaling_logins_total{result=\"auth_failed\"}"),
        1.0
    );
    assert_eq!(
        moved("call_signaling_envelopes_routed_total{result=\"delivered\"}"),
        1.0
    );
    assert_eq!(
        moved("call_signaling_envelopes_routed_total{result=\"kept\"}"),
        1.0
    );
    assert_eq!(
        moved("call_signaling_envelopes_rejected_total{code=\"not_online\"}"),
        1.0
    );
    assert_eq!(
        moved("call_signaling_envelopes_rejected_total{code=\"bad_signature\"}"),
        0.0
    );
    assert_eq!(
        moved("call_signaling_error_frames_total{code=\"auth_failed\"}"),
        1.0
    );
    assert_eq!(
        get(
            &after,
            "call_signaling_connections{state=\"authenticated\"}"
        ),
        2.0
    );
    assert_eq!(get(&after, "call_signaling_mailbox_envelopes"), 1.0);
    assert!(get(&after, "call_signaling_mailbox_bytes") > b"for later".len() as f64);
    assert_eq!(moved("call_signaling_turn_allocations_created_total"), 1.0);
    assert_eq!(get(&after, "call_signaling_turn_allocations"), 1.0);
    assert!(
        moved("call_signaling_turn_relayed_bytes_total{direction=\"to_peers\"}")
            >= b"via relay".len() as f64
    );
    assert!(
        moved("call_signaling_turn_relayed_bytes_total{direction=\"from_peers\"}")
            >= b"back".len() as f64
    );
    assert!(get(&after, "call_signaling_process_resident_memory_bytes") > 0.0);

    // A client leaving shows in the connection gauge (waited for, not timed).
    bob.close().await;
    let deadline = tokio::time::Instant::now() + SOON;
    loop {
        let now = scrape(metrics_addr).await;
        if get(&now, "call_signaling_connections{state=\"authenticated\"}") == 1.0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "bob still counted: {now:#?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    turn_client.close().await.unwrap();
    alice.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn metrics_are_off_by_default_and_only_on_their_own_listener() {
    init_tracing();
    let plain = start(test_config()).await;
    assert_eq!(plain.metrics_addr(), None);
    let (status, _) = http_get(plain.local_addr(), METRICS_PATH).await;
    assert_ne!(status, 200, "the public port must not serve metrics");
    plain.shutdown().await;

    let server = start(config()).await;
    let addr = server.metrics_addr().unwrap();
    let (status, _) = http_get(addr, "/ws").await;
    assert_eq!(status, 404);
    // Two servers in one process count apart.
    let other = start(config()).await;
    let _client = Client::connect(&other.url(), Identity::generate(), ClientOptions::default())
        .await
        .unwrap();
    let ours = scrape(addr).await;
    let theirs = scrape(other.metrics_addr().unwrap()).await;
    assert_eq!(
        get(&ours, "call_signaling_logins_total{result=\"ok\"}"),
        0.0
    );
    assert_eq!(
        get(&theirs, "call_signaling_logins_total{result=\"ok\"}"),
        1.0
    );
    assert_eq!(other.metrics().logins.ok.get(), 1);
    other.shutdown().await;
    server.shutdown().await;
}

#[tokio::test]
async fn idle_connections_to_the_metrics_port_are_bounded_and_reaped() {
    init_tracing();
    let mut cfg = config();
    // Long enough that the test opens all its connections within it on a loaded machine.
    cfg.limits.header_read_timeout = std::time::Duration::from_secs(2);
    let server = start(cfg).await;
    let addr = server.metrics_addr().unwrap();
    let mut idle = Vec::new();
    for _ in 0..8 {
        idle.push(TcpStream::connect(addr).await.unwrap());
    }
    // All 8 slots are held by connections that send nothing: a ninth is closed unanswered.
    let (status, _) = http_get(addr, METRICS_PATH).await;
    assert_eq!(status, 0, "a ninth connection was served");
    // The idle ones are closed after the header timeout; then scrapes work again.
    for mut stream in idle {
        let mut buf = [0u8; 64];
        let n = tokio::time::timeout(SOON, stream.read(&mut buf))
            .await
            .expect("an idle connection is closed by the server")
            .unwrap_or(0);
        assert_eq!(n, 0, "an idle connection got an answer");
    }
    let deadline = tokio::time::Instant::now() + SOON;
    while http_get(addr, METRICS_PATH).await.0 != 200 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no scrape after the idle ones left"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    server.shutdown().await;
}
