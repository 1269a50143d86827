//! A real two-session call on loopback (webrtc-rs ICE, DTLS, SRTP, RTCP): the round-trip time
//! comes from RTCP receiver reports and is labelled so.

use std::time::Duration;

use bytes::Bytes;
use media::codec::opus::{EncoderConfig, OpusEncoder, FRAME_SAMPLES, MAX_PACKET_BYTES};
use media::session::{CandidateScope, SessionConfig};
use media::stats::RttSource;

mod common;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_call_reports_rtcp_rtt() {
    let cfg = SessionConfig {
        candidate_scope: CandidateScope::LoopbackOnly,
        ..SessionConfig::default()
    };
    // The event receivers stay alive: a session stops reading a track (and its RTCP) once
    // nobody listens for its events.
    let common::Pair {
        alice,
        bob,
        alice_events: _alice_events,
        bob_events: _bob_events,
        ..
    } = common::connect(cfg.clone(), cfg).await;

    // Both sides send audio: RTCP sender reports go out once RTP flows, and receiver reports
    // echo their LSR/DLSR back. Reports are sent about once a second.
    let mut enc = OpusEncoder::new(&EncoderConfig::default()).unwrap();
    let pcm = vec![0i16; FRAME_SAMPLES];
    let mut buf = [0u8; MAX_PACKET_BYTES];
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let mut rtt = None;
    for i in 0..1500u32 {
        tick.tick().await;
        let len = enc.encode(&pcm, &mut buf).unwrap();
        let packet = Bytes::copy_from_slice(&buf[..len]);
        let frame = Duration::from_millis(20);
        alice.send_audio(packet.clone(), frame).await.unwrap();
        bob.send_audio(packet, frame).await.unwrap();
        if i % 25 == 0 {
            let stats = alice.transport_stats().await;
            if let Some(m) = stats.rtt_measurement() {
                rtt = Some(m);
                break;
            }
        }
    }
    alice.close().await;
    bob.close().await;
    let rtt = rtt.expect("an RTCP round-trip time within 30 s of audio");
    assert_eq!(rtt.source, RttSource::Rtcp);
    // Loopback: well under a second (read as seconds instead of milliseconds, a 1 ms RTT
    // showed as 1 s). A generous bound: the machine may be busy.
    assert!(rtt.value < Duration::from_millis(250), "{rtt:?}");
    eprintln!("loopback RTCP RTT: {:?}", rtt.value);
}
