//! `call-load calls`: K concurrent 1:1 calls forced through the server's embedded TURN relay
//! (both sides `relay_only`), each side a real `call` engine (webrtc-rs, Opus, a sine tone each
//! way) inside this tool. Per call: packets, loss and jitter as each receiver measured them
//! (RFC 3550); for the run: this tool's CPU per call and the server's CPU (the relay's, as
//! signaling is idle once the calls are up).

use std::sync::Arc;
use std::time::Duration;

use call_cli::call::{dial, listen, CallError, CallOptions, CallReport, IncomingDecision};
use media::stats::CallStats;
use native::{AudioInSpec, AudioOutSpec};
use signaling::identity::Identity;
use tokio::task::JoinHandle;

/// One call's figures, from both ends.
#[derive(Debug, Clone, PartialEq)]
pub struct CallFigures {
    /// Packets alice sent / bob received.
    pub a_to_b: (u64, u64),
    /// Packets bob sent / alice received.
    pub b_to_a: (u64, u64),
    /// Worse of the two receivers' loss fractions, 0..1.
    pub loss: f64,
    /// Worse of the two receivers' interarrival jitter, ms.
    pub jitter_ms: f64,
    /// Both sides used a relay candidate.
    pub relayed: bool,
}

impl CallFigures {
    /// The figures of a call from its two reports' statistics.
    pub fn of(alice: &CallStats, bob: &CallStats) -> CallFigures {
        CallFigures {
            a_to_b: (alice.packets_sent, bob.packets_received),
            b_to_a: (bob.packets_sent, alice.packets_received),
            loss: alice.loss_fraction.max(bob.loss_fraction),
            jitter_ms: alice.jitter_ms.max(bob.jitter_ms),
            relayed: alice.candidate_type.as_deref() == Some("relay")
                && bob.candidate_type.as_deref() == Some("relay"),
        }
    }
}

/// Summary of many calls: (mean, max) loss and jitter, and how many were relayed.
#[derive(Debug, Clone, PartialEq)]
pub struct CallsSummary {
    /// Calls that connected and ended normally.
    pub ok: usize,
    /// Mean and worst loss fraction.
    pub loss: (f64, f64),
    /// Mean and worst jitter, ms.
    pub jitter_ms: (f64, f64),
    /// Calls relayed on both sides.
    pub relayed: usize,
    /// Packets received, all calls and both directions.
    pub packets: u64,
    /// Packets sent, all calls and both directions.
    pub sent: u64,
}

impl CallsSummary {
    /// Packets received over packets sent, 0..1 (1 with nothing sent). Unlike the receivers'
    /// RFC 3550 loss it also counts what was sent but not yet read when a call ended (a
    /// starved receive loop), which the sequence numbers cannot see.
    pub fn delivered(&self) -> f64 {
        if self.sent == 0 {
            return 1.0;
        }
        self.packets as f64 / self.sent as f64
    }
}

/// Sums up `calls` (all zero for none).
pub fn summarize(calls: &[CallFigures]) -> CallsSummary {
    let n = calls.len().max(1) as f64;
    let fold = |f: fn(&CallFigures) -> f64| {
        let mean = calls.iter().map(f).sum::<f64>() / n;
        let max = calls.iter().map(f).fold(0.0, f64::max);
        (mean, max)
    };
    CallsSummary {
        ok: calls.len(),
        loss: fold(|c| c.loss),
        jitter_ms: fold(|c| c.jitter_ms),
        relayed: calls.iter().filter(|c| c.relayed).count(),
        packets: calls.iter().map(|c| c.a_to_b.1 + c.b_to_a.1).sum(),
        sent: calls.iter().map(|c| c.a_to_b.0 + c.b_to_a.0).sum(),
    }
}

fn options(url: &str, tone: f32, duration: Option<Duration>) -> CallOptions {
    let mut o = CallOptions::scripted(url);
    o.audio_in = Some(AudioInSpec::Sine(tone));
    o.audio_out = AudioOutSpec::Null;
    o.duration = duration;
    o.relay_only = true;
    o
}

