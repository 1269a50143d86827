//! Packet arrival traces: synthesised from a [`Profile`], recorded from a live call, written to
//! and read from a small text format, and replayed into a jitter buffer.
//!
//! # File format (`call-jitter-trace v1`)
//! UTF-8 text, one packet copy per line, five whitespace-separated columns:
//!
//! ```text
//! # call-jitter-trace v1
//! # clock_rate=48000
//! # seq rtp_ts send_us arrival_us len
//! 65000 4294870000 0 30412 80
//! 65001 4294870960 20000 - 80
//! ```
//!
//! `seq` and `rtp_ts` are the RTP sequence number and timestamp; `send_us` and `arrival_us` are
//! microseconds since the start of the trace on the receiver's clock, `-` when unknown (a
//! receiver does not know send times) or when the packet was lost (arrival); `len` is the
//! payload size in bytes. A duplicated packet appears twice. Lines starting with `#` are comments, except `# clock_rate=N`.

use std::fmt;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::model::{Impairment, Profile};
use crate::jitter::audio::AudioPacket;

/// First line of every trace file.
const MAGIC: &str = "# call-jitter-trace v1";
/// Longest time a trace may span (24 h), so replaying any parsed trace stays bounded.
const MAX_TRACE_US: u64 = 24 * 3600 * 1_000_000;

/// One copy of one packet in a trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceRecord {
    /// RTP sequence number.
    pub seq: u16,
    /// RTP timestamp.
    pub timestamp: u32,
    /// Send time since the start of the trace, if known.
    pub send: Option<Duration>,
    /// Arrival time since the start of the trace; `None` when lost.
    pub arrival: Option<Duration>,
    /// Payload size in bytes.
    pub len: u32,
}

/// A packet trace: what was sent and when it arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trace {
    /// RTP clock rate of `timestamp`.
    pub clock_rate: u32,
    /// Records in file order (send order for synthetic traces, arrival order for recorded ones).
    pub records: Vec<TraceRecord>,
}

/// Why a trace file could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TraceError {
    /// A line does not have the five expected columns or a column is not a number.
    #[error("trace line {line}: {reason}; expected `seq rtp_ts send_us arrival_us len`")]
    BadLine {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// The clock-rate header is not a positive number.
    #[error("trace line {line}: bad clock_rate header; expected `# clock_rate=48000`")]
    BadClockRate {
        /// 1-based line number.
        line: usize,
    },
}

impl Trace {
    /// A trace of `duration` of 20 ms, 80-byte Opus packets sent through `profile` with `seed`.
    /// Sequence numbers and timestamps start just below their wrap-around points.
    pub fn synthesize(profile: &Profile, seed: u64, duration: Duration) -> Self {
        let frame = Duration::from_millis(20);
        let n = (duration.as_micros() / frame.as_micros()) as u32;
        let mut imp = Impairment::new(profile.clone(), seed);
        let seq0 = 65_000u16.wrapping_add((seed % 500) as u16);
        let ts0 = u32::MAX - 200 * 960 - (seed % 1000) as u32;
        let mut records = Vec::with_capacity(n as usize);
        for k in 0..n {
            let send = frame * k;
            let len = 80;
            let d = imp.apply(send, len as usize);
            let whole_us = |t: Duration| Duration::from_micros(t.as_micros() as u64);
            let d = super::model::Delivery {
                first: d.first.map(whole_us),
                duplicate: d.duplicate.map(whole_us),
            };
            // Recorded send time is on the receiver's clock, so `arrival - send` is the
            // network delay alone, also under clock drift.
            let send_real =
                Duration::from_secs_f64(send.as_secs_f64() / (1.0 + profile.clock_drift));
            let rec = TraceRecord {
                seq: seq0.wrapping_add(k as u16),
                timestamp: ts0.wrapping_add(k.wrapping_mul(960)),
                send: Some(whole_us(send_real)),
                arrival: d.first,
                len,
            };
            records.push(rec);
            if let Some(dup) = d.duplicate {
                records.push(TraceRecord {
                    arrival: Some(dup),
                    ..rec
                });
            }
        }
        Self {
            clock_rate: 48_000,
            records,
        }
    }

