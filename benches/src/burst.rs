//! Markers for mouth-to-ear latency: a 2 kHz tone burst at the start of every Nth 20 ms frame
//! (the "mouth"), and a detector that finds each burst's onset again in decoded, played-out
//! audio (the "ear"). Sans-IO: the `mouth-to-ear` tool stamps the frames with `Instant`s around
//! these types, and [`match_onsets`] pairs the stamps.

use std::time::{Duration, Instant};

/// Sample rate of the engine's audio.
pub const SAMPLE_RATE: u32 = 48_000;
/// Burst frequency: well inside Opus' voice band and far from anything silence decodes to.
pub const BURST_HZ: f64 = 2_000.0;

/// Where and how loud the bursts are.
#[derive(Debug, Clone, Copy)]
pub struct BurstConfig {
    /// A burst starts every this many frames (25 frames of 20 ms = 500 ms).
    pub period_frames: u64,
    /// Burst length in samples (1440 = 30 ms).
    pub burst_samples: usize,
    /// Peak amplitude (16384 = -6 dBFS).
    pub amplitude: f64,
}

impl Default for BurstConfig {
    fn default() -> Self {
        Self {
            period_frames: 25,
            burst_samples: 1_440,
            amplitude: 16_384.0,
        }
    }
}

/// The sending side: silence with a tone burst starting at sample 0 of every
/// [`BurstConfig::period_frames`]th frame, so the onset is the moment the frame is handed out.
#[derive(Debug)]
pub struct BurstGenerator {
    cfg: BurstConfig,
    frame: u64,
    /// Samples of the current burst already written (it may span frames).
    in_burst: Option<usize>,
}

impl BurstGenerator {
    /// A generator whose first burst is in frame `cfg.period_frames` (a lead-in of silence
    /// lets the receiver's detector arm first).
    pub fn new(cfg: BurstConfig) -> Self {
        Self {
            cfg,
            frame: 0,
            in_burst: None,
        }
    }

    /// Fills the next frame; returns whether a burst starts at its first sample.
    pub fn next_frame(&mut self, out: &mut [i16]) -> bool {
        self.frame += 1;
        let starts = self.frame % self.cfg.period_frames.max(1) == 0;
        if starts {
            self.in_burst = Some(0);
        }
        for s in out.iter_mut() {
            *s = match self.in_burst {
                Some(n) if n < self.cfg.burst_samples => {
                    self.in_burst = Some(n + 1);
                    let t = n as f64 / f64::from(SAMPLE_RATE);
                    (self.cfg.amplitude * (2.0 * std::f64::consts::PI * BURST_HZ * t).sin()) as i16
                }
                _ => {
                    self.in_burst = None;
                    0
                }
            };
        }
        starts
    }
}

/// The receiving side: finds the first loud sample after a stretch of quiet.
#[derive(Debug)]
pub struct OnsetDetector {
    threshold: i32,
    quiet_needed: usize,
    quiet_run: usize,
}

impl OnsetDetector {
    /// Onsets are samples of magnitude at least `threshold` after at least `quiet` of samples
    /// below it. With bursts of -6 dBFS, a quarter of that (4096) ignores codec noise and
    /// pre-echo while the tone crosses it within a tenth of a millisecond.
    pub fn new(threshold: i16, quiet: Duration) -> Self {
        let quiet_needed = (quiet.as_secs_f64() * f64::from(SAMPLE_RATE)) as usize;
        Self {
            threshold: i32::from(threshold).abs().max(1),
            quiet_needed,
            // Armed from the start only after a full stretch of quiet, like later.
            quiet_run: 0,
        }
    }

    /// Detector suited to [`BurstConfig::default`]: threshold 4096, 200 ms of quiet.
    pub fn for_default_bursts() -> Self {
        Self::new(4_096, Duration::from_millis(200))
    }

    /// Looks at the next frame; returns the index of the onset sample in it, if one is there.
    pub fn push(&mut self, frame: &[i16]) -> Option<usize> {
        let mut onset = None;
        for (i, &s) in frame.iter().enumerate() {
            if i32::from(s).abs() >= self.threshold {
                if self.quiet_run >= self.quiet_needed && onset.is_none() {
                    onset = Some(i);
                }
                self.quiet_run = 0;
            } else {
                self.quiet_run += 1;
            }
        }
        onset
    }
}

/// The moment an onset sample was played: the frame's hand-over time plus the sample's place
/// in the frame.
pub fn onset_time(frame_at: Instant, sample: usize) -> Instant {
    frame_at + Duration::from_secs_f64(sample as f64 / f64::from(SAMPLE_RATE))
}

/// Pairs each heard onset with the latest burst sent at or before it (a burst heard twice,
/// or an onset more than `max` after any burst, counts once or not at all) and returns the
/// latencies in the order heard. `sent` and `heard` are in time order.
pub fn match_onsets(sent: &[Instant], heard: &[Instant], max: Duration) -> Vec<Duration> {
    let mut out = Vec::with_capacity(heard.len());
    let mut last_used = None;
    for &h in heard {
        let Some(idx) = sent.iter().rposition(|&s| s <= h) else {
            continue;
        };
        let latency = h - sent[idx];
        if latency <= max && last_used != Some(idx) {
            out.push(latency);
            last_used = Some(idx);
        }
    }
    out
}

