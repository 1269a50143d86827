//! What the real-session tests share: two `Session`s on loopback, offer/answer exchanged and
//! both connected with each side's DTLS certificate checked against the other's SDP.

#![allow(dead_code)] // each test file uses its own part of this module

use std::time::Duration;

use media::session::{Session, SessionConfig, SessionEvent};
use tokio::sync::mpsc;

/// The `a=fingerprint` value of `sdp`.
pub fn fingerprint(sdp: &str) -> String {
    sdp.lines()
        .find_map(|l| l.trim().strip_prefix("a=fingerprint:"))
        .expect("the SDP carries a fingerprint")
        .to_owned()
}

/// Two connected sessions, their event streams and the SDP they exchanged.
pub struct Pair {
    pub alice: Session,
    pub alice_events: mpsc::Receiver<SessionEvent>,
    pub bob: Session,
    pub bob_events: mpsc::Receiver<SessionEvent>,
    pub offer: String,
    pub answer: String,
}

/// Alice offers, Bob answers, both wait (up to 20 s) until connected.
pub async fn connect(alice_cfg: SessionConfig, bob_cfg: SessionConfig) -> Pair {
    let (alice, alice_events) = Session::new(&alice_cfg).await.unwrap();
    let (bob, bob_events) = Session::new(&bob_cfg).await.unwrap();
    let offer = alice.create_offer().await.unwrap();
    let answer = bob.accept_offer(&offer).await.unwrap();
    alice.accept_answer(&answer).await.unwrap();
    let connect = Duration::from_secs(20);
    let (bob_fp, alice_fp) = (fingerprint(&answer), fingerprint(&offer));
    let (a, b) = tokio::join!(
        alice.wait_connected(connect, &bob_fp),
        bob.wait_connected(connect, &alice_fp),
    );
    a.unwrap();
    b.unwrap();
    Pair {
        alice,
        alice_events,
        bob,
        bob_events,
        offer,
        answer,
    }
}
