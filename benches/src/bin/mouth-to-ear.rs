//! Mouth-to-ear latency of audio over a real loopback call, p50/p95.
//!
//! Starts the signaling server (with embedded TURN) in-process and makes one call with the
//! engine library (`Call::dial_with_ends` / `listen_with_ends`). Alice's audio source is
//! silence with a 30 ms 2 kHz tone burst every 500 ms (`benches::burst`) and records the
//! `Instant` it hands each burst's first frame to the engine (the engine's 20 ms send tick);
//! Bob's sink finds each burst's onset in the frames the engine plays out (its play tick) and
//! records the `Instant` of that frame plus the onset's place in it. Latency = heard − handed
//! out: Opus look-ahead, packetization, SRTP, loopback, the jitter buffer's delay and the play
//! tick. A real microphone and speaker add their own buffers on top.
//!
//! ```sh
//! cargo run --release -p benches --bin mouth-to-ear -- --bursts 60 [--each] [--relay-only]
//! ```
//!
//! `--each` prints every latency in the order heard (the jitter buffer starts at its initial
//! delay and adapts downwards during the call); `--relay-only` goes through the TURN relay.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use benches::burst::{
    match_onsets, onset_time, percentile, BurstConfig, BurstGenerator, OnsetDetector,
};
use call_cli::call::{CallOptions, IncomingDecision};
use call_cli::engine::{Call, MediaEnds};
use native::{AudioError, AudioInSpec, AudioSink, AudioSource};
use signaling::identity::Identity;
use signaling::server::{Server, ServerConfig};

/// Moments shared between a media end (owned by the engine) and this tool.
type Stamps = Arc<Mutex<Vec<Instant>>>;

/// Bursts more than this after the latest sent one are not ours (a burst is sent every 500 ms).
const MAX_LATENCY: Duration = Duration::from_millis(450);

/// Alice's microphone: bursts, stamped when handed out.
struct BurstSource {
    bursts: BurstGenerator,
    sent: Stamps,
}

impl AudioSource for BurstSource {
    fn read_frame(&mut self, frame: &mut [i16]) -> Result<bool, AudioError> {
        if self.bursts.next_frame(frame) {
            lock(&self.sent).push(Instant::now());
        }
        Ok(true)
    }

    fn describe(&self) -> String {
        "2 kHz bursts every 500 ms (mouth-to-ear bench)".into()
    }
}

/// Bob's speaker: onsets, stamped when played.
struct OnsetSink {
    detector: OnsetDetector,
    heard: Stamps,
}

impl AudioSink for OnsetSink {
    fn write_frame(&mut self, frame: &[i16]) -> Result<(), AudioError> {
        let now = Instant::now();
        if let Some(sample) = self.detector.push(frame) {
            lock(&self.heard).push(onset_time(now, sample));
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), AudioError> {
        Ok(())
    }

    fn describe(&self) -> String {
        "burst onset detector (mouth-to-ear bench)".into()
    }
}

fn lock(stamps: &Stamps) -> std::sync::MutexGuard<'_, Vec<Instant>> {
    // A panic while holding the lock only happens inside `push`; the data stays usable.
    stamps.lock().unwrap_or_else(|e| e.into_inner())
}

struct Args {
    bursts: u64,
    relay_only: bool,
    /// Print every latency in the order heard (shows the jitter buffer settling).
    each: bool,
}

fn args() -> Result<Args> {
    let mut out = Args {
        bursts: 60,
        relay_only: false,
        each: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--bursts" => {
                out.bursts = it
                    .next()
                    .context("--bursts takes a number")?
                    .parse()
                    .context("--bursts takes a number")?
            }
            "--relay-only" => out.relay_only = true,
            "--each" => out.each = true,
            other => bail!("unknown argument {other:?}; use --bursts N [--relay-only] [--each]"),
        }
    }
    if out.bursts < 2 {
        bail!("--bursts must be at least 2");
    }
    Ok(out)
}

fn main() -> Result<()> {
    let args = args()?;
    benches::tool::quiet_logs();
    // The same runtime `call` itself uses.
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(run(args))
}

