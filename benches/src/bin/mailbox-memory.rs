//! Memory of the signaling server's offline mailbox: the server runs in this process; senders
//! put `--envelopes` room messages (1 KiB of plaintext each, like a long chat line) in the
//! mailbox of offline IDs (100 per ID, each ID's from its own sender), and the tool
//! prints the process's resident memory before and after, per 1,000 envelopes, next to what the
//! mailbox itself counts.
//!
//! ```sh
//! cargo run --release -p benches --bin mailbox-memory -- --envelopes 1000
//! ```

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use signaling::client::{Client, ClientOptions};
use signaling::envelope::EnvelopeKind;
use signaling::identity::Identity;
use signaling::server::{RateLimit, Server, ServerConfig};

/// Envelopes per offline ID, each ID's from its own sender: under the per-sender share of one
/// recipient's mailbox (256 KiB, about 150 of these) and the per-recipient bound (256).
const PER_ID: usize = 100;

fn rss_kib() -> Result<u64> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS in /proc/self/status")
}

fn main() -> Result<()> {
    let envelopes = std::env::args()
        .skip_while(|a| a != "--envelopes")
        .nth(1)
        .map(|n| n.parse::<usize>())
        .transpose()
        .context("--envelopes takes a number")?
        .unwrap_or(1000);
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        let mut cfg = ServerConfig::local();
        cfg.turn = None;
        // The per-connection rate limit is not what is measured.
        cfg.limits.rate = RateLimit {
            per_second: 1e6,
            burst: 1_000_000,
        };
        let server = Server::start(cfg).await?;
        let body = vec![b'x'; 1024];
        let before = rss_kib()?;
        let ids: Vec<_> = (0..envelopes.div_ceil(PER_ID))
            .map(|_| Identity::generate().call_id())
            .collect();
        for (k, id) in ids.iter().enumerate() {
            let sender = Client::connect(
                &server.url(),
                Identity::generate(),
                ClientOptions::default(),
            )
            .await?;
            for _ in 0..PER_ID.min(envelopes - k * PER_ID) {
                sender.send(id, EnvelopeKind::RoomMessage, &body).await?;
            }
            sender.close().await;
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while server.mailbox_stats().envelopes < envelopes {
            if Instant::now() > deadline {
                bail!(
                    "only {} of {envelopes} envelopes reached the mailbox",
                    server.mailbox_stats().envelopes
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let after = rss_kib()?;
        let stats = server.mailbox_stats();
        let per_1000 = |v: f64| v * 1000.0 / envelopes as f64;
        println!(
            "| envelopes | offline IDs | mailbox counts | RSS growth | RSS per 1,000 envelopes |"
        );
        println!("|---|---|---|---|---|");
        println!(
            "| {envelopes} | {} | {:.0} KiB | {} KiB | {:.0} KiB |",
            ids.len(),
            stats.bytes as f64 / 1024.0,
            after.saturating_sub(before),
            per_1000(after.saturating_sub(before) as f64),
        );
        server.shutdown().await;
        Ok(())
    })
}
