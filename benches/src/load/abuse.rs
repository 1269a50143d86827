//! The abusers of `call-load abuse`, each a task that runs until a deadline and counts what it
//! did and what the server answered: a flood of unauthenticated TURN allocations from many
//! source ports, slowloris connections (an HTTP request head one byte at a time, from many
//! loopback source addresses), authenticated connections sending malformed and oversized
//! frames, logins signed with the wrong key, and one authenticated client flooding a
//! well-behaved receiver with `send` frames.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use signaling::envelope::{Envelope, EnvelopeKind};
use signaling::identity::{CallId, Identity};
use signaling::protocol::{answer_challenge, ClientFrame, ServerFrame, MAX_FRAME_BYTES};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, UdpSocket};
use tokio_tungstenite::tungstenite::Message;

/// How hard each abuser pushes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AbusePlan {
    /// Unauthenticated TURN requests per second, all sockets together.
    pub turn_per_second: u32,
    /// UDP sockets (source ports) the TURN flood uses.
    pub turn_sockets: usize,
    /// Slowloris connections held open.
    pub slowloris: usize,
    /// Connections looping login → malformed and oversized frames → closed.
    pub bad_frame_workers: usize,
    /// Connections looping wrong-key logins.
    pub wrong_key_workers: usize,
    /// `send` frames per second of the authenticated flooder.
    pub flood_per_second: u32,
}

impl Default for AbusePlan {
    fn default() -> Self {
        AbusePlan {
            turn_per_second: 5_000,
            turn_sockets: 64,
            slowloris: 500,
            bad_frame_workers: 4,
            wrong_key_workers: 2,
            flood_per_second: 5_000,
        }
    }
}

/// What the abusers did and what came back.
#[derive(Debug, Default)]
pub struct AbuseCounts {
    /// TURN requests sent.
    pub turn_sent: AtomicU64,
    /// TURN answers received (error responses, or nothing once the server rate-limits).
    pub turn_answers: AtomicU64,
    /// Slowloris connections opened.
    pub slowloris_opened: AtomicU64,
    /// Slowloris connections the server closed (header timeout or limit).
    pub slowloris_closed: AtomicU64,
    /// Malformed or oversized frames sent.
    pub bad_frames: AtomicU64,
    /// Error frames received in answer to them.
    pub bad_frame_errors: AtomicU64,
    /// Connections the server closed after an oversized frame.
    pub oversize_closed: AtomicU64,
    /// Wrong-key logins attempted.
    pub wrong_key_logins: AtomicU64,
    /// Wrong-key logins refused (`auth_failed`, or the connection closed).
    pub wrong_key_refused: AtomicU64,
    /// Wrong-key logins the server accepted (must stay 0).
    pub wrong_key_accepted: AtomicU64,
    /// Wrong-key login attempts refused at the upgrade (HTTP 429: the address used up its
    /// failed logins) before any challenge.
    pub wrong_key_throttled: AtomicU64,
    /// Flood frames sent.
    pub flood_sent: AtomicU64,
    /// Abuser steps that failed to connect (server busy or refusing).
    pub connect_failures: AtomicU64,
}

impl AbuseCounts {
    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// The counts as `name=value` pairs, for the report.
    pub fn summary(&self) -> String {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        format!(
            "TURN requests {} (answered {}); slowloris opened {} (closed by the server {}); \
             bad frames {} (error frames {}, closed for oversize {}); wrong-key logins {} \
             (refused {}, accepted {}; then refused at the upgrade {}); flood frames {}; \
             failed connects {}",
            g(&self.turn_sent),
            g(&self.turn_answers),
            g(&self.slowloris_opened),
            g(&self.slowloris_closed),
            g(&self.bad_frames),
            g(&self.bad_frame_errors),
            g(&self.oversize_closed),
            g(&self.wrong_key_logins),
            g(&self.wrong_key_refused),
            g(&self.wrong_key_accepted),
            g(&self.wrong_key_throttled),
            g(&self.flood_sent),
            g(&self.connect_failures),
        )
    }
}

