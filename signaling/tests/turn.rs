//! Embedded TURN server tests: real allocations with webrtc-rs' TURN client on loopback.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
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

async fn turn_client(server: SocketAddr, username: &str, password: &str) -> turn::client::Client {
    let conn = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let client = turn::client::Client::new(turn::client::ClientConfig {
        stun_serv_addr: server.to_string(),
        turn_serv_addr: server.to_string(),
        username: username.to_owned(),
        password: password.to_owned(),
        realm: "call".to_owned(),
        software: String::new(),
        rto_in_ms: 0,
        conn: Arc::new(conn),
        vnet: None,
    })
    .await
    .unwrap();
    client.listen().await.unwrap();
    client
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
