//! Matching transport-wide congestion feedback with what was sent, sans-IO.
//!
//! The send-log interceptor ([`super::send_log`]) records every outgoing RTP packet's
//! transport-wide sequence number (16 bits, wrapping), size and send instant here; the peer's
//! `TransportLayerCc` feedback, expanded to [`TwccArrival`]s, comes back and is turned into
//! [`PacketResult`]s for [`crate::bwe::BandwidthEstimator::on_feedback`].
//!
//! webrtc-rs' feedback generator reports, every 100 ms, the packets received since its last
//! report; packets missing between two reports are never named. A gap between the highest
//! sequence number already reported and the first one of a new report is therefore read as
//! lost (the packets were sent and are known here), so tail losses count too.

use std::time::{Duration, Instant};

use super::rtcp::TwccArrival;
use crate::bwe::PacketResult;

/// Packets remembered by default: about 10 s of video at 4 Mbit/s (1200-byte packets), far
/// longer than feedback takes to come back.
pub const DEFAULT_SEND_LOG: usize = 4096;

/// Largest gap (in packets) read as lost between two feedback reports; a larger jump means the
/// feedback or our log lost track, and guessing would invent a loss burst.
const MAX_GAP: u64 = 1000;

/// One sent packet as remembered.
#[derive(Debug, Clone, Copy)]
struct Slot {
    seq: u64,
    size: usize,
    send_time: Instant,
    /// Reported received (a later report of the same packet is a duplicate).
    received: bool,
    /// Reported at all (lost or received).
    reported: bool,
}

/// Counters of what the matcher could not use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FeedbackStats {
    /// Packets sent and recorded.
    pub sent: u64,
    /// Feedback entries for sequence numbers never sent or already forgotten.
    pub unknown: u64,
    /// Feedback entries for packets already reported the same way.
    pub duplicates: u64,
    /// Packets inferred lost because no report named them (gap between two reports).
    pub gap_lost: u64,
}

/// The bounded log of sent packets and the matcher for feedback against it.
#[derive(Debug)]
pub struct SentPacketLog {
    /// Ring indexed by `seq % capacity`; a slot holds the newest packet with that index.
    slots: Vec<Option<Slot>>,
    /// Highest unwrapped sequence number sent.
    highest_sent: Option<u64>,
    /// Highest unwrapped sequence number any feedback named.
    highest_reported: Option<u64>,
    /// Maps the peer's arrival clock (µs) to ours: (peer µs, our instant) of one packet.
    anchor: Option<(i64, Instant)>,
    stats: FeedbackStats,
}

impl SentPacketLog {
    /// A log remembering the last `capacity` packets (at least 1, at most 32768 so a 16-bit
    /// sequence number resolves to one packet).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.clamp(1, 1 << 15);
        Self {
            slots: vec![None; capacity],
            highest_sent: None,
            highest_reported: None,
            anchor: None,
            stats: FeedbackStats::default(),
        }
    }

    /// What the matcher skipped so far.
    pub fn stats(&self) -> FeedbackStats {
        self.stats
    }

    /// Records a packet with transport-wide sequence number `seq`, `size` bytes, sent at `at`.
    /// Packets may come slightly out of order (two streams share the counter).
    pub fn on_sent(&mut self, seq: u16, size: usize, at: Instant) {
        // Start one cycle up so a packet slightly older than the first one still unwraps.
        let full = match self.highest_sent {
            None => (1 << 16) | u64::from(seq),
            Some(h) => {
                let delta = i64::from(seq.wrapping_sub(h as u16) as i16);
                match h.checked_add_signed(delta) {
                    Some(f) => f,
                    None => return,
                }
            }
        };
        self.highest_sent = Some(self.highest_sent.map_or(full, |h| h.max(full)));
        let i = self.index(full);
        self.slots[i] = Some(Slot {
            seq: full,
            size,
            send_time: at,
            received: false,
            reported: false,
        });
        self.stats.sent += 1;
    }

    /// Matches one feedback's arrivals (in any order) against the log: each known packet gives
    /// one [`PacketResult`] (`arrival: None` when reported lost), plus packets skipped between
    /// the previous report and this one, as lost. Sorted by sequence number. Unknown sequence
    /// numbers and repeated reports are counted in [`SentPacketLog::stats`] and left out; a
    /// packet first reported lost and later received is reported again, received.
    pub fn on_feedback(&mut self, arrivals: &[TwccArrival]) -> Vec<PacketResult> {
        let Some(highest_sent) = self.highest_sent else {
            self.stats.unknown += arrivals.len() as u64;
            return Vec::new();
        };
        let mut out = Vec::with_capacity(arrivals.len());
        let mut lowest_in_report = None::<u64>;
        let mut highest_in_report = None::<u64>;
        for a in arrivals {
            // Feedback can only name packets already sent: the newest candidate at or below
            // the highest sent.
            let back = u64::from((highest_sent as u16).wrapping_sub(a.seq));
            let Some(seq) = highest_sent.checked_sub(back) else {
                self.stats.unknown += 1;
                continue;
            };
            let i = self.index(seq);
            let Some(slot) = self.slots[i].as_mut().filter(|s| s.seq == seq) else {
                self.stats.unknown += 1;
                continue;
            };
            lowest_in_report = Some(lowest_in_report.map_or(seq, |l| l.min(seq)));
            highest_in_report = Some(highest_in_report.map_or(seq, |h| h.max(seq)));
            let arrival = match a.arrival_us {
                Some(us) => {
                    if slot.received {
                        self.stats.duplicates += 1;
                        continue;
                    }
                    let (anchor_us, anchor_at) = *self.anchor.get_or_insert((us, slot.send_time));
                    let Some(at) = shift(anchor_at, us.saturating_sub(anchor_us)) else {
                        // Not representable on our clock: a bogus time, not a loss.
                        self.stats.unknown += 1;
                        continue;
                    };
                    slot.received = true;
                    Some(at)
                }
                None => {
                    if slot.reported {
                        self.stats.duplicates += 1;
                        continue;
                    }
                    None
                }
            };
            slot.reported = true;
            out.push(PacketResult {
                seq,
                size: slot.size,
                send_time: slot.send_time,
                arrival,
            });
        }
        if let (Some(prev), Some(low)) = (self.highest_reported, lowest_in_report) {
            if low > prev + 1 && low - prev - 1 <= MAX_GAP {
                for seq in prev + 1..low {
                    let i = self.index(seq);
                    if let Some(slot) = self.slots[i].as_mut().filter(|s| s.seq == seq) {
                        if !slot.reported {
                            slot.reported = true;
                            self.stats.gap_lost += 1;
                            out.push(PacketResult {
                                seq,
                                size: slot.size,
                                send_time: slot.send_time,
                                arrival: None,
                            });
                        }
                    }
                }
            }
        }
        if let Some(h) = highest_in_report {
            self.highest_reported = Some(self.highest_reported.map_or(h, |p| p.max(h)));
        }
        out.sort_unstable_by_key(|p| p.seq);
        out
    }

    fn index(&self, seq: u64) -> usize {
        (seq % self.slots.len() as u64) as usize
    }
}

