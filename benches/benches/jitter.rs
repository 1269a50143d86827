//! Cost of the audio jitter path: one `insert` plus one `pull` per packet, adaptive buffer next
//! to the fixed-delay reference in the same run (goal: under 1 µs per packet).
//!
//! Run: `cargo bench -p benches --bench jitter`.

use std::time::{Duration, Instant};

use benches::fixed_delay::FixedDelayBuffer;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use media::jitter::audio::{AudioJitterBuffer, PlayoutBuffer};
use media::netsim::evaluate::{drive, PullClock};
use media::netsim::{Profile, Trace};

fn insert_pull(c: &mut Criterion) {
    let mut group = c.benchmark_group("jitter_insert_pull");
    for profile in ["clean", "jitter80", "loss10"] {
        let p = Profile::by_name(profile).expect("built-in profile");
        let trace = Trace::synthesize(&p, 1, Duration::from_secs(20));
        let arrivals = trace.arrivals();
        group.throughput(Throughput::Elements(arrivals.len() as u64));
        let origin = Instant::now();
        let mut run = |name: &str, make: &dyn Fn() -> Box<dyn PlayoutBuffer>| {
            group.bench_function(format!("{name}/{profile}"), |b| {
                b.iter_batched(
                    make,
                    |mut buf| {
                        drive(
                            &arrivals,
                            buf.as_mut(),
                            PullClock::default(),
                            origin,
                            |_, out| {
                                std::hint::black_box(out);
                            },
                        );
                        buf
                    },
                    BatchSize::SmallInput,
                )
            });
        };
        run("adaptive", &|| Box::new(AudioJitterBuffer::default()));
        run("fixed80", &|| {
            Box::new(FixedDelayBuffer::new(Duration::from_millis(80), 960, true))
        });
    }
    group.finish();
}

criterion_group!(benches, insert_pull);
criterion_main!(benches);
