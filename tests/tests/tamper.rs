//! A tampering relay between the dialer and the signaling server rewrites the answer. Each way of
//! tampering must make the call fail with a clear message, and no media may flow. An envelope
//! that fails to open, or comes from someone else, cannot be told apart from a third party's
//! interference, so the caller ignores it and keeps waiting (issue 7 item 2): the call then
//! fails at the connect timeout with a message that names what was ignored. A validly signed
//! answer whose DTLS fingerprint was swapped is refused by the DTLS check.

use std::sync::Arc;
use std::time::Duration;

use call_cli::call::{dial, CallError, CallOptions};
use native::AudioOutSpec;
use signaling::identity::Identity;
use signaling::server::{Server, ServerConfig};
use tests::pair::start_listener;
use tests::tamper::{Tamper, TamperRelay};

/// Runs a call where alice reaches the server through a tampering relay; returns alice's error
/// and how many samples bob played.
async fn tampered_call(
    mode: impl FnOnce(&Arc<Identity>, &Arc<Identity>) -> Tamper,
    relay_only: bool,
) -> (CallError, usize) {
    let server = Server::start(ServerConfig::local())
        .await
        .expect("server starts");
    let alice = Arc::new(Identity::generate());
    let bob = Arc::new(Identity::generate());
    let relay = TamperRelay::start(server.url(), mode(&alice, &bob)).await;
    let dir = tempfile::tempdir().unwrap();
    let heard = dir.path().join("bob-heard.wav");

    let mut bob_opts = CallOptions::scripted(&server.url());
    bob_opts.audio_out = AudioOutSpec::File(heard.clone());
    bob_opts.duration = Some(Duration::from_secs(2));
    bob_opts.connect_timeout = Duration::from_secs(5);
    bob_opts.relay_only = relay_only;
    let listener = start_listener(&server, &bob, bob_opts).await;

    let mut alice_opts = CallOptions::scripted(&relay.url());
    alice_opts.audio_in = Some(native::AudioInSpec::Sine(440.0));
    alice_opts.connect_timeout = Duration::from_secs(5);
    alice_opts.relay_only = relay_only;
    let err = dial(Arc::clone(&alice), bob.call_id(), alice_opts)
        .await
        .expect_err("a tampered answer must not give a call");
    assert!(relay.tampered() >= 1, "the relay did rewrite the answer");

    // Bob either never gets a connection or is left alone; he must not have played any audio.
    let bob_result = tokio::time::timeout(Duration::from_secs(10), listener).await;
    let played = std::fs::metadata(&heard)
        .ok()
        .map(|_| tests::analysis::read_wav(&heard).len())
        .unwrap_or(0);
    if let Ok(Ok(Ok(report))) = &bob_result {
        assert_eq!(report.stats.packets_received, 0, "no media may flow");
    }
    server.shutdown().await;
    (err, played)
}

fn assert_refused(err: &CallError, played: usize) {
    let msg = err.to_string();
    eprintln!("no call, as expected: {msg}");
    assert!(
        msg.contains("refused") || msg.contains("ignored"),
        "the error says the call was refused or what was ignored: {msg}"
    );
    assert_eq!(played, 0, "bob played no audio");
}

/// The tampered answer was ignored (not attributable to the peer) and the attempt timed out.
fn assert_ignored(err: &CallError, why: &str) {
    match err {
        CallError::NoValidAnswer { ignored, last, .. } => {
            assert!(*ignored >= 1, "{err}");
            assert!(last.contains(why), "ignored for {why:?}: {err}");
        }
        other => panic!("expected the tampered answer to be ignored, got: {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupted_answer_is_refused() {
    let (err, played) = tampered_call(|_, _| Tamper::CorruptBody, false).await;
    assert_ignored(&err, "failed to open");
    assert_refused(&err, played);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answer_signed_by_another_key_is_refused() {
    let mallory = Arc::new(Identity::generate());
    let (err, played) = tampered_call(|_, _| Tamper::ImpersonateWith(mallory), false).await;
    assert_ignored(&err, "failed to open");
    assert_refused(&err, played);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answer_from_someone_else_is_refused() {
    let mallory = Arc::new(Identity::generate());
    let (err, played) = tampered_call(|_, _| Tamper::AnswerAs(mallory), false).await;
    assert_ignored(&err, "not from the peer");
    assert_refused(&err, played);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swapped_fingerprint_fails_dtls_host() {
    let (err, played) = tampered_call(
        |alice, bob| Tamper::SwapFingerprint {
            recipient: Arc::clone(alice),
            sender: Arc::clone(bob),
        },
        false,
    )
    .await;
    assert!(matches!(err, CallError::Session(_)), "{err}");
    assert_refused(&err, played);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swapped_fingerprint_fails_dtls_relay() {
    let (err, played) = tampered_call(
        |alice, bob| Tamper::SwapFingerprint {
            recipient: Arc::clone(alice),
            sender: Arc::clone(bob),
        },
        true,
    )
    .await;
    assert!(matches!(err, CallError::Session(_)), "{err}");
    assert_refused(&err, played);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answer_signed_by_another_key_is_refused_relay() {
    let mallory = Arc::new(Identity::generate());
    let (err, played) = tampered_call(|_, _| Tamper::ImpersonateWith(mallory), true).await;
    assert_refused(&err, played);
}
