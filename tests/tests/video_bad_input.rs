//! A hostile video peer: mallory calls bob with a properly signed offer and a real session, then
//! sends garbage as H.264 (random payloads, absurd parameter sets, broken fragments) next to
//! real Opus audio. Bob's engine must neither crash nor stall: his audio keeps playing and his
//! call ends normally when mallory hangs up.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use call_cli::call::{CallOptions, EndReason, VideoOptions};
use media::codec::opus::{EncoderConfig, OpusEncoder, FRAME_SAMPLES, MAX_PACKET_BYTES};
use media::jitter::video::VideoPacket;
use media::session::{CandidateScope, Session, SessionConfig, VideoConfig};
use native::VideoOutSpec;
use rand::{Rng, SeedableRng};
use signaling::client::{Client, ClientOptions};
use signaling::envelope::EnvelopeKind;
use signaling::identity::Identity;
use signaling::offer::{CallToken, HangupBody, Role, SignedSdp, SDP_TTL_SECS};
use signaling::server::{Server, ServerConfig};
use tests::pair::start_listener;

/// Guards against a hang only.
const PATIENCE: Duration = Duration::from_secs(20);

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// One access unit's worth of hostile payloads: random bytes, an SPS with absurd fields and an
/// IDR slice that does not follow from it, FU-A fragments that never end.
fn garbage(rng: &mut impl Rng, n: u32) -> Vec<Bytes> {
    let random = |rng: &mut dyn rand::RngCore, len: usize| {
        let mut b = vec![0u8; len];
        rng.fill_bytes(&mut b);
        b
    };
    match n % 4 {
        0 => (0..3)
            .map(|_| {
                let len = rng.gen_range(1..1200);
                Bytes::from(random(rng, len))
            })
            .collect(),
        1 => {
            // SPS: profile 66, level 255, then all-ones (huge exp-Golomb sizes).
            let mut sps = vec![0x67, 66, 0xc0, 0xff];
            sps.extend([0xff; 40]);
            let mut idr = vec![0x65, 0x88];
            idr.extend(random(rng, 800));
            vec![Bytes::from(sps), Bytes::from(idr)]
        }
        2 => {
            // FU-A start of an IDR slice, then a middle fragment, no end.
            let mut start = vec![0x7c, 0x85];
            start.extend(random(rng, 1000));
            let mut middle = vec![0x7c, 0x05];
            middle.extend(random(rng, 1000));
            vec![Bytes::from(start), Bytes::from(middle)]
        }
        _ => vec![Bytes::from_static(&[0x00]), Bytes::from_static(&[0x7c])],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_h264_from_a_peer_neither_crashes_nor_stalls_the_call() {
    let server = Server::start(ServerConfig::local())
        .await
        .expect("server starts");
    let url = server.url();
    let mallory = Arc::new(Identity::generate());
    let bob = Arc::new(Identity::generate());
    let mut bob_opts = CallOptions::scripted(&url);
    bob_opts.duration = None;
    bob_opts.video = Some(VideoOptions {
        input: None,
        output: Some(VideoOutSpec::Null),
        width: 320,
        height: 240,
        fps: 30,
    });
    let listener = start_listener(&server, &bob, bob_opts).await;

    // Mallory's side: a real client and session, set up as `call dial` would.
    let mut client = Client::connect(&url, Arc::clone(&mallory), ClientOptions::default())
        .await
        .expect("mallory logs in");
    let cfg = SessionConfig {
        candidate_scope: CandidateScope::LoopbackOnly,
        video: Some(VideoConfig::default()),
        ..SessionConfig::default()
    };
    let (session, _events) = Session::new(&cfg).await.expect("a session");
    let token = CallToken::random();
    let offer = session.create_offer().await.expect("an offer");
    let signed = SignedSdp::sign(
        &mallory,
        &bob.call_id(),
        token,
        Role::Offer,
        &offer,
        now_unix() + SDP_TTL_SECS,
    )
    .expect("signed");
    client
        .send(&bob.call_id(), EnvelopeKind::Offer, &signed.to_json())
        .await
        .expect("offer sent");
    let answer = tokio::time::timeout(PATIENCE, async {
        loop {
            let incoming = client.recv().await.expect("signaling stays up");
            if let Ok(m) = incoming {
                if m.kind == EnvelopeKind::Answer {
                    return SignedSdp::parse(&m.plaintext).expect("a signed answer");
                }
            }
        }
    })
    .await
    .expect("bob answers");
    session.accept_answer(&answer.sdp).await.expect("answer");
    session
        .wait_connected(PATIENCE, &answer.fingerprint)
        .await
        .expect("connected");

    // Three seconds of real audio and garbage video.
    let mut encoder = OpusEncoder::new(&EncoderConfig::default()).unwrap();
    let mut opus = vec![0u8; MAX_PACKET_BYTES];
    let pcm: Vec<i16> = (0..FRAME_SAMPLES)
        .map(|i| ((i as f64 * 0.0575).sin() * 8000.0) as i16)
        .collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(66);
    let (mut seq, mut timestamp) = (1u16, 0u32);
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    for n in 0..150u32 {
        tick.tick().await;
        let len = encoder.encode(&pcm, &mut opus).unwrap();
        session
            .send_audio(
                Bytes::copy_from_slice(&opus[..len]),
                Duration::from_millis(20),
            )
            .await
            .expect("audio sent");
        let payloads = garbage(&mut rng, n);
        let last = payloads.len() - 1;
        let packets: Vec<VideoPacket> = payloads
            .into_iter()
            .enumerate()
            .map(|(i, payload)| {
                seq = seq.wrapping_add(1);
                VideoPacket {
                    seq,
                    timestamp,
                    marker: i == last,
                    payload,
                }
            })
            .collect();
        timestamp = timestamp.wrapping_add(1800);
        session.send_video_rtp(&packets).await.expect("video sent");
    }
    let hangup = HangupBody {
        call_id: token,
        reason: signaling::offer::reason::HANG_UP.into(),
    }
    .to_json();
    client
        .send(&bob.call_id(), EnvelopeKind::Hangup, &hangup)
        .await
        .expect("hang-up sent");

    let b = tokio::time::timeout(PATIENCE, listener)
        .await
        .expect("bob's call ends when mallory hangs up")
        .expect("bob's task does not panic")
        .expect("bob's call ends normally");
    session.close().await;
    server.shutdown().await;
    assert_eq!(b.end, EndReason::RemoteHangup);
    assert!(
        b.stats.packets_received >= 120,
        "bob's audio kept flowing: {} packets",
        b.stats.packets_received
    );
    assert!(
        b.stats.frames_decoded >= 100,
        "and was decoded: {:?}",
        b.stats
    );
    let v = b.stats.video_received.expect("bob counted the video");
    assert!(v.packets_received >= 150, "{v:?}");
    assert_eq!(v.frames_decoded, 0, "garbage decodes to nothing: {v:?}");
    assert!(v.pli_count >= 1, "bob asked for a keyframe: {v:?}");
}
