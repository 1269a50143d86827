//! Signaling server integration tests: a real server on 127.0.0.1:0, real WebSocket clients.

mod common;

use std::time::Duration;

use common::*;
use futures::StreamExt as _;
use signaling::client::{Client, ClientError, ClientOptions};
use signaling::envelope::{Envelope, EnvelopeError, EnvelopeKind};
use signaling::identity::{CallId, Identity};
use signaling::protocol::{answer_challenge, ClientFrame, ErrorCode, ServerFrame, MAX_FRAME_BYTES};
use signaling::server::{RateLimit, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

async fn client(url: &str) -> Client {
    Client::connect(url, Identity::generate(), ClientOptions::default())
        .await
        .expect("client connects")
}

async fn recv_ok(c: &mut Client) -> signaling::client::Incoming {
    tokio::time::timeout(SOON, c.recv())
        .await
        .expect("a message arrives")
        .expect("connection open")
        .expect("message accepted")
}

async fn recv_err(c: &mut Client) -> ClientError {
    match tokio::time::timeout(SOON, c.recv())
        .await
        .expect("something arrives")
    {
        Some(Err(e)) => e,
        other => panic!("expected an error, got {other:?}"),
    }
}

fn send_frame(env: &Envelope) -> String {
    ClientFrame::Send {
        envelope: serde_json::to_value(env).unwrap(),
    }
    .to_json()
}

#[tokio::test]
async fn routing_between_two_clients() {
    init_tracing();
    let server = start(test_config()).await;
    let url = server.url();
    assert!(
        url.starts_with("ws://127.0.0.1:") && url.ends_with("/ws"),
        "{url}"
    );
    let mut a = client(&url).await;
    let mut b = client(&url).await;
    a.send(&b.id(), EnvelopeKind::Offer, b"offer sdp")
        .await
        .unwrap();
    let got = recv_ok(&mut b).await;
    assert_eq!(got.from, a.id());
    assert_eq!(got.kind, EnvelopeKind::Offer);
    assert_eq!(got.plaintext, b"offer sdp");
    b.send(&a.id(), EnvelopeKind::Answer, b"answer sdp")
        .await
        .unwrap();
    let got = recv_ok(&mut a).await;
    assert_eq!(
        (got.from, got.kind, got.plaintext.as_slice()),
        (b.id(), EnvelopeKind::Answer, &b"answer sdp"[..])
    );
    assert_eq!(server.connected_clients(), 2);

    // Split halves: send while a receive is pending.
    let (a_tx, mut a_rx) = a.split();
    let recv = tokio::spawn(async move {
        tokio::time::timeout(SOON, a_rx.recv())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
    });
    b.send(&a_tx.id(), EnvelopeKind::Candidate, b"cand")
        .await
        .unwrap();
    assert_eq!(recv.await.unwrap().plaintext, b"cand");
    a_tx.send(&b.id(), EnvelopeKind::Hangup, b"bye")
        .await
        .unwrap();
    assert_eq!(recv_ok(&mut b).await.kind, EnvelopeKind::Hangup);
    b.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn auth_with_someone_elses_id_is_refused_and_closed() {
    init_tracing();
    let server = start(test_config()).await;
    let victim = Identity::generate().call_id();
    wrong_key_login(&server.url(), victim, SocketOptions::default()).await;
    server.shutdown().await;
}

#[tokio::test]
async fn auth_over_wrong_server_name_nonce_or_ts_is_refused() {
    init_tracing();
    let server = start(test_config()).await;
    let me = Identity::generate();
    for case in 0..4 {
        let (mut raw, c) = Raw::connect(&server.url()).await;
        let frame = match case {
            0 => answer_challenge(&me, "another-server", &c.nonce, c.ts),
            1 => answer_challenge(&me, &c.server, &[0u8; 32], c.ts),
            2 => answer_challenge(&me, &c.server, &c.nonce, c.ts - 120),
            _ => ClientFrame::Auth {
                id: me.call_id(),
                sig: "not base64".into(),
            },
        };
        raw.send_text(frame.to_json()).await;
        raw.expect_error(ErrorCode::AuthFailed).await;
        raw.expect_closed().await;
    }
    // A correct answer still works.
    Raw::authed(&server.url(), &me).await;
    server.shutdown().await;
}

#[tokio::test]
async fn client_refuses_an_unexpected_server_name() {
    init_tracing();
    let server = start(test_config()).await;
    let opts = ClientOptions {
        server_name: Some("not-this-one".into()),
        ..ClientOptions::default()
    };
    let err = Client::connect(&server.url(), Identity::generate(), opts)
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::WrongServer { .. }), "{err}");
    let opts = ClientOptions {
        server_name: Some("127.0.0.1".into()),
        ..ClientOptions::default()
    };
    Client::connect(&server.url(), Identity::generate(), opts)
        .await
        .unwrap();
    server.shutdown().await;
}

