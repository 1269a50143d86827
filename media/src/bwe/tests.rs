//! Seeded simulations on virtual time (a paced sender, a capped link with a bounded FIFO,
//! feedback every 50 ms) and unit and property tests of the estimator's parts.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;

const PACKET: usize = 1200;
const ONE_WAY: Duration = Duration::from_millis(25);
const FEEDBACK_EVERY: Duration = Duration::from_millis(50);
/// Bottleneck buffer: 64 KiB, about 1 s at 500 kbit/s.
const QUEUE_BYTES: f64 = 65536.0;
/// Uniform extra delay after the bottleneck (seeded), in microseconds.
const JITTER_US: u64 = 10_000;
const TICK: Duration = Duration::from_millis(1);

/// A packet whose fate is known, waiting for the next feedback report.
struct InFlight {
    result: PacketResult,
    /// When the receiver learns its fate (arrival, or the gap it leaves).
    known_at: Instant,
}

/// A bottleneck: rate cap (bit/s; `None` = unlimited), bounded FIFO, random loss before it.
struct Link {
    free_at: Instant,
    /// Latest arrival so far: jitter never reorders this FIFO path.
    last_arrival: Instant,
}

impl Link {
    /// Arrival time of a packet sent at `now`, or `None` when the queue is full.
    fn admit(&mut self, now: Instant, size: usize, cap: Option<f64>) -> Option<Instant> {
        let Some(rate) = cap else {
            return Some(now + ONE_WAY);
        };
        let backlog = self.free_at.saturating_duration_since(now);
        let queued_bytes = backlog.as_secs_f64() * rate / 8.0;
        if queued_bytes + size as f64 > QUEUE_BYTES {
            return None;
        }
        let depart = self.free_at.max(now) + Duration::from_secs_f64(size as f64 * 8.0 / rate);
        self.free_at = depart;
        Some(depart + ONE_WAY)
    }
}

/// One simulated second.
#[derive(Debug, Default, Clone, Copy)]
struct Second {
    sent: u32,
    lost: u32,
    /// Target at the end of the second, bit/s.
    target: u64,
    /// Highest target during the second, bit/s.
    peak: u64,
}

/// Runs a sender at the estimator's target through the link for `secs` seconds.
fn simulate(
    seed: u64,
    secs: u64,
    start: Bitrate,
    cap: impl Fn(Duration) -> Option<f64>,
    random_loss: f64,
    app_limit: Option<u64>,
) -> Vec<Second> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let t0 = Instant::now();
    let mut bwe = BandwidthEstimator::new(BweConfig {
        start,
        ..BweConfig::default()
    });
    let mut link = Link {
        free_at: t0,
        last_arrival: t0,
    };
    let mut in_flight: VecDeque<InFlight> = VecDeque::new();
    let mut feedback: VecDeque<(Instant, Vec<PacketResult>)> = VecDeque::new();
    let mut seconds = vec![Second::default(); secs as usize];
    let mut budget_bytes = 0.0;
    let mut seq = 0u64;
    let mut next_report = t0 + FEEDBACK_EVERY;
    let ticks = secs * 1000;
    for tick in 0..ticks {
        let elapsed = TICK * tick as u32;
        let now = t0 + elapsed;
        let second = &mut seconds[(tick / 1000) as usize];
        let target = bwe.target(now).bps();
        second.target = target;
        second.peak = second.peak.max(target);

        // Sender: pace whole packets at the target; no bursts after idle.
        // An encoder with little to say sends less than the target.
        let rate = app_limit.map_or(target, |l| l.min(target));
        budget_bytes =
            (budget_bytes + rate as f64 / 8.0 * TICK.as_secs_f64()).min(PACKET as f64 * 4.0);
        while budget_bytes >= PACKET as f64 {
            budget_bytes -= PACKET as f64;
            second.sent += 1;
            let dropped_randomly = rng.gen::<f64>() < random_loss;
            let jitter = Duration::from_micros(rng.gen_range(0..JITTER_US));
            let arrival = if dropped_randomly {
                None
            } else {
                link.admit(now, PACKET, cap(elapsed))
            };
            let arrival = arrival.map(|a| {
                link.last_arrival = link.last_arrival.max(a + jitter);
                link.last_arrival
            });
            if arrival.is_none() {
                second.lost += 1;
            }
            let known_at = arrival.unwrap_or(link.free_at.max(now) + ONE_WAY);
            in_flight.push_back(InFlight {
                result: PacketResult {
                    seq,
                    size: PACKET,
                    send_time: now,
                    arrival,
                },
                known_at,
            });
            seq += 1;
        }

        // Receiver: every 50 ms, report what it knows; the report reaches the sender ONE_WAY later.
        if now >= next_report {
            let mut batch = Vec::new();
            while in_flight.front().is_some_and(|p| p.known_at <= now) {
                batch.extend(in_flight.pop_front().map(|p| p.result));
            }
            if !batch.is_empty() {
                feedback.push_back((now + ONE_WAY, batch));
            }
            next_report += FEEDBACK_EVERY;
        }
        while feedback.front().is_some_and(|(at, _)| *at <= now) {
            if let Some((_, batch)) = feedback.pop_front() {
                bwe.on_feedback(&batch, now);
            }
        }
    }
    seconds
}