async fn run(args: Args) -> Result<()> {
    let server = Server::start(ServerConfig::local()).await?;
    let url = server.url();
    let alice = Arc::new(Identity::generate());
    let bob = Arc::new(Identity::generate());
    let (sent, heard): (Stamps, Stamps) = Default::default();

    let mut bob_opts = CallOptions::scripted(&url);
    bob_opts.audio_in = Some(AudioInSpec::Silence);
    bob_opts.duration = None;
    bob_opts.relay_only = args.relay_only;
    let mut bob_ends = MediaEnds::open(&bob_opts)?;
    bob_ends.sink = Box::new(OnsetSink {
        detector: OnsetDetector::for_default_bursts(),
        heard: Arc::clone(&heard),
    });

    // Alice's first burst comes 500 ms after connecting; the last one gets 1 s to arrive.
    let config = BurstConfig::default();
    let period = Duration::from_millis(20 * config.period_frames);
    let mut alice_opts = CallOptions::scripted(&url);
    alice_opts.audio_in = Some(AudioInSpec::Silence);
    alice_opts.duration = Some(period * (args.bursts as u32) + Duration::from_secs(1));
    alice_opts.relay_only = args.relay_only;
    let mut alice_ends = MediaEnds::open(&alice_opts)?;
    alice_ends.source = Some(Box::new(BurstSource {
        bursts: BurstGenerator::new(config),
        sent: Arc::clone(&sent),
    }));

    let before = server.connected_clients();
    let bob_call = tokio::spawn(Call::listen_with_ends(
        Arc::clone(&bob),
        IncomingDecision::AutoAccept,
        bob_opts,
        bob_ends,
    ));
    // The listener must be registered before the offer is routed to it.
    while server.connected_clients() == before && !bob_call.is_finished() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    eprintln!(
        "calling: {} bursts, {:.0} s",
        args.bursts,
        alice_opts.duration.unwrap_or_default().as_secs_f64()
    );
    let (alice_call, _alice_events) =
        Call::dial_with_ends(alice, bob.call_id(), alice_opts, alice_ends)
            .await
            .context("alice's call failed")?;
    let (bob_call, _bob_events) = bob_call.await?.context("bob's call failed")?;
    let alice_report = alice_call.finished().await?;
    let bob_report = bob_call.finished().await?;
    server.shutdown().await;

    let sent = lock(&sent).clone();
    let heard = lock(&heard).clone();
    let mut latencies = match_onsets(&sent, &heard, MAX_LATENCY);
    if args.each {
        let each: Vec<String> = latencies
            .iter()
            .map(|d| format!("{:.1}", d.as_secs_f64() * 1e3))
            .collect();
        eprintln!("latencies in the order heard (ms): {}", each.join(" "));
    }
    latencies.sort();
    let ms = |d: Option<Duration>| d.map_or(f64::NAN, |d| d.as_secs_f64() * 1e3);
    println!("| path | bursts sent | heard | matched | p50 ms | p95 ms | min ms | max ms |");
    println!("|---|---|---|---|---|---|---|---|");
    println!(
        "| {} | {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.1} |",
        if args.relay_only {
            "TURN relay"
        } else {
            "host"
        },
        sent.len(),
        heard.len(),
        latencies.len(),
        ms(percentile(&latencies, 0.50)),
        ms(percentile(&latencies, 0.95)),
        ms(latencies.first().copied()),
        ms(latencies.last().copied()),
    );
    let s = &bob_report.stats;
    println!(
        "\nreceiver: jitter buffer {:.0}/{:.0} ms (current/target), rtt {}, {} frames, {} lost; call {:.1} s ({:?})",
        s.jitter_buffer_ms,
        s.jitter_target_ms,
        s.rtt_text(),
        s.frames_decoded,
        s.packets_lost,
        alice_report.stats.elapsed_s,
        alice_report.end,
    );
    if (latencies.len() as u64) < args.bursts * 9 / 10 {
        bail!(
            "only {} of {} bursts were matched; rerun with RUST_LOG=info to see why",
            latencies.len(),
            sent.len()
        );
    }
    Ok(())
}
