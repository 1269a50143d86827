//! Video under loss, live: alice reaches the embedded TURN server through a small relay in this
//! test that can lose her datagrams; both sides are relay-only, so all her media crosses it.
//! The relay reads only what SRTP leaves in the clear (TURN framing and the RTP header: payload
//! type, timestamp) to find video packets. What bob decoded is read back from his Y4M file by
//! the frame numbers and capture times burned into the pattern.

use std::collections::HashMap;
use std::fs::File;
use std::io::BufReader;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use call_cli::call::{CallOptions, CallReport, VideoOptions};
use media::codec::marker::{read_marker, Marker, CAPTURE_MASK};
use native::video::pattern::unix_micros;
use native::video::y4m::Y4mReader;
use native::{VideoInSpec, VideoOutSpec};
use rand::{Rng, SeedableRng};
use signaling::identity::Identity;
use signaling::server::{Server, ServerConfig};
use tests::pair::call_pair;
use tokio::net::UdpSocket;

/// H.264's payload type (`docs/protocol.md` §18.5).
const VIDEO_PT: u8 = 102;
const FPS: u32 = 30;

/// What the relay does to alice's video on its way to TURN.
#[derive(Clone, Copy, Debug)]
enum Harm {
    /// Lose 10 % of her datagrams from 1 s after her first video packet, for 5 s.
    LossBurst,
    /// Lose every packet of her first video frame (the first keyframe), retransmissions too.
    FirstKeyframe,
}

/// What the relay saw and did, on the Unix-µs clock of the pattern's capture times.
#[derive(Debug, Default)]
struct Log {
    first_video_us: Option<u64>,
    first_timestamp: Option<u32>,
    loss_end_us: Option<u64>,
    dropped: u64,
    dropped_video: u64,
}

/// The RTP packet inside a TURN ChannelData message or Send indication, if there is one.
fn rtp_in(datagram: &[u8]) -> Option<&[u8]> {
    let inner = match datagram.first()? {
        // ChannelData (RFC 8656 §12.4): channel number 0x4000..0x7fff, length, data.
        0x40..=0x7f => {
            let len = u16::from_be_bytes([*datagram.get(2)?, *datagram.get(3)?]) as usize;
            datagram.get(4..4 + len)?
        }
        // STUN Send indication (0x0016): find the DATA attribute (0x0013).
        0x00 if datagram.get(1) == Some(&0x16) => {
            let mut at = 20;
            loop {
                let typ = u16::from_be_bytes([*datagram.get(at)?, *datagram.get(at + 1)?]);
                let len = u16::from_be_bytes([*datagram.get(at + 2)?, *datagram.get(at + 3)?]);
                let value = datagram.get(at + 4..at + 4 + len as usize)?;
                if typ == 0x0013 {
                    break value;
                }
                at += 4 + (len as usize).div_ceil(4) * 4;
            }
        }
        _ => return None,
    };
    // RTP version 2, and not RTCP (packet types 192..=223 in the second byte).
    let second = *inner.get(1)?;
    (inner.first()? >> 6 == 2 && !(192..=223).contains(&second) && inner.len() >= 12)
        .then_some(inner)
}

/// Whether to lose this datagram from alice.
fn lose(harm: Harm, datagram: &[u8], log: &mut Log, rng: &mut impl Rng) -> bool {
    let now = unix_micros();
    let video = rtp_in(datagram).filter(|rtp| rtp[1] & 0x7f == VIDEO_PT);
    let Some(rtp) = video else {
        return match (harm, log.first_video_us) {
            (Harm::LossBurst, Some(first)) => in_burst(first, now) && rng.gen_bool(0.1),
            _ => false,
        };
    };
    let timestamp = u32::from_be_bytes([rtp[4], rtp[5], rtp[6], rtp[7]]);
    let first = *log.first_video_us.get_or_insert(now);
    log.first_timestamp.get_or_insert(timestamp);
    let lost = match harm {
        Harm::LossBurst => in_burst(first, now) && rng.gen_bool(0.1),
        Harm::FirstKeyframe => log.first_timestamp == Some(timestamp),
    };
    if matches!(harm, Harm::LossBurst) && now >= first + 6_000_000 {
        log.loss_end_us.get_or_insert(first + 6_000_000);
    }
    log.dropped_video += u64::from(lost);
    lost
}

/// Microseconds from `unix_us` to the marker's capture time, which keeps only the low 48
/// bits of Unix time; 0 for a capture before `unix_us`.
fn after_us(m: &Marker, unix_us: u64) -> u64 {
    let d = m.capture_us.wrapping_sub(unix_us) & CAPTURE_MASK;
    if d < CAPTURE_MASK / 2 {
        d
    } else {
        0
    }
}

fn in_burst(first_video_us: u64, now_us: u64) -> bool {
    (first_video_us + 1_000_000..first_video_us + 6_000_000).contains(&now_us)
}

/// A UDP relay between TURN clients and `upstream` that harms what clients send.
async fn start_relay(upstream: SocketAddr, harm: Harm) -> (SocketAddr, Arc<Mutex<Log>>) {
    let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let addr = socket.local_addr().unwrap();
    let log = Arc::new(Mutex::new(Log::default()));
    let relay_log = Arc::clone(&log);
    tokio::spawn(async move {
        let mut rng = rand::rngs::StdRng::seed_from_u64(10);
        let mut upstreams: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
        let mut buf = vec![0u8; 65_536];
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            let up = match upstreams.get(&from) {
                Some(up) => Arc::clone(up),
                None => {
                    let up = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
                    upstreams.insert(from, Arc::clone(&up));
                    let (back, reader) = (Arc::clone(&socket), Arc::clone(&up));
                    tokio::spawn(async move {
                        let mut buf = vec![0u8; 65_536];
                        while let Ok((n, _)) = reader.recv_from(&mut buf).await {
                            let _ = back.send_to(&buf[..n], from).await;
                        }
                    });
                    up
                }
            };
            let lost = {
                let mut log = relay_log.lock().unwrap();
                let lost = lose(harm, &buf[..n], &mut log, &mut rng);
                log.dropped += u64::from(lost);
                lost
            };
            if !lost {
                let _ = up.send_to(&buf[..n], upstream).await;
            }
        }
    });
    (addr, log)
}

