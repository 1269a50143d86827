//! Drives a playout buffer over a packet trace on virtual time and measures what a listener
//! would get: playout delay, late loss, concealment. Used by tests, the `jitter-report` binary
//! and the audio-quality bench, so every buffer is judged by the same code on the same traces.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Serialize;

use super::trace::{Trace, TraceRecord};
use crate::jitter::audio::unwrap::TimestampUnwrapper;
use crate::jitter::audio::{AudioPacket, Playout, PlayoutBuffer};

/// Audio clock of the simulated receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PullClock {
    /// Time between pulls (one frame).
    pub frame: Duration,
    /// Time of the first pull after the trace origin (a phase offset against the sender).
    pub phase: Duration,
    /// How long to keep pulling after the last arrival.
    pub tail: Duration,
}

impl Default for PullClock {
    fn default() -> Self {
        Self {
            frame: Duration::from_millis(20),
            phase: Duration::from_millis(7),
            tail: Duration::from_millis(400),
        }
    }
}

/// Feeds `arrivals` (time since the trace origin, packet; sorted by time) into `buf` and pulls
/// once per frame on the receiver clock, calling `on_frame(pull_time, &playout)` for each pull.
pub fn drive<B: PlayoutBuffer + ?Sized>(
    arrivals: &[(Duration, AudioPacket)],
    buf: &mut B,
    clock: PullClock,
    origin: Instant,
    mut on_frame: impl FnMut(Duration, &Playout),
) {
    let end = arrivals.last().map_or(Duration::ZERO, |(t, _)| *t) + clock.tail;
    let mut next = 0;
    let mut now = clock.phase;
    while now <= end {
        while let Some((t, p)) = arrivals.get(next) {
            if *t > now {
                break;
            }
            buf.insert(p.clone(), origin + *t);
            next += 1;
        }
        let out = buf.pull(origin + now);
        on_frame(now, &out);
        now += clock.frame;
    }
}

/// What a buffer did with one trace.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PlayoutReport {
    /// Packets in the trace (unique).
    pub sent: u64,
    /// Packets that arrived (unique).
    pub delivered: u64,
    /// Packets played.
    pub played: u64,
    /// Delivered packets that arrived after the playout had passed their frame.
    pub late: u64,
    /// Delivered packets that arrived in time but were dropped (to shrink the delay).
    pub dropped: u64,
    /// Output frames between the first and last frame of the stream.
    pub frames: u64,
    /// Frames recovered from FEC.
    pub fec: u64,
    /// Frames concealed or inserted.
    pub concealed: u64,
    /// Mean delay from send to playout of played packets, in ms (relative to the fastest
    /// packet when the trace has no send times).
    pub mean_delay_ms: f64,
    /// 95th percentile of the same delay, in ms.
    pub p95_delay_ms: f64,
    /// `late / delivered`.
    pub late_loss_rate: f64,
    /// `concealed / frames`.
    pub concealed_rate: f64,
    /// `fec / frames`.
    pub fec_rate: f64,
    /// `1 - delivered / sent`.
    pub network_loss_rate: f64,
}

/// Runs `buf` over `trace` with the default [`PullClock`] and measures the result; `origin` is
/// the instant the trace's time zero maps to (any instant will do).
pub fn evaluate<B: PlayoutBuffer + ?Sized>(
    trace: &Trace,
    buf: &mut B,
    origin: Instant,
) -> PlayoutReport {
    evaluate_with(trace, buf, PullClock::default(), origin, |_| {
        Bytes::from_static(&[0x55; 80])
    })
}

