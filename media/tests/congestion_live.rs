//! Congestion control fed from a real call on loopback: webrtc-rs sessions (ICE over a TURN
//! relay, DTLS, SRTP, transport-wide feedback), the sender reaching TURN through a seeded
//! `ImpairmentRelay` whose rate cap is set, then lifted, mid-call. The sender encodes the test
//! pattern (with seeded noise, so the encoder can fill any rate) at the
//! `CongestionController`'s video target; assertions read the recorded target series against
//! the feedback's own timestamps (media time), never wall-clock timers.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use media::bwe::{Bitrate, BweConfig, CongestionConfig, CongestionController, VideoRung};
use media::codec::h264::{H264Config, H264Encoder, I420Frame};
use media::codec::pattern::TestPattern;
use media::netsim::model::Profile;
use media::netsim::relay::ImpairmentRelay;
use media::session::{
    CandidateScope, IceServer, RtcpFeedback, Session, SessionConfig, SessionEvent, VideoConfig,
    VideoDirection,
};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use webrtc::turn;

mod common;
use common::connect;

const WIDTH: usize = 320;
const HEIGHT: usize = 240;
const FPS: u32 = 30;
const FRAME_TIME: Duration = Duration::from_millis(33);
const CAP_BPS: u64 = 500_000;
/// How long the cap holds from the first frame, then how long the run goes on without it.
const CAPPED: Duration = Duration::from_secs(12);
const LIFTED: Duration = Duration::from_secs(10);
const TURN_USER: &str = "cc";
const TURN_PASSWORD: &str = "cc-test";
const TURN_REALM: &str = "call";

/// The fixed credentials of the test's TURN server.
struct StaticAuth;

impl turn::auth::AuthHandler for StaticAuth {
    fn auth_handle(
        &self,
        username: &str,
        realm: &str,
        _src: SocketAddr,
    ) -> Result<Vec<u8>, turn::Error> {
        if username != TURN_USER {
            return Err(turn::Error::Other(format!("unknown TURN user {username}")));
        }
        Ok(turn::auth::generate_auth_key(
            username,
            realm,
            TURN_PASSWORD,
        ))
    }
}

/// A TURN server on loopback relaying from 127.0.0.1.
async fn turn_server() -> (turn::server::Server, SocketAddr) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let server = turn::server::Server::new(turn::server::config::ServerConfig {
        conn_configs: vec![turn::server::config::ConnConfig {
            conn: Arc::new(socket),
            relay_addr_generator: Box::new(
                turn::relay::relay_static::RelayAddressGeneratorStatic {
                    relay_address: IpAddr::V4(Ipv4Addr::LOCALHOST),
                    address: "127.0.0.1".to_owned(),
                    net: Arc::new(webrtc::util::vnet::net::Net::new(None)),
                },
            ),
        }],
        realm: TURN_REALM.to_owned(),
        auth_handler: Arc::new(StaticAuth),
        channel_bind_timeout: Duration::ZERO,
        alloc_close_notify: None,
    })
    .await
    .unwrap();
    (server, addr)
}

fn relayed(turn: SocketAddr, video: VideoDirection) -> SessionConfig {
    SessionConfig {
        candidate_scope: CandidateScope::LoopbackOnly,
        relay_only: true,
        ice_servers: vec![IceServer {
            urls: vec![format!("turn:{turn}?transport=udp")],
            username: TURN_USER.to_owned(),
            credential: TURN_PASSWORD.to_owned(),
        }],
        video: Some(VideoConfig {
            direction: video,
            ..VideoConfig::default()
        }),
        ..SessionConfig::default()
    }
}

/// 20 ms each way, and the cap (bounded queue of 300 ms) when `capped`.
fn profile(capped: bool) -> Profile {
    let mut p = Profile::ideal(
        if capped { "cap500k" } else { "open" },
        Duration::from_millis(20),
    );
    if capped {
        p.bandwidth_bps = Some(CAP_BPS);
        p.queue_limit = Duration::from_millis(300);
    }
    p
}

/// The next pattern frame with seeded luma noise: detail the encoder cannot squeeze away, so
/// its output follows the rate it is given (the bare bars need under 200 kbit/s at any rate).
fn noisy_frame(pattern: &mut TestPattern, rng: &mut u64) -> I420Frame {
    let mut f = pattern.next_frame();
    let (y, _, _) = f.planes_mut();
    for p in y.iter_mut() {
        *rng ^= *rng << 13;
        *rng ^= *rng >> 7;
        *rng ^= *rng << 17;
        *p = p.wrapping_add((*rng % 8) as u8);
    }
    f
}

/// One point of the recorded series: media time since the first frame, and the target then.
#[derive(Debug, Clone, Copy)]
struct Point {
    t: Duration,
    target: Bitrate,
}

