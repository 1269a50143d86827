//! The engine as a library: two `Call`s driven in-process (no `call` subprocess, no front end)
//! over the real signaling server on loopback. Audio and chat arrive; events come in order.

use std::sync::Arc;
use std::time::Duration;

use call_cli::call::{CallOptions, EndReason, IncomingDecision};
use call_cli::engine::{Call, CallEvent, CallEvents};
use native::{AudioInSpec, AudioOutSpec};
use signaling::identity::Identity;
use signaling::server::{RunningServer, Server, ServerConfig};
use tests::analysis::{dominant_frequency, read_wav};

/// Guards against a hang only; the call normally delivers within a second.
const PATIENCE: Duration = Duration::from_secs(30);

/// The next event that `pick` accepts; the events before it are returned too.
async fn wait_for<T>(
    events: &mut CallEvents,
    mut pick: impl FnMut(&CallEvent) -> Option<T>,
) -> (T, Vec<CallEvent>) {
    let mut seen = Vec::new();
    let found = tokio::time::timeout(PATIENCE, async {
        while let Some(event) = events.recv().await {
            if let Some(t) = pick(&event) {
                return Some(t);
            }
            seen.push(event);
        }
        None
    })
    .await
    .expect("the awaited event arrives")
    .unwrap_or_else(|| panic!("the event stream ended first; saw {seen:?}"));
    (found, seen)
}

/// Bob listens, alice dials; both calls once connected.
async fn connect_pair(
    server: &RunningServer,
    alice: &Arc<Identity>,
    alice_opts: CallOptions,
    bob: &Arc<Identity>,
    bob_opts: CallOptions,
) -> ((Call, CallEvents), (Call, CallEvents)) {
    let before = server.connected_clients();
    let bob_call = tokio::spawn(Call::listen(
        Arc::clone(bob),
        IncomingDecision::AutoAccept,
        bob_opts,
    ));
    for _ in 0..500 {
        if server.connected_clients() > before || bob_call.is_finished() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (alice_call, alice_events) = Call::dial(Arc::clone(alice), bob.call_id(), alice_opts)
        .await
        .expect("alice connects");
    let (bob_call, bob_events) = bob_call
        .await
        .expect("bob's task does not panic")
        .expect("bob connects");

    ((alice_call, alice_events), (bob_call, bob_events))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_call_hangs_up() {
    let server = Server::start(ServerConfig::local())
        .await
        .expect("server starts");
    let alice = Arc::new(Identity::generate());
    let bob = Arc::new(Identity::generate());
    let mut bob_opts = CallOptions::scripted(&server.url());
    bob_opts.duration = None;
    let mut alice_opts = CallOptions::scripted(&server.url());
    alice_opts.duration = None;
    let ((alice_call, _alice_events), (bob_call, mut bob_events)) =
        connect_pair(&server, &alice, alice_opts, &bob, bob_opts).await;

    drop(alice_call);
    let (reason, _) = wait_for(&mut bob_events, |e| match e {
        CallEvent::Ended { reason } => Some(*reason),
        _ => None,
    })
    .await;
    assert_eq!(reason, EndReason::RemoteHangup);
    let b = bob_call.finished().await.expect("bob ends normally");
    assert_eq!(b.end, EndReason::RemoteHangup);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_library_calls_exchange_audio_and_chat() {
    let server = Server::start(ServerConfig::local())
        .await
        .expect("server starts");
    let dir = tempfile::tempdir().unwrap();
    let heard = dir.path().join("bob-heard.wav");
    let alice = Arc::new(Identity::generate());
    let bob = Arc::new(Identity::generate());

    let mut bob_opts = CallOptions::scripted(&server.url());
    bob_opts.audio_in = Some(AudioInSpec::Silence);
    bob_opts.audio_out = AudioOutSpec::File(heard.clone());
    bob_opts.duration = None;
    let mut alice_opts = CallOptions::scripted(&server.url());
    alice_opts.audio_in = Some(AudioInSpec::Sine(440.0));
    alice_opts.duration = None;

    let ((alice_call, mut alice_events), (bob_call, mut bob_events)) =
        connect_pair(&server, &alice, alice_opts, &bob, bob_opts).await;

    let (alice_sn, _) = wait_for(&mut alice_events, |e| match e {
        CallEvent::Connected {
            id, safety_number, ..
        } if *id == bob.call_id() => Some(safety_number.clone()),
        _ => None,
    })
    .await;
    let (bob_sn, _) = wait_for(&mut bob_events, |e| match e {
        CallEvent::Connected {
            id,
            safety_number,
            audio: true,
            ..
        } if *id == alice.call_id() => Some(safety_number.clone()),
        _ => None,
    })
    .await;
    assert_eq!(alice_sn, bob_sn);

    // Sent before the data channel may be open: the engine keeps it until it is.
    alice_call.send_chat("hello through the engine");
    let (text, _) = wait_for(&mut bob_events, |e| match e {
        CallEvent::ChatReceived { id, text, .. } if *id == alice.call_id() => Some(text.clone()),
        _ => None,
    })
    .await;
    assert_eq!(text, "hello through the engine");

    // A stats tick that shows decoded audio frames.
    let (decoded, _) = wait_for(&mut bob_events, |e| match e {
        CallEvent::Stats(s) if s.frames_decoded > 0 => Some(s.frames_decoded),
        _ => None,
    })
    .await;
    assert!(decoded > 0);

    alice_call.hang_up();
    let (reason, before_end) = wait_for(&mut bob_events, |e| match e {
        CallEvent::Ended { reason } => Some(*reason),
        _ => None,
    })
    .await;
    assert_eq!(reason, EndReason::RemoteHangup);
    assert!(
        before_end
            .iter()
            .any(|e| matches!(e, CallEvent::PeerHungUp { .. })),
        "bob is told alice hung up before the call ends: {before_end:?}"
    );
    let a = alice_call.finished().await.expect("alice ends normally");
    let b = bob_call.finished().await.expect("bob ends normally");
    assert_eq!(a.end, EndReason::LocalHangup);
    assert_eq!(b.end, EndReason::RemoteHangup);
    assert_eq!(
        b.chat_received,
        vec!["hello through the engine".to_string()]
    );
    assert!(b.stats.frames_decoded > 0);
    server.shutdown().await;

    // What bob's sink got is alice's tone.
    let samples = read_wav(&heard);
    assert!(
        samples.len() >= 960,
        "bob's sink got {} samples",
        samples.len()
    );
    let f = dominant_frequency(&samples, 48_000.0);
    assert!((f - 440.0).abs() < 20.0, "bob heard {f} Hz");
}