#[tokio::test]
async fn frames_before_auth_are_refused_without_closing() {
    init_tracing();
    let server = start(test_config()).await;
    let me = Identity::generate();
    let (mut raw, c) = Raw::connect(&server.url()).await;
    raw.send_text(r#"{"type":"turn"}"#).await;
    raw.expect_error(ErrorCode::Unauthenticated).await;
    raw.send_text(answer_challenge(&me, &c.server, &c.nonce, c.ts).to_json())
        .await;
    assert!(matches!(
        raw.next_frame().await,
        Some(ServerFrame::Welcome { .. })
    ));
    server.shutdown().await;
}

#[tokio::test]
async fn offline_recipient_gets_not_online() {
    init_tracing();
    let server = start(test_config()).await;
    let mut a = client(&server.url()).await;
    let nobody = Identity::generate().call_id();
    a.send(&nobody, EnvelopeKind::Offer, b"hello?")
        .await
        .unwrap();
    match recv_err(&mut a).await {
        ClientError::Server { code, .. } => assert_eq!(code, ErrorCode::NotOnline),
        other => panic!("{other}"),
    }
    // The client keeps working.
    let mut b = client(&server.url()).await;
    a.send(&b.id(), EnvelopeKind::Offer, b"now").await.unwrap();
    assert_eq!(recv_ok(&mut b).await.plaintext, b"now");
    server.shutdown().await;
}

/// Room states and messages for an offline ID wait in the in-memory mailbox and arrive, in
/// order, when it logs in; a full mailbox answers `mailbox_full` to the sender.
#[tokio::test]
async fn the_mailbox_keeps_room_envelopes_for_an_offline_member() {
    init_tracing();
    let mut cfg = test_config();
    cfg.limits.mailbox.per_recipient_count = 4;
    let server = start(cfg).await;
    let mut a = client(&server.url()).await;
    let b_seed = [0x42; 32];
    let b_id = Identity::from_seed(b_seed).call_id();
    a.send(&b_id, EnvelopeKind::RoomState, b"invite")
        .await
        .unwrap();
    for n in 1..=3 {
        let text = format!("message {n}");
        a.send(&b_id, EnvelopeKind::RoomMessage, text.as_bytes())
            .await
            .unwrap();
    }
    // The fifth is over the recipient's bound: refused to the sender, nothing else changes.
    a.send(&b_id, EnvelopeKind::RoomMessage, b"one too many")
        .await
        .unwrap();
    match recv_err(&mut a).await {
        ClientError::Server { code, .. } => assert_eq!(code, ErrorCode::MailboxFull),
        other => panic!("{other}"),
    }
    let mut b = Client::connect(
        &server.url(),
        Identity::from_seed(b_seed),
        ClientOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(b.kept_at_login(), 4, "welcome says how many were kept");
    let mut got = Vec::new();
    for _ in 0..4 {
        let m = recv_ok(&mut b).await;
        assert_eq!(m.from, a.id());
        got.push((m.kind, String::from_utf8(m.plaintext).unwrap()));
    }
    assert_eq!(
        got,
        [
            (EnvelopeKind::RoomState, "invite".to_owned()),
            (EnvelopeKind::RoomMessage, "message 1".to_owned()),
            (EnvelopeKind::RoomMessage, "message 2".to_owned()),
            (EnvelopeKind::RoomMessage, "message 3".to_owned()),
        ]
    );
    // Taken once: after logging in again the first thing B gets is a new live envelope (kept
    // ones would have been handed over first, at login).
    drop(b);
    let mut b = Client::connect(
        &server.url(),
        Identity::from_seed(b_seed),
        ClientOptions::default(),
    )
    .await
    .unwrap();
    a.send(&b_id, EnvelopeKind::RoomMessage, b"live")
        .await
        .unwrap();
    assert_eq!(recv_ok(&mut b).await.plaintext, b"live");
    server.shutdown().await;
}

#[tokio::test]
async fn spoofed_from_is_refused() {
    init_tracing();
    let server = start(test_config()).await;
    let mallory = Identity::generate();
    let alice = Identity::generate();
    let mut bob = client(&server.url()).await;
    let mut raw = Raw::authed(&server.url(), &mallory).await;
    let forged = Envelope::seal(
        &alice,
        &bob.id(),
        EnvelopeKind::Offer,
        b"from alice, honest",
        unix_now(),
    )
    .unwrap();
    raw.send_text(send_frame(&forged)).await;
    raw.expect_error(ErrorCode::SpoofedFrom).await;
    // Connection still open; a genuine envelope goes through.
    let genuine = Envelope::seal(
        &mallory,
        &bob.id(),
        EnvelopeKind::Offer,
        b"genuine",
        unix_now(),
    )
    .unwrap();
    raw.send_text(send_frame(&genuine)).await;
    let got = recv_ok(&mut bob).await;
    assert_eq!(
        (got.from, got.plaintext.as_slice()),
        (mallory.call_id(), &b"genuine"[..])
    );
    server.shutdown().await;
}

#[tokio::test]
async fn bad_input_gets_typed_errors_and_others_are_unaffected() {
    init_tracing();
    let server = start(test_config()).await;
    let url = server.url();
    let mut alice = client(&url).await;
    let mut bob = client(&url).await;
    let eve = Identity::generate();
    let mut raw = Raw::authed(&url, &eve).await;

    raw.send_text("{ this is not json").await;
    raw.expect_error(ErrorCode::BadFrame).await;
    raw.send_text(r#"{"type":"launch_missiles"}"#).await;
    raw.expect_error(ErrorCode::UnknownType).await;
    raw.send_text(r#"{"no_type":true}"#).await;
    raw.expect_error(ErrorCode::BadFrame).await;
    raw.send_binary(vec![0xff, 0x00, 0x13, 0x37, 0xde, 0xad])
        .await;
    raw.expect_error(ErrorCode::BadFrame).await;
    raw.send_text(r#"{"type":"send","envelope":{"v":1,"from":"x"}}"#)
        .await;
    raw.expect_error(ErrorCode::BadEnvelope).await;
    raw.send_text(r#"{"type":"send","envelope":"garbage"}"#)
        .await;
    raw.expect_error(ErrorCode::BadEnvelope).await;

    // Wrong signature (body altered after signing): the server routes it (it does not verify
    // signatures by default, `from` is still eve's) and bob's client refuses it.
    let mut forged =
        Envelope::seal(&eve, &bob.id(), EnvelopeKind::Offer, b"x", unix_now()).unwrap();
    forged.body[3] ^= 0x40;
    raw.send_text(send_frame(&forged)).await;
    match recv_err(&mut bob).await {
        ClientError::Envelope(EnvelopeError::BadSignature) => {}
        other => panic!("{other}"),
    }

    // Replay on the same connection.
    let env = Envelope::seal(&eve, &bob.id(), EnvelopeKind::Offer, b"once", unix_now()).unwrap();
    raw.send_text(send_frame(&env)).await;
    assert_eq!(recv_ok(&mut bob).await.plaintext, b"once");
    raw.send_text(send_frame(&env)).await;
    raw.expect_error(ErrorCode::Replayed).await;

    // Replay through a fresh connection: the server does not know it, the receiver refuses it
    // with a typed error and keeps going.
    let mut raw2 = Raw::authed(&url, &eve).await;
    raw.expect_error(ErrorCode::Replaced).await;
    raw2.send_text(send_frame(&env)).await;
    match recv_err(&mut bob).await {
        ClientError::Envelope(EnvelopeError::Replayed) => {}
        other => panic!("{other}"),
    }

    // Oversize message: too_large, then that connection is closed.
    let big = format!(
        r#"{{"type":"turn","pad":"{}"}}"#,
        "a".repeat(MAX_FRAME_BYTES + 10)
    );
    raw2.send_text(big).await;
    let tail = raw2.expect_closed().await;
    assert!(
        tail.iter().all(|f| matches!(
            f,
            ServerFrame::Error {
                code: ErrorCode::TooLarge,
                ..
            }
        )),
        "{tail:?}"
    );

    // Everyone else is unaffected.
    alice
        .send(&bob.id(), EnvelopeKind::Offer, b"still here")
        .await
        .unwrap();
    let got = recv_ok(&mut bob).await;
    assert_eq!(
        (got.from, got.plaintext.as_slice()),
        (alice.id(), &b"still here"[..])
    );
    bob.send(&alice.id(), EnvelopeKind::Answer, b"me too")
        .await
        .unwrap();
    assert_eq!(recv_ok(&mut alice).await.plaintext, b"me too");
    let mut carol = client(&url).await;
    alice
        .send(&carol.id(), EnvelopeKind::Offer, b"new")
        .await
        .unwrap();
    assert_eq!(recv_ok(&mut carol).await.plaintext, b"new");
    server.shutdown().await;
}

#[tokio::test]
async fn client_refuses_to_send_oversize_envelopes() {
    init_tracing();
    let server = start(test_config()).await;
    let a = client(&server.url()).await;
    let err = a
        .send(&a.id(), EnvelopeKind::Offer, &vec![0u8; 60 * 1024])
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Envelope(EnvelopeError::TooLarge { .. }) | ClientError::TooLarge { .. }
        ),
        "{err}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn rate_limit_triggers_and_recovers() {
    init_tracing();
    let mut cfg = test_config();
    // One token a second: the ten frames below go out long before a token comes back, even on a
    // loaded machine (at 20/s a 50 ms stall refilled one and the count was off).
    cfg.limits.rate = RateLimit {
        per_second: 1.0,
        burst: 3,
    };
    let server = start(cfg).await;
    let me = Identity::generate();
    // The auth frame takes one token.
    let mut raw = Raw::authed(&server.url(), &me).await;
    for _ in 0..10 {
        raw.send_text(r#"{"type":"turn"}"#).await;
    }
    let mut creds = 0;
    let mut limited = 0;
    for _ in 0..3 {
        match raw.next_frame().await {
            Some(ServerFrame::TurnCredentials(_)) => creds += 1,
            Some(ServerFrame::Error {
                code: ErrorCode::RateLimited,
                ..
            }) => limited += 1,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        (creds, limited),
        (2, 1),
        "two frames pass, one rate_limited report for the rest"
    );
    // Tokens come back; the connection was never closed.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    raw.send_text(r#"{"type":"turn"}"#).await;
    assert!(matches!(
        raw.next_frame().await,
        Some(ServerFrame::TurnCredentials(_))
    ));
    server.shutdown().await;
}

#[tokio::test]
async fn auth_timeout_closes_the_socket() {
    init_tracing();
    let mut cfg = test_config();
    cfg.limits.auth_timeout = Duration::from_millis(200);
    let server = start(cfg).await;
    let (mut raw, _) = Raw::connect(&server.url()).await;
    raw.expect_error(ErrorCode::AuthTimeout).await;
    raw.expect_closed().await;
    server.shutdown().await;
}

#[tokio::test]
async fn silent_and_slowloris_tcp_connections_are_reaped() {
    init_tracing();
    let mut cfg = test_config();
    cfg.limits.header_read_timeout = Duration::from_millis(200);
    let server = start(cfg).await;
    let addr = server.local_addr();
    let mut silent = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgra")
        .await
        .unwrap();
    for stream in [&mut silent, &mut slow] {
        let mut buf = [0u8; 1024];
        // Reads until the server closes (EOF or reset); any bytes are an HTTP error response.
        loop {
            match tokio::time::timeout(SOON, stream.read(&mut buf))
                .await
                .expect("server closes the connection")
            {
                Ok(0) | Err(_) => break,
                Ok(_) => continue,
            }
        }
    }
    server.shutdown().await;
}

#[tokio::test]
async fn idle_connections_are_closed_and_pongs_keep_them_alive() {
    init_tracing();
    let mut cfg = test_config();
    cfg.limits.ping_interval = Duration::from_secs(3600);
    cfg.limits.idle_timeout = Duration::from_millis(300);
    let server = start(cfg).await;
    let mut raw = Raw::authed(&server.url(), &Identity::generate()).await;
    raw.expect_error(ErrorCode::IdleTimeout).await;
    raw.expect_closed().await;
    server.shutdown().await;

    let mut cfg = test_config();
    cfg.limits.ping_interval = Duration::from_millis(50);
    cfg.limits.idle_timeout = Duration::from_millis(300);
    let server = start(cfg).await;
    let a = client(&server.url()).await;
    let mut b = client(&server.url()).await;
    // Quiet for several idle timeouts: the client's automatic pongs keep it connected.
    tokio::time::sleep(Duration::from_millis(900)).await;
    a.send(&b.id(), EnvelopeKind::Offer, b"alive")
        .await
        .unwrap();
    assert_eq!(recv_ok(&mut b).await.plaintext, b"alive");
    server.shutdown().await;
}

#[tokio::test]
async fn a_second_connection_replaces_the_first() {
    init_tracing();
    let server = start(test_config()).await;
    let me = Identity::generate();
    let mut first = Raw::authed(&server.url(), &me).await;
    let _second = Raw::authed(&server.url(), &me).await;
    first.expect_error(ErrorCode::Replaced).await;
    first.expect_closed().await;
    assert_eq!(server.connected_clients(), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn turn_credentials_are_served() {
    init_tracing();
    let server = start(test_config()).await;
    let a = client(&server.url()).await;
    let creds = a.turn_credentials().await.unwrap();
    let port = server.turn_addr().unwrap().port();
    assert_eq!(
        creds.urls,
        vec![format!("turn:127.0.0.1:{port}?transport=udp")]
    );
    assert_eq!(creds.ttl, 600);
    let (expiry, id) = creds.username.split_once(':').unwrap();
    assert_eq!(id, a.id().to_string());
    let expiry: u64 = expiry.parse().unwrap();
    assert!(expiry > unix_now() && expiry <= unix_now() + 600);
    assert_eq!(creds.password.len(), 28);
    server.shutdown().await;

    let server = start(ServerConfig {
        turn: None,
        ..test_config()
    })
    .await;
    assert_eq!(server.turn_addr(), None);
    let a = client(&server.url()).await;
    match a.turn_credentials().await.unwrap_err() {
        ClientError::Server { code, .. } => assert_eq!(code, ErrorCode::TurnUnavailable),
        other => panic!("{other}"),
    }
    server.shutdown().await;
}

#[tokio::test]
async fn shutdown_closes_clients_and_releases_the_ports() {
    init_tracing();
    let server = start(test_config()).await;
    let addr = server.local_addr();
    let turn_addr = server.turn_addr().unwrap();
    let mut a = client(&server.url()).await;
    server.shutdown().await;
    match tokio::time::timeout(SOON, a.recv()).await.unwrap() {
        Some(Err(ClientError::Server { code, .. })) => assert_eq!(code, ErrorCode::ShuttingDown),
        None => {}
        other => panic!("{other:?}"),
    }
    assert!(tokio::time::timeout(SOON, a.recv())
        .await
        .unwrap()
        .is_none());
    // Both ports can be bound again.
    let again = start(ServerConfig {
        listen: addr,
        turn: Some(signaling::server::TurnConfig {
            listen: turn_addr,
            ..signaling::server::TurnConfig::local()
        }),
        ..test_config()
    })
    .await;
    assert_eq!(again.local_addr(), addr);
    assert_eq!(again.turn_addr(), Some(turn_addr));
    let _c = client(&again.url()).await;
    drop(again);
    // Dropping also stops the server.
    let mut refused = false;
    for _ in 0..50 {
        if Client::connect(
            &format!("ws://{addr}/ws"),
            Identity::generate(),
            ClientOptions::default(),
        )
        .await
        .is_err()
        {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(refused, "a dropped server still accepts clients");
}

#[tokio::test]
async fn tls_server_and_wss_client() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let cert =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .unwrap();
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).unwrap();
    let server = start(ServerConfig {
        tls: Some(signaling::server::TlsPaths {
            cert: cert_path.clone(),
            key: key_path,
        }),
        ..test_config()
    })
    .await;
    let url = server.url();
    assert!(url.starts_with("wss://127.0.0.1:"), "{url}");
    let opts = ClientOptions {
        extra_root_ca: Some(cert_path),
        ..ClientOptions::default()
    };
    let mut a = Client::connect(&url, Identity::generate(), opts.clone())
        .await
        .unwrap();
    let b = Client::connect(&url, Identity::generate(), opts)
        .await
        .unwrap();
    b.send(&a.id(), EnvelopeKind::Offer, b"over tls")
        .await
        .unwrap();
    assert_eq!(recv_ok(&mut a).await.plaintext, b"over tls");
    // Without the extra root the self-signed certificate is refused.
    let err = Client::connect(&url, Identity::generate(), ClientOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Connect(_)), "{err}");
    // Plain ws:// to a TLS port fails cleanly.
    let plain = url.replace("wss://", "ws://");
    assert!(
        Client::connect(&plain, Identity::generate(), ClientOptions::default())
            .await
            .is_err()
    );
    server.shutdown().await;
}

#[tokio::test]
async fn binary_prints_its_url_and_stops_on_sigterm() {
    use tokio::io::AsyncBufReadExt;
    init_tracing();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_call-signaling"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--turn-listen",
            "127.0.0.1:0",
            "--allow-loopback-peers",
        ])
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let url = tokio::time::timeout(SOON, lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        url.starts_with("ws://127.0.0.1:") && url.ends_with("/ws"),
        "{url}"
    );
    let a = client(&url).await;
    let creds = a.turn_credentials().await.unwrap();
    assert_eq!(creds.urls.len(), 1);
    let pid = child.id().unwrap().to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    let status = tokio::time::timeout(SOON, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn a_receiver_that_does_not_read_is_disconnected_not_buffered() {
    init_tracing();
    let mut cfg = flood_config();
    cfg.limits.send_timeout = Duration::from_millis(200);
    let server = start(cfg).await;
    let url = server.url();
    let sender = Identity::generate();
    let mut a = Raw::authed(&url, &sender).await;
    let lazy = Identity::generate();
    // Never reads until the end; a small receive buffer makes the server's writes stall soon.
    let mut b = Raw::authed_with(
        &url,
        &lazy,
        SocketOptions {
            recv_buffer: Some(8 * 1024),
            ..SocketOptions::default()
        },
    )
    .await;
    let mut busy = 0;
    let mut sent = 0;
    // The sender is refused (recipient_busy) once its share is queued; the lazy receiver is
    // closed once a write to it makes no progress for the write timeout.
    while server.connected_clients() == 2 {
        assert!(sent < 5000, "the lazy receiver was never disconnected");
        a.send_text(send_frame(&bulk_envelope(
            &sender,
            &lazy.call_id(),
            32 * 1024,
        )))
        .await;
        sent += 1;
        use futures::FutureExt;
        while let Some(Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t)))) =
            a.ws.next().now_or_never()
        {
            match ServerFrame::parse(t.as_str()) {
                Ok(ServerFrame::Error {
                    code: ErrorCode::RecipientBusy,
                    ..
                }) => busy += 1,
                Ok(ServerFrame::Error {
                    code: ErrorCode::NotOnline,
                    ..
                }) => {}
                other => panic!("{other:?}"),
            }
        }
        if busy > 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    assert!(busy > 0, "the sender was told");
    // The lazy receiver's connection is gone (it may still read what was in flight).
    let mut closed = false;
    for _ in 0..10_000 {
        if b.next_frame().await.is_none() {
            closed = true;
            break;
        }
    }
    assert!(closed);
    assert_eq!(server.connected_clients(), 1);
    assert_eq!(server.queued_bytes(), 0, "its queue was freed");
    // And the metrics tell the operator.
    let m = server.metrics();
    assert_eq!(m.write_timeouts.get(), 1);
    let refused = m.rejected.get(ErrorCode::RecipientBusy).get();
    assert!(refused >= busy as u64, "{refused} < {busy}");
    let drops = &m.queue_drops;
    assert_eq!(
        drops.sender_share.get() + drops.recipient_full.get() + drops.server_full.get(),
        refused
    );
    server.shutdown().await;
}

#[tokio::test]
async fn connection_cap_refuses_extra_websockets() {
    init_tracing();
    let mut cfg = test_config();
    cfg.limits.max_connections = 2;
    let server = start(cfg).await;
    let _a = client(&server.url()).await;
    let _b = client(&server.url()).await;
    let err = Client::connect(
        &server.url(),
        Identity::generate(),
        ClientOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ClientError::Connect(_)), "{err}");
    assert_eq!(server.metrics().refused.limit.get(), 1);
    drop(_a);
    // The slot is released once the first connection has closed.
    let mut ok = false;
    for _ in 0..100 {
        if Client::connect(
            &server.url(),
            Identity::generate(),
            ClientOptions::default(),
        )
        .await
        .is_ok()
        {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(ok);
    server.shutdown().await;
}

/// A signed envelope whose `deliver` frame is `deliver_len` bytes (hand-built: larger than
/// `Envelope::seal` allows; the server checks signatures, not contents).
fn envelope_with_deliver_len(from: &Identity, to: &Identity, deliver_len: usize) -> Envelope {
    let mut env =
        Envelope::seal(from, &to.call_id(), EnvelopeKind::Offer, b"", unix_now()).unwrap();
    // Base64 grows in steps of 4 characters; `offer`/`answer` differ by one, which reaches
    // every length we need (checked below).
    for kind in [EnvelopeKind::Offer, EnvelopeKind::Answer] {
        env.kind = kind;
        env.body.clear();
        let base = ServerFrame::Deliver {
            envelope: env.clone(),
        }
        .to_json()
        .len();
        if deliver_len >= base && (deliver_len - base) % 4 == 0 {
            env.body = vec![0x5a; (deliver_len - base) / 4 * 3];
            env.sig = from.sign(&env.signed_bytes());
            let got = ServerFrame::Deliver {
                envelope: env.clone(),
            }
            .to_json()
            .len();
            assert_eq!(got, deliver_len);
            return env;
        }
    }
    panic!("no envelope has a {deliver_len}-byte deliver frame");
}

#[tokio::test]
async fn largest_deliverable_envelope_arrives_and_one_byte_more_is_refused() {
    init_tracing();
    let mut cfg = test_config();
    cfg.limits.idle_timeout = Duration::from_secs(30);
    let server = start(cfg).await;
    let url = server.url();
    let sender = Identity::generate();
    let recipient = Identity::generate();
    let mut a = Raw::authed(&url, &sender).await;
    let mut b = Raw::authed(&url, &recipient).await;

    let largest = envelope_with_deliver_len(&sender, &recipient, MAX_FRAME_BYTES);
    a.send_text(send_frame(&largest)).await;
    match b.next_frame().await {
        Some(ServerFrame::Deliver { envelope }) => assert_eq!(envelope, largest),
        other => panic!("expected the largest envelope, got {other:?}"),
    }

    let over = envelope_with_deliver_len(&sender, &recipient, MAX_FRAME_BYTES + 1);
    let send = send_frame(&over);
    assert!(send.len() <= MAX_FRAME_BYTES, "the send frame itself fits");
    a.send_text(send).await;
    // Refused at the sender (`too_large`, or `bad_envelope` if the envelope limit is lower),
    // and the sender stays connected.
    match a.next_frame().await {
        Some(ServerFrame::Error { code, .. }) => assert!(
            matches!(code, ErrorCode::TooLarge | ErrorCode::BadEnvelope),
            "{code}"
        ),
        other => panic!("expected an error, got {other:?}"),
    }
    // The recipient is still connected and gets the next envelope.
    let small = Envelope::seal(
        &sender,
        &recipient.call_id(),
        EnvelopeKind::Hangup,
        b"bye",
        unix_now(),
    )
    .unwrap();
    a.send_text(send_frame(&small)).await;
    match b.next_frame().await {
        Some(ServerFrame::Deliver { envelope }) => assert_eq!(envelope, small),
        other => panic!("expected the small envelope, got {other:?}"),
    }
    assert_eq!(server.connected_clients(), 2);
    server.shutdown().await;
}

#[tokio::test]
async fn server_name_is_the_listen_host_and_the_url_host() {
    init_tracing();
    let server = start(test_config()).await;
    assert_eq!(server.server_name(), "127.0.0.1");
    let url = server.url();
    assert!(url.starts_with("ws://127.0.0.1:"), "{url}");
    let (_raw, c) = Raw::connect(&url).await;
    assert_eq!(c.server, "127.0.0.1");

    let named = start(ServerConfig {
        server_name: Some("LocalHost".into()),
        ..test_config()
    })
    .await;
    assert_eq!(named.server_name(), "localhost");
    let url = named.url();
    assert!(url.starts_with("ws://localhost:"), "{url}");
    let (_raw, c) = Raw::connect(&url).await;
    assert_eq!(c.server, "localhost");
    named.shutdown().await;
    server.shutdown().await;
}

#[tokio::test]
async fn wildcard_listener_without_a_name_and_overlong_names_do_not_start() {
    init_tracing();
    let err = signaling::server::Server::start(ServerConfig {
        listen: "0.0.0.0:0".parse().unwrap(),
        ..test_config()
    })
    .await
    .unwrap_err();
    assert!(
        matches!(err, signaling::server::ServerError::ServerNameRequired(_)),
        "{err}"
    );
    assert!(err.to_string().contains("--server-name"), "{err}");
    let err = signaling::server::Server::start(ServerConfig {
        server_name: Some("a".repeat(signaling::protocol::MAX_SERVER_NAME_BYTES + 1)),
        ..test_config()
    })
    .await
    .unwrap_err();
    assert!(
        matches!(err, signaling::server::ServerError::BadServerName(256)),
        "{err}"
    );
}

#[tokio::test]
async fn binary_on_a_wildcard_address_asks_for_a_server_name() {
    init_tracing();
    // Refused before anything is bound.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_call-signaling"))
        .args(["--listen", "0.0.0.0:0", "--no-turn"])
        .env_remove("CALL_SERVER_NAME")
        .env("RUST_LOG", "warn")
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--server-name"), "{stderr}");
}

async fn ws_status_with_origin(url: &str, origin: Option<&str>) -> Result<(), u16> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = url.into_client_request().unwrap();
    if let Some(origin) = origin {
        req.headers_mut().insert("origin", origin.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok(_) => Ok(()),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => Err(resp.status().as_u16()),
        Err(other) => panic!("unexpected error: {other}"),
    }
}

#[tokio::test]
async fn browser_origins_are_refused_unless_allowed() {
    init_tracing();
    let server = start(test_config()).await;
    let url = server.url();
    // Non-browser clients send no Origin and are unaffected.
    assert_eq!(ws_status_with_origin(&url, None).await, Ok(()));
    client(&url).await;
    assert_eq!(
        ws_status_with_origin(&url, Some("https://evil.example")).await,
        Err(403)
    );
    assert_eq!(ws_status_with_origin(&url, Some("null")).await, Err(403));
    server.shutdown().await;

    let server = start(ServerConfig {
        allowed_origins: vec!["https://app.example.com".into()],
        ..test_config()
    })
    .await;
    let url = server.url();
    assert_eq!(
        ws_status_with_origin(&url, Some("https://app.example.com")).await,
        Ok(())
    );
    assert_eq!(
        ws_status_with_origin(&url, Some("https://evil.example")).await,
        Err(403)
    );
    assert_eq!(ws_status_with_origin(&url, None).await, Ok(()));
    server.shutdown().await;

    let err = signaling::server::Server::start(ServerConfig {
        allowed_origins: vec!["app.example.com".into()],
        ..test_config()
    })
    .await
    .unwrap_err();
    assert!(err.to_string().contains("scheme://host"), "{err}");
}

/// Starts the binary with `args`; returns its printed URL (or its stderr if it exited).
async fn run_binary(
    args: &[&str],
    envs: &[(&str, &str)],
) -> (tokio::process::Child, Result<String, String>) {
    use tokio::io::AsyncBufReadExt;
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_call-signaling"));
    cmd.args(["--listen", "127.0.0.1:0", "--turn-listen", "127.0.0.1:0"])
        .args(args)
        .env_remove("CALL_TURN_SECRET")
        .env_remove("CALL_TURN_SECRET_FILE")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let line = tokio::time::timeout(SOON, tokio::io::BufReader::new(stdout).lines().next_line())
        .await
        .unwrap()
        .unwrap();
    match line {
        Some(url) => (child, Ok(url)),
        None => {
            let stderr = read_stderr(&mut child).await;
            (child, Err(stderr))
        }
    }
}

#[cfg(unix)]
#[tokio::test]
async fn binary_reads_the_turn_secret_from_an_owner_only_file() {
    use signaling::turn_credentials::{CredentialPolicy, TurnSecret};
    use std::os::unix::fs::PermissionsExt as _;
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("turn-secret");
    std::fs::write(&path, "north\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let policy =
        CredentialPolicy::new(TurnSecret::new(b"north".to_vec()).unwrap(), 600, 3600).unwrap();
    let path_str = path.to_str().unwrap();
    for (args, envs) in [
        (vec!["--turn-secret-file", path_str], vec![]),
        (vec![], vec![("CALL_TURN_SECRET_FILE", path_str)]),
    ] {
        let (mut child, url) = run_binary(&args, &envs).await;
        let url = url.expect("the server starts");
        let creds = client(&url).await.turn_credentials().await.unwrap();
        assert_eq!(creds.password, policy.password_for(&creds.username));
        child.kill().await.unwrap();
    }

    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (mut child, out) = run_binary(&["--turn-secret-file", path_str], &[]).await;
    let stderr = out.expect_err("refused");
    assert!(stderr.contains("readable by other users"), "{stderr}");
    assert!(!child.wait().await.unwrap().success());
}

#[tokio::test]
async fn binary_warns_that_a_command_line_turn_secret_is_visible() {
    init_tracing();
    let (mut child, url) = run_binary(&["--turn-secret", "north"], &[]).await;
    url.expect("the server starts");
    child.kill().await.unwrap();
    let stderr = read_stderr(&mut child).await;
    assert!(stderr.contains("visible to other local users"), "{stderr}");
    assert!(
        !stderr.contains("north"),
        "the secret is never logged: {stderr}"
    );

    let (mut child, url) = run_binary(&[], &[("CALL_TURN_SECRET", "north")]).await;
    url.expect("the server starts");
    child.kill().await.unwrap();
    let stderr = read_stderr(&mut child).await;
    assert!(!stderr.contains("visible"), "{stderr}");
}

/// A signed envelope with a `len`-byte body that is not encrypted (the server never opens
/// bodies; sealing large bodies is needlessly slow in debug builds).
fn bulk_envelope(from: &Identity, to: &CallId, len: usize) -> Envelope {
    let mut env = Envelope::seal(from, to, EnvelopeKind::Candidate, b"", unix_now()).unwrap();
    env.body = vec![0x42; len];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut env.nonce);
    env.sig = from.sign(&env.signed_bytes());
    env
}

fn flood_config() -> ServerConfig {
    let mut cfg = test_config();
    cfg.limits.rate = RateLimit {
        per_second: 100_000.0,
        burst: 100_000,
    };
    cfg.limits.replay_capacity = 100_000;
    cfg.limits.idle_timeout = Duration::from_secs(60);
    // Small kernel buffers: a client that does not read stalls the server's writes sooner.
    cfg.limits.tcp_send_buffer = Some(16 * 1024);
    cfg
}

/// Sends `count` envelopes of `len` bytes from `me` to `to` as fast as the socket takes them,
/// reading (and discarding) whatever the server answers (`recipient_busy` once throttled).
fn spawn_flooder(
    url: String,
    me: Identity,
    to: CallId,
    count: usize,
    len: usize,
) -> tokio::task::JoinHandle<()> {
    use futures::{SinkExt, StreamExt};
    tokio::spawn(async move {
        let raw = Raw::authed(&url, &me).await;
        let (mut sink, mut stream) = raw.ws.split();
        let reader = tokio::spawn(async move { while let Some(Ok(_)) = stream.next().await {} });
        for _ in 0..count {
            let frame = send_frame(&bulk_envelope(&me, &to, len));
            if sink
                .send(tokio_tungstenite::tungstenite::Message::Text(frame.into()))
                .await
                .is_err()
            {
                break;
            }
        }
        let _ = sink.close().await;
        let _ = tokio::time::timeout(SOON, reader).await;
    })
}

#[tokio::test]
async fn flooding_a_victim_does_not_disconnect_it() {
    init_tracing();
    let server = start(flood_config()).await;
    let url = server.url();
    let victim = Identity::generate();
    let good = Identity::generate();
    // The victim reads every frame, at a steady pace, through a small receive buffer.
    let mut victim_conn = Raw::authed_with(
        &url,
        &victim,
        SocketOptions {
            recv_buffer: Some(16 * 1024),
            ..SocketOptions::default()
        },
    )
    .await;
    let good_id = good.call_id();
    let reader = tokio::spawn(async move {
        let (mut from_good, mut total) = (0, 0);
        while from_good < 5 {
            match tokio::time::timeout(Duration::from_secs(30), victim_conn.ws.next()).await {
                Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t)))) => {
                    match ServerFrame::parse(t.as_str()).unwrap() {
                        ServerFrame::Deliver { envelope } => {
                            total += 1;
                            if envelope.from == good_id {
                                from_good += 1;
                            }
                        }
                        other => panic!("the victim got {other:?}"),
                    }
                    // A steady reader, slower than the flood.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Ok(Some(Ok(_))) => {}
                other => panic!("the victim's connection ended: {other:?} after {total} frames"),
            }
        }
        (victim_conn, total)
    });

    let flooders: Vec<_> = (0..3)
        .map(|_| {
            spawn_flooder(
                url.clone(),
                Identity::generate(),
                victim.call_id(),
                150,
                32 * 1024,
            )
        })
        .collect();
    let mut good_conn = Raw::authed(&url, &good).await;
    for i in 0..5u8 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let env = Envelope::seal(
            &good,
            &victim.call_id(),
            EnvelopeKind::Offer,
            &[i],
            unix_now(),
        )
        .unwrap();
        good_conn.send_text(send_frame(&env)).await;
    }
    for f in flooders {
        f.await.unwrap();
    }
    let (mut victim_conn, _) = reader.await.unwrap();
    // Still connected: an envelope sent now arrives.
    let env = Envelope::seal(
        &good,
        &victim.call_id(),
        EnvelopeKind::Hangup,
        b"end",
        unix_now(),
    )
    .unwrap();
    good_conn.send_text(send_frame(&env)).await;
    loop {
        match victim_conn.next_frame().await {
            Some(ServerFrame::Deliver { envelope }) if envelope == env => break,
            Some(ServerFrame::Deliver { .. }) => continue,
            other => panic!("the victim was disconnected: {other:?}"),
        }
    }
    server.shutdown().await;
}

fn from_ip(last: u8) -> SocketOptions {
    SocketOptions {
        local_ip: Some(std::net::IpAddr::from([127, 0, 0, last])),
        ..SocketOptions::default()
    }
}

#[tokio::test]
async fn one_address_cannot_take_every_websocket_slot() {
    init_tracing();
    let mut cfg = test_config();
    cfg.limits.max_connections_per_ip = 2;
    let server = start(cfg).await;
    let url = server.url();
    let first = Raw::authed_with(&url, &Identity::generate(), from_ip(2)).await;
    let _second = Raw::authed_with(&url, &Identity::generate(), from_ip(2)).await;
    match Raw::connect_with(&url, from_ip(2)).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status().as_u16(), 429)
        }
        Err(other) => panic!("{other}"),
        Ok(_) => panic!("a third WebSocket from 127.0.0.2 was accepted"),
    }
    // Other addresses are unaffected.
    let _other = Raw::authed_with(&url, &Identity::generate(), from_ip(3)).await;
    // The slot comes back when a connection closes.
    drop(first);
    assert!(eventually_connects(&url, from_ip(2)).await);
    server.shutdown().await;
}