/// What the sender saw over the run.
#[derive(Debug, Default)]
struct Run {
    series: Vec<Point>,
    /// (media time, packets reported, of which lost) per feedback.
    feedback: Vec<(Duration, usize, usize)>,
    /// Encoder reconfigurations (media time, video bitrate).
    rate_changes: Vec<(Duration, Bitrate)>,
    lifted_at: Option<Duration>,
}

impl Run {
    fn loss_between(&self, from: Duration, to: Duration) -> (usize, usize) {
        self.feedback
            .iter()
            .filter(|(t, _, _)| *t >= from && *t < to)
            .fold((0, 0), |(n, l), (_, a, b)| (n + a, l + b))
    }

    fn targets_between(&self, from: Duration, to: Duration) -> Vec<u64> {
        self.series
            .iter()
            .filter(|p| p.t >= from && p.t < to)
            .map(|p| p.target.bps())
            .collect()
    }
}

/// Keeps the receiving side's event queue drained, counting video packets, until aborted
/// (webrtc-rs callbacks keep the queue's sender alive past `close`).
fn drain(
    mut events: mpsc::Receiver<SessionEvent>,
    video: Arc<AtomicUsize>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(ev) = events.recv().await {
            if matches!(ev, SessionEvent::Video(_)) {
                video.fetch_add(1, Ordering::Relaxed);
            }
        }
    })
}

/// Sends the noisy pattern at the controller's video target for `CAPPED + LIFTED`, lifting
/// the relay's cap after `CAPPED`, and records the target at every feedback.
async fn send_under_control(
    alice: &Session,
    events: &mut mpsc::Receiver<SessionEvent>,
    relay: &media::netsim::relay::RelayHandle,
) -> Run {
    let mut cc = CongestionController::new(CongestionConfig {
        bwe: BweConfig {
            start: Bitrate::from_kbps(1000),
            ..BweConfig::default()
        },
        wanted: VideoRung {
            width: WIDTH as u32,
            height: HEIGHT as u32,
            fps: FPS,
        },
        ..CongestionConfig::default()
    });
    let t0 = Instant::now();
    let first = cc
        .encoder_rate(t0)
        .expect("the first call sets the encoder");
    let mut enc = H264Encoder::new(H264Config {
        width: WIDTH,
        height: HEIGHT,
        bitrate_bps: first.bitrate.bps() as u32,
        fps: FPS as f32,
    })
    .unwrap();
    let mut pattern = TestPattern::new(WIDTH, HEIGHT);
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut run = Run::default();
    let mut tick = tokio::time::interval(FRAME_TIME);
    let mut force_keyframe = false;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let now = Instant::now();
                let t = now.duration_since(t0);
                if t >= CAPPED + LIFTED {
                    break;
                }
                if t >= CAPPED && run.lifted_at.is_none() {
                    relay.set_profile(profile(false));
                    run.lifted_at = Some(t);
                }
                let frame = enc.encode(&noisy_frame(&mut pattern, &mut rng), force_keyframe).unwrap();
                force_keyframe = false;
                if !frame.data.is_empty() {
                    alice.send_video_frame(&frame.data, FRAME_TIME).await.unwrap();
                }
            }
            ev = events.recv() => {
                let Some(ev) = ev else { break };
                match ev {
                    SessionEvent::TransportFeedback { results, at } => {
                        cc.on_transport_feedback(&results, at);
                        let t = at.saturating_duration_since(t0);
                        let lost = results.iter().filter(|r| r.arrival.is_none()).count();
                        run.feedback.push((t, results.len(), lost));
                        run.series.push(Point { t, target: cc.target(at) });
                        if let Some(r) = cc.encoder_rate(at) {
                            let bps = r.bitrate.bps().clamp(10_000, u64::from(u32::MAX)) as u32;
                            if enc.set_rate(bps, FPS as f32).unwrap() {
                                run.rate_changes.push((t, r.bitrate));
                            }
                        }
                    }
                    SessionEvent::Rtcp { kind: RtcpFeedback::ReceiverReport { blocks, .. }, at } => {
                        if let Some(b) = blocks.first() {
                            cc.on_receiver_report(b.fraction_lost, Duration::from_millis(40), at);
                        }
                    }
                    SessionEvent::Rtcp { kind: RtcpFeedback::Pli { .. } | RtcpFeedback::Fir { .. }, .. } => {
                        force_keyframe = true;
                    }
                    _ => {}
                }
            }
        }
    }
    run
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_settles_under_a_500k_cap_and_climbs_back_when_it_lifts() {
    let (turn, turn_addr) = turn_server().await;
    let relay =
        ImpairmentRelay::start("127.0.0.1:0".parse().unwrap(), turn_addr, profile(true), 11)
            .await
            .unwrap();
    let common::Pair {
        alice,
        mut alice_events,
        bob,
        bob_events,
        ..
    } = connect(
        relayed(relay.local_addr(), VideoDirection::SendOnly),
        relayed(turn_addr, VideoDirection::RecvOnly),
    )
    .await;
    let video_packets = Arc::new(AtomicUsize::new(0));
    let drainer = drain(bob_events, Arc::clone(&video_packets));
    let run = send_under_control(&alice, &mut alice_events, &relay).await;
    let stats = alice.feedback_stats();
    alice.close().await;
    bob.close().await;
    drainer.abort();
    let video_packets = video_packets.load(Ordering::Relaxed);
    relay.shutdown().await;
    let _ = turn.close().await;

    let lifted = run.lifted_at.expect("the run lasted past the cap");
    let s = Duration::from_secs;
    let settled = run.targets_between(s(5), lifted);
    let (reported, lost) = run.loss_between(s(5), lifted);
    let mean = settled.iter().sum::<u64>() / settled.len().max(1) as u64;
    let at_5s = run.series.iter().find(|p| p.t >= s(5)).map(|p| p.target);
    let climbed = run
        .series
        .iter()
        .find(|p| p.t >= lifted && p.target.bps() >= 2 * CAP_BPS)
        .map(|p| p.t - lifted);
    let end = run.series.last().map(|p| p.target);
    eprintln!(
        "target at 5 s {at_5s:?}, mean 5 s..lift {mean} bit/s, max {:?}, loss {lost}/{reported}, \
         2x cap reached {climbed:?} after the lift, last {end:?}; {} encoder changes; \
         {stats:?}; bob got {video_packets} video packets",
        settled.iter().max(),
        run.rate_changes.len(),
    );
    eprintln!(
        "series: {:?}",
        run.series
            .iter()
            .step_by(10)
            .map(|p| (p.t.as_millis(), p.target.kbps()))
            .collect::<Vec<_>>()
    );
    assert!(
        !settled.is_empty(),
        "transport feedback arrived under the cap"
    );
    assert!(
        mean < CAP_BPS && mean > CAP_BPS / 2,
        "mean target {mean} bit/s from 5 s to the lift (cap {CAP_BPS})"
    );
    let loss = lost as f64 / reported.max(1) as f64;
    assert!(
        reported > 200,
        "{reported} packets reported from 5 s to the lift"
    );
    assert!(loss < 0.02, "loss {loss:.3} from 5 s to the lift");
    assert!(
        climbed.is_some_and(|d| d <= s(10)),
        "target reached {} bit/s within 10 s of the lift: {climbed:?}",
        2 * CAP_BPS
    );
    assert_eq!(
        stats.unknown, 0,
        "feedback named only packets we sent: {stats:?}"
    );
}

