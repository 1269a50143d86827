//! Seeded, deterministic network impairment model: the sans-IO core of [`crate::netsim`].
//!
//! [`Impairment::apply`] takes one packet's send time and size and returns when it arrives
//! (never, once, or twice). The same seed and inputs give the same output on every machine:
//! randomness comes from ChaCha8 and nothing reads a clock. Effects, in order: loss (random or
//! Gilbert-Elliott), sender clock drift, bandwidth cap with a tail-drop queue, base delay plus
//! jitter (normal or Pareto-tailed, optionally correlated), reordering, duplication.
//!
//! Jitter alone keeps packets in order (a queue does not overtake itself): a packet whose jitter
//! would let it pass an earlier one arrives right after it instead, so delay spikes are followed
//! by bursts. Reordering is its own effect ([`Profile::reorder`]): a chosen packet is held back
//! and overtaken by the ones behind it.

use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Distribution of the delay added on top of [`Profile::base_delay`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum JitterModel {
    /// No jitter.
    None,
    /// Half-normal: `|N(0, sigma)|`; 95 % of packets get less than `2 * sigma`.
    Normal {
        /// Standard deviation of the underlying normal distribution.
        sigma: Duration,
    },
    /// Pareto (Lomax) tail: `scale * (U^(-1/shape) - 1)`; rare large spikes.
    Pareto {
        /// Scale of the distribution (median is about `scale * (2^(1/shape) - 1)`).
        scale: Duration,
        /// Tail index; smaller is heavier (1.5–3 is typical).
        shape: f64,
    },
}

/// Which packets are lost.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LossModel {
    /// No loss.
    None,
    /// Independent loss with probability `p`.
    Random {
        /// Loss probability per packet, 0..=1.
        p: f64,
    },
    /// Two-state Markov (Gilbert-Elliott) burst loss.
    GilbertElliott {
        /// Probability per packet of moving from the good to the bad state.
        good_to_bad: f64,
        /// Probability per packet of moving from the bad to the good state.
        bad_to_good: f64,
        /// Loss probability in the good state.
        loss_good: f64,
        /// Loss probability in the bad state.
        loss_bad: f64,
    },
}

/// A named set of impairments; see [`Profile::by_name`] for the built-in ones.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    /// Name used on command lines and in reports.
    pub name: String,
    /// Smallest one-way delay.
    pub base_delay: Duration,
    /// Delay added on top of the base delay.
    pub jitter: JitterModel,
    /// Correlation of consecutive jitter samples, 0 (independent) ..< 1.
    pub jitter_correlation: f64,
    /// Which packets are lost.
    pub loss: LossModel,
    /// Probability that a packet is held back by [`Profile::reorder_delay`] and overtaken.
    pub reorder: f64,
    /// Extra delay of a reordered packet.
    pub reorder_delay: Duration,
    /// Probability that a packet arrives twice.
    pub duplicate: f64,
    /// Link rate cap in bits per second; `None` for unlimited.
    pub bandwidth_bps: Option<u64>,
    /// Packets that would wait longer than this in the rate-capped queue are dropped.
    pub queue_limit: Duration,
    /// Sender clock rate error: `0.001` means the sender's clock runs 0.1 % fast, so its 20 ms
    /// frames leave every 19.98 ms of receiver time.
    pub clock_drift: f64,
    /// The first this many packets of each direction are never lost: a clean set-up phase, for
    /// live tests that measure media under loss rather than handshakes under loss.
    pub lossless_prefix: u32,
}

/// Names accepted by [`Profile::by_name`], in report order.
pub const PROFILE_NAMES: &[&str] = &[
    "clean",
    "loss5",
    "loss10",
    "loss20",
    "bursty",
    "jitter30",
    "jitter80",
    "reorder",
    "drift+0.1%",
    "drift-0.1%",
    "pareto",
];

impl Profile {
    /// A profile with no impairment beyond `base_delay`.
    pub fn ideal(name: &str, base_delay: Duration) -> Self {
        Self {
            name: name.to_owned(),
            base_delay,
            jitter: JitterModel::None,
            jitter_correlation: 0.0,
            loss: LossModel::None,
            reorder: 0.0,
            reorder_delay: Duration::ZERO,
            duplicate: 0.0,
            bandwidth_bps: None,
            queue_limit: Duration::from_millis(500),
            clock_drift: 0.0,
            lossless_prefix: 0,
        }
    }