    /// Reads the text format described in the module documentation; times are limited to 24 h.
    pub fn parse(text: &str) -> Result<Self, TraceError> {
        let mut trace = Self {
            clock_rate: 48_000,
            records: Vec::new(),
        };
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let l = raw.trim();
            if let Some(comment) = l.strip_prefix('#') {
                if let Some(rate) = comment.trim().strip_prefix("clock_rate=") {
                    trace.clock_rate = rate
                        .trim()
                        .parse()
                        .ok()
                        .filter(|&r: &u32| r > 0)
                        .ok_or(TraceError::BadClockRate { line })?;
                }
                continue;
            }
            if l.is_empty() {
                continue;
            }
            let cols: Vec<&str> = l.split_whitespace().collect();
            let [seq, ts, send, arrival, len] = cols[..] else {
                return Err(TraceError::BadLine {
                    line,
                    reason: format!("{} columns", cols.len()),
                });
            };
            let bad = |what: &str, v: &str| TraceError::BadLine {
                line,
                reason: format!("{what} `{v}` is not a number"),
            };
            let micros = |what: &str, v: &str| -> Result<Option<Duration>, TraceError> {
                if v == "-" {
                    return Ok(None);
                }
                let us: u64 = v.parse().map_err(|_| bad(what, v))?;
                if us > MAX_TRACE_US {
                    return Err(TraceError::BadLine {
                        line,
                        reason: format!("{what} `{v}` is beyond 24 h"),
                    });
                }
                Ok(Some(Duration::from_micros(us)))
            };
            trace.records.push(TraceRecord {
                seq: seq.parse().map_err(|_| bad("seq", seq))?,
                timestamp: ts.parse().map_err(|_| bad("rtp_ts", ts))?,
                send: micros("send_us", send)?,
                arrival: micros("arrival_us", arrival)?,
                len: len.parse().map_err(|_| bad("len", len))?,
            });
        }
        Ok(trace)
    }

    /// Packets that arrived, in arrival order (stable for equal times), with dummy payloads of
    /// the recorded size; the first element is the arrival time since the start of the trace.
    pub fn arrivals(&self) -> Vec<(Duration, AudioPacket)> {
        super::evaluate::arrivals_with(self, |r| Bytes::from(vec![0x55; r.len.min(1500) as usize]))
    }
}

impl fmt::Display for Trace {
    /// Writes the text format described in the module documentation.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{MAGIC}")?;
        writeln!(f, "# clock_rate={}", self.clock_rate)?;
        writeln!(f, "# seq rtp_ts send_us arrival_us len")?;
        let col =
            |d: Option<Duration>| d.map_or_else(|| "-".to_owned(), |d| d.as_micros().to_string());
        for r in &self.records {
            writeln!(
                f,
                "{} {} {} {} {}",
                r.seq,
                r.timestamp,
                col(r.send),
                col(r.arrival),
                r.len
            )?;
        }
        Ok(())
    }
}

/// Records the arrival trace of a live stream; sans-IO, fed by the session as packets arrive.
#[derive(Debug, Clone)]
pub struct TraceRecorder {
    epoch: Option<Instant>,
    trace: Trace,
}

impl TraceRecorder {
    /// An empty recorder for an RTP stream with `clock_rate`.
    pub fn new(clock_rate: u32) -> Self {
        Self {
            epoch: None,
            trace: Trace {
                clock_rate,
                records: Vec::new(),
            },
        }
    }

    /// Records one received packet; the first call sets the trace's time origin.
    pub fn record(&mut self, pkt: &AudioPacket, arrival: Instant) {
        let epoch = *self.epoch.get_or_insert(arrival);
        self.trace.records.push(TraceRecord {
            seq: pkt.seq,
            timestamp: pkt.timestamp,
            send: None,
            arrival: Some(arrival.saturating_duration_since(epoch)),
            len: u32::try_from(pkt.payload.len()).unwrap_or(u32::MAX),
        });
    }

    /// The trace so far.
    pub fn trace(&self) -> &Trace {
        &self.trace
    }

    /// Ends recording and returns the trace (write it with `to_string()`).
    pub fn into_trace(self) -> Trace {
        self.trace
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn synthesized_trace_round_trips_through_text() {
        let p = Profile::by_name("reorder").expect("profile");
        let t = Trace::synthesize(&p, 11, Duration::from_secs(5));
        assert!(t.records.len() >= 250);
        assert!(
            Trace::parse(&t.to_string()) == Ok(t.clone()),
            "text round trip"
        );
        assert!(
            t == Trace::synthesize(&p, 11, Duration::from_secs(5)),
            "deterministic"
        );
    }

    #[test]
    fn recorder_writes_receiver_side_traces() {
        let mut r = TraceRecorder::new(48_000);
        let t0 = Instant::now();
        for k in 0..3u16 {
            let pkt = AudioPacket {
                seq: k,
                timestamp: u32::from(k) * 960,
                ssrc: 1,
                payload: Bytes::from_static(b"abc"),
            };
            r.record(&pkt, t0 + Duration::from_millis(20 * u64::from(k) + 5));
        }
        let text = r.into_trace().to_string();
        assert!(text.contains("\n1 960 - 20000 3\n"), "{text}");
        let back = Trace::parse(&text).expect("parses");
        assert_eq!(back.arrivals().len(), 3);
    }

    #[test]
    fn bad_lines_name_the_line() {
        assert_eq!(
            Trace::parse("# call-jitter-trace v1\n1 2 3\n"),
            Err(TraceError::BadLine {
                line: 2,
                reason: "3 columns".into()
            })
        );
        assert!(matches!(
            Trace::parse("1 2 3 99999999999999 5"),
            Err(TraceError::BadLine { line: 1, .. })
        ));
        assert!(matches!(
            Trace::parse("1 2 x 4 5"),
            Err(TraceError::BadLine { line: 1, .. })
        ));
        assert_eq!(
            Trace::parse("# clock_rate=0"),
            Err(TraceError::BadClockRate { line: 1 })
        );
    }

    proptest! {
        #[test]
        fn parse_never_panics(text in "\\PC{0,400}") {
            let _ = Trace::parse(&text);
        }

        #[test]
        fn parse_never_panics_on_numeric_lines(lines in prop::collection::vec("[0-9 -]{0,40}", 0..20)) {
            let _ = Trace::parse(&lines.join("\n"));
        }
    }
}
