//! Helpers shared by the server integration tests: a real server on 127.0.0.1:0 and raw
//! WebSocket clients that can misbehave.
#![allow(dead_code)]

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use signaling::identity::Identity;
use signaling::protocol::{answer_challenge, decode_nonce, ErrorCode, ServerFrame};
use signaling::server::{Limits, RunningServer, Server, ServerConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Generous bound for anything that should happen "soon" (never a timing assertion).
pub const SOON: Duration = Duration::from_secs(5);

pub fn test_limits() -> Limits {
    Limits {
        auth_timeout: Duration::from_millis(500),
        header_read_timeout: Duration::from_millis(500),
        ..Limits::default()
    }
}

pub fn test_config() -> ServerConfig {
    ServerConfig {
        limits: test_limits(),
        ..ServerConfig::local()
    }
}

pub async fn start(cfg: ServerConfig) -> RunningServer {
    Server::start(cfg).await.expect("server starts")
}

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_test_writer()
        .try_init();
}

pub struct Raw {
    pub ws: WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>,
}

pub struct ChallengeParts {
    pub server: String,
    pub nonce: [u8; 32],
    pub ts: u64,
}

/// How a test client's TCP socket is set up.
#[derive(Debug, Clone, Copy, Default)]
pub struct SocketOptions {
    /// Local address to bind (e.g. 127.0.0.2: Linux routes all of 127/8 to lo).
    pub local_ip: Option<std::net::IpAddr>,
    /// SO_RCVBUF, to make a client that does not read stall the server's writes sooner.
    pub recv_buffer: Option<u32>,
}

/// Opens a TCP connection to `url`'s `ws://` server with `opts` and upgrades it.
pub async fn ws_connect_with(
    url: &str,
    opts: SocketOptions,
) -> Result<
    WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>,
    tokio_tungstenite::tungstenite::Error,
> {
    let authority = url
        .strip_prefix("ws://")
        .and_then(|rest| rest.split('/').next())
        .expect("a ws:// URL");
    let addr: std::net::SocketAddr = tokio::net::lookup_host(authority)
        .await
        .expect("resolvable")
        .find(|a| a.is_ipv4())
        .expect("an IPv4 address");
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    if let Some(ip) = opts.local_ip {
        socket
            .bind(std::net::SocketAddr::new(ip, 0))
            .expect("bind the local address");
    }
    if let Some(size) = opts.recv_buffer {
        socket.set_recv_buffer_size(size).expect("SO_RCVBUF");
    }
    let stream = socket.connect(addr).await?;
    let (ws, _) = tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(stream)).await?;
    Ok(ws)
}

impl Raw {
    /// Connects and reads the challenge.
    pub async fn connect(url: &str) -> (Raw, ChallengeParts) {
        Raw::connect_with(url, SocketOptions::default())
            .await
            .expect("websocket connects")
    }

    /// Connects with socket options and reads the challenge.
    pub async fn connect_with(
        url: &str,
        opts: SocketOptions,
    ) -> Result<(Raw, ChallengeParts), tokio_tungstenite::tungstenite::Error> {
        let ws = ws_connect_with(url, opts).await?;
        let mut raw = Raw { ws };
        match raw.next_frame().await {
            Some(ServerFrame::Challenge { server, nonce, ts }) => {
                let nonce = decode_nonce(&nonce).expect("32-byte nonce");
                Ok((raw, ChallengeParts { server, nonce, ts }))
            }
            other => panic!("expected a challenge, got {other:?}"),
        }
    }

    /// Connects and authenticates as `identity`.
    pub async fn authed(url: &str, identity: &Identity) -> Raw {
        Raw::authed_with(url, identity, SocketOptions::default()).await
    }

    /// Connects with socket options and authenticates as `identity`.
    pub async fn authed_with(url: &str, identity: &Identity, opts: SocketOptions) -> Raw {
        let (mut raw, c) = Raw::connect_with(url, opts)
            .await
            .expect("websocket connects");
        raw.send_text(answer_challenge(identity, &c.server, &c.nonce, c.ts).to_json())
            .await;
        match raw.next_frame().await {
            Some(ServerFrame::Welcome { id, .. }) => assert_eq!(id, identity.call_id()),
            other => panic!("expected welcome, got {other:?}"),
        }
        raw
    }

    pub async fn send_text(&mut self, text: impl Into<String>) {
        self.ws
            .send(Message::Text(text.into().into()))
            .await
            .expect("send");
    }

    pub async fn send_binary(&mut self, bytes: Vec<u8>) {
        self.ws
            .send(Message::Binary(bytes.into()))
            .await
            .expect("send");
    }

    /// The next server frame; `None` when the connection closed.
    pub async fn next_frame(&mut self) -> Option<ServerFrame> {
        loop {
            let msg = tokio::time::timeout(SOON, self.ws.next())
                .await
                .expect("a frame or close arrives");
            match msg {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return None,
                Some(Ok(Message::Text(text))) => {
                    return Some(ServerFrame::parse(text.as_str()).expect("server frames parse"))
                }
                Some(Ok(_)) => continue,
            }
        }
    }

    pub async fn expect_error(&mut self, want: ErrorCode) {
        match self.next_frame().await {
            Some(ServerFrame::Error { code, message }) => {
                assert_eq!(code, want, "message: {message}")
            }
            other => panic!("expected error {want}, got {other:?}"),
        }
    }

    /// Expects the connection to close (after possibly more frames, which are returned).
    pub async fn expect_closed(&mut self) -> Vec<ServerFrame> {
        let mut frames = Vec::new();
        while let Some(f) = self.next_frame().await {
            frames.push(f);
            assert!(frames.len() < 100, "connection did not close");
        }
        frames
    }
}

/// A TURN client of `server` with these credentials, listening (not yet allocated).
pub async fn turn_client(
    server: std::net::SocketAddr,
    username: &str,
    password: &str,
) -> turn::client::Client {
    let conn = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let client = turn::client::Client::new(turn::client::ClientConfig {
        stun_serv_addr: server.to_string(),
        turn_serv_addr: server.to_string(),
        username: username.to_owned(),
        password: password.to_owned(),
        realm: "call".to_owned(),
        software: String::new(),
        rto_in_ms: 0,
        conn: std::sync::Arc::new(conn),
        vnet: None,
    })
    .await
    .unwrap();
    client.listen().await.unwrap();
    client
}
