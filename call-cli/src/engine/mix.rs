//! The audio mix of a conference: every remote member's decoded frame (each from its own jitter
//! buffer and decoder) summed into the one frame the sink plays, through a limiter so a loud
//! room never wraps around; and each member's level with the active speaker, for the live
//! stats. Sans-IO: frames in, a frame out; no clock.

use std::collections::BTreeMap;

/// The limiter keeps the mix's peaks at or below this (about -0.8 dBFS).
pub const LIMIT: f32 = 30_000.0;

/// How fast the limiter's gain returns towards 1 after a loud passage: the fraction of the
/// remaining distance recovered per frame (20 ms), so about 0.4 s to recover most of it.
const RELEASE: f32 = 0.05;

/// A level below this is silence: nobody is speaking.
pub const SPEAKING_DBFS: f32 = -50.0;

/// A new speaker takes over only when this much louder than the current one (no flapping
/// between two members at about the same level).
const TAKE_OVER_DB: f32 = 3.0;

/// How much of a new frame's level enters the smoothed level (per frame).
const LEVEL_SMOOTHING: f32 = 0.2;

/// Sums frames with a limiter: instant attack (the gain that keeps this frame's peak at
/// [`LIMIT`]), slow release, and saturation as the last guard.
#[derive(Debug, Clone)]
pub struct Mixer {
    gain: f32,
    sum: Vec<i32>,
    out: Vec<i16>,
}

impl Default for Mixer {
    fn default() -> Self {
        Self {
            gain: 1.0,
            sum: Vec::new(),
            out: Vec::new(),
        }
    }
}

impl Mixer {
    /// Mixes `inputs` (frames of any lengths; a shorter one counts as silence past its end)
    /// into one frame as long as the longest. No input gives an empty frame.
    pub fn mix(&mut self, inputs: &[&[i16]]) -> &[i16] {
        let len = inputs.iter().map(|f| f.len()).max().unwrap_or(0);
        self.sum.clear();
        self.sum.resize(len, 0);
        for frame in inputs {
            for (s, &x) in self.sum.iter_mut().zip(frame.iter()) {
                *s += i32::from(x);
            }
        }
        let peak = self.sum.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0) as f32;
        let released = self.gain + (1.0 - self.gain) * RELEASE;
        let new_gain = if peak * released > LIMIT {
            LIMIT / peak
        } else {
            released
        };
        let old_gain = self.gain;
        self.gain = new_gain;
        self.out.clear();
        // The gain moves across the frame (no step, no click); lowering it never waits: a ramp
        // from a higher gain could overshoot in the first samples, so the lower gain applies at
        // once and only a rising gain is ramped.
        let n = len.max(1) as f32;
        self.out.extend(self.sum.iter().enumerate().map(|(i, &s)| {
            let g = if new_gain < old_gain {
                new_gain
            } else {
                old_gain + (new_gain - old_gain) * (i as f32 + 1.0) / n
            };
            (s as f32 * g)
                .round()
                .clamp(-f32::from(i16::MAX), f32::from(i16::MAX)) as i16
        }));
        &self.out
    }

    /// The limiter's current gain (1 when the mix is quiet enough).
    pub fn gain(&self) -> f32 {
        self.gain
    }
}

/// Each member's smoothed level and who is speaking.
#[derive(Debug, Clone)]
pub struct Speakers<K> {
    levels: BTreeMap<K, f32>,
    active: Option<K>,
}

impl<K> Default for Speakers<K> {
    fn default() -> Self {
        Self {
            levels: BTreeMap::new(),
            active: None,
        }
    }
}

impl<K: Ord + Copy> Speakers<K> {
    /// One frame played of `who`'s audio.
    pub fn observe(&mut self, who: K, frame: &[i16]) {
        let db = media::codec::pcm::rms_dbfs(frame);
        let db = if db.is_finite() {
            db.max(-100.0)
        } else {
            -100.0
        };
        let level = self.levels.entry(who).or_insert(db);
        *level += (db - *level) * LEVEL_SMOOTHING;
        self.update_active();
    }

    /// `who` left: forgotten.
    pub fn remove(&mut self, who: &K) {
        self.levels.remove(who);
        if self.active.as_ref() == Some(who) {
            self.active = None;
        }
        self.update_active();
    }

