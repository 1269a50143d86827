//! A tampering relay: a WebSocket proxy between one client and the signaling server that rewrites
//! the offers and answers it delivers, as a malicious or compromised server would.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use futures::{SinkExt, StreamExt};
use signaling::envelope::{parse_value, Envelope, EnvelopeKind, ReplayCache};
use signaling::identity::Identity;
use signaling::offer::{Role, SignedSdp};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

/// What the relay does to offers and answers it delivers to its client.
#[derive(Clone)]
pub enum Tamper {
    /// Flip one byte of the encrypted body (a relay without keys).
    CorruptBody,
    /// Replace the answer with one that claims to come from the callee but is signed by `mallory`.
    ImpersonateWith(Arc<Identity>),
    /// Replace the answer with mallory's own, properly signed answer (she answers in the callee's place).
    AnswerAs(Arc<Identity>),
    /// Decrypt with the recipient's key, swap the SDP's DTLS fingerprint for another, and re-sign
    /// with the sender's key: a relay that holds both keys. Only the DTLS check can catch it.
    SwapFingerprint {
        /// The client behind the relay (to decrypt).
        recipient: Arc<Identity>,
        /// The real sender (to re-sign).
        sender: Arc<Identity>,
    },
}

/// A running tampering relay.
pub struct TamperRelay {
    addr: SocketAddr,
    tampered: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl TamperRelay {
    /// Starts a relay on 127.0.0.1 in front of `upstream` (a ws:// signaling URL).
    pub async fn start(upstream: String, mode: Tamper) -> TamperRelay {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind relay");
        let addr = listener.local_addr().expect("relay address");
        let tampered = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&tampered);
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let mode = mode.clone();
                let count = Arc::clone(&count);
                tokio::spawn(async move {
                    let Ok(client) = tokio_tungstenite::accept_async(tcp).await else {
                        return;
                    };
                    let Ok((server, _)) = tokio_tungstenite::connect_async(upstream.as_str()).await
                    else {
                        return;
                    };
                    let (mut client_tx, mut client_rx) = client.split();
                    let (mut server_tx, mut server_rx) = server.split();
                    let up = async {
                        while let Some(Ok(m)) = client_rx.next().await {
                            if server_tx.send(m).await.is_err() {
                                break;
                            }
                        }
                    };
                    let down = async {
                        while let Some(Ok(m)) = server_rx.next().await {
                            let m = match m {
                                Message::Text(t) => match rewrite(t.as_str(), &mode) {
                                    Some(new) => {
                                        count.fetch_add(1, Ordering::SeqCst);
                                        Message::text(new)
                                    }
                                    None => Message::Text(t),
                                },
                                other => other,
                            };
                            if client_tx.send(m).await.is_err() {
                                break;
                            }
                        }
                    };
                    tokio::select! { _ = up => {}, _ = down => {} }
                });
            }
        });
        TamperRelay {
            addr,
            tampered,
            task,
        }
    }

    /// The URL clients use instead of the server's.
    pub fn url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// How many frames the relay rewrote.
    pub fn tampered(&self) -> usize {
        self.tampered.load(Ordering::SeqCst)
    }
}

impl Drop for TamperRelay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Rewrites a `deliver` frame carrying an offer or answer; `None` leaves the frame alone.
fn rewrite(text: &str, mode: &Tamper) -> Option<String> {
    let mut frame: serde_json::Value = serde_json::from_str(text).ok()?;
    if frame.get("type")?.as_str()? != "deliver" {
        return None;
    }
    let env = parse_value(frame.get("envelope")?).ok()?;
    if !matches!(env.kind, EnvelopeKind::Offer | EnvelopeKind::Answer) {
        return None;
    }
    let forged = match mode {
        Tamper::CorruptBody => {
            let mut env = env;
            let mid = env.body.len() / 2;
            env.body[mid] ^= 0x01;
            env
        }
        Tamper::ImpersonateWith(mallory) => {
            let fake = fake_answer(mallory, &env);
            let mut forged = Envelope::seal(mallory, &env.to, env.kind, &fake, env.ts).ok()?;
            forged.from = env.from;
            forged
        }
        Tamper::AnswerAs(mallory) => {
            let fake = fake_answer(mallory, &env);
            Envelope::seal(mallory, &env.to, env.kind, &fake, env.ts).ok()?
        }
        Tamper::SwapFingerprint { recipient, sender } => {
            let opened = env.open(recipient, env.ts, &mut ReplayCache::new(4)).ok()?;
            let signed = SignedSdp::parse(&opened.plaintext).ok()?;
            let other = "sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF";
            let sdp = swap_fingerprint(&signed.sdp, other);
            let role = if env.kind == EnvelopeKind::Offer {
                Role::Offer
            } else {
                Role::Answer
            };
            let resigned = SignedSdp::sign(
                sender,
                &signed.to,
                signed.call_id,
                role,
                &sdp,
                signed.expires,
            )
            .ok()?;
            Envelope::seal(sender, &env.to, env.kind, &resigned.to_json(), env.ts).ok()?
        }
    };
    frame["envelope"] = serde_json::from_str(&forged.to_json()).ok()?;
    Some(frame.to_string())
}

/// Mallory's answer: a minimal SDP with her own fingerprint, signed by her.
fn fake_answer(mallory: &Identity, env: &Envelope) -> Vec<u8> {
    let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=fingerprint:sha-256 AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99\r\n";
    let token = signaling::offer::CallToken::random();
    SignedSdp::sign(mallory, &env.to, token, Role::Answer, sdp, env.ts + 60)
        .map(|s| s.to_json())
        .unwrap_or_default()
}

fn swap_fingerprint(sdp: &str, fingerprint: &str) -> String {
    sdp.split("\r\n")
        .map(|line| {
            if line.starts_with("a=fingerprint:") {
                format!("a=fingerprint:{fingerprint}")
            } else {
                line.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\r\n")
}
