//! Live calls under seeded in-process impairment: alice reaches the embedded TURN server through
//! an impairment relay (both directions impaired), bob directly; both are relay-only, so every
//! media packet between them crosses the relay once. The call must connect, and bob must hear
//! alice's 440 Hz tone with loss concealed or recovered by FEC.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use call_cli::call::{CallOptions, CallReport, EndReason};
use media::netsim::model::Profile;
use media::netsim::relay::ImpairmentRelay;
use native::{AudioInSpec, AudioOutSpec};
use signaling::identity::Identity;
use signaling::server::{Server, ServerConfig};
use tests::analysis::{dominant_frequency, read_wav};
use tests::pair::call_pair;

const SECONDS: u64 = 4;

struct Outcome {
    bob: CallReport,
    alice: CallReport,
    heard: Vec<i16>,
}

/// Runs a call whose caller reaches TURN through the relay impaired by `profile`; the first
/// `lossless_prefix` datagrams of each direction are never lost.
async fn impaired_call(profile: &str, seed: u64, lossless_prefix: u32) -> Outcome {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let server = Server::start(ServerConfig::local())
        .await
        .expect("server starts");
    let turn: SocketAddr = server.turn_addr().expect("embedded TURN runs");
    let mut profile = Profile::by_name(profile).expect("known profile");
    profile.lossless_prefix = lossless_prefix;
    let relay = ImpairmentRelay::start("127.0.0.1:0".parse().unwrap(), turn, profile, seed)
        .await
        .expect("relay starts");
    let dir = tempfile::tempdir().unwrap();
    let heard_path = dir.path().join("heard.wav");
    let alice = Arc::new(Identity::generate());
    let bob = Arc::new(Identity::generate());

    // Set-up crosses the impaired relay too (TURN allocation, ICE checks, the DTLS flights), and
    // at 20 % loss a DTLS flight can need many 1 s retransmissions: 15 s was not always enough
    // (1 run in 6). A longer limit costs nothing when the call connects at once.
    let connect_timeout = Duration::from_secs(60);
    let mut bob_opts = CallOptions::scripted(&server.url());
    bob_opts.connect_timeout = connect_timeout;
    bob_opts.audio_out = AudioOutSpec::File(heard_path.clone());
    bob_opts.duration = None;
    bob_opts.relay_only = true;

    let mut alice_opts = CallOptions::scripted(&server.url());
    alice_opts.connect_timeout = connect_timeout;
    alice_opts.audio_in = Some(AudioInSpec::Sine(440.0));
    alice_opts.duration = Some(Duration::from_secs(SECONDS));
    alice_opts.relay_only = true;
    alice_opts.turn_override = Some(vec![format!("turn:{}?transport=udp", relay.local_addr())]);
    let r = call_pair(&server, &alice, alice_opts, &bob, bob_opts).await;
    let alice_report = r
        .alice
        .expect("the call connects through the impaired relay and ends normally");
    let bob_report = r.bob.expect("bob's side ends normally");
    assert!(
        relay.stats().delivered > 0,
        "traffic went through the relay"
    );
    relay.shutdown().await;
    server.shutdown().await;
    Outcome {
        heard: read_wav(&heard_path),
        bob: bob_report,
        alice: alice_report,
    }
}

fn assert_heard_tone(o: &Outcome) {
    assert_eq!(o.alice.end, EndReason::DurationElapsed);
    let frames = o.heard.len() / 960;
    let sent = o.alice.stats.packets_sent as usize;
    assert!(
        frames * 100 >= sent * 95,
        "bob played {frames} frames of the {sent} alice sent"
    );
    let f = dominant_frequency(&o.heard, 48_000.0);
    assert!((f - 440.0).abs() <= 10.0, "dominant frequency {f} Hz");
}

async fn lossy(profile: &str, expected_loss: f64, lossless_prefix: u32) {
    let o = impaired_call(profile, 7, lossless_prefix).await;
    assert_heard_tone(&o);
    let loss = o.bob.stats.loss_fraction;
    assert!(
        loss > expected_loss * 0.3 && loss < expected_loss * 2.0,
        "{profile}: measured loss {loss:.3}, expected about {expected_loss}"
    );
    let repaired = o.bob.stats.frames_fec + o.bob.stats.frames_concealed;
    assert!(
        repaired > 0,
        "{profile}: lost frames were recovered (FEC) or concealed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_under_5_percent_loss() {
    lossy("loss5", 0.05, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_under_10_percent_loss() {
    lossy("loss10", 0.10, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_under_20_percent_loss() {
    // Media under 20 % loss, set-up in the clear: with the DTLS handshake itself under 20 % loss,
    // webrtc-rs 0.17.2 sometimes never completed it (ICE connected, DTLS stalled for 60 s;
    // about 1 run in 3 here). Set-up under 5 and 10 % loss is covered by the tests above. The
    // first 100 datagrams each way cover TURN, ICE, DTLS and SCTP set-up with room to spare.
    lossy("loss20", 0.20, 100).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_under_30ms_jitter() {
    let o = impaired_call("jitter30", 11, 0).await;
    assert_heard_tone(&o);
    assert!(
        o.bob.stats.jitter_ms > 2.0,
        "jitter was measured: {}",
        o.bob.stats.jitter_ms
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_under_80ms_jitter_grows_the_buffer() {
    let o = impaired_call("jitter80", 13, 0).await;
    assert_heard_tone(&o);
    assert!(
        o.bob.stats.jitter_target_ms >= 60.0,
        "the adaptive buffer raised its target under 80 ms jitter: {} ms",
        o.bob.stats.jitter_target_ms
    );
}