/// A callee: its identity and its listening call.
pub type Callee = (Arc<Identity>, JoinHandle<Result<CallReport, CallError>>);

/// Starts the K callees (listening, auto-accept) on `url`.
pub fn start_callees(url: &str, k: usize) -> Vec<Callee> {
    (0..k)
        .map(|i| {
            let bob = Arc::new(Identity::generate());
            let opts = options(url, 300.0 + 10.0 * i as f32, None);
            let handle = tokio::spawn(listen(Arc::clone(&bob), IncomingDecision::AutoAccept, opts));
            (bob, handle)
        })
        .collect()
}

/// Dials every callee for `seconds`, all at once; returns each call's figures or why it failed.
pub async fn run_calls(
    url: &str,
    callees: Vec<Callee>,
    seconds: u64,
) -> Vec<Result<CallFigures, String>> {
    let mut dials = Vec::new();
    for (i, (bob, listener)) in callees.into_iter().enumerate() {
        let alice = Arc::new(Identity::generate());
        let opts = options(
            url,
            600.0 + 10.0 * i as f32,
            Some(Duration::from_secs(seconds)),
        );
        let peer = bob.call_id();
        dials.push(tokio::spawn(async move {
            let a = dial(alice, peer, opts).await;
            if a.is_err() {
                listener.abort();
            }
            let b = listener.await;
            match (a, b) {
                (Ok(a), Ok(Ok(b))) => Ok(CallFigures::of(&a.stats, &b.stats)),
                (Err(e), _) => Err(format!("caller: {e}")),
                (_, Ok(Err(e))) => Err(format!("callee: {e}")),
                (_, Err(e)) => Err(format!("callee task: {e}")),
            }
        }));
    }
    let mut out = Vec::new();
    for d in dials {
        out.push(d.await.unwrap_or_else(|e| Err(format!("call task: {e}"))));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(sent: u64, received: u64, loss: f64, jitter: f64, relay: bool) -> CallStats {
        CallStats {
            packets_sent: sent,
            packets_received: received,
            loss_fraction: loss,
            jitter_ms: jitter,
            candidate_type: Some(if relay { "relay" } else { "host" }.into()),
            ..CallStats::default()
        }
    }

    #[test]
    fn a_call_takes_the_worse_direction() {
        let f = CallFigures::of(
            &stats(500, 490, 0.02, 3.0, true),
            &stats(495, 500, 0.0, 5.0, true),
        );
        assert_eq!(f.a_to_b, (500, 500));
        assert_eq!(f.b_to_a, (495, 490));
        assert_eq!((f.loss, f.jitter_ms, f.relayed), (0.02, 5.0, true));
        let host = CallFigures::of(&stats(1, 1, 0.0, 0.0, true), &stats(1, 1, 0.0, 0.0, false));
        assert!(!host.relayed);
    }

    #[test]
    fn summary_means_and_maxima() {
        let a = CallFigures::of(
            &stats(10, 10, 0.0, 2.0, true),
            &stats(10, 10, 0.0, 2.0, true),
        );
        let b = CallFigures::of(
            &stats(10, 8, 0.2, 6.0, true),
            &stats(10, 10, 0.0, 2.0, false),
        );
        let s = summarize(&[a, b]);
        assert_eq!(s.ok, 2);
        assert!((s.loss.0 - 0.1).abs() < 1e-9 && (s.loss.1 - 0.2).abs() < 1e-9);
        assert_eq!(s.jitter_ms, (4.0, 6.0));
        assert_eq!(s.relayed, 1);
        assert_eq!(s.packets, 38);
        assert_eq!(s.sent, 40);
        assert!((s.delivered() - 0.95).abs() < 1e-9);
        assert_eq!(summarize(&[]).ok, 0);
        assert_eq!(summarize(&[]).delivered(), 1.0);
    }
}
