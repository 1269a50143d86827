//! End-to-end: a real signaling server with embedded TURN and two `call` peers in this process,
//! real webrtc-rs over UDP on loopback.

use std::sync::Arc;
use std::time::Duration;

use call_cli::call::{CallOptions, EndReason};
use media::netsim::trace::Trace;
use native::{AudioInSpec, AudioOutSpec};
use signaling::identity::Identity;
use signaling::server::{Server, ServerConfig};
use tests::analysis::{dominant_frequency, read_wav};
use tests::pair::call_pair;

const SECONDS: u64 = 3;

async fn sine_call(relay_only: bool) {
    let server = Server::start(ServerConfig::local())
        .await
        .expect("server starts");
    let dir = tempfile::tempdir().unwrap();
    let heard = dir.path().join("heard.wav");
    let alice = Arc::new(Identity::generate());
    let bob = Arc::new(Identity::generate());

    let mut bob_opts = CallOptions::scripted(&server.url());
    bob_opts.audio_in = Some(AudioInSpec::Silence);
    bob_opts.audio_out = AudioOutSpec::File(heard.clone());
    bob_opts.duration = None;
    bob_opts.relay_only = relay_only;
    bob_opts.say = vec!["hello from bob".into()];
    let mut alice_opts = CallOptions::scripted(&server.url());
    alice_opts.audio_in = Some(AudioInSpec::Sine(440.0));
    alice_opts.duration = Some(Duration::from_secs(SECONDS));
    alice_opts.relay_only = relay_only;
    alice_opts.say = vec!["hello from alice".into()];
    let trace_path = dir.path().join("alice.trace");
    alice_opts.record_trace = Some(trace_path.clone());
    let r = call_pair(&server, &alice, alice_opts, &bob, bob_opts).await;
    let a = r.alice.expect("alice's call connects and ends normally");
    let b = r.bob.expect("bob's call ends normally");

    assert_eq!(a.end, EndReason::DurationElapsed);
    assert_eq!(
        b.end,
        EndReason::RemoteHangup,
        "alice's hang-up ends bob's side"
    );
    assert_eq!(a.peer, bob.call_id());
    assert_eq!(b.peer, alice.call_id());
    assert_eq!(a.safety_number, b.safety_number);
    assert_eq!(a.chat_received, vec!["hello from bob".to_string()]);
    assert_eq!(b.chat_received, vec!["hello from alice".to_string()]);
    if relay_only {
        assert_eq!(a.stats.candidate_type.as_deref(), Some("relay"));
    }

    // The arrival trace alice recorded replays what she received.
    let trace =
        Trace::parse(&std::fs::read_to_string(&trace_path).unwrap()).expect("a valid trace");
    assert_eq!(trace.records.len() as u64, a.stats.packets_received);

    let samples = read_wav(&heard);
    let frames = samples.len() / 960;
    let sent = a.stats.packets_sent as usize;
    assert!(
        sent >= (SECONDS as usize * 50) * 9 / 10,
        "alice sent {sent} frames"
    );
    assert!(
        frames * 100 >= sent * 95,
        "bob played {frames} frames of the {sent} alice sent (< 95%)"
    );
    let f = dominant_frequency(&samples, 48_000.0);
    assert!(
        (f - 440.0).abs() <= 10.0,
        "dominant frequency {f} Hz, expected 440 Hz"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sine_and_chat_over_host_candidates() {
    sine_call(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sine_and_chat_over_turn_relay() {
    sine_call(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callee_hang_up_ends_the_callers_side() {
    let server = Server::start(ServerConfig::local())
        .await
        .expect("server starts");
    let alice = Arc::new(Identity::generate());
    let bob = Arc::new(Identity::generate());
    let mut bob_opts = CallOptions::scripted(&server.url());
    bob_opts.duration = Some(Duration::from_secs(1));
    // Alice would talk for a minute; bob's hang-up after one second must end her call.
    let mut alice_opts = CallOptions::scripted(&server.url());
    alice_opts.duration = Some(Duration::from_secs(60));
    let r = tokio::time::timeout(
        Duration::from_secs(20),
        call_pair(&server, &alice, alice_opts, &bob, bob_opts),
    )
    .await
    .expect("alice's call ends when bob hangs up");
    let a = r.alice.expect("alice's call ends normally");
    let b = r.bob.expect("bob's call ends normally");
    assert_eq!(b.end, EndReason::DurationElapsed);
    assert_eq!(a.end, EndReason::RemoteHangup);
    assert!(a.stats.elapsed_s < 30.0);
    server.shutdown().await;
}
