//! Video calls through the engine library over the real signaling server on loopback: the
//! pattern's burned-in frame numbers, read back from the listener's Y4M file, say which frames
//! arrived, in which order and at what size. Also the video rule (only the caller asks for
//! video) and the missing-camera error.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use call_cli::call::{CallError, CallOptions, EndReason, VideoOptions};
use call_cli::engine::Call;
use media::codec::marker::read_marker;
use native::video::y4m::Y4mReader;
use native::{AudioInSpec, VideoError, VideoInSpec, VideoOutSpec};
use signaling::identity::Identity;
use signaling::server::{Server, ServerConfig};
use tests::pair::call_pair;

const W: u32 = 320;
const H: u32 = 240;
const SECONDS: u64 = 4;

fn pattern(output: Option<VideoOutSpec>) -> VideoOptions {
    VideoOptions {
        input: Some(VideoInSpec::Pattern),
        output,
        width: W,
        height: H,
        fps: 30,
    }
}

/// Frame numbers of the pictures in a Y4M file, in file order, and its size.
fn markers_in(path: &Path) -> ((u32, u32), Vec<Option<u32>>) {
    let file = File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut reader = Y4mReader::new(BufReader::new(file)).expect("a Y4M file");
    let header = reader.header();
    let mut frames = Vec::new();
    while let Some(frame) = reader.next_frame().expect("whole Y4M frames") {
        let w = frame.width as usize;
        frames.push(
            read_marker(&frame.y, w, frame.height as usize, w)
                .ok()
                .map(|m| m.frame),
        );
    }
    ((header.width, header.height), frames)
}

/// Alice sends the pattern; bob receives it into a Y4M file (and sends none). At least 95 % of
/// the frames alice sent are in the file, at the right size, in order, each once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pattern_frames_reach_the_listeners_y4m_file_in_order() {
    let server = Server::start(ServerConfig::local())
        .await
        .expect("server starts");
    let dir = tempfile::tempdir().unwrap();
    let seen = dir.path().join("seen.y4m");
    let alice = Arc::new(Identity::generate());
    let bob = Arc::new(Identity::generate());

    let mut bob_opts = CallOptions::scripted(&server.url());
    bob_opts.duration = None;
    bob_opts.video = Some(VideoOptions {
        input: None,
        ..pattern(Some(VideoOutSpec::File(seen.clone())))
    });
    let mut alice_opts = CallOptions::scripted(&server.url());
    alice_opts.duration = Some(Duration::from_secs(SECONDS));
    alice_opts.video = Some(pattern(Some(VideoOutSpec::Null)));

    let r = call_pair(&server, &alice, alice_opts, &bob, bob_opts).await;
    let a = r.alice.expect("alice's call ends normally");
    let b = r.bob.expect("bob's call ends normally");
    assert_eq!(a.end, EndReason::DurationElapsed);
    server.shutdown().await;

    let sent = a.stats.video_sent.clone().expect("alice sent video");
    let received = b.stats.video_received.clone().expect("bob received video");
    eprintln!("alice sent: {sent:?}\nbob received: {received:?}");
    assert!(
        sent.frames_sent >= SECONDS * 30 * 3 / 4,
        "alice sent only {} frames in {SECONDS} s",
        sent.frames_sent
    );
    assert!(b.stats.video_sent.is_none(), "bob asked for no source");
    assert!(a.stats.video_received.is_none(), "bob sent no video");

    let (size, markers) = markers_in(&seen);
    assert_eq!(size, (W, H));
    let numbers: Vec<u32> = markers.iter().flatten().copied().collect();
    assert_eq!(
        numbers.len(),
        markers.len(),
        "every picture in the file carries a readable marker"
    );
    assert!(
        numbers.windows(2).all(|w| w[0] < w[1]),
        "frames in order, each once: {numbers:?}"
    );
    assert!(
        numbers.len() as u64 * 100 >= sent.frames_sent * 95,
        "bob's file holds {} of the {} frames alice sent (< 95 %)",
        numbers.len(),
        sent.frames_sent
    );
    assert_eq!(received.frames_decoded, numbers.len() as u64);
    assert_eq!((received.frame_width, received.frame_height), (W, H));
    assert!(received.glass_to_glass_p50_ms.is_some());
}

/// Only alice asks for video; bob's call is audio only as far as he asked. Audio flows both
/// ways, and bob still receives (and counts) alice's video: the rule of `VideoFlow`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_that_asked_for_no_video_still_talks_and_receives_video() {
    let server = Server::start(ServerConfig::local())
        .await
        .expect("server starts");
    let alice = Arc::new(Identity::generate());
    let bob = Arc::new(Identity::generate());
    let mut bob_opts = CallOptions::scripted(&server.url());
    bob_opts.audio_in = Some(AudioInSpec::Sine(660.0));
    bob_opts.duration = None;
    let mut alice_opts = CallOptions::scripted(&server.url());
    alice_opts.audio_in = Some(AudioInSpec::Sine(440.0));
    alice_opts.duration = Some(Duration::from_secs(3));
    alice_opts.video = Some(pattern(Some(VideoOutSpec::Null)));

    let r = call_pair(&server, &alice, alice_opts, &bob, bob_opts).await;
    let a = r.alice.expect("alice's call ends normally");
    let b = r.bob.expect("bob's call ends normally");
    server.shutdown().await;

    assert!(
        a.stats.packets_received > 50,
        "alice heard bob: {:?}",
        a.stats
    );
    assert!(
        b.stats.packets_received > 50,
        "bob heard alice: {:?}",
        b.stats
    );
    let v = b.stats.video_received.expect("bob received alice's video");
    assert!(
        v.frames_decoded > 30,
        "bob decoded {} frames",
        v.frames_decoded
    );
    assert!(b.stats.video_sent.is_none());
    assert!(a.stats.video_received.is_none());
}

/// A camera that is not there fails the call before any signaling: one clear error suggesting
/// the pattern or a Y4M file (skipped on a machine with a camera).
#[tokio::test]
async fn a_missing_camera_fails_at_once_with_the_alternatives() {
    if native::video::list_cameras().is_ok_and(|c| !c.is_empty()) {
        eprintln!("note: this machine has a camera; skipping the no-camera test");
        return;
    }
    // Nothing listens on port 1: reaching the server would fail differently, and later.
    let mut opts = CallOptions::scripted("ws://127.0.0.1:1/ws");
    opts.video = Some(VideoOptions {
        input: Some(VideoInSpec::Camera(None)),
        ..pattern(Some(VideoOutSpec::Null))
    });
    let peer = Identity::generate().call_id();
    let err = match Call::dial(Arc::new(Identity::generate()), peer, opts).await {
        Ok(_) => panic!("a call without a camera must not start"),
        Err(e) => e,
    };
    assert!(
        matches!(err, CallError::Video(VideoError::NoCamera)),
        "{err:?}"
    );
    let line = err.to_string();
    assert!(
        line.contains("--video-in pattern") && line.contains("y4m"),
        "{line}"
    );
}