/// Logs in from `opts` as `victim`'s ID with another key's signature; the server refuses it.
async fn wrong_key_login(url: &str, victim: CallId, opts: SocketOptions) {
    let (mut raw, c) = Raw::connect_with(url, opts).await.expect("connects");
    let sig = match answer_challenge(&Identity::generate(), &c.server, &c.nonce, c.ts) {
        ClientFrame::Auth { sig, .. } => sig,
        _ => unreachable!(),
    };
    raw.send_text(ClientFrame::Auth { id: victim, sig }.to_json())
        .await;
    raw.expect_error(ErrorCode::AuthFailed).await;
    raw.expect_closed().await;
}

#[tokio::test]
async fn an_address_that_keeps_failing_logins_is_refused_before_the_signature_check() {
    init_tracing();
    let mut cfg = test_config();
    cfg.limits.login_failures_per_minute = 3;
    let server = start(cfg).await;
    let url = server.url();
    let victim = Identity::generate().call_id();
    for _ in 0..3 {
        wrong_key_login(&url, victim, from_ip(4)).await;
    }
    // The fourth try does not get a challenge: refused at the upgrade.
    match Raw::connect_with(&url, from_ip(4)).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status().as_u16(), 429)
        }
        Err(other) => panic!("{other}"),
        Ok(_) => panic!("a fourth login attempt from 127.0.0.4 got a challenge"),
    }
    // Not even a correct login from that address for now…
    assert!(Raw::connect_with(&url, from_ip(4)).await.is_err());
    // …while other addresses log in as usual.
    let _other = Raw::authed_with(&url, &Identity::generate(), from_ip(5)).await;
    let m = server.metrics().encode();
    assert!(
        m.contains("call_signaling_connections_refused_total{reason=\"login_failures\"} 2"),
        "{m}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn one_address_cannot_hold_every_handshake_slot() {
    init_tracing();
    let mut cfg = test_config();
    cfg.limits.max_handshakes_per_ip = 2;
    // Far longer than the test waits: a refusal must come from the cap, not the timeout.
    cfg.limits.header_read_timeout = Duration::from_secs(60);
    let server = start(cfg).await;
    let addr = server.local_addr();
    let silent = |last: u8| async move {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket
            .bind(std::net::SocketAddr::from(([127, 0, 0, last], 0)))
            .unwrap();
        socket.connect(addr).await.unwrap()
    };
    let _h1 = silent(4).await;
    let _h2 = silent(4).await;
    // Give the accept loop time to count both (the third is then refused at once).
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut third = silent(4).await;
    let mut buf = [0u8; 64];
    match tokio::time::timeout(SOON, third.read(&mut buf))
        .await
        .expect("the server closes the third connection")
    {
        Ok(0) | Err(_) => {}
        Ok(n) => panic!("unexpected {n} bytes"),
    }
    // Another address still gets in, and so does 127.0.0.4 once a handshake is gone.
    Raw::authed_with(&server.url(), &Identity::generate(), from_ip(5)).await;
    drop(_h1);
    assert!(eventually_connects(&server.url(), from_ip(4)).await);
    server.shutdown().await;
}