fn loss_fraction(seconds: &[Second]) -> f64 {
    let sent: u32 = seconds.iter().map(|s| s.sent).sum();
    let lost: u32 = seconds.iter().map(|s| s.lost).sum();
    f64::from(lost) / f64::from(sent.max(1))
}

fn cap_500k(_: Duration) -> Option<f64> {
    Some(500_000.0)
}

fn lifted_at_20s(t: Duration) -> Option<f64> {
    Some(if t < Duration::from_secs(20) {
        500_000.0
    } else {
        3_000_000.0
    })
}

#[test]
fn settles_below_a_500k_cap_within_5s_with_under_2_percent_loss() {
    for seed in 1..=3 {
        let s = simulate(seed, 15, Bitrate::from_kbps(1000), cap_500k, 0.0, None);
        let settled = &s[5..15];
        let peak = settled.iter().map(|x| x.peak).max().unwrap_or(0);
        let mean = settled.iter().map(|x| x.target).sum::<u64>() / settled.len() as u64;
        let loss = loss_fraction(settled);
        eprintln!("seed {seed}: mean {mean} peak {peak} loss {loss:.4} {s:?}");
        assert!(
            mean < 500_000,
            "seed {seed}: mean target {mean} bit/s over 5-15 s is not below the cap"
        );
        assert!(
            mean > 300_000,
            "seed {seed}: mean target {mean} bit/s over 5-15 s wastes the link"
        );
        assert!(
            peak <= 550_000,
            "seed {seed}: target peaked at {peak} bit/s after 5 s (cap 500k)"
        );
        assert!(loss < 0.02, "seed {seed}: loss {loss:.3} over 5-15 s");
    }
}

#[test]
fn climbs_above_1500k_within_10s_of_the_cap_lifting() {
    for seed in 1..=3 {
        let s = simulate(seed, 30, Bitrate::from_kbps(1000), lifted_at_20s, 0.0, None);
        let before = s[15..20].iter().map(|x| x.target).sum::<u64>() / 5;
        let after = s[29].target;
        eprintln!("seed {seed}: mean over 15-20 s {before}, at 30 s {after}");
        assert!(
            before < 500_000,
            "seed {seed}: mean {before} bit/s before the lift"
        );
        assert!(
            after > 1_500_000,
            "seed {seed}: only {after} bit/s 10 s after the lift"
        );
    }
}

#[test]
fn five_percent_random_loss_does_not_collapse_the_target() {
    for seed in 1..=3 {
        let s = simulate(seed, 30, Bitrate::from_kbps(1000), |_| None, 0.05, None);
        let low = s.iter().map(|x| x.target).min().unwrap_or(0);
        eprintln!(
            "seed {seed}: lowest {low}, last {}, loss {:.3}",
            s[29].target,
            loss_fraction(&s)
        );
        assert!(
            low >= 900_000,
            "seed {seed}: target fell to {low} bit/s under 5 % random loss"
        );
    }
}

#[test]
fn ten_percent_plus_loss_cuts_the_target() {
    let s = simulate(7, 10, Bitrate::from_kbps(1000), |_| None, 0.2, None);
    assert!(
        s[9].target < 500_000,
        "20 % loss left the target at {} bit/s",
        s[9].target
    );
}

#[test]
fn an_app_limited_sender_does_not_inflate_the_target() {
    let s = simulate(5, 20, Bitrate::from_kbps(300), |_| None, 0.0, Some(300_000));
    let last = s[19].target;
    // The target may run ahead of the acknowledged rate by 1.5x + 10 kbit/s (470 kbit/s here),
    // plus a few per cent for the 500 ms window's granularity; without that cap it reaches max.
    assert!(
        last <= 500_000,
        "target {last} bit/s while sending 300 kbit/s"
    );
}