/// Nearest-rank percentile (`p` in 0..=1) of sorted values; `None` when empty.
pub fn percentile<T: Copy>(sorted: &[T], p: f64) -> Option<T> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

#[cfg(test)]
mod tests {
    use super::*;
    use media::codec::opus::{EncoderConfig, OpusDecoder, OpusEncoder, MAX_PACKET_BYTES};

    const FRAME: usize = 960;

    #[test]
    fn the_burst_starts_at_the_first_sample_of_every_period() {
        let mut g = BurstGenerator::new(BurstConfig::default());
        let mut frame = [0i16; FRAME];
        let starts: Vec<usize> = (1..=100)
            .filter(|_| g.next_frame(&mut frame))
            .collect::<Vec<_>>();
        assert_eq!(starts.len(), 4);
        let mut g = BurstGenerator::new(BurstConfig::default());
        for _ in 0..24 {
            assert!(!g.next_frame(&mut frame));
            assert!(frame.iter().all(|&s| s == 0));
        }
        assert!(g.next_frame(&mut frame));
        // 30 ms burst: all of this frame and half of the next is tone.
        assert!(frame.iter().filter(|s| s.abs() > 4_096).count() > FRAME / 2);
        g.next_frame(&mut frame);
        assert!(frame[..480].iter().any(|s| s.abs() > 4_096));
        assert!(frame[480..].iter().all(|&s| s == 0));
    }

    #[test]
    fn the_detector_finds_the_exact_onset_sample_and_only_once() {
        let mut d = OnsetDetector::for_default_bursts();
        let silence = [0i16; FRAME];
        for _ in 0..10 {
            assert_eq!(d.push(&silence), None);
        }
        let mut frame = [0i16; FRAME];
        for (i, s) in frame.iter_mut().enumerate().skip(317) {
            *s = if i % 2 == 0 { 9_000 } else { -9_000 };
        }
        assert_eq!(d.push(&frame), Some(317));
        // The burst goes on, then a short gap: not a new onset until 200 ms of quiet.
        assert_eq!(d.push(&frame), None);
        assert_eq!(d.push(&silence), None);
        assert_eq!(d.push(&frame), None);
    }

    #[test]
    fn quiet_noise_below_the_threshold_is_not_an_onset() {
        let mut d = OnsetDetector::for_default_bursts();
        let noise: Vec<i16> = (0..FRAME)
            .map(|i| ((i * 7919) % 8000) as i16 - 4000)
            .collect();
        for _ in 0..50 {
            assert_eq!(d.push(&noise), None);
        }
    }

    /// Through Opus, the onset comes out a few ms late (the codec's look-ahead), never early
    /// and never a frame late: what the live measurement relies on.
    #[test]
    fn the_onset_survives_opus_with_only_the_codec_delay() {
        let mut g = BurstGenerator::new(BurstConfig::default());
        let mut enc = OpusEncoder::new(&EncoderConfig::default()).unwrap();
        let mut dec = OpusDecoder::new().unwrap();
        let mut d = OnsetDetector::for_default_bursts();
        let (mut pcm, mut out) = ([0i16; FRAME], [0i16; FRAME]);
        let mut packet = [0u8; MAX_PACKET_BYTES];
        let (mut sent, mut heard) = (Vec::new(), Vec::new());
        for frame in 0..200usize {
            if g.next_frame(&mut pcm) {
                sent.push(frame * FRAME);
            }
            let n = enc.encode(&pcm, &mut packet).unwrap();
            dec.decode(&packet[..n], &mut out).unwrap();
            if let Some(i) = d.push(&out) {
                heard.push(frame * FRAME + i);
            }
        }
        assert_eq!(sent.len(), 8);
        assert_eq!(heard.len(), sent.len(), "sent {sent:?} heard {heard:?}");
        for (s, h) in sent.iter().zip(&heard) {
            let delay_ms = (h - s) as f64 * 1e3 / f64::from(SAMPLE_RATE);
            assert!((0.0..15.0).contains(&delay_ms), "codec delay {delay_ms} ms");
        }
    }

    #[test]
    fn onsets_pair_with_the_latest_earlier_burst_once() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let sent = [ms(0), ms(500), ms(1000), ms(1500)];
        // 40 ms after the first; the second burst lost; the third heard twice; one stray.
        let heard = [ms(40), ms(1045), ms(1046), ms(1900)];
        let got = match_onsets(&sent, &heard, Duration::from_millis(300));
        assert_eq!(
            got,
            vec![Duration::from_millis(40), Duration::from_millis(45)]
        );
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let v: Vec<u32> = (1..=40).collect();
        assert_eq!(percentile(&v, 0.5), Some(20));
        assert_eq!(percentile(&v, 0.95), Some(38));
        assert_eq!(percentile::<u32>(&[], 0.5), None);
    }
}
