//! `call demo`: a complete call on this machine with embedded defaults. Starts the signaling
//! server and its TURN server in-process, makes two throw-away identities, and lets them talk.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use native::{AudioInSpec, AudioOutSpec};
use signaling::identity::{safety_number, Identity};
use signaling::server::{Server, ServerConfig};

use crate::call::{dial, listen, CallOptions, CallReport, IncomingDecision};

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
    let mut bob_opts = CallOptions::scripted(&url);
    bob_opts.audio_in = Some(AudioInSpec::Sine(660.0));
    bob_opts.audio_out = match &args.audio_out {
        Some(p) => AudioOutSpec::File(p.clone()),
        None => AudioOutSpec::Null,
    };
    bob_opts.duration = None;
    bob_opts.relay_only = args.relay_only;
    bob_opts.say = vec!["hi alice, bob here".into()];
    bob_opts.print_chat = true;

    let mut alice_opts = CallOptions::scripted(&url);
    alice_opts.audio_in = Some(AudioInSpec::Sine(440.0));
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
    println!(
        "{}",
        serde_json::to_string(&dialer.stats).unwrap_or_default()
    );
    Ok(DemoReport { listener, dialer })
}