#[test]
fn receiver_reports_drive_the_loss_based_limit() {
    let t0 = Instant::now();
    let mut bwe = BandwidthEstimator::new(BweConfig::default());
    let start = bwe.target(t0);
    let rtt = Duration::from_millis(50);
    bwe.on_loss_report(0.05, rtt, t0);
    assert_eq!(bwe.target(t0), start, "5 % loss holds");
    bwe.on_loss_report(0.3, rtt, t0 + Duration::from_secs(1));
    let cut = bwe.target(t0 + Duration::from_secs(1));
    assert!(
        cut < start && cut.bps() >= start.bps() * 8 / 10,
        "30 % loss cuts by 15 %: {cut}"
    );
    for i in 2..30 {
        bwe.on_loss_report(0.0, rtt, t0 + Duration::from_secs(i));
    }
    let later = bwe.target(t0 + Duration::from_secs(29));
    // Without transport feedback the loss rule is the estimate: 8 %/s for 28 s, up to max.
    assert!(
        later.bps() > start.bps() * 2,
        "no loss grows the target: {later}"
    );
    for i in 30..200 {
        bwe.on_loss_report(0.0, rtt, t0 + Duration::from_secs(i));
    }
    assert_eq!(
        bwe.target(t0 + Duration::from_secs(199)),
        BweConfig::default().max
    );
}

#[test]
fn with_transport_feedback_low_loss_reports_release_the_limit() {
    let t0 = Instant::now();
    let mut bwe = BandwidthEstimator::new(BweConfig::default());
    let p = PacketResult {
        seq: 0,
        size: PACKET,
        send_time: t0,
        arrival: Some(t0 + ONE_WAY),
    };
    bwe.on_feedback(&[p], t0 + ONE_WAY * 2);
    let rtt = Duration::from_millis(50);
    bwe.on_loss_report(0.3, rtt, t0);
    assert!(bwe.loss_based().is_some());
    for i in 1..30 {
        bwe.on_loss_report(0.0, rtt, t0 + Duration::from_secs(i));
    }
    assert_eq!(bwe.loss_based(), None, "the delay-based rate decides again");
}

#[test]
fn missing_feedback_decays_the_target_down_to_min() {
    let t0 = Instant::now();
    let config = BweConfig::default();
    let mut bwe = BandwidthEstimator::new(config);
    let p = PacketResult {
        seq: 0,
        size: PACKET,
        send_time: t0,
        arrival: Some(t0 + ONE_WAY),
    };
    bwe.on_feedback(&[p], t0 + ONE_WAY * 2);
    let at = |s: u64| bwe.target(t0 + Duration::from_secs(s));
    assert_eq!(at(1), config.start);
    assert!(at(3) < config.start);
    assert!(at(4) < at(3));
    assert_eq!(at(100), config.min);
}

#[test]
fn split_gives_audio_its_share_first() {
    let audio = Bitrate::from_kbps(40);
    assert_eq!(
        split(Bitrate::from_kbps(500), audio),
        Bitrate::from_kbps(460)
    );
    assert_eq!(split(Bitrate::from_kbps(30), audio), Bitrate::ZERO);
}

#[test]
fn video_rung_steps_down_size_then_rate_then_pauses() {
    let vga = VideoRung {
        width: 640,
        height: 480,
        fps: 30,
    };
    let qvga = VideoRung {
        width: 320,
        height: 240,
        fps: 30,
    };
    assert_eq!(video_rung(Bitrate::from_kbps(400), vga), Some(vga));
    assert_eq!(video_rung(Bitrate::from_kbps(150), vga), Some(vga));
    assert_eq!(video_rung(Bitrate::from_kbps(149), vga), Some(qvga));
    assert_eq!(video_rung(Bitrate::from_kbps(80), vga), Some(qvga));
    assert_eq!(
        video_rung(Bitrate::from_kbps(40), vga),
        Some(VideoRung { fps: 15, ..qvga })
    );
    assert_eq!(
        video_rung(Bitrate::from_kbps(21), vga).map(|r| r.fps),
        Some(7)
    );
    let slow = VideoRung { fps: 10, ..qvga };
    assert_eq!(
        video_rung(Bitrate::from_kbps(21), slow).map(|r| r.fps),
        Some(7)
    );
    assert_eq!(video_rung(Bitrate::from_kbps(19), vga), None);
    let hd = VideoRung {
        width: 1280,
        height: 720,
        fps: 30,
    };
    assert_eq!(video_rung(Bitrate::from_kbps(300), hd), Some(vga));
    // 15 fps asked: 640x480 needs only half the 30 fps rate.
    assert_eq!(
        video_rung(Bitrate::from_kbps(75), VideoRung { fps: 15, ..vga }),
        Some(VideoRung { fps: 15, ..vga })
    );
}

