//! Video over a real two-session call on loopback (webrtc-rs ICE, DTLS, SRTP, RTCP): H.264
//! frames from the test pattern cross, are reassembled and decoded; PLI reaches the sender;
//! NACKed packets are retransmitted; a peer without video still gets audio.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use bytes::Bytes;
use media::codec::h264::{H264Config, H264Decoder, H264Encoder};
use media::codec::opus::{EncoderConfig, OpusEncoder, FRAME_SAMPLES, MAX_PACKET_BYTES};
use media::codec::pattern::TestPattern;
use media::jitter::video::{Feedback, VideoFrameBuffer, VideoPacket};
use media::session::{
    CandidateScope, RtcpFeedback, Session, SessionConfig, SessionEvent, VideoConfig, VideoDirection,
};
use tokio::sync::mpsc;

mod common;
use common::connect;

const FRAMES: usize = 30;
const FRAME_TIME: Duration = Duration::from_millis(33);

fn config(video: Option<VideoConfig>) -> SessionConfig {
    SessionConfig {
        candidate_scope: CandidateScope::LoopbackOnly,
        video,
        ..SessionConfig::default()
    }
}

fn video(direction: VideoDirection, drop_every_nth: Option<u32>) -> Option<VideoConfig> {
    Some(VideoConfig {
        direction,
        drop_every_nth,
        ..VideoConfig::default()
    })
}

/// One 64x64 H.264 keyframe of the test pattern: something to send on a track.
fn small_keyframe() -> media::codec::h264::EncodedFrame {
    H264Encoder::new(H264Config {
        width: 64,
        height: 64,
        ..H264Config::default()
    })
    .unwrap()
    .encode(&TestPattern::new(64, 64).next_frame(), true)
    .unwrap()
}

/// What the sending side saw.
#[derive(Default)]
struct Sent {
    withheld: Vec<u16>,
    plis: usize,
    nacked: Vec<u16>,
    receiver_reports: usize,
    transport_cc: usize,
}

/// Encodes and sends `FRAMES` pattern frames, answering PLI/FIR with a keyframe, then keeps
/// reading feedback for `linger`.
async fn send_pattern(
    session: &Session,
    events: &mut mpsc::Receiver<SessionEvent>,
    linger: Duration,
) -> Sent {
    let mut enc = H264Encoder::new(H264Config {
        width: 320,
        height: 240,
        bitrate_bps: 500_000,
        fps: 30.0,
    })
    .unwrap();
    let mut pattern = TestPattern::new(320, 240);
    let mut sent = Sent::default();
    let mut force = false;
    let mut tick = tokio::time::interval(FRAME_TIME);
    let note = |ev: SessionEvent, sent: &mut Sent, force: &mut bool| {
        if let SessionEvent::Rtcp { kind, .. } = ev {
            match kind {
                RtcpFeedback::Pli { .. } | RtcpFeedback::Fir { .. } => {
                    sent.plis += 1;
                    *force = true;
                }
                RtcpFeedback::Nack { seqs, .. } => sent.nacked.extend(seqs),
                RtcpFeedback::ReceiverReport { .. } => sent.receiver_reports += 1,
                RtcpFeedback::TransportCc { arrivals, .. } => {
                    sent.transport_cc += arrivals.len();
                }
                _ => {}
            }
        }
    };
    for _ in 0..FRAMES {
        tick.tick().await;
        while let Ok(ev) = events.try_recv() {
            note(ev, &mut sent, &mut force);
        }
        let frame = enc.encode(&pattern.next_frame(), force).unwrap();
        force = false;
        if frame.data.is_empty() {
            continue;
        }
        let out = session
            .send_video_frame(&frame.data, FRAME_TIME)
            .await
            .unwrap();
        sent.withheld.extend(out.withheld);
    }
    let end = tokio::time::Instant::now() + linger;
    while let Ok(Some(ev)) = tokio::time::timeout_at(end, events.recv()).await {
        note(ev, &mut sent, &mut force);
    }
    sent
}

/// What the receiving side got.
#[derive(Default)]
struct Received {
    seqs: Vec<u16>,
    decoded: usize,
}

