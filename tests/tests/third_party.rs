//! A third identity on the same server tries to stop someone else's call (issue 7 item 2):
//! while alice waits for bob's answer, mallory sends alice a foreign answer, an envelope that
//! fails to open, a hang-up without a call ID and a reject for another call; once the call is
//! up she sends both of them hang-ups and rejects. None of it may end the call.
//!
//! Bob answers through the accept prompt (its answer comes from a channel the test holds), so
//! mallory's messages are sent while alice is certainly still waiting for the answer.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use call_cli::call::{dial, listen, CallOptions, ChatInput, EndReason, IncomingDecision};
use native::AudioInSpec;
use signaling::client::{Client, ClientOptions};
use signaling::envelope::{Envelope, EnvelopeKind};
use signaling::identity::{CallId, Identity};
use signaling::offer::{CallToken, HangupBody, Role, SignedSdp};
use signaling::server::{Server, ServerConfig};
use tokio::sync::mpsc;

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

async fn wait_for_clients(server: &signaling::server::RunningServer, n: usize) {
    for _ in 0..1000 {
        if server.connected_clients() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("only {} clients registered", server.connected_clients());
}

/// Everything mallory can send `victim` without knowing the call ID.
async fn interfere(mallory: &Client, mallory_id: &Identity, victim: &CallId) {
    let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=fingerprint:sha-256 AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99\r\n";
    let foreign_answer = SignedSdp::sign(
        mallory_id,
        victim,
        CallToken::random(),
        Role::Answer,
        sdp,
        now_unix() + 60,
    )
    .expect("mallory signs her answer")
    .to_json();
    mallory
        .send(victim, EnvelopeKind::Answer, &foreign_answer)
        .await
        .expect("send a foreign answer");

    let mut garbage = Envelope::seal(
        mallory_id,
        victim,
        EnvelopeKind::Answer,
        b"garbage",
        now_unix(),
    )
    .expect("seal");
    let mid = garbage.body.len() / 2;
    garbage.body[mid] ^= 0x01;
    mallory
        .send_envelope(&garbage)
        .await
        .expect("send an envelope that fails to open");

    mallory
        .send(victim, EnvelopeKind::Hangup, br#"{"reason":"hang-up"}"#)
        .await
        .expect("send a hang-up without a call ID");
    let reject = HangupBody {
        call_id: CallToken::random(),
        reason: "declined".into(),
    }
    .to_json();
    mallory
        .send(victim, EnvelopeKind::Reject, &reject)
        .await
        .expect("send a reject for another call");
    mallory
        .send(victim, EnvelopeKind::Hangup, &reject)
        .await
        .expect("send a hang-up for another call");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_third_party_cannot_stop_someone_elses_call() {
    let server = Server::start(ServerConfig::local())
        .await
        .expect("server starts");
    let alice = Arc::new(Identity::generate());
    let bob = Arc::new(Identity::generate());
    let mallory = Arc::new(Identity::generate());
    let mallory_client = Client::connect(
        &server.url(),
        Arc::clone(&mallory),
        ClientOptions::default(),
    )
    .await
    .expect("mallory connects");

    let (answer_tx, answer_rx) = mpsc::channel(4);
    let mut bob_opts = CallOptions::scripted(&server.url());
    bob_opts.duration = None;
    bob_opts.chat_input = ChatInput::Lines(answer_rx);
    let listener = tokio::spawn(listen(Arc::clone(&bob), IncomingDecision::Prompt, bob_opts));
    wait_for_clients(&server, 2).await;

    let mut alice_opts = CallOptions::scripted(&server.url());
    alice_opts.audio_in = Some(AudioInSpec::Sine(440.0));
    alice_opts.duration = Some(Duration::from_secs(3));
    alice_opts.connect_timeout = Duration::from_secs(10);
    let dialer = tokio::spawn(dial(Arc::clone(&alice), bob.call_id(), alice_opts));
    wait_for_clients(&server, 3).await;

    // Bob has not answered yet (his prompt waits for the test): alice is waiting.
    interfere(&mallory_client, &mallory, &alice.call_id()).await;
    // Bob gets the same treatment while he is asked (and later while in the call).
    interfere(&mallory_client, &mallory, &bob.call_id()).await;
    // Let mallory's messages reach alice before bob's answer does (if they arrived later, they
    // would land in the connected call, which must ignore them as well).
    tokio::time::sleep(Duration::from_millis(300)).await;
    answer_tx
        .send("y".into())
        .await
        .expect("bob's prompt reads");

    // During the call.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    interfere(&mallory_client, &mallory, &alice.call_id()).await;
    interfere(&mallory_client, &mallory, &bob.call_id()).await;

    let alice_report = dialer
        .await
        .expect("alice's task does not panic")
        .expect("alice's call connects despite mallory");
    let bob_report = listener
        .await
        .expect("bob's task does not panic")
        .expect("bob's call connects despite mallory");
    assert_eq!(
        alice_report.end,
        EndReason::DurationElapsed,
        "alice's call ran its full duration"
    );
    assert_eq!(
        bob_report.end,
        EndReason::RemoteHangup,
        "bob's call ended by alice's hang-up, not mallory's"
    );
    assert!(
        bob_report.stats.packets_received > 0,
        "audio flowed: {:?}",
        bob_report.stats
    );
    mallory_client.close().await;
    server.shutdown().await;
}