    fn update_active(&mut self) {
        let loudest = self
            .levels
            .iter()
            .filter(|(_, &l)| l >= SPEAKING_DBFS)
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(k, l)| (*k, *l));
        let current = self
            .active
            .and_then(|k| self.levels.get(&k).map(|l| (k, *l)))
            .filter(|(_, l)| *l >= SPEAKING_DBFS);
        self.active = match (current, loudest) {
            (Some((k, l)), Some((_, top))) if top < l + TAKE_OVER_DB => Some(k),
            (_, loudest) => loudest.map(|(k, _)| k),
        };
    }

    /// Each member's smoothed level, dBFS.
    pub fn levels(&self) -> impl Iterator<Item = (K, f32)> + '_ {
        self.levels.iter().map(|(k, l)| (*k, *l))
    }

    /// Who is speaking (the loudest above [`SPEAKING_DBFS`], with hysteresis).
    pub fn active(&self) -> Option<K> {
        self.active
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(freq: f32, amp: f32, n: usize) -> Vec<i16> {
        (0..n)
            .map(|i| {
                (amp * (2.0 * std::f32::consts::PI * freq * i as f32 / 48_000.0).sin()).round()
                    as i16
            })
            .collect()
    }

    #[test]
    fn quiet_inputs_are_summed_exactly() {
        let mut m = Mixer::default();
        let a = [100i16, -200, 300];
        let b = [1i16, 2];
        assert_eq!(m.mix(&[&a, &b]), &[101, -198, 300]);
        assert_eq!(m.gain(), 1.0);
        assert!(m.mix(&[]).is_empty());
    }

    #[test]
    fn loud_inputs_are_limited_not_wrapped() {
        let mut m = Mixer::default();
        let loud = sine(440.0, 30_000.0, 960);
        let out = m.mix(&[&loud, &loud, &loud]).to_vec();
        // Wrap-around would flip signs: every output sample keeps its input's sign.
        for (o, i) in out.iter().zip(&loud) {
            assert!(
                o.signum() == i.signum() || *o == 0 || i.abs() < 4,
                "{o} vs {i}"
            );
        }
        let peak = out.iter().map(|s| s.unsigned_abs()).max().unwrap();
        assert!(f32::from(peak) <= LIMIT + 1.0, "peak {peak}");
        assert!(m.gain() < 0.4);
        // Full-scale square waves saturate at worst.
        let max = vec![i16::MAX; 960];
        let min = vec![i16::MIN; 960];
        assert!(m.mix(&[&max, &max]).iter().all(|&s| s > 0));
        assert!(m.mix(&[&min, &min]).iter().all(|&s| s < 0));
    }

    #[test]
    fn the_gain_recovers_after_a_loud_passage() {
        let mut m = Mixer::default();
        let loud = vec![20_000i16; 960];
        m.mix(&[&loud, &loud]);
        let low = m.gain();
        assert!(low < 0.8);
        let quiet = vec![100i16; 960];
        for _ in 0..200 {
            m.mix(&[&quiet]);
        }
        assert!(m.gain() > 0.99, "gain {}", m.gain());
    }

    #[test]
    fn the_loudest_member_speaks_with_hysteresis() {
        let mut s = Speakers::default();
        let silence = vec![0i16; 960];
        let loud = sine(300.0, 8_000.0, 960);
        let softer = sine(500.0, 6_000.0, 960);
        for _ in 0..20 {
            s.observe(1u32, &silence);
            s.observe(2u32, &loud);
        }
        assert_eq!(s.active(), Some(2));
        // A member only a little softer does not take over...
        for _ in 0..20 {
            s.observe(3u32, &softer);
            s.observe(2u32, &loud);
        }
        assert_eq!(s.active(), Some(2));
        // ...but does once the speaker goes quiet.
        for _ in 0..40 {
            s.observe(3u32, &softer);
            s.observe(2u32, &silence);
        }
        assert_eq!(s.active(), Some(3));
        s.remove(&3);
        assert_eq!(s.active(), None);
        let levels: Vec<_> = s.levels().collect();
        assert_eq!(levels.len(), 2);
        assert!(levels.iter().all(|(_, l)| *l < SPEAKING_DBFS));
    }
}