/// Feeds video into the frame buffer, decodes what it releases and sends its NACKs and PLIs,
/// until `expected` frames are decoded or `limit` passes.
async fn receive_video(
    session: &Session,
    events: &mut mpsc::Receiver<SessionEvent>,
    expected: usize,
    limit: Duration,
) -> Received {
    let mut buffer = VideoFrameBuffer::default();
    let mut decoder = H264Decoder::new().unwrap();
    let mut got = Received::default();
    let end = tokio::time::Instant::now() + limit;
    while got.decoded < expected {
        let ev = match tokio::time::timeout_at(
            end.min(tokio::time::Instant::now() + Duration::from_millis(20)),
            events.recv(),
        )
        .await
        {
            Ok(Some(ev)) => Some(ev),
            Ok(None) => break,
            Err(_) if tokio::time::Instant::now() >= end => break,
            Err(_) => None,
        };
        if let Some(SessionEvent::Video(rtp)) = ev {
            got.seqs.push(rtp.seq);
            buffer.insert(
                VideoPacket {
                    seq: rtp.seq,
                    timestamp: rtp.timestamp,
                    marker: rtp.marker,
                    payload: rtp.payload,
                },
                rtp.arrival,
            );
        }
        let now = Instant::now();
        while let Some(frame) = buffer.poll_frame(now) {
            if matches!(decoder.decode(&frame.data), Ok(Some(_))) {
                got.decoded += 1;
            }
        }
        while let Some(fb) = buffer.poll_feedback(now) {
            let sent = match fb {
                Feedback::Nack(seqs) => session.send_nack(&seqs).await,
                Feedback::Pli => session.request_keyframe().await,
            };
            sent.unwrap();
        }
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h264_frames_cross_and_decode() {
    let mut p = connect(
        config(video(VideoDirection::SendOnly, None)),
        config(video(VideoDirection::RecvOnly, None)),
    )
    .await;
    assert!(
        p.offer.contains(
            "a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"
        ),
        "{}",
        p.offer
    );
    assert!(p.answer.contains("a=recvonly"), "{}", p.answer);
    let (sent, got) = tokio::join!(
        send_pattern(&p.alice, &mut p.alice_events, Duration::from_secs(1)),
        receive_video(&p.bob, &mut p.bob_events, FRAMES, Duration::from_secs(15)),
    );
    p.alice.close().await;
    p.bob.close().await;
    assert!(sent.withheld.is_empty());
    eprintln!(
        "decoded {} of {FRAMES} frames, {} PLIs",
        got.decoded, sent.plis
    );
    assert!(
        got.decoded * 10 >= FRAMES * 9,
        "decoded {} of {FRAMES}",
        got.decoded
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nacked_packets_are_retransmitted() {
    let mut p = connect(
        config(video(VideoDirection::SendRecv, Some(5))),
        config(video(VideoDirection::SendRecv, None)),
    )
    .await;
    let (sent, got) = tokio::join!(
        send_pattern(&p.alice, &mut p.alice_events, Duration::from_secs(2)),
        receive_video(&p.bob, &mut p.bob_events, FRAMES, Duration::from_secs(15)),
    );
    let retransmitted = p.alice.video_retransmitted();
    p.alice.close().await;
    p.bob.close().await;
    assert!(!sent.withheld.is_empty(), "the test withholds packets");
    eprintln!(
        "withheld {}, NACKed {}, retransmitted {retransmitted}, decoded {} of {FRAMES}, {} RR, {} TWCC arrivals",
        sent.withheld.len(),
        sent.nacked.len(),
        got.decoded,
        sent.receiver_reports,
        sent.transport_cc
    );
    let seen: HashSet<u16> = got.seqs.iter().copied().collect();
    let nacked: HashSet<u16> = sent.nacked.iter().copied().collect();
    for seq in &sent.withheld {
        assert!(nacked.contains(seq), "bob did not NACK {seq}");
        assert!(seen.contains(seq), "withheld {seq} never reached bob");
    }
    assert!(retransmitted >= sent.withheld.len() as u64);
    // The other feedback of a video stream reaches the sender too.
    assert!(sent.receiver_reports >= 1, "no receiver report");
    assert!(sent.transport_cc >= 1, "no transport-wide feedback");
    assert!(
        got.decoded * 10 >= FRAMES * 9,
        "decoded {} of {FRAMES}",
        got.decoded
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyframe_request_reaches_the_sender_as_pli() {
    let mut p = connect(
        config(video(VideoDirection::SendRecv, None)),
        config(video(VideoDirection::SendRecv, None)),
    )
    .await;
    // Before any video arrived, the peer's SSRC is unknown.
    assert!(p.bob.request_keyframe().await.is_err());
    let bob = &p.bob;
    let bob_events = &mut p.bob_events;
    let ask = async {
        // Wait for alice's first video packet, then ask for a keyframe.
        let end = tokio::time::Instant::now() + Duration::from_secs(10);
        while let Ok(Some(ev)) = tokio::time::timeout_at(end, bob_events.recv()).await {
            if matches!(ev, SessionEvent::Video(_)) {
                bob.request_keyframe().await.unwrap();
                return true;
            }
        }
        false
    };
    let (sent, asked) = tokio::join!(
        send_pattern(&p.alice, &mut p.alice_events, Duration::from_secs(2)),
        ask
    );
    p.alice.close().await;
    p.bob.close().await;
    assert!(asked, "no video reached bob");
    assert!(sent.plis >= 1, "alice saw no PLI");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_without_video_still_gets_audio() {
    let mut p = connect(config(video(VideoDirection::SendRecv, None)), config(None)).await;
    assert!(p.offer.contains("m=video"), "{}", p.offer);
    assert!(p.answer.contains("a=inactive"), "{}", p.answer);
    // Alice may send video; nothing of it reaches bob.
    let frame = small_keyframe();
    p.alice
        .send_video_frame(&frame.data, FRAME_TIME)
        .await
        .unwrap();
    let mut bob_video = 0;
    let mut enc = OpusEncoder::new(&EncoderConfig::default()).unwrap();
    let pcm = vec![0i16; FRAME_SAMPLES];
    let mut buf = [0u8; MAX_PACKET_BYTES];
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let (mut alice_audio, mut bob_audio) = (0, 0);
    for _ in 0..500 {
        tick.tick().await;
        let len = enc.encode(&pcm, &mut buf).unwrap();
        let packet = Bytes::copy_from_slice(&buf[..len]);
        p.alice
            .send_audio(packet.clone(), Duration::from_millis(20))
            .await
            .unwrap();
        p.bob
            .send_audio(packet, Duration::from_millis(20))
            .await
            .unwrap();
        while let Ok(ev) = p.alice_events.try_recv() {
            alice_audio += usize::from(matches!(ev, SessionEvent::Audio(_)));
        }
        while let Ok(ev) = p.bob_events.try_recv() {
            bob_audio += usize::from(matches!(ev, SessionEvent::Audio(_)));
            bob_video += usize::from(matches!(ev, SessionEvent::Video(_)));
        }
        if alice_audio >= 10 && bob_audio >= 10 {
            break;
        }
    }
    p.alice.close().await;
    p.bob.close().await;
    assert!(
        alice_audio >= 10 && bob_audio >= 10,
        "{alice_audio} {bob_audio}"
    );
    assert_eq!(bob_video, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_audio_only_offer_to_a_video_peer_connects_with_audio() {
    let mut p = connect(config(None), config(video(VideoDirection::SendRecv, None))).await;
    assert!(!p.offer.contains("m=video"), "{}", p.offer);
    let mut enc = OpusEncoder::new(&EncoderConfig::default()).unwrap();
    let pcm = vec![0i16; FRAME_SAMPLES];
    let mut buf = [0u8; MAX_PACKET_BYTES];
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let mut alice_audio = 0;
    for _ in 0..500 {
        tick.tick().await;
        let len = enc.encode(&pcm, &mut buf).unwrap();
        p.bob
            .send_audio(
                Bytes::copy_from_slice(&buf[..len]),
                Duration::from_millis(20),
            )
            .await
            .unwrap();
        while let Ok(ev) = p.alice_events.try_recv() {
            alice_audio += usize::from(matches!(ev, SessionEvent::Audio(_)));
        }
        if alice_audio >= 10 {
            break;
        }
    }
    // Bob's video track was never negotiated: sending on it goes nowhere and fails nothing.
    let frame = small_keyframe();
    p.bob
        .send_video_frame(&frame.data, FRAME_TIME)
        .await
        .unwrap();
    while let Ok(ev) = p.bob_events.try_recv() {
        drop(ev);
    }
    p.alice.close().await;
    p.bob.close().await;
    assert!(alice_audio >= 10, "{alice_audio}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_video_payloads_are_refused() {
    let cfg = config(Some(VideoConfig {
        max_payload: 1400,
        ..VideoConfig::default()
    }));
    assert!(Session::new(&cfg).await.is_err());
    // Without a sending track, video cannot be sent.
    let (s, _ev) = Session::new(&config(video(VideoDirection::RecvOnly, None)))
        .await
        .unwrap();
    assert!(s
        .send_video_frame(&[0, 0, 0, 1, 0x65, 0], FRAME_TIME)
        .await
        .is_err());
    s.close().await;
}
