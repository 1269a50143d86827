//! The client against a scripted fake server on loopback: what a real server would never do
//! (floods, silence, oversize frames, other names) is easy to make here.

use std::future::Future;

use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use super::*;
use crate::envelope::MAX_ENVELOPE_BYTES;
use crate::protocol::encode_nonce;
use crate::test_fixtures::{alice, bob, envelope_of_exactly_at};

type ServerWs = WebSocketStream<TcpStream>;

/// Generous bound for what should happen soon (a hang fails the test; never a timing check).
const SOON: Duration = Duration::from_secs(20);

/// Starts a fake server on 127.0.0.1 that accepts one connection and runs `script` on it.
async fn fake_server<F, Fut>(script: F) -> (String, tokio::task::JoinHandle<()>)
where
    F: FnOnce(ServerWs) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let config = WebSocketConfig::default()
            .max_message_size(Some(4 * MAX_FRAME_BYTES))
            .max_frame_size(Some(4 * MAX_FRAME_BYTES));
        let ws = tokio_tungstenite::accept_async_with_config(tcp, Some(config))
            .await
            .unwrap();
        script(ws).await;
    });
    (format!("ws://127.0.0.1:{port}"), task)
}

async fn send(ws: &mut ServerWs, frame: impl Into<String>) {
    ws.send(Message::Text(frame.into().into())).await.unwrap();
}

async fn next_text(ws: &mut ServerWs) -> Option<String> {
    loop {
        match ws.next().await? {
            Ok(Message::Text(t)) => return Some(t.to_string()),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => continue,
        }
    }
}

/// Sends a challenge naming `name`, reads the answer and welcomes whoever it claims to be
/// (the fake server does not check signatures).
async fn login(ws: &mut ServerWs, name: &str) -> Option<CallId> {
    let challenge = ServerFrame::Challenge {
        server: name.into(),
        nonce: encode_nonce(&[7; 32]),
        ts: unix_now(),
    };
    send(ws, challenge.to_json()).await;
    let auth = next_text(ws).await?;
    let ClientFrame::Auth { id, .. } = ClientFrame::parse(&auth).ok()? else {
        return None;
    };
    send(ws, ServerFrame::Welcome { id, kept: 0 }.to_json()).await;
    Some(id)
}

fn opts() -> ClientOptions {
    ClientOptions {
        request_timeout: SOON,
        connect_timeout: SOON,
        ..ClientOptions::default()
    }
}

fn creds() -> TurnCredentials {
    TurnCredentials {
        urls: vec!["turn:127.0.0.1:3478?transport=udp".into()],
        username: "1:x".into(),
        password: "p".into(),
        ttl: 600,
    }
}

/// Issue 7 item 4 (client half): with more envelopes than the receive queue holds and the
/// application not reading (as during call set-up), the TURN request must still complete.
/// Before the fix the socket task waited on the full event queue and never read the answer.
#[tokio::test]
async fn a_flood_does_not_stall_the_turn_request() {
    const QUEUE: usize = 8;
    const FLOOD: usize = 5 * QUEUE;
    let (url, server) = fake_server(|mut ws| async move {
        let me = login(&mut ws, "127.0.0.1").await.unwrap();
        assert_eq!(me, bob().call_id());
        // The client asks for TURN credentials; flood it first, then answer.
        let turn = next_text(&mut ws).await.unwrap();
        assert_eq!(ClientFrame::parse(&turn).unwrap(), ClientFrame::Turn);
        let carol = Identity::from_seed([0x99; 32]);
        for _ in 0..FLOOD {
            let env =
                Envelope::seal(&carol, &me, EnvelopeKind::Candidate, b"flood", unix_now()).unwrap();
            send(&mut ws, ServerFrame::Deliver { envelope: env }.to_json()).await;
        }
        let answer =
            Envelope::seal(&alice(), &me, EnvelopeKind::Answer, b"sdp", unix_now()).unwrap();
        send(&mut ws, ServerFrame::Deliver { envelope: answer }.to_json()).await;
        send(&mut ws, ServerFrame::TurnCredentials(creds()).to_json()).await;
        // Keep the connection open until the client is done.
        while next_text(&mut ws).await.is_some() {}
    })
    .await;
    let mut client = Client::connect(
        &url,
        bob(),
        ClientOptions {
            recv_queue: QUEUE,
            ..opts()
        },
    )
    .await
    .unwrap();
    let got = tokio::time::timeout(SOON, client.turn_credentials()).await;
    assert_eq!(got.expect("TURN request stalled").unwrap(), creds());
    // The queue overflowed: drops are reported once, then the queued envelopes follow, the
    // peer's answer among them (the flooder's own envelopes were the ones dropped).
    let first = client.recv().await.unwrap();
    assert!(
        matches!(first, Err(ClientError::Dropped { count }) if count as usize == FLOOD + 1 - QUEUE),
        "{first:?}"
    );
    let mut kinds = Vec::new();
    for _ in 0..QUEUE {
        kinds.push(client.recv().await.unwrap().unwrap().kind);
    }
    assert!(kinds.contains(&EnvelopeKind::Answer), "{kinds:?}");
    assert_eq!(client.receiver.dropped(), (FLOOD + 1 - QUEUE) as u64);
    client.close().await;
    server.await.unwrap();
}