    /// Built-in profiles (see [`PROFILE_NAMES`]); all have 30 ms base delay and, unless the
    /// name says otherwise, 2 ms (sigma) of background jitter:
    /// - `clean`: nothing else;
    /// - `loss5`, `loss10`, `loss20`: independent loss of 5, 10, 20 %;
    /// - `bursty`: Gilbert-Elliott loss, bursts of about 4 packets, about 6 % overall;
    /// - `jitter30`, `jitter80`: half-normal jitter with 95 % of packets below 30 / 80 ms
    ///   (sigma 15 / 40 ms), correlation 0.3;
    /// - `reorder`: 10 % of packets held back 45 ms, 1 % duplicated;
    /// - `drift+0.1%`, `drift-0.1%`: sender clock 0.1 % fast / slow;
    /// - `pareto`: Pareto-tailed jitter (scale 4 ms, shape 2.5) and 1 % loss.
    pub fn by_name(name: &str) -> Option<Self> {
        let base = Self {
            jitter: JitterModel::Normal {
                sigma: Duration::from_millis(2),
            },
            ..Self::ideal(name, Duration::from_millis(30))
        };
        let p = match name {
            "clean" => base,
            "loss5" => Self {
                loss: LossModel::Random { p: 0.05 },
                ..base
            },
            "loss10" => Self {
                loss: LossModel::Random { p: 0.10 },
                ..base
            },
            "loss20" => Self {
                loss: LossModel::Random { p: 0.20 },
                ..base
            },
            "bursty" => Self {
                loss: LossModel::GilbertElliott {
                    good_to_bad: 0.02,
                    bad_to_good: 0.25,
                    loss_good: 0.0,
                    loss_bad: 0.8,
                },
                ..base
            },
            "jitter30" => Self {
                jitter: JitterModel::Normal {
                    sigma: Duration::from_millis(15),
                },
                jitter_correlation: 0.3,
                ..base
            },
            "jitter80" => Self {
                jitter: JitterModel::Normal {
                    sigma: Duration::from_millis(40),
                },
                jitter_correlation: 0.3,
                ..base
            },
            "reorder" => Self {
                reorder: 0.10,
                reorder_delay: Duration::from_millis(45),
                duplicate: 0.01,
                ..base
            },
            "drift+0.1%" => Self {
                clock_drift: 0.001,
                ..base
            },
            "drift-0.1%" => Self {
                clock_drift: -0.001,
                ..base
            },
            "pareto" => Self {
                jitter: JitterModel::Pareto {
                    scale: Duration::from_millis(4),
                    shape: 2.5,
                },
                loss: LossModel::Random { p: 0.01 },
                ..base
            },
            _ => return None,
        };
        Some(p)
    }

    /// All built-in profiles, in [`PROFILE_NAMES`] order.
    pub fn all() -> Vec<Self> {
        PROFILE_NAMES
            .iter()
            .filter_map(|n| Self::by_name(n))
            .collect()
    }
}

/// When one packet arrives: not at all, once, or twice (duplicated).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Delivery {
    /// Arrival of the packet, `None` when lost.
    pub first: Option<Duration>,
    /// Arrival of a duplicate copy.
    pub duplicate: Option<Duration>,
}

impl Delivery {
    /// Arrival times of all copies, earliest first.
    pub fn arrivals(&self) -> impl Iterator<Item = Duration> {
        self.first.into_iter().chain(self.duplicate)
    }
}

/// Stateful, seeded impairment of one direction of a link.
#[derive(Debug, Clone)]
pub struct Impairment {
    profile: Profile,
    rng: ChaCha8Rng,
    bad_state: bool,
    jitter_state: f64,
    packets: u64,
    last_in_order: Duration,
    link_free_at: Duration,
}

impl Impairment {
    /// A fresh link following `profile`, deterministic for `seed`.
    pub fn new(profile: Profile, seed: u64) -> Self {
        Self {
            profile,
            rng: ChaCha8Rng::seed_from_u64(seed),
            bad_state: false,
            jitter_state: 0.0,
            packets: 0,
            last_in_order: Duration::ZERO,
            link_free_at: Duration::ZERO,
        }
    }