/// `at` moved by `us` microseconds either way, if our clock can represent the result.
fn shift(at: Instant, us: i64) -> Option<Instant> {
    let d = Duration::from_micros(us.unsigned_abs());
    if us >= 0 {
        at.checked_add(d)
    } else {
        at.checked_sub(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn got(seq: u16, us: i64) -> TwccArrival {
        TwccArrival {
            seq,
            arrival_us: Some(us),
        }
    }

    fn lost(seq: u16) -> TwccArrival {
        TwccArrival {
            seq,
            arrival_us: None,
        }
    }

    /// A log with packets `first..first+n` (wrapping) sent 1 ms apart, 1000 bytes each.
    fn sent(first: u16, n: u16, t0: Instant) -> SentPacketLog {
        let mut log = SentPacketLog::new(64);
        for k in 0..n {
            log.on_sent(
                first.wrapping_add(k),
                1000,
                t0 + Duration::from_millis(u64::from(k)),
            );
        }
        log
    }

    #[test]
    fn arrivals_keep_the_peer_spacing_on_our_clock() {
        let t0 = Instant::now();
        let mut log = sent(10, 3, t0);
        let r = log.on_feedback(&[got(10, 5_000_000), lost(11), got(12, 5_004_000)]);
        assert_eq!(r.len(), 3);
        assert_eq!(r[0].send_time, t0);
        assert_eq!(r[0].arrival, Some(t0));
        assert_eq!(r[1].arrival, None);
        assert_eq!(r[2].arrival, Some(t0 + Duration::from_millis(4)));
        assert_eq!(r[2].send_time, t0 + Duration::from_millis(2));
        assert_eq!(r[2].seq, r[0].seq + 2);
        assert_eq!(r[1].size, 1000);
    }

    #[test]
    fn feedback_across_the_16_bit_wrap_unwraps_upwards() {
        let t0 = Instant::now();
        let mut log = sent(65534, 4, t0);
        let r = log.on_feedback(&[got(65534, 0), got(65535, 10), got(0, 20), got(1, 30)]);
        let seqs: Vec<u64> = r.iter().map(|p| p.seq).collect();
        assert_eq!(seqs.len(), 4);
        assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
        assert_eq!(r[3].send_time, t0 + Duration::from_millis(3));
    }

    #[test]
    fn packets_logged_out_of_order_still_match() {
        // Audio and video take numbers from one counter and may reach the log swapped.
        let t0 = Instant::now();
        let mut log = SentPacketLog::new(16);
        for (k, seq) in [65534u16, 0, 65535, 2, 1].into_iter().enumerate() {
            log.on_sent(seq, 100 + k, t0 + Duration::from_millis(k as u64));
        }
        let r = log.on_feedback(&[
            got(65534, 0),
            got(65535, 1),
            got(0, 2),
            got(1, 3),
            got(2, 4),
        ]);
        let sizes: Vec<usize> = r.iter().map(|p| p.size).collect();
        assert_eq!(sizes, vec![100, 102, 101, 104, 103]);
        assert!(r.windows(2).all(|w| w[1].seq == w[0].seq + 1));
    }

    #[test]
    fn duplicates_and_unknown_seqs_are_left_out_and_counted() {
        let t0 = Instant::now();
        let mut log = sent(100, 5, t0);
        assert_eq!(log.on_feedback(&[got(100, 0), got(101, 10)]).len(), 2);
        // 101 again, 500 never sent.
        let r = log.on_feedback(&[got(101, 10), got(102, 20), got(500, 30)]);
        assert_eq!(r.len(), 1);
        let s = log.stats();
        assert_eq!((s.duplicates, s.unknown, s.sent), (1, 1, 5));
    }

    #[test]
    fn lost_then_late_arrival_is_reported_again_as_received() {
        let t0 = Instant::now();
        let mut log = sent(0, 3, t0);
        let r = log.on_feedback(&[got(0, 0), lost(1), got(2, 10)]);
        assert_eq!(r[1].arrival, None);
        let r = log.on_feedback(&[got(1, 20)]);
        assert_eq!(r.len(), 1);
        assert!(r[0].arrival.is_some());
        // But a second "lost" for it is a duplicate.
        assert!(log.on_feedback(&[lost(1)]).is_empty());
    }

    #[test]
    fn packets_between_two_reports_are_lost() {
        let t0 = Instant::now();
        let mut log = sent(0, 6, t0);
        log.on_feedback(&[got(0, 0), got(1, 10)]);
        let r = log.on_feedback(&[got(4, 40), got(5, 50)]);
        let lost: Vec<u64> = r
            .iter()
            .filter(|p| p.arrival.is_none())
            .map(|p| p.seq)
            .collect();
        assert_eq!(lost.len(), 2);
        assert_eq!(log.stats().gap_lost, 2);
        assert_eq!(r.len(), 4);
    }

    #[test]
    fn forgotten_packets_are_unknown() {
        let t0 = Instant::now();
        let mut log = SentPacketLog::new(4);
        for k in 0..10u16 {
            log.on_sent(k, 100, t0);
        }
        assert!(log.on_feedback(&[got(0, 0), got(1, 1)]).is_empty());
        assert_eq!(log.stats().unknown, 2);
        assert_eq!(log.on_feedback(&[got(9, 9)]).len(), 1);
    }

    #[test]
    fn feedback_before_anything_was_sent_gives_nothing() {
        let mut log = SentPacketLog::new(16);
        assert!(log.on_feedback(&[got(3, 0)]).is_empty());
        assert_eq!(log.stats().unknown, 1);
    }

    proptest! {
        /// Whatever the feedback says (any seqs, duplicates, wild times, any wrap position),
        /// the matcher never panics, reports each sent packet received at most once, names
        /// only packets it sent, keeps their send times, and sorts by sequence number.
        #[test]
        fn matcher_reports_only_sent_packets_once(
            first in any::<u16>(),
            n in 1u16..300,
            cap in 1usize..200,
            reports in proptest::collection::vec(
                proptest::collection::vec((any::<u16>(), proptest::option::of(any::<i64>())), 0..50),
                0..10,
            ),
            offset_reports in proptest::collection::vec(
                proptest::collection::vec((0u16..400, proptest::option::of(-1_000_000i64..1_000_000)), 0..50),
                0..10,
            ),
        ) {
            let t0 = Instant::now();
            let mut log = SentPacketLog::new(cap);
            for k in 0..n {
                log.on_sent(first.wrapping_add(k), usize::from(k), t0 + Duration::from_millis(u64::from(k)));
            }
            let mut received = std::collections::HashSet::new();
            let all = reports.iter().cloned().chain(offset_reports.iter().map(|r| {
                r.iter().map(|&(o, a)| (first.wrapping_add(o), a)).collect()
            }));
            for report in all {
                let arrivals: Vec<TwccArrival> = report
                    .iter()
                    .map(|&(seq, arrival_us)| TwccArrival { seq, arrival_us })
                    .collect();
                let r = log.on_feedback(&arrivals);
                prop_assert!(r.windows(2).all(|w| w[0].seq <= w[1].seq));
                for p in &r {
                    // Unwrapped seqs start at 65536 + first; k-th packet is that + k.
                    let k = p.seq.checked_sub((1 << 16) + u64::from(first));
                    prop_assert!(k.is_some_and(|k| k < u64::from(n)), "seq {} not sent", p.seq);
                    let k = k.unwrap_or(0);
                    prop_assert_eq!(p.size, k as usize);
                    prop_assert_eq!(p.send_time, t0 + Duration::from_millis(k));
                    if p.arrival.is_some() {
                        prop_assert!(received.insert(p.seq), "seq {} received twice", p.seq);
                    }
                }
            }
        }
    }
}