#[tokio::test]
async fn requests_and_the_handshake_time_out_with_typed_errors() {
    // A server that never answers the TURN request.
    let (url, server) = fake_server(|mut ws| async move {
        login(&mut ws, "127.0.0.1").await.unwrap();
        while next_text(&mut ws).await.is_some() {}
    })
    .await;
    let short = Duration::from_millis(200);
    let client = Client::connect(
        &url,
        bob(),
        ClientOptions {
            request_timeout: short,
            ..opts()
        },
    )
    .await
    .unwrap();
    let err = client.turn_credentials().await.unwrap_err();
    assert!(
        matches!(err, ClientError::RequestTimeout { after, .. } if after == short),
        "{err}"
    );
    // The connection is still usable.
    client
        .send(&alice().call_id(), EnvelopeKind::Hangup, b"{}")
        .await
        .unwrap();
    client.close().await;
    server.await.unwrap();

    // A server that accepts the WebSocket but never sends a challenge.
    let (url, server) =
        fake_server(|mut ws| async move { while next_text(&mut ws).await.is_some() {} }).await;
    let err = Client::connect(
        &url,
        bob(),
        ClientOptions {
            connect_timeout: short,
            ..opts()
        },
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, ClientError::Timeout(t) if t == short),
        "{err}"
    );
    server.await.unwrap();
}

/// Issue 7 item 6: the challenge must name the host dialed (or the configured name); a
/// relaying server naming another server is refused before anything is signed.
#[tokio::test]
async fn the_challenge_must_name_the_server_dialed() {
    async fn attempt(name: &str, configured: Option<&str>) -> Result<(), ClientError> {
        let name = name.to_owned();
        let (url, server) = fake_server(move |mut ws| async move {
            let _ = login(&mut ws, &name).await;
            while next_text(&mut ws).await.is_some() {}
        })
        .await;
        let result = Client::connect(
            &url,
            bob(),
            ClientOptions {
                server_name: configured.map(str::to_owned),
                ..opts()
            },
        )
        .await;
        let outcome = match result {
            Ok(client) => {
                client.close().await;
                Ok(())
            }
            Err(e) => Err(e),
        };
        server.await.unwrap();
        outcome
    }
    assert!(attempt("127.0.0.1", None).await.is_ok());
    assert!(matches!(
        attempt("call-signaling", None).await,
        Err(ClientError::WrongServer { .. })
    ));
    assert!(matches!(
        attempt("other.example", Some("call.example")).await,
        Err(ClientError::WrongServer { .. })
    ));
    assert!(attempt("call.example", Some("call.example")).await.is_ok());
    assert!(attempt("Call.Example", Some("call.example")).await.is_ok());
    let long = "s".repeat(crate::protocol::MAX_SERVER_NAME_BYTES + 1);
    assert!(matches!(
        attempt(&long, Some(&long)).await,
        Err(ClientError::BadServerName { .. })
    ));
}