#[test]
fn trendline_flags_a_growing_queue_and_not_a_steady_one() {
    let t0 = Instant::now();
    let run = |growth_ms: f64| {
        let mut ia = inter_arrival::InterArrival::default();
        let mut tl = trendline::Trendline::default();
        let mut seen = Vec::new();
        for i in 0..60u32 {
            let send = t0 + Duration::from_millis(10) * i;
            let arrival = send + Duration::from_secs_f64(0.5 + growth_ms * f64::from(i) / 1000.0);
            if let Some(d) = ia.on_packet(send, arrival) {
                seen.push(tl.update(d));
            }
        }
        seen
    };
    assert!(run(0.0).iter().all(|u| *u == BandwidthUsage::Normal));
    assert!(run(5.0).contains(&BandwidthUsage::Overusing));
    assert!(run(-5.0).contains(&BandwidthUsage::Underusing));
}

#[test]
fn duplicates_and_stale_reports_are_not_counted_twice() {
    let t0 = Instant::now();
    let mut bwe = BandwidthEstimator::new(BweConfig::default());
    let lost: Vec<_> = (0..100)
        .map(|seq| PacketResult {
            seq,
            size: PACKET,
            send_time: t0,
            arrival: None,
        })
        .collect();
    bwe.on_feedback(&lost, t0);
    let after_loss = bwe.target(t0);
    // The same report again, a second later: already counted, so no second cut.
    bwe.on_feedback(&lost, t0 + Duration::from_secs(1));
    assert_eq!(bwe.target(t0 + Duration::from_secs(1)), after_loss);
}

prop_compose! {
    fn packet(base: Instant)(
        seq in 0u64..200,
        size in 0usize..200_000,
        send_ms in -1_000_000_000i64..1_000_000_000,
        arrival_ms in proptest::option::of(-1_000_000_000i64..1_000_000_000),
    ) -> PacketResult {
        PacketResult { seq, size, send_time: shift(base, send_ms), arrival: arrival_ms.map(|a| shift(base, a)) }
    }
}

fn shift(base: Instant, ms: i64) -> Instant {
    if ms >= 0 {
        base + Duration::from_millis(ms.unsigned_abs())
    } else {
        base - Duration::from_millis(ms.unsigned_abs())
    }
}

/// Far enough from the clock's origin that ±12 days never underflows.
fn anchor() -> Instant {
    Instant::now() + Duration::from_secs(30 * 86_400)
}

proptest! {
    #[test]
    fn arbitrary_feedback_never_panics_and_stays_in_bounds(
        min_kbps in 0u64..2000,
        max_kbps in 0u64..10_000,
        start_kbps in 0u64..20_000,
        increase in proptest::num::f64::ANY,
        batches in proptest::collection::vec(
            (proptest::collection::vec(packet(anchor()), 0..30), -1_000_000_000i64..1_000_000_000, any::<bool>(), 0.0f64..=1.0),
            0..25,
        ),
    ) {
        let base = anchor();
        let config = BweConfig {
            min: Bitrate::from_kbps(min_kbps),
            max: Bitrate::from_kbps(max_kbps),
            start: Bitrate::from_kbps(start_kbps),
            increase_per_second: increase,
        };
        let (lo, hi) = (config.min.min(config.max), config.max);
        let mut bwe = BandwidthEstimator::new(config);
        for (batch, now_ms, report, fraction) in batches {
            let now = shift(base, now_ms);
            if report {
                bwe.on_loss_report(fraction, Duration::from_millis(now_ms.unsigned_abs()), now);
            }
            bwe.on_feedback(&batch, now);
            let t = bwe.target(now);
            prop_assert!(t >= lo && t <= hi, "{t} outside [{lo}, {hi}]");
            // Any later time, too (the feedback-timeout decay).
            let t = bwe.target(shift(base, now_ms.saturating_add(100_000_000)));
            prop_assert!(t >= lo && t <= hi, "{t} outside [{lo}, {hi}]");
        }
    }
}