#[tokio::test]
async fn the_global_queue_budget_bounds_memory_for_all_recipients() {
    init_tracing();
    let budget = 256 * 1024;
    let mut cfg = flood_config();
    cfg.limits.global_queue_bytes = budget;
    cfg.limits.sender_queue_bytes = 4 * 1024 * 1024;
    cfg.limits.recipient_queue_bytes = 4 * 1024 * 1024;
    cfg.limits.send_timeout = Duration::from_secs(60);
    let server = start(cfg).await;
    let url = server.url();
    let sender = Identity::generate();
    let mut a = Raw::authed(&url, &sender).await;
    let small_buffer = SocketOptions {
        recv_buffer: Some(8 * 1024),
        ..SocketOptions::default()
    };
    let lazies = [Identity::generate(), Identity::generate()];
    let mut _lazy_conns = Vec::new();
    for lazy in &lazies {
        _lazy_conns.push(Raw::authed_with(&url, lazy, small_buffer).await);
    }
    let reader = Identity::generate();
    let mut reader_conn = Raw::authed(&url, &reader).await;
    // Two recipients that do not read: their queues grow until the global budget is spent.
    let mut refused = None;
    for i in 0..2000 {
        let to = lazies[i % 2].call_id();
        a.send_text(send_frame(&bulk_envelope(&sender, &to, 32 * 1024)))
            .await;
        assert!(server.queued_bytes() <= budget, "{}", server.queued_bytes());
        use futures::FutureExt;
        if let Some(Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t)))) =
            a.ws.next().now_or_never()
        {
            refused = Some(ServerFrame::parse(t.as_str()).unwrap());
            break;
        }
    }
    match refused {
        Some(ServerFrame::Error {
            code: ErrorCode::RecipientBusy,
            message,
        }) => assert!(message.contains("server's queues are full"), "{message}"),
        other => panic!("expected recipient_busy, got {other:?}"),
    }
    assert!(server.queued_bytes() <= budget);
    // While it is spent, even a recipient that reads gets nothing large queued: the sender is
    // told, nobody is disconnected.
    // (A 45 KiB body makes a 62 KiB frame; the refused one above was 44 KiB.)
    let big = bulk_envelope(&sender, &reader.call_id(), 45 * 1024);
    a.send_text(send_frame(&big)).await;
    a.expect_error(ErrorCode::RecipientBusy).await;
    let small = Envelope::seal(
        &sender,
        &reader.call_id(),
        EnvelopeKind::Offer,
        b"hi",
        unix_now(),
    )
    .unwrap();
    a.send_text(send_frame(&small)).await;
    assert!(matches!(
        reader_conn.next_frame().await,
        Some(ServerFrame::Deliver { .. })
    ));
    assert_eq!(server.connected_clients(), 4);
    server.shutdown().await;
}