/// Like [`evaluate`], with a chosen clock and payloads made by `payload(record)`.
pub fn evaluate_with<B: PlayoutBuffer + ?Sized>(
    trace: &Trace,
    buf: &mut B,
    clock: PullClock,
    origin: Instant,
    payload: impl Fn(&TraceRecord) -> Bytes,
) -> PlayoutReport {
    let arrivals = arrivals_with(trace, payload);
    let rate = f64::from(trace.clock_rate.max(1));
    // Stream extent and per-packet reference times, on unwrapped timestamps.
    let mut unwrap = TimestampUnwrapper::default();
    let mut ext_of: HashMap<(u16, u32), i64> = HashMap::new();
    for r in &trace.records {
        ext_of
            .entry((r.seq, r.timestamp))
            .or_insert_with(|| unwrap.extend(r.timestamp));
    }
    let (first_ts, last_ts) = ext_of
        .values()
        .fold((i64::MAX, i64::MIN), |(lo, hi), &t| (lo.min(t), hi.max(t)));
    let media = |ext: i64| (ext - first_ts) as f64 / rate;
    let has_send = trace.records.iter().all(|r| r.send.is_some());
    let min_transit = trace
        .records
        .iter()
        .filter_map(|r| {
            let ext = ext_of.get(&(r.seq, r.timestamp))?;
            Some(r.arrival?.as_secs_f64() - media(*ext))
        })
        .fold(f64::INFINITY, f64::min);
    let reference: HashMap<(u16, u32), f64> = trace
        .records
        .iter()
        .filter_map(|r| {
            let key = (r.seq, r.timestamp);
            let t = match r.send {
                Some(s) if has_send => s.as_secs_f64(),
                _ => media(*ext_of.get(&key)?) + min_transit,
            };
            Some((key, t))
        })
        .collect();
    let delivered: HashSet<(u16, u32)> = trace
        .records
        .iter()
        .filter(|r| r.arrival.is_some())
        .map(|r| (r.seq, r.timestamp))
        .collect();

    let mut rep = PlayoutReport {
        sent: ext_of.len() as u64,
        delivered: delivered.len() as u64,
        ..PlayoutReport::default()
    };
    let mut played: HashSet<(u16, u32)> = HashSet::new();
    // (pull time, highest frame position consumed so far), to tell late from dropped packets.
    let mut progress: Vec<(Duration, i64)> = Vec::new();
    let mut delays = Vec::new();
    let mut out_unwrap = TimestampUnwrapper::default();
    out_unwrap.extend(trace.records.first().map_or(0, |r| r.timestamp));
    drive(&arrivals, buf, clock, origin, |now, out| {
        let Some(ts) = out.timestamp() else { return };
        let ext = out_unwrap.extend(ts);
        if !matches!(out, Playout::Expand { .. }) {
            let hi = progress.last().map_or(ext, |&(_, h)| h.max(ext));
            progress.push((now, hi));
        }
        if ext < first_ts || ext > last_ts {
            return;
        }
        rep.frames += 1;
        match out {
            Playout::Packet { seq, timestamp, .. } => {
                if played.insert((*seq, *timestamp)) {
                    if let Some(r) = reference.get(&(*seq, *timestamp)) {
                        delays.push((now.as_secs_f64() - r) * 1000.0);
                    }
                }
            }
            Playout::Fec { .. } => rep.fec += 1,
            Playout::Conceal { .. } | Playout::Expand { .. } => rep.concealed += 1,
            Playout::Dtx { .. } | Playout::Empty => {}
        }
    });
    rep.played = played.len() as u64;
    let first_arrival: HashMap<(u16, u32), Duration> =
        trace.records.iter().fold(HashMap::new(), |mut m, r| {
            if let Some(a) = r.arrival {
                let e = m.entry((r.seq, r.timestamp)).or_insert(a);
                *e = (*e).min(a);
            }
            m
        });
    for key in delivered.difference(&played) {
        let (Some(arrival), Some(ext)) = (first_arrival.get(key), ext_of.get(key)) else {
            continue;
        };
        // Position consumed by the last pull before the packet arrived.
        let i = progress.partition_point(|&(t, _)| t < *arrival);
        let passed = i > 0 && progress[i - 1].1 >= *ext;
        if passed {
            rep.late += 1;
        } else {
            rep.dropped += 1;
        }
    }
    if !delays.is_empty() {
        rep.mean_delay_ms = delays.iter().sum::<f64>() / delays.len() as f64;
        delays.sort_by(f64::total_cmp);
        rep.p95_delay_ms = delays[(delays.len() * 95 / 100).min(delays.len() - 1)];
    }
    let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    rep.late_loss_rate = ratio(rep.late, rep.delivered);
    rep.concealed_rate = ratio(rep.concealed, rep.frames);
    rep.fec_rate = ratio(rep.fec, rep.frames);
    rep.network_loss_rate = 1.0 - ratio(rep.delivered, rep.sent);
    rep
}

/// Arrivals of `trace` in time order with payloads from `payload(record)`.
pub fn arrivals_with(
    trace: &Trace,
    payload: impl Fn(&TraceRecord) -> Bytes,
) -> Vec<(Duration, AudioPacket)> {
    let mut out: Vec<(Duration, AudioPacket)> = trace
        .records
        .iter()
        .filter_map(|r| {
            r.arrival.map(|a| {
                (
                    a,
                    AudioPacket {
                        seq: r.seq,
                        timestamp: r.timestamp,
                        ssrc: 0x7472_6163,
                        payload: payload(r),
                    },
                )
            })
        })
        .collect();
    out.sort_by_key(|(a, _)| *a);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jitter::audio::AudioJitterBuffer;
    use crate::netsim::model::Profile;

    #[test]
    fn clean_trace_plays_everything() {
        let trace = Trace::synthesize(
            &Profile::by_name("clean").expect("p"),
            1,
            Duration::from_secs(20),
        );
        let rep = evaluate(&trace, &mut AudioJitterBuffer::default(), Instant::now());
        assert_eq!(rep.sent, 1000);
        assert_eq!(rep.late, 0, "{rep:?}");
        assert_eq!(rep.concealed, 0, "{rep:?}");
        assert!(
            rep.mean_delay_ms > 30.0 && rep.mean_delay_ms < 100.0,
            "{rep:?}"
        );
    }

    proptest::proptest! {
        /// Any parsed trace (outside input) can be replayed and measured without panicking.
        #[test]
        fn any_trace_evaluates(
            records in proptest::collection::vec(
                (
                    proptest::prelude::any::<u16>(),
                    proptest::prelude::any::<u32>(),
                    proptest::option::of(0u64..5_000_000),
                    proptest::option::of(0u64..5_000_000),
                    0u32..2000,
                ),
                0..200,
            )
        ) {
            let trace = Trace {
                clock_rate: 48_000,
                records: records
                    .into_iter()
                    .map(|(seq, timestamp, send, arrival, len)| TraceRecord {
                        seq,
                        timestamp,
                        send: send.map(Duration::from_micros),
                        arrival: arrival.map(Duration::from_micros),
                        len,
                    })
                    .collect(),
            };
            let rep = evaluate(&trace, &mut AudioJitterBuffer::default(), Instant::now());
            proptest::prop_assert!(rep.played <= rep.delivered);
            proptest::prop_assert!(rep.late + rep.dropped + rep.played == rep.delivered);
        }
    }

    #[test]
    fn evaluation_is_deterministic() {
        let trace = Trace::synthesize(
            &Profile::by_name("jitter80").expect("p"),
            3,
            Duration::from_secs(20),
        );
        let a = evaluate(&trace, &mut AudioJitterBuffer::default(), Instant::now());
        let b = evaluate(&trace, &mut AudioJitterBuffer::default(), Instant::now());
        assert_eq!(a, b);
    }
}