/// Issue 7 item 1 (client half): a `deliver` frame of exactly MAX_FRAME_BYTES is received; an
/// oversize or unreadable frame is a typed, non-fatal error and the connection goes on; and
/// the client refuses to send an envelope whose `deliver` frame could not be delivered.
#[tokio::test]
async fn frame_limits_are_consistent_and_bad_frames_are_not_fatal() {
    let now = unix_now();
    let largest = envelope_of_exactly_at(MAX_ENVELOPE_BYTES, now);
    assert_eq!(largest.ts, now, "the test needs a current timestamp");
    let too_big = envelope_of_exactly_at(MAX_ENVELOPE_BYTES + 1, 1);
    let (largest2, too_big2) = (largest.clone(), too_big.clone());
    let (url, server) = fake_server(move |mut ws| async move {
        login(&mut ws, "127.0.0.1").await.unwrap();
        let frame = ServerFrame::Deliver {
            envelope: largest2.clone(),
        }
        .to_json();
        assert_eq!(frame.len(), MAX_FRAME_BYTES);
        send(&mut ws, frame).await;
        // Over the protocol limit (but under what the client reads), then garbage.
        send(
            &mut ws,
            format!(
                r#"{{"type":"error","code":"x","message":"{}"}}"#,
                "m".repeat(MAX_FRAME_BYTES)
            ),
        )
        .await;
        send(&mut ws, "not json").await;
        send(&mut ws, r#"{"type":"deliver","envelope":{"v":1,"v":1}}"#).await;
        send(
            &mut ws,
            ServerFrame::error(ErrorCode::NotOnline, "gone").to_json(),
        )
        .await;
        // What the client sends: the largest envelope arrives; the oversize one never does.
        let sent = next_text(&mut ws).await.unwrap();
        match ClientFrame::parse(&sent).unwrap() {
            ClientFrame::Send { envelope } => {
                assert_eq!(crate::envelope::parse_value(&envelope).unwrap(), largest2)
            }
            other => panic!("expected send, got {other:?}"),
        }
        let next = next_text(&mut ws).await.unwrap();
        assert_eq!(ClientFrame::parse(&next).unwrap(), ClientFrame::Turn);
        assert!(!format!("{too_big2:?}").is_empty());
        send(&mut ws, ServerFrame::TurnCredentials(creds()).to_json()).await;
        while next_text(&mut ws).await.is_some() {}
    })
    .await;
    let mut client = Client::connect(&url, bob(), opts()).await.unwrap();
    let opened = client.recv().await.unwrap().unwrap();
    assert_eq!(
        (opened.from, opened.kind),
        (alice().call_id(), largest.kind)
    );
    let err = client.recv().await.unwrap().unwrap_err();
    assert!(
        matches!(err, ClientError::Frame(FrameError::TooLarge(n)) if n > MAX_FRAME_BYTES),
        "{err}"
    );
    assert!(matches!(
        client.recv().await.unwrap(),
        Err(ClientError::Frame(FrameError::NotJson(_)))
    ));
    assert!(matches!(
        client.recv().await.unwrap(),
        Err(ClientError::Frame(FrameError::NotJson(_)))
    ));
    assert!(matches!(
        client.recv().await.unwrap(),
        Err(ClientError::Server {
            code: ErrorCode::NotOnline,
            ..
        })
    ));
    // Sending: one byte over MAX_ENVELOPE_BYTES is refused locally (its send frame would
    // still fit 64 KiB, but its deliver frame would not); the largest goes out.
    let err = client.send_envelope(&too_big).await.unwrap_err();
    assert!(
        matches!(err, ClientError::TooLarge { size } if size == MAX_ENVELOPE_BYTES + 1),
        "{err}"
    );
    client.send_envelope(&largest).await.unwrap();
    // Still connected: a request round-trips.
    assert_eq!(client.turn_credentials().await.unwrap(), creds());
    assert_eq!(client.receiver.close_reason(), None);
    client.close().await;
    server.await.unwrap();
}

#[tokio::test]
async fn a_url_without_a_path_dials_ws() {
    // The fake server checks the request path.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut path = String::new();
        // The callback's signature is tungstenite's; its error type is not ours to shrink.
        #[allow(clippy::result_large_err)]
        let mut ws = tokio_tungstenite::accept_hdr_async(
            tcp,
            |req: &tokio_tungstenite::tungstenite::handshake::server::Request, resp| {
                path = req.uri().path().to_owned();
                Ok(resp)
            },
        )
        .await
        .unwrap();
        login(&mut ws, "127.0.0.1").await.unwrap();
        while next_text(&mut ws).await.is_some() {}
        path
    });
    let client = Client::connect(&format!("ws://127.0.0.1:{port}"), bob(), opts())
        .await
        .unwrap();
    client.close().await;
    assert_eq!(server.await.unwrap(), "/ws");
}

#[tokio::test]
async fn the_close_reason_is_kept() {
    let (url, server) = fake_server(|mut ws| async move {
        login(&mut ws, "127.0.0.1").await.unwrap();
        send(
            &mut ws,
            ServerFrame::error(ErrorCode::ShuttingDown, "bye").to_json(),
        )
        .await;
        let _ = ws.close(None).await;
    })
    .await;
    let mut client = Client::connect(&url, bob(), opts()).await.unwrap();
    assert!(matches!(
        client.recv().await.unwrap(),
        Err(ClientError::Server {
            code: ErrorCode::ShuttingDown,
            ..
        })
    ));
    assert!(client.recv().await.is_none());
    let reason = client.receiver.close_reason().unwrap();
    assert!(reason.contains("closed the connection"), "{reason}");
    client.close().await;
    server.await.unwrap();
}