    /// The profile in use.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// Follows `profile` from the next packet on, as a link whose conditions change mid-run
    /// (a rate cap set or lifted): the random streams, the packet count and the queue of the
    /// rate cap carry over.
    pub fn set_profile(&mut self, profile: Profile) {
        self.profile = profile;
    }

    /// Impairs one packet of `len` bytes sent at `send` (any fixed origin; sends should be
    /// non-decreasing) and returns its arrival time(s) on the same time line. With clock drift,
    /// `send` is read on the sender's clock, so an arrival may precede `send`.
    pub fn apply(&mut self, send: Duration, len: usize) -> Delivery {
        // Draw every random number for every packet, so one effect never shifts another's stream.
        let u_loss: f64 = self.rng.gen();
        let u_state: f64 = self.rng.gen();
        let jitter = self.jitter_sample();
        let u_reorder: f64 = self.rng.gen();
        let u_dup: f64 = self.rng.gen();
        let dup_gap = Duration::from_micros(self.rng.gen_range(100..5_000));

        self.packets += 1;
        let p = &self.profile;
        let in_prefix = self.packets <= u64::from(p.lossless_prefix);
        let lost = match p.loss {
            LossModel::None => false,
            LossModel::Random { p } => u_loss < p,
            LossModel::GilbertElliott {
                good_to_bad,
                bad_to_good,
                loss_good,
                loss_bad,
            } => {
                self.bad_state = if self.bad_state {
                    u_state >= bad_to_good
                } else {
                    u_state < good_to_bad
                };
                u_loss < if self.bad_state { loss_bad } else { loss_good }
            }
        };
        if lost && !in_prefix {
            return Delivery::default();
        }
        let warped = if p.clock_drift == 0.0 {
            send
        } else {
            Duration::from_secs_f64((send.as_secs_f64() / (1.0 + p.clock_drift)).max(0.0))
        };
        let mut depart = warped;
        if let Some(bps) = p.bandwidth_bps.filter(|&b| b > 0) {
            let start = depart.max(self.link_free_at);
            if start - depart > p.queue_limit {
                return Delivery::default();
            }
            let tx = Duration::from_secs_f64(len as f64 * 8.0 / bps as f64);
            self.link_free_at = start + tx;
            depart = start + tx;
        }
        let mut arrival = depart + p.base_delay + jitter;
        if u_reorder < p.reorder {
            arrival += p.reorder_delay;
        } else {
            arrival = arrival.max(self.last_in_order);
            self.last_in_order = arrival;
        }
        Delivery {
            first: Some(arrival),
            duplicate: (u_dup < p.duplicate).then_some(arrival + dup_gap),
        }
    }

    fn jitter_sample(&mut self) -> Duration {
        let rho = self.profile.jitter_correlation.clamp(0.0, 0.99);
        match self.profile.jitter {
            JitterModel::None => Duration::ZERO,
            JitterModel::Normal { sigma } => {
                let z = self.standard_normal();
                self.jitter_state = rho * self.jitter_state + (1.0 - rho * rho).sqrt() * z;
                Duration::from_secs_f64(sigma.as_secs_f64() * self.jitter_state.abs())
            }
            JitterModel::Pareto { scale, shape } => {
                let u: f64 = self.rng.gen_range(f64::EPSILON..1.0);
                let x = u.powf(-1.0 / shape.max(0.1)) - 1.0;
                self.jitter_state = rho * self.jitter_state + (1.0 - rho) * x;
                Duration::from_secs_f64((scale.as_secs_f64() * self.jitter_state).min(10.0))
            }
        }
    }