/// Without any impairment, on host candidates: every video packet sent is matched with the
/// peer's transport-wide feedback, in order, received, with its send time from this run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_feedback_names_every_packet_sent() {
    let host = |video| SessionConfig {
        candidate_scope: CandidateScope::LoopbackOnly,
        video: Some(VideoConfig {
            direction: video,
            ..VideoConfig::default()
        }),
        ..SessionConfig::default()
    };
    let common::Pair {
        alice,
        mut alice_events,
        bob,
        bob_events,
        ..
    } = connect(
        host(VideoDirection::SendOnly),
        host(VideoDirection::RecvOnly),
    )
    .await;
    let drainer = drain(bob_events, Arc::new(AtomicUsize::new(0)));
    let mut enc = H264Encoder::new(H264Config {
        width: WIDTH,
        height: HEIGHT,
        bitrate_bps: 300_000,
        fps: FPS as f32,
    })
    .unwrap();
    let mut pattern = TestPattern::new(WIDTH, HEIGHT);
    let mut rng = 7u64;
    let t0 = Instant::now();
    let mut sent = 0usize;
    for _ in 0..30 {
        let frame = enc
            .encode(&noisy_frame(&mut pattern, &mut rng), false)
            .unwrap();
        if !frame.data.is_empty() {
            sent += alice
                .send_video_frame(&frame.data, FRAME_TIME)
                .await
                .unwrap()
                .seqs
                .len();
        }
        tokio::time::sleep(FRAME_TIME).await;
    }
    let mut results = Vec::new();
    let end = tokio::time::Instant::now() + Duration::from_secs(3);
    while results.len() < sent {
        match tokio::time::timeout_at(end, alice_events.recv()).await {
            Ok(Some(SessionEvent::TransportFeedback { results: r, .. })) => results.extend(r),
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
    let stats = alice.feedback_stats();
    alice.close().await;
    bob.close().await;
    drainer.abort();
    assert_eq!(
        results.len(),
        sent,
        "one result per video packet sent: {stats:?}"
    );
    assert!(
        results.windows(2).all(|w| w[1].seq == w[0].seq + 1),
        "consecutive transport-wide numbers"
    );
    assert!(
        results.iter().all(|r| r.arrival.is_some()),
        "nothing lost on loopback"
    );
    assert!(results.iter().all(|r| r.send_time >= t0 && r.size > 12));
    assert_eq!((stats.unknown, stats.duplicates), (0, 0), "{stats:?}");
}
