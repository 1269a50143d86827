//! `call demo`: a complete call on this machine with embedded defaults. Starts the signaling
//! server and its TURN server in-process, makes two throw-away identities, and lets them talk.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use native::{AudioInSpec, AudioOutSpec, VideoInSpec, VideoOutSpec};
use signaling::identity::{safety_number, Identity};
use signaling::server::{Server, ServerConfig};

use crate::call::{dial, listen, CallOptions, CallReport, IncomingDecision, VideoOptions};
use crate::cli::parse_video_size;

/// What the demo did.
pub struct DemoReport {
    /// The listener's side.
    pub listener: CallReport,
    /// The dialer's side.
    pub dialer: CallReport,
}

/// Runs the demo call and prints what happened.
pub async fn run(args: &crate::cli::DemoArgs) -> Result<DemoReport> {
    let server = Server::start(ServerConfig::local())
        .await
        .context("could not start the embedded signaling server")?;
    let url = server.url();
    eprintln!(
        "signaling server on {url} (TURN on {:?})",
        server.turn_addr()
    );

    let alice = Arc::new(Identity::generate());
    let bob = Arc::new(Identity::generate());
    eprintln!("alice: {}", alice.call_id());
    eprintln!("bob:   {}", bob.call_id());
    eprintln!(
        "safety number: {}",
        safety_number(&alice.call_id(), &bob.call_id())
    );

    let duration = Duration::from_secs_f64(args.duration);
    let video = |output: VideoOutSpec| -> Result<Option<VideoOptions>> {
        if !args.video {
            return Ok(None);
        }
        let (width, height) = parse_video_size(&args.video_size)?;
        Ok(Some(VideoOptions {
            input: Some(VideoInSpec::Pattern),
            output: Some(output),
            width,
            height,
            fps: args.fps,
        }))
    };
    let mut bob_opts = CallOptions::scripted(&url);
    bob_opts.audio_in = Some(AudioInSpec::Sine(660.0));
    bob_opts.audio_out = match &args.audio_out {
        Some(p) => AudioOutSpec::File(p.clone()),
        None => AudioOutSpec::Null,
    };
    bob_opts.video = video(args.video_out.parse::<VideoOutSpec>()?)?;
    bob_opts.duration = None;
    bob_opts.relay_only = args.relay_only;
    bob_opts.say = vec!["hi alice, bob here".into()];
    bob_opts.print_chat = true;

    let mut alice_opts = CallOptions::scripted(&url);
    alice_opts.audio_in = Some(AudioInSpec::Sine(440.0));
    alice_opts.video = video(VideoOutSpec::Null)?;
    alice_opts.duration = Some(duration);
    alice_opts.relay_only = args.relay_only;
    alice_opts.live_stats = true;
    alice_opts.stats_json = args.stats_json.clone();
    alice_opts.say = vec!["hello bob, this is alice".into()];
    alice_opts.print_chat = true;

    let listener = tokio::spawn(listen(
        Arc::clone(&bob),
        IncomingDecision::AutoAccept,
        bob_opts,
    ));
    // Give the listener a moment to register with the server before dialing.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let dialer = dial(Arc::clone(&alice), bob.call_id(), alice_opts)
        .await
        .context("alice's call failed")?;
    let listener = listener
        .await
        .context("bob's task failed")?
        .context("bob's call failed")?;
    server.shutdown().await;

    for (who, r) in [("alice", &dialer), ("bob", &listener)] {
        println!(
            "{who}: {:?} after {:.1} s; received {} audio packets ({} lost), {} chat messages; first audio after {}",
            r.end,
            r.stats.elapsed_s,
            r.stats.packets_received,
            r.stats.packets_lost,
            r.chat_received.len(),
            r.stats
                .first_audio_ms
                .map(|ms| format!("{ms:.0} ms"))
                .unwrap_or_else(|| "-".into()),
        );
    }
    for (who, r) in [("alice", &dialer), ("bob", &listener)] {
        if let Some(v) = &r.stats.video_received {
            let ms = |v: Option<f64>| v.map_or_else(|| "-".into(), |ms| format!("{ms:.1} ms"));
            println!(
                "{who}: received {} video frames ({} decoded, {} dropped, {} freezes) at {}x{}; glass-to-glass p50 {} p95 {}; decode {:.2} ms/frame",
                v.frames_received,
                v.frames_decoded,
                v.frames_dropped,
                v.freeze_count,
                v.frame_width,
                v.frame_height,
                ms(v.glass_to_glass_p50_ms),
                ms(v.glass_to_glass_p95_ms),
                v.decode_ms_per_frame,
            );
        }
        if let Some(v) = &r.stats.video_sent {
            println!(
                "{who}: sent {} video frames ({} keyframes), encode {:.2} ms/frame",
                v.frames_sent, v.key_frames_encoded, v.encode_ms_per_frame,
            );
        }
    }
    println!(
        "{}",
        serde_json::to_string(&dialer.stats).unwrap_or_default()
    );
    Ok(DemoReport { listener, dialer })
}
