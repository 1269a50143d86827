//! Congestion control through the engine, live: alice sends the 640x480 test pattern to bob
//! relay-only, and all her datagrams cross an impairment relay with a rate cap below what the
//! pattern needs at its start rate. The encoder's target must come down under the cap, audio
//! must keep flowing, and bob must keep decoding pictures.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use call_cli::call::{CallOptions, VideoOptions};
use media::netsim::model::Profile;
use media::netsim::relay::ImpairmentRelay;
use native::{AudioInSpec, VideoInSpec, VideoOutSpec};
use signaling::identity::Identity;
use signaling::server::{Server, ServerConfig};
use tests::pair::call_pair;

const CAP_BPS: u64 = 500_000;
const SECONDS: u64 = 12;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_encoder_settles_under_a_rate_cap_and_audio_keeps_flowing() {
    let server = Server::start(ServerConfig::local())
        .await
        .expect("server starts");
    let turn: SocketAddr = server.turn_addr().expect("embedded TURN runs");
    let mut profile = Profile::ideal("cap", Duration::from_millis(20));
    profile.bandwidth_bps = Some(CAP_BPS);
    profile.queue_limit = Duration::from_millis(300);
    let relay = ImpairmentRelay::start("127.0.0.1:0".parse().unwrap(), turn, profile, 7)
        .await
        .expect("relay starts");
    let (alice, bob) = (
        Arc::new(Identity::generate()),
        Arc::new(Identity::generate()),
    );

    let mut bob_opts = CallOptions::scripted(&server.url());
    bob_opts.duration = None;
    bob_opts.relay_only = true;
    bob_opts.connect_timeout = Duration::from_secs(30);
    bob_opts.video = Some(VideoOptions {
        input: None,
        output: Some(VideoOutSpec::Null),
        ..VideoOptions::default()
    });
    let mut alice_opts = CallOptions::scripted(&server.url());
    alice_opts.audio_in = Some(AudioInSpec::Sine(440.0));
    alice_opts.duration = Some(Duration::from_secs(SECONDS));
    alice_opts.relay_only = true;
    alice_opts.connect_timeout = Duration::from_secs(30);
    alice_opts.turn_override = Some(vec![format!("turn:{}?transport=udp", relay.local_addr())]);
    alice_opts.video = Some(VideoOptions {
        input: Some(VideoInSpec::Pattern),
        output: None,
        width: 640,
        height: 480,
        fps: 30,
    });
    let r = call_pair(&server, &alice, alice_opts, &bob, bob_opts).await;
    let alice_report = r.alice.expect("alice's call ends normally");
    let bob_report = r.bob.expect("bob's call ends normally");
    let sent = alice_report.stats.video_sent.expect("alice sent video");
    let received = bob_report.stats.video_received.expect("bob received video");
    eprintln!(
        "cap {CAP_BPS} bit/s: encoder target {} bit/s, estimate {:?}; bob decoded {} of {} frames sent, {} freezes; audio loss {:.2} %, relay dropped {}",
        sent.target_bitrate,
        sent.available_outgoing_bitrate,
        received.frames_decoded,
        sent.frames_sent,
        received.freeze_count,
        bob_report.stats.loss_fraction * 100.0,
        relay.stats().dropped,
    );
    assert!(
        u64::from(sent.target_bitrate) < CAP_BPS,
        "the encoder's target ({}) came down under the cap",
        sent.target_bitrate
    );
    assert!(
        sent.available_outgoing_bitrate
            .is_some_and(|b| b < CAP_BPS * 3 / 2),
        "the estimate follows the cap: {:?}",
        sent.available_outgoing_bitrate
    );
    assert!(
        bob_report.stats.loss_fraction < 0.05,
        "audio is not starved: {:.1} % lost",
        bob_report.stats.loss_fraction * 100.0
    );
    assert!(
        received.frames_decoded * 2 > sent.frames_sent,
        "bob keeps decoding: {} of {}",
        received.frames_decoded,
        sent.frames_sent
    );
    relay.shutdown().await;
    server.shutdown().await;
}