    /// Box-Muller; rand 0.8 without rand_distr.
    fn standard_normal(&mut self) -> f64 {
        let u1: f64 = self.rng.gen_range(f64::EPSILON..1.0);
        let u2: f64 = self.rng.gen();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(profile: &str, seed: u64, n: u32) -> Vec<Delivery> {
        let mut imp = Impairment::new(Profile::by_name(profile).expect("profile"), seed);
        (0..n)
            .map(|k| imp.apply(Duration::from_millis(20) * k, 100))
            .collect()
    }

    #[test]
    fn every_named_profile_exists() {
        for name in PROFILE_NAMES {
            assert_eq!(Profile::by_name(name).expect("named").name, *name);
        }
        assert!(Profile::by_name("nope").is_none());
    }

    #[test]
    fn deterministic_for_a_seed() {
        for name in PROFILE_NAMES {
            assert_eq!(run(name, 42, 500), run(name, 42, 500), "{name}");
        }
        assert_ne!(run("jitter30", 1, 500), run("jitter30", 2, 500));
    }

    #[test]
    fn loss_rates_match_the_profiles() {
        for (name, want) in [
            ("loss5", 0.05),
            ("loss10", 0.10),
            ("loss20", 0.20),
            ("bursty", 0.059),
        ] {
            let d = run(name, 7, 20_000);
            let lost = d.iter().filter(|d| d.first.is_none()).count() as f64 / d.len() as f64;
            assert!((lost - want).abs() < 0.015, "{name}: {lost}");
        }
    }

    #[test]
    fn a_lossless_prefix_loses_nothing_and_leaves_the_rest_as_it_was() {
        let mut profile = Profile::by_name("loss20").expect("profile");
        profile.lossless_prefix = 100;
        let mut imp = Impairment::new(profile, 7);
        let with: Vec<Delivery> = (0..2_000u32)
            .map(|k| imp.apply(Duration::from_millis(20) * k, 100))
            .collect();
        let without = run("loss20", 7, 2_000);
        assert!(with[..100].iter().all(|d| d.first.is_some()));
        assert!(without[..100].iter().any(|d| d.first.is_none()));
        // The random streams are not shifted: after the prefix both lose the same packets.
        assert_eq!(with[100..], without[100..]);
    }

    #[test]
    fn bursty_loss_comes_in_runs() {
        let d = run("bursty", 3, 20_000);
        let lost: Vec<bool> = d.iter().map(|d| d.first.is_none()).collect();
        let pairs = lost.windows(2).filter(|w| w[0] && w[1]).count() as f64;
        let total = lost.iter().filter(|l| **l).count() as f64;
        assert!(pairs / total > 0.4, "consecutive losses {}", pairs / total);
    }

    #[test]
    fn jitter_keeps_order_and_reorder_breaks_it() {
        let arrivals = |name| -> Vec<Duration> {
            run(name, 5, 2_000).iter().filter_map(|d| d.first).collect()
        };
        assert!(arrivals("jitter80").windows(2).all(|w| w[0] <= w[1]));
        let reordered = arrivals("reorder")
            .windows(2)
            .filter(|w| w[0] > w[1])
            .count();
        assert!(reordered > 100, "reordered {reordered}");
    }

    #[test]
    fn jitter80_spreads_delay_about_as_documented() {
        let d = run("jitter80", 9, 10_000);
        let mut delays: Vec<f64> = d
            .iter()
            .enumerate()
            .filter_map(|(k, d)| {
                d.first
                    .map(|a| (a.as_secs_f64() - 0.02 * k as f64) * 1000.0 - 30.0)
            })
            .collect();
        delays.sort_by(f64::total_cmp);
        let p95 = delays[delays.len() * 95 / 100];
        assert!((70.0..130.0).contains(&p95), "p95 jitter {p95} ms");
    }

    #[test]
    fn duplicates_and_drift() {
        let dups = run("reorder", 1, 10_000)
            .iter()
            .filter(|d| d.duplicate.is_some())
            .count();
        assert!((50..150).contains(&dups), "dups {dups}");
        let last = run("drift+0.1%", 1, 3_000)
            .last()
            .and_then(|d| d.first)
            .expect("arrives");
        // The 59.98 s of sender time take 59.92 s of receiver time, plus 30 ms base delay.
        assert!(last < Duration::from_millis(59_960), "{last:?}");
    }

    #[test]
    fn bandwidth_cap_queues_and_drops() {
        let mut p = Profile::ideal("cap", Duration::from_millis(10));
        p.bandwidth_bps = Some(80_000); // 100 bytes take 10 ms
        p.queue_limit = Duration::from_millis(50);
        let mut imp = Impairment::new(p, 0);
        let out: Vec<Delivery> = (0..20).map(|_| imp.apply(Duration::ZERO, 100)).collect();
        assert_eq!(out[0].first, Some(Duration::from_millis(20)));
        assert_eq!(out[1].first, Some(Duration::from_millis(30)));
        assert!(out.iter().filter(|d| d.first.is_none()).count() >= 10);
    }
}
