//! Time from `dial` to the first decoded audio frame, over many real calls on loopback.
//!
//! Starts the signaling server (with embedded TURN) in-process, then makes `--calls` calls with
//! host candidates and as many relay-only, each a fresh pair of identities, and prints p50/p95.
//!
//! ```sh
//! cargo run --release -p benches --bin call-setup -- --calls 20
//! ```

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use call_cli::call::{dial, listen, CallOptions, IncomingDecision};
use native::AudioInSpec;
use signaling::identity::Identity;
use signaling::server::{Server, ServerConfig};

fn main() -> Result<()> {
    let calls = std::env::args()
        .skip_while(|a| a != "--calls")
        .nth(1)
        .map(|n| n.parse::<usize>())
        .transpose()
        .context("--calls takes a number")?
        .unwrap_or(20);
    benches::tool::quiet_logs();
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        let server = Server::start(ServerConfig::local()).await?;
        println!("| path | calls | p50 ms | p95 ms | min ms | max ms |");
        println!("|---|---|---|---|---|---|");
        for relay_only in [false, true] {
            let mut times = Vec::with_capacity(calls);
            for _ in 0..calls {
                let ms = one_call(&server.url(), relay_only).await?;
                tracing::info!(relay_only, ms, "call done");
                times.push(ms);
            }
            times.sort_by(f64::total_cmp);
            println!(
                "| {} | {} | {:.0} | {:.0} | {:.0} | {:.0} |",
                if relay_only { "TURN relay" } else { "host" },
                calls,
                percentile(&times, 0.50),
                percentile(&times, 0.95),
                times[0],
                times[times.len() - 1],
            );
        }
        server.shutdown().await;
        Ok(())
    })
}

/// One call; returns the dialer's time from `dial` to its first decoded audio frame, ms.
async fn one_call(url: &str, relay_only: bool) -> Result<f64> {
    let alice = Arc::new(Identity::generate());
    let bob = Arc::new(Identity::generate());
    let mut bob_opts = CallOptions::scripted(url);
    bob_opts.audio_in = Some(AudioInSpec::Sine(440.0));
    bob_opts.duration = None;
    bob_opts.relay_only = relay_only;
    let listener = tokio::spawn(listen(
        Arc::clone(&bob),
        IncomingDecision::AutoAccept,
        bob_opts,
    ));
    // The listener must be registered before the offer is routed to it.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut alice_opts = CallOptions::scripted(url);
    alice_opts.duration = Some(Duration::from_millis(600));
    alice_opts.relay_only = relay_only;
    let report = dial(alice, bob.call_id(), alice_opts).await?;
    listener.await??;
    match report.stats.first_audio_ms {
        Some(ms) => Ok(ms),
        None => bail!("no audio decoded in a {:.1} s call", report.stats.elapsed_s),
    }
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}