/// An unauthenticated TURN Allocate request (RFC 5766): header, REQUESTED-TRANSPORT UDP.
pub fn turn_allocate(transaction: [u8; 12]) -> [u8; 28] {
    let mut m = [0u8; 28];
    m[0..2].copy_from_slice(&0x0003u16.to_be_bytes()); // Allocate request
    m[2..4].copy_from_slice(&8u16.to_be_bytes()); // attributes length
    m[4..8].copy_from_slice(&0x2112_A442u32.to_be_bytes()); // magic cookie
    m[8..20].copy_from_slice(&transaction);
    m[20..22].copy_from_slice(&0x0019u16.to_be_bytes()); // REQUESTED-TRANSPORT
    m[22..24].copy_from_slice(&4u16.to_be_bytes());
    m[24] = 17; // UDP
    m
}

/// Floods `turn` with unauthenticated allocations from `plan.turn_sockets` source ports.
pub async fn turn_flood(turn: SocketAddr, plan: AbusePlan, end: Instant, counts: Arc<AbuseCounts>) {
    let sockets = plan.turn_sockets.max(1);
    // Every 10 ms the sockets send a hundredth of the rate between them.
    let per_tick = (plan.turn_per_second as usize / 100).max(1);
    let mut tasks = tokio::task::JoinSet::new();
    for k in 0..sockets {
        let counts = Arc::clone(&counts);
        let share = per_tick / sockets + usize::from(k < per_tick % sockets);
        if share == 0 {
            continue;
        }
        tasks.spawn(async move {
            let Ok(sock) = UdpSocket::bind("127.0.0.1:0").await else {
                AbuseCounts::add(&counts.connect_failures, 1);
                return;
            };
            let mut tick = tokio::time::interval(Duration::from_millis(10));
            let mut n: u64 = 0;
            let mut buf = [0u8; 1500];
            while Instant::now() < end {
                tick.tick().await;
                for _ in 0..share {
                    let mut tx = [0u8; 12];
                    tx[..8].copy_from_slice(&n.to_be_bytes());
                    tx[8..].copy_from_slice(&(k as u32).to_be_bytes());
                    n += 1;
                    if sock.send_to(&turn_allocate(tx), turn).await.is_ok() {
                        AbuseCounts::add(&counts.turn_sent, 1);
                    }
                }
                while sock.try_recv(&mut buf).is_ok() {
                    AbuseCounts::add(&counts.turn_answers, 1);
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
}

/// Holds `plan.slowloris` connections that send an HTTP request head one byte a second, each
/// from its own loopback address (127.0.1.x), reopening those the server closes.
pub async fn slowloris(
    server: SocketAddr,
    plan: AbusePlan,
    end: Instant,
    counts: Arc<AbuseCounts>,
) {
    const HEAD: &[u8] = b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nX-Slow: ";
    let mut tasks = tokio::task::JoinSet::new();
    for k in 0..plan.slowloris {
        let counts = Arc::clone(&counts);
        let source = Ipv4Addr::new(127, 0, 1, 1 + (k % 250) as u8);
        tasks.spawn(async move {
            while Instant::now() < end {
                let Ok(sock) = TcpSocket::new_v4() else {
                    return;
                };
                if sock.bind(SocketAddr::from((source, 0))).is_err() {
                    AbuseCounts::add(&counts.connect_failures, 1);
                    return;
                }
                let Ok(mut stream) = sock.connect(server).await else {
                    AbuseCounts::add(&counts.connect_failures, 1);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                };
                AbuseCounts::add(&counts.slowloris_opened, 1);
                let mut bytes = HEAD.iter().chain(std::iter::repeat(&b'a'));
                let mut probe = [0u8; 64];
                loop {
                    if Instant::now() >= end {
                        return;
                    }
                    let byte = *bytes.next().unwrap_or(&b'a');
                    if stream.write_all(&[byte]).await.is_err() {
                        AbuseCounts::add(&counts.slowloris_closed, 1);
                        break;
                    }
                    // A read that returns (EOF or an answer) means the server gave up on us.
                    match tokio::time::timeout(Duration::from_secs(1), stream.read(&mut probe))
                        .await
                    {
                        Err(_) => {}
                        Ok(_) => {
                            AbuseCounts::add(&counts.slowloris_closed, 1);
                            break;
                        }
                    }
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The server answered the upgrade with HTTP 429.
struct Throttled;

/// Like [`challenged`], from the local address `source`.
async fn challenged_from(
    url: &str,
    server: SocketAddr,
    source: Ipv4Addr,
) -> Result<Option<(Ws, String, [u8; 32], u64)>, Throttled> {
    let Ok(sock) = TcpSocket::new_v4() else {
        return Ok(None);
    };
    if sock.bind(SocketAddr::from((source, 0))).is_err() {
        return Ok(None);
    }
    let Ok(stream) = sock.connect(server).await else {
        return Ok(None);
    };
    let stream = tokio_tungstenite::MaybeTlsStream::Plain(stream);
    let mut ws = match tokio_tungstenite::client_async(url, stream).await {
        Ok((ws, _)) => ws,
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) if resp.status() == 429 => {
            return Err(Throttled)
        }
        Err(_) => return Ok(None),
    };
    let Some(Ok(Message::Text(text))) = ws.next().await else {
        return Ok(None);
    };
    Ok(match ServerFrame::parse(text.as_str()).ok() {
        Some(ServerFrame::Challenge { server, nonce, ts }) => {
            signaling::protocol::decode_nonce(&nonce).map(|nonce| (ws, server, nonce, ts))
        }
        _ => None,
    })
}

/// Connects and reads the challenge: (socket, server name, nonce, ts).
async fn challenged(url: &str) -> Option<(Ws, String, [u8; 32], u64)> {
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.ok()?;
    let Some(Ok(Message::Text(text))) = ws.next().await else {
        return None;
    };
    match ServerFrame::parse(text.as_str()).ok()? {
        ServerFrame::Challenge { server, nonce, ts } => {
            let nonce = signaling::protocol::decode_nonce(&nonce)?;
            Some((ws, server, nonce, ts))
        }
        _ => None,
    }
}

/// Logs in as a fresh identity over a raw WebSocket.
async fn raw_login(url: &str) -> Option<(Ws, Identity)> {
    let (mut ws, server, nonce, ts) = challenged(url).await?;
    let me = Identity::generate();
    let auth = answer_challenge(&me, &server, &nonce, ts).to_json();
    ws.send(Message::Text(auth.into())).await.ok()?;
    match ws.next().await {
        Some(Ok(Message::Text(t))) if t.as_str().contains("\"welcome\"") => Some((ws, me)),
        _ => None,
    }
}

/// Drains what the server sent without waiting; returns (error frames, closed).
async fn drain(ws: &mut Ws, wait: Duration) -> (u64, bool) {
    let mut errors = 0;
    let until = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(until, ws.next()).await {
            Err(_) => return (errors, false),
            Ok(Some(Ok(Message::Text(t)))) => {
                if t.as_str().contains("\"error\"") {
                    errors += 1;
                }
            }
            Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Ok(Some(Err(_))) => return (errors, true),
            Ok(Some(Ok(_))) => {}
        }
    }
}

/// Logs in, sends malformed frames and finally one over the size limit; the server answers
/// each with an error frame and closes on the oversized one. Loops until `end`.
pub async fn bad_frames(url: String, end: Instant, counts: Arc<AbuseCounts>) {
    let oversize = "x".repeat(MAX_FRAME_BYTES + 4096);
    let bad: [Message; 6] = [
        Message::Text("{ not json".into()),
        Message::Text(r#"{"type":"launch"}"#.into()),
        Message::Text(r#"{"type":"send","envelope":{"v":1,"from":"x"}}"#.into()),
        Message::Text(r#"{"type":"send","envelope":"garbage","type":"send"}"#.into()),
        Message::Binary(vec![0xff; 1024].into()),
        Message::Text(format!(r#"{{"type":"send","envelope":{}}}"#, "[".repeat(2000)).into()),
    ];
    while Instant::now() < end {
        let Some((mut ws, _)) = raw_login(&url).await else {
            AbuseCounts::add(&counts.connect_failures, 1);
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        for m in &bad {
            if ws.send(m.clone()).await.is_err() {
                break;
            }
            AbuseCounts::add(&counts.bad_frames, 1);
        }
        let (errors, _) = drain(&mut ws, Duration::from_millis(50)).await;
        AbuseCounts::add(&counts.bad_frame_errors, errors);
        if ws
            .send(Message::Text(oversize.clone().into()))
            .await
            .is_ok()
        {
            AbuseCounts::add(&counts.bad_frames, 1);
        }
        let (errors, closed) = drain(&mut ws, Duration::from_secs(2)).await;
        AbuseCounts::add(&counts.bad_frame_errors, errors);
        if closed {
            AbuseCounts::add(&counts.oversize_closed, 1);
        }
    }
}

/// Answers challenges claiming `victim`'s ID with a signature by another key, from loopback
/// address 127.0.2.`worker + 1` (an attacker is another host than the well-behaved clients:
/// the server limits failed logins per address). Loops until `end`.
pub async fn wrong_key_logins(
    url: String,
    server_addr: SocketAddr,
    worker: usize,
    victim: CallId,
    end: Instant,
    counts: Arc<AbuseCounts>,
) {
    let impostor = Identity::generate();
    let source = Ipv4Addr::new(127, 0, 2, 1 + (worker % 250) as u8);
    while Instant::now() < end {
        let (mut ws, server, nonce, ts) = match challenged_from(&url, server_addr, source).await {
            Ok(Some(challenge)) => challenge,
            Ok(None) => {
                AbuseCounts::add(&counts.connect_failures, 1);
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            Err(Throttled) => {
                AbuseCounts::add(&counts.wrong_key_throttled, 1);
                // What a persistent attacker does: try again soon.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let auth = match answer_challenge(&impostor, &server, &nonce, ts) {
            ClientFrame::Auth { sig, .. } => ClientFrame::Auth { id: victim, sig },
            other => other,
        };
        AbuseCounts::add(&counts.wrong_key_logins, 1);
        if ws.send(Message::Text(auth.to_json().into())).await.is_err() {
            continue;
        }
        match tokio::time::timeout(Duration::from_secs(2), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) if t.as_str().contains("\"welcome\"") => {
                AbuseCounts::add(&counts.wrong_key_accepted, 1)
            }
            _ => AbuseCounts::add(&counts.wrong_key_refused, 1),
        }
    }
}

/// Logs in and sends `send` frames to `victim` at `per_second` (one pre-sealed envelope again
/// and again: the server rate-limits the connection before it parses, and refuses resends).
pub async fn flood(
    url: String,
    victim: CallId,
    per_second: u32,
    end: Instant,
    counts: Arc<AbuseCounts>,
) {
    let Some((ws, me)) = raw_login(&url).await else {
        AbuseCounts::add(&counts.connect_failures, 1);
        return;
    };
    let now = signaling_unix_now();
    let Ok(env) = Envelope::seal(&me, &victim, EnvelopeKind::Candidate, &[b'f'; 200], now) else {
        return;
    };
    let frame = ClientFrame::Send {
        envelope: serde_json::to_value(&env).unwrap_or_default(),
    }
    .to_json();
    let per_tick = (per_second / 100).max(1);
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    let (mut ws_tx, mut ws_rx) = ws.split();
    // Read (and drop) what the server answers so its writes never block on us.
    let reader = tokio::spawn(async move { while ws_rx.next().await.is_some() {} });
    while Instant::now() < end {
        tick.tick().await;
        for _ in 0..per_tick {
            if ws_tx
                .feed(Message::Text(frame.clone().into()))
                .await
                .is_err()
            {
                reader.abort();
                return;
            }
        }
        if ws_tx.flush().await.is_err() {
            break;
        }
        AbuseCounts::add(&counts.flood_sent, u64::from(per_tick));
    }
    let _ = ws_tx.close().await;
    reader.abort();
}

fn signaling_unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_turn_request_is_a_well_formed_allocate() {
        let m = turn_allocate([9; 12]);
        assert_eq!(u16::from_be_bytes([m[0], m[1]]), 0x0003);
        assert_eq!(usize::from(u16::from_be_bytes([m[2], m[3]])), m.len() - 20);
        assert_eq!(&m[4..8], &[0x21, 0x12, 0xA4, 0x42]);
        assert_eq!(&m[8..20], &[9; 12]);
        assert_eq!(m[24], 17);
    }

    #[test]
    fn counts_sum_up_in_the_summary() {
        let c = AbuseCounts::default();
        AbuseCounts::add(&c.turn_sent, 3);
        AbuseCounts::add(&c.wrong_key_refused, 2);
        let s = c.summary();
        assert!(s.contains("TURN requests 3"), "{s}");
        assert!(s.contains("refused 2, accepted 0"), "{s}");
    }
}