/// The markers of bob's pictures, in file order.
fn markers_in(path: &Path) -> Vec<Marker> {
    let file = File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut reader = Y4mReader::new(BufReader::new(file)).expect("a Y4M file");
    let mut out = Vec::new();
    while let Some(frame) = reader.next_frame().expect("whole Y4M frames") {
        let w = frame.width as usize;
        if let Ok(m) = read_marker(&frame.y, w, frame.height as usize, w) {
            out.push(m);
        }
    }
    out
}

struct Outcome {
    alice: CallReport,
    bob: CallReport,
    markers: Vec<Marker>,
    log: Log,
}

/// Alice sends the pattern for `seconds` through the harmful relay; bob keeps what he decodes.
async fn harmed_video_call(harm: Harm, seconds: u64) -> Outcome {
    let server = Server::start(ServerConfig::local())
        .await
        .expect("server starts");
    let turn = server.turn_addr().expect("embedded TURN runs");
    let (relay, log) = start_relay(turn, harm).await;
    let dir = tempfile::tempdir().unwrap();
    let seen = dir.path().join("seen.y4m");
    let video = |input, output| VideoOptions {
        input,
        output: Some(output),
        width: 320,
        height: 240,
        fps: FPS,
    };
    let alice = Arc::new(Identity::generate());
    let bob = Arc::new(Identity::generate());
    let mut bob_opts = CallOptions::scripted(&server.url());
    bob_opts.duration = None;
    bob_opts.relay_only = true;
    bob_opts.video = Some(video(None, VideoOutSpec::File(seen.clone())));
    let mut alice_opts = CallOptions::scripted(&server.url());
    alice_opts.duration = Some(Duration::from_secs(seconds));
    alice_opts.relay_only = true;
    alice_opts.turn_override = Some(vec![format!("turn:{relay}?transport=udp")]);
    alice_opts.video = Some(video(Some(VideoInSpec::Pattern), VideoOutSpec::Null));

    let started = Instant::now();
    let r = call_pair(&server, &alice, alice_opts, &bob, bob_opts).await;
    let alice = r.alice.expect("alice's call ends normally");
    let bob = r.bob.expect("bob's call ends normally");
    server.shutdown().await;
    eprintln!("call took {:?}", started.elapsed());
    let log = std::mem::take(&mut *log.lock().unwrap());
    eprintln!("relay: {log:?}");
    eprintln!("alice sent: {:?}", alice.stats.video_sent);
    eprintln!("bob received: {:?}", bob.stats.video_received);
    Outcome {
        alice,
        bob,
        markers: markers_in(&seen),
        log,
    }
}

/// 10 % loss for 5 s, then none: one second after the loss stops, every frame alice captured
/// is in bob's file (no frame number missing), in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_picture_is_whole_again_within_a_second_of_the_loss_stopping() {
    let o = harmed_video_call(Harm::LossBurst, 9).await;
    assert!(
        o.log.dropped_video > 10,
        "the relay lost video: {:?}",
        o.log
    );
    let loss_end = o
        .log
        .loss_end_us
        .expect("the loss burst ended during the call");
    let after: Vec<u32> = o
        .markers
        .iter()
        .filter(|m| after_us(m, loss_end) >= 1_000_000)
        .map(|m| m.frame)
        .collect();
    assert!(
        after.len() as u32 >= FPS,
        "at least a second of frames after the recovery: {after:?}"
    );
    assert!(after.windows(2).all(|w| w[0] < w[1]), "in order: {after:?}");
    let span = after[after.len() - 1] - after[0] + 1;
    assert_eq!(
        span as usize,
        after.len(),
        "no frame missing after the recovery: {after:?}"
    );
    let sent = o.alice.stats.video_sent.expect("alice sent video");
    assert_eq!(
        sent.frames_captured, sent.frames_encoded,
        "no capture or rate-control gaps confuse the count"
    );
    let received = o.bob.stats.video_received.expect("bob received video");
    assert!(received.nack_count > 0, "losses were NACKed: {received:?}");
}

/// The first keyframe is lost (retransmissions too): bob asks for a keyframe, alice sends one,
/// and the first picture bob shows was captured within 500 ms (15 frames) of the lost one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_first_keyframe_is_asked_for_and_the_picture_starts_within_500_ms() {
    let o = harmed_video_call(Harm::FirstKeyframe, 3).await;
    assert!(o.log.dropped_video > 0, "the relay lost the keyframe");
    let received = o.bob.stats.video_received.expect("bob received video");
    let sent = o.alice.stats.video_sent.expect("alice sent video");
    assert!(
        received.pli_count >= 1,
        "bob asked for a keyframe: {received:?}"
    );
    assert!(sent.pli_count >= 1, "alice got the request: {sent:?}");
    assert!(sent.key_frames_encoded >= 2, "alice sent another keyframe");
    let first = o.markers.first().expect("bob shows pictures");
    assert!(
        first.frame > 0 && first.frame <= FPS / 2,
        "the first picture is frame {} (frame 0 was lost; 15 frames = 500 ms)",
        first.frame
    );
    let n = o.markers.len() as u32;
    assert!(
        n + first.frame + 5 >= o.markers[o.markers.len() - 1].frame,
        "after the start, frames keep coming: {n} pictures"
    );
}
