//! Well-behaved sender → receiver pairs for `call-load route` and `abuse`: each sender seals
//! envelopes whose plaintext carries its send time; each receiver opens them and records the
//! latency send → received and opened.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use signaling::client::{ClientOptions, ClientReceiver, ClientSender};
use signaling::envelope::{EnvelopeKind, ReplayLimits};
use signaling::identity::CallId;
use tokio::task::{JoinHandle, JoinSet};

use super::server::connect_many;
use super::{stamp_of, stamped_plaintext};

/// Plaintext bytes per routed envelope: about an ICE candidate's.
pub const BODY_BYTES: usize = 200;

/// What one receiver saw: (send time since the origin, latency) of each envelope it opened.
struct Received {
    latencies: Vec<(Duration, Duration)>,
}

async fn receive(mut rx: ClientReceiver, origin: Instant, count: Arc<AtomicU64>) -> Received {
    let mut latencies = Vec::new();
    while let Some(got) = rx.recv().await {
        let Ok(inc) = got else { continue };
        if let Some(sent) = stamp_of(&inc.plaintext) {
            latencies.push((sent, origin.elapsed().saturating_sub(sent)));
        }
        count.fetch_add(1, Ordering::Relaxed);
    }
    Received { latencies }
}

/// A time window of a run, as offsets from the pairs' origin: envelopes sent inside it count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// First send time counted.
    pub from: Duration,
    /// First send time no longer counted.
    pub until: Duration,
}

/// M logged-in pairs.
pub struct Pairs {
    /// Each sender with its receiver's ID; the receiver's own sender half is kept so its
    /// connection stays open.
    senders: Vec<(ClientSender, CallId, ClientSender)>,
    receivers: Vec<JoinHandle<Received>>,
    delivered: Arc<AtomicU64>,
    refused: Arc<AtomicU64>,
    origin: Instant,
}

impl Pairs {
    /// Logs in `2 × pairs` fresh identities on `url`; each may send `replay_per_sender`
    /// envelopes per 60 s before its receiver's replay cache refuses more.
    pub async fn connect(
        url: &str,
        pairs: usize,
        replay_per_sender: usize,
        deadline: Instant,
    ) -> Result<Pairs> {
        let opts = ClientOptions {
            recv_queue: 8192,
            replay_limits: ReplayLimits {
                per_sender: replay_per_sender,
                ..ReplayLimits::default()
            },
            ..ClientOptions::default()
        };
        let clients = connect_many(url, 2 * pairs, opts, deadline).await?;
        let origin = Instant::now();
        let delivered = Arc::new(AtomicU64::new(0));
        let refused = Arc::new(AtomicU64::new(0));
        let mut senders = Vec::new();
        let mut receivers = Vec::new();
        let mut it = clients.into_iter();
        while let (Some(s), Some(r)) = (it.next(), it.next()) {
            let to = r.id();
            let (stx, mut srx) = s.split();
            // The sender's own inbox: `recipient_busy` and other refusals, counted.
            let refused = Arc::clone(&refused);
            tokio::spawn(async move {
                while let Some(got) = srx.recv().await {
                    if let Err(err) = got {
                        if refused.fetch_add(1, Ordering::Relaxed) < 3 {
                            eprintln!("a sender was told: {err}");
                        }
                    }
                }
            });
            let (rtx, rrx) = r.split();
            receivers.push(tokio::spawn(receive(rrx, origin, Arc::clone(&delivered))));
            senders.push((stx, to, rtx));
        }
        Ok(Pairs {
            senders,
            receivers,
            delivered,
            refused,
            origin,
        })
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.senders.len()
    }

    /// True with no pairs.
    pub fn is_empty(&self) -> bool {
        self.senders.is_empty()
    }

    /// The receiver of pair `k` (a target for abuse).
    pub fn receiver_id(&self, k: usize) -> Option<CallId> {
        self.senders.get(k).map(|(_, to, _)| *to)
    }

    /// Envelopes opened by the receivers so far.
    pub fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }

    /// Refusals the senders were told about so far.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Every sender sends as fast as the server takes them for `phase`.
    pub async fn full_speed(&self, phase: Duration) -> Result<()> {
        let end = Instant::now() + phase;
        let origin = self.origin;
        let mut tasks = JoinSet::new();
        for (stx, to, _) in &self.senders {
            let (stx, to) = (stx.clone(), *to);
            tasks.spawn(async move {
                while Instant::now() < end {
                    let body = stamped_plaintext(origin.elapsed(), BODY_BYTES);
                    stx.send(&to, EnvelopeKind::Candidate, &body).await?;
                }
                anyhow::Ok(())
            });
        }
        while let Some(r) = tasks.join_next().await {
            r??;
        }
        Ok(())
    }

    /// Every sender sends one envelope every `every` for `phase`; returns the window whose
    /// latencies count (the first 500 ms, while the pacing settles, are left out).
    pub async fn paced(&self, every: Duration, phase: Duration) -> Result<Window> {
        let t0 = Instant::now();
        let end = t0 + phase;
        let origin = self.origin;
        let mut tasks = JoinSet::new();
        for (stx, to, _) in &self.senders {
            let (stx, to) = (stx.clone(), *to);
            tasks.spawn(async move {
                let mut tick = tokio::time::interval(every);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
                while Instant::now() < end {
                    tick.tick().await;
                    let body = stamped_plaintext(origin.elapsed(), BODY_BYTES);
                    stx.send(&to, EnvelopeKind::Candidate, &body).await?;
                }
                anyhow::Ok(())
            });
        }
        while let Some(r) = tasks.join_next().await {
            r??;
        }
        Ok(Window {
            from: t0 - origin + Duration::from_millis(500).min(phase / 4),
            until: end - origin,
        })
    }

    /// Closes the connections and returns the latencies of the envelopes sent inside each
    /// window, sorted, one list per window.
    pub async fn finish(self, windows: &[Window]) -> Result<Vec<Vec<Duration>>> {
        tokio::time::sleep(Duration::from_secs(1)).await;
        drop(self.senders); // Closes the connections; the receivers end.
        let mut out: Vec<Vec<Duration>> = windows.iter().map(|_| Vec::new()).collect();
        for r in self.receivers {
            let got = tokio::time::timeout(Duration::from_secs(5), r)
                .await
                .context("a receiver did not end after its connection closed")??;
            for (sent, latency) in got.latencies {
                for (w, lat) in windows.iter().zip(out.iter_mut()) {
                    if sent >= w.from && sent < w.until {
                        lat.push(latency);
                    }
                }
            }
        }
        for lat in &mut out {
            lat.sort_unstable();
        }
        Ok(out)
    }
}
