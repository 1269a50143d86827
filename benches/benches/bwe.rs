//! Cost of the bandwidth estimator per transport-feedback packet: `on_feedback` in batches of
//! 20 plus a `target` read per batch, next to a trivial loss-only estimator (the reference) in
//! the same run, so the figure to quote is the ratio.
//!
//! Run: `cargo bench -p benches --bench bwe`.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use media::bwe::{BandwidthEstimator, Bitrate, BweConfig, PacketResult};

const PACKETS: u64 = 5000;
const BATCH: usize = 20;

/// 1 Mbit/s of 1200-byte packets whose queueing delay rises and falls in a 2 s sawtooth (so the
/// trendline and both controllers all work), every 100th lost, with small deterministic jitter.
fn feedback(origin: Instant) -> Vec<(Instant, Vec<PacketResult>)> {
    let packets: Vec<PacketResult> = (0..PACKETS)
        .map(|seq| {
            let send_time = origin + Duration::from_micros(seq * 9600);
            let phase = seq % 208;
            let queue_ms = if phase < 104 { phase } else { 208 - phase };
            let jitter_us = (seq * 7919) % 3000;
            let arrival = (seq % 100 != 99).then(|| {
                send_time + Duration::from_millis(30 + queue_ms) + Duration::from_micros(jitter_us)
            });
            PacketResult {
                seq,
                size: 1200,
                send_time,
                arrival,
            }
        })
        .collect();
    packets
        .chunks(BATCH)
        .map(|chunk| {
            let last = chunk.last().map_or(origin, |p| p.send_time);
            (last + Duration::from_millis(200), chunk.to_vec())
        })
        .collect()
}

/// The reference: loss fraction per batch, classic GCC loss rule, nothing else.
struct LossOnly {
    rate: f64,
}

impl LossOnly {
    fn on_feedback(&mut self, packets: &[PacketResult]) {
        let lost = packets.iter().filter(|p| p.arrival.is_none()).count();
        let fraction = lost as f64 / packets.len().max(1) as f64;
        if fraction > 0.1 {
            self.rate *= 1.0 - 0.5 * fraction;
        } else if fraction < 0.02 {
            self.rate *= 1.004;
        }
        self.rate = self.rate.clamp(50_000.0, 4_000_000.0);
    }

    fn target(&self) -> Bitrate {
        Bitrate::from_bps(self.rate as u64)
    }
}

fn per_feedback_packet(c: &mut Criterion) {
    let origin = Instant::now();
    let batches = feedback(origin);
    let mut group = c.benchmark_group("bwe_feedback");
    group.throughput(Throughput::Elements(PACKETS));
    group.bench_function("gcc", |b| {
        b.iter_batched(
            || BandwidthEstimator::new(BweConfig::default()),
            |mut bwe| {
                for (now, batch) in &batches {
                    bwe.on_feedback(batch, *now);
                    std::hint::black_box(bwe.target(*now));
                }
                bwe
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("loss_only", |b| {
        b.iter_batched(
            || LossOnly { rate: 600_000.0 },
            |mut est| {
                for (_, batch) in &batches {
                    est.on_feedback(batch);
                    std::hint::black_box(est.target());
                }
                est
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, per_feedback_packet);
criterion_main!(benches);