#[tokio::test]
async fn oversize_http_request_heads_are_refused() {
    init_tracing();
    let server = start(test_config()).await;
    let url = server.url();
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = url.as_str().into_client_request().unwrap();
    // 20 KiB of headers: over the 16 KiB default (hyper alone would take about 400 KiB).
    for i in 0..20 {
        req.headers_mut().insert(
            format!("x-pad-{i}")
                .parse::<axum::http::HeaderName>()
                .unwrap(),
            "a".repeat(1000).parse().unwrap(),
        );
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok(_) => panic!("a 20 KiB request head was accepted"),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status().as_u16(), 431)
        }
        // Or the server closes the connection.
        Err(_) => {}
    }
    // A normal request still works.
    client(&url).await;
    server.shutdown().await;
}

/// Tries to open a WebSocket from `opts` for up to two seconds: a slot freed by a closed
/// connection comes back once the server has noticed the close.
async fn eventually_connects(url: &str, opts: SocketOptions) -> bool {
    for _ in 0..100 {
        if Raw::connect_with(url, opts).await.is_ok() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// Everything `child` wrote to stderr, up to its end (kill or wait for it first).
async fn read_stderr(child: &mut tokio::process::Child) -> String {
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr is piped")
        .read_to_string(&mut stderr)
        .await
        .expect("stderr is readable");
    stderr
}

/// Envelopes the server wrote to a connection are the client's even if it never read them:
/// `close_and_take` hands them over (a one-shot `call room send` once lost a member's message
/// that arrived while it was connected: the server had counted it delivered).
#[tokio::test]
async fn closing_hands_over_what_arrived_unread() {
    init_tracing();
    let server = start(test_config()).await;
    let url = server.url();
    let a = client(&url).await;
    let b = client(&url).await;
    for text in [&b"one"[..], b"two", b"three"] {
        a.send(&b.id(), EnvelopeKind::RoomMessage, text)
            .await
            .unwrap();
    }
    // Wait until the server has queued all three on b's connection.
    let deadline = tokio::time::Instant::now() + SOON;
    while server.metrics().delivered.get() < 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the server never delivered the three envelopes"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let left: Vec<Vec<u8>> = b
        .close_and_take()
        .await
        .into_iter()
        .map(|m| m.expect("accepted").plaintext)
        .collect();
    assert_eq!(left, [&b"one"[..], b"two", b"three"]);
    a.close().await;
}
