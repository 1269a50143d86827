//! Adaptive audio jitter buffer (NetEq-like), one hop from the decoder.
//!
//! Position in the pipeline: `session` hands every received RTP audio packet to
//! [`AudioJitterBuffer::insert`] together with its arrival instant; the audio device clock calls
//! [`AudioJitterBuffer::pull`] once per frame (20 ms) and gets a [`Playout`] decision: play this
//! packet, recover the missing frame from the next packet's in-band FEC, conceal, or (during
//! sender silence) produce comfort noise. The buffer never decodes; [`AudioPlayout`] (when the
//! Opus codec is present) combines it with a decoder and returns PCM. The core is sans-IO: time
//! is an argument, there is no clock, socket or task inside, so tests run on virtual time.
//!
//! # How the delay adapts
//! Each packet's *relative arrival delay* (transit time minus the fastest transit over the last
//! [`JitterConfig::history`]) feeds a forgetting histogram whose [`JitterConfig::quantile`]
//! (0.95) gives the body of the jitter distribution, and a peak hold over
//! [`JitterConfig::peak_hold`] covering its tail (NetEq's peak detector). The target delay is
//! the larger of the two plus [`JitterConfig::headroom`] (20 ms, for delays beyond any seen
//! yet), rises immediately (fast attack), falls at
//! [`JitterConfig::decay_per_second`] (slow decay), and stays within
//! `[min_delay, max_delay]` (default cap 200 ms).
//!
//! # Start
//! The first packet plays as soon as the target measured from it allows: the headroom (20 ms,
//! at least [`JitterConfig::min_delay`], one frame) plus the first 2 ms histogram bucket,
//! 22 ms, so at the first pull at least 22 ms after its arrival. It does not wait a fixed
//! start delay (it waited 60 ms until issue 8, most of `dial`→first audio). What the fixed
//! delay bought, patience with packets that turn out late before any jitter has been
//! measured, is kept for *missing* packets only: during warm-up a missing packet is waited for (an inserted frame) until the delay reaches
//! [`JitterConfig::initial_delay`] (60 ms), a floor that falls at
//! [`JitterConfig::decay_per_second`] from the first arrival on, as the old start target did,
//! and by one frame for each such wait that ends in a loss (the packet never came), so a lossy
//! start stops inserting frames after a few losses. A clean start plays at once and a jittery
//! one grows its delay by inserted frames instead of losing late packets.
//!
//! # Time-stretching (drift, target changes): whole frames only
//! The buffer measures its current delay (how long after its earliest possible arrival the next
//! frame is played) and keeps it at or slightly above the target by adding or removing whole
//! 20 ms frames; it does not resample or time-scale PCM:
//! - *expand* (delay too small): during sender silence (DTX gap or tiny DTX payloads) one more
//!   comfort-noise frame is produced as soon as there is any deficit; in speech a concealment
//!   frame is inserted only when the deficit is over half a frame, or while waiting for a
//!   missing packet that may still arrive (which a fixed buffer would conceal anyway);
//! - *accelerate* (delay too large): one silence frame is skipped once the excess reaches one
//!   frame, or one speech packet is dropped once it reaches 1.5 frames and the next packet is
//!   already buffered, so no gap opens.
//!
//! Clock drift of ±0.1 % moves the delay by 1 ms per second, so this costs about one inserted or
//! dropped frame every 20 s; with Opus DTX on (1-byte silence frames, see
//! [`JitterConfig::dtx_max_payload`]) it happens inside pauses, otherwise a speech frame is
//! concealed or dropped (0.16 % of packets under `drift+0.1%` in `docs/quality.md`). Whole frames
//! were chosen over WSOLA-style accelerate/expand because they need no PCM processing in the
//! buffer, keep the core decoder-free, and at these rates cost less than the network losses the
//! buffer conceals anyway.
//!
//! # Robustness
//! Sequence numbers and timestamps are unwrapped to 64 bits; packets are keyed by timestamp.
//! Duplicates (by sequence number, over a 1024-packet window) and packets whose slot was already
//! played or concealed (late) are counted and dropped; memory is bounded by
//! [`JitterConfig::max_packets`]. A new SSRC, or two consecutive packets more than
//! [`JitterConfig::resync_threshold`] away from the playout position, restart the stream. After
//! [`JitterConfig::idle_reset`] without any packet the buffer goes back to [`Playout::Empty`] and
//! the next talk spurt starts at the target delay.

mod delay;
mod playout;
pub(crate) mod unwrap;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::{Serialize, Serializer};

use self::delay::{DelayEstimator, DelayParams};
pub use self::playout::{render, AudioPlayout, FrameKind};
use self::unwrap::{SeqUnwrapper, TimestampUnwrapper};

/// One received RTP audio packet, as the buffer needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioPacket {
    /// RTP sequence number.
    pub seq: u16,
    /// RTP timestamp (clock rate [`JitterConfig::clock_rate`]).
    pub timestamp: u32,
    /// RTP synchronisation source; a change restarts the stream.
    pub ssrc: u32,
    /// Codec payload (one Opus packet).
    pub payload: Bytes,
}

/// Tuning of [`AudioJitterBuffer`]. Out-of-range values are clamped by [`AudioJitterBuffer::new`].
#[derive(Debug, Clone, PartialEq)]
pub struct JitterConfig {
    /// Lowest target delay above the fastest packet (default 20 ms, one frame).
    pub min_delay: Duration,
    /// Highest target delay (default 200 ms).
    pub max_delay: Duration,
    /// How long playout waits for a missing packet at the start of a call, before jitter has
    /// been measured; falls at [`JitterConfig::decay_per_second`] from the first arrival
    /// (default 60 ms). Playout itself starts at the measured target (see "Start" above).
    pub initial_delay: Duration,
    /// Audio per packet and per [`AudioJitterBuffer::pull`] (default 20 ms).
    pub frame: Duration,
    /// RTP clock rate in Hz (default 48 000, Opus).
    pub clock_rate: u32,
    /// Quantile of the relative-delay histogram used as target (default 0.95).
    pub quantile: f64,
    /// Window of the fastest-packet reference and memory of the histogram (default 10 s).
    pub history: Duration,
    /// How long a delay peak keeps the target up; zero disables the peak hold (default 30 s).
    pub peak_hold: Duration,
    /// How fast the target may fall, per second of arrivals (default 10 ms/s).
    pub decay_per_second: Duration,
    /// Added to the measured delay, for delays beyond any seen so far (default 20 ms).
    pub headroom: Duration,
    /// Recover a lost frame from the next packet's in-band FEC when it is buffered (default true).
    pub use_fec: bool,
    /// Hard bound on buffered packets (default 256, 5.1 s of 20 ms frames).
    pub max_packets: usize,
    /// Without packets for this long the buffer returns to [`Playout::Empty`] (default 1 s).
    pub idle_reset: Duration,
    /// A packet this far from the playout position is a stream restart (default 3 s).
    pub resync_threshold: Duration,
    /// Payloads up to this size are sender silence (libopus emits 1-byte frames in DTX;
    /// default 2 bytes).
    pub dtx_max_payload: usize,
}

impl Default for JitterConfig {
    fn default() -> Self {
        Self {
            min_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(200),
            initial_delay: Duration::from_millis(60),
            frame: Duration::from_millis(20),
            clock_rate: 48_000,
            quantile: 0.95,
            history: Duration::from_secs(10),
            peak_hold: Duration::from_secs(30),
            decay_per_second: Duration::from_millis(10),
            headroom: Duration::from_millis(20),
            use_fec: true,
            max_packets: 256,
            idle_reset: Duration::from_secs(1),
            resync_threshold: Duration::from_secs(3),
            dtx_max_payload: 2,
        }
    }
}

/// What to play for one frame, decided by [`AudioJitterBuffer::pull`].
///
/// Timestamps are RTP timestamps of the frame position; they never decrease within a stream
/// and are strictly increasing over [`Playout::Packet`], [`Playout::Fec`],
/// [`Playout::Conceal`] and [`Playout::Dtx`]. [`Playout::Expand`] and a stretched
/// [`Playout::Dtx`] are inserted frames and carry the timestamp of the frame they follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Playout {
    /// Nothing to play yet (before the first packet, or idle): output silence.
    Empty,
    /// Decode this packet.
    Packet {
        /// RTP timestamp of the packet.
        timestamp: u32,
        /// RTP sequence number of the packet.
        seq: u16,
        /// Codec payload to decode.
        payload: Bytes,
    },
    /// The frame at `timestamp` is lost; decode it from the FEC data in the next packet, which
    /// stays buffered and is played normally on the next pull.
    Fec {
        /// RTP timestamp of the lost frame.
        timestamp: u32,
        /// Payload of the *next* packet, carrying the in-band FEC.
        payload: Bytes,
    },
    /// The frame at `timestamp` is lost or late: run packet-loss concealment.
    Conceal {
        /// RTP timestamp of the concealed frame.
        timestamp: u32,
    },
    /// Insert one concealment frame to grow the delay, after the frame at `timestamp`.
    Expand {
        /// RTP timestamp of the frame this one follows.
        timestamp: u32,
    },
    /// Sender is silent (DTX): produce comfort noise (decoder concealment) or silence.
    Dtx {
        /// RTP timestamp of the silent frame.
        timestamp: u32,
    },
}

impl Playout {
    /// RTP timestamp of the frame position, if playout has started.
    pub fn timestamp(&self) -> Option<u32> {
        match self {
            Playout::Empty => None,
            Playout::Packet { timestamp, .. }
            | Playout::Fec { timestamp, .. }
            | Playout::Conceal { timestamp }
            | Playout::Expand { timestamp }
            | Playout::Dtx { timestamp } => Some(*timestamp),
        }
    }
}

/// Anything that turns `(packet, arrival)` into one [`Playout`] per frame: the adaptive buffer
/// here and, in benches, fixed-delay reference buffers evaluated on the same traces.
pub trait PlayoutBuffer {
    /// Hands over one received packet and when it arrived.
    fn insert(&mut self, pkt: AudioPacket, arrival: Instant);
    /// Decides what to play for the frame due at `now`.
    fn pull(&mut self, now: Instant) -> Playout;
}

/// Counters and delays of an [`AudioJitterBuffer`], serialisable for the stats line.
///
/// Each pull increments exactly one of `empty`, `decoded`, `fec_recovered`, `concealed`,
/// `expanded` and `dtx`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct JitterStats {
    /// Delay of the frame played last, above the fastest packet's arrival.
    #[serde(rename = "current_delay_ms", serialize_with = "serialize_ms")]
    pub current_delay: Duration,
    /// Delay the buffer is steering towards.
    #[serde(rename = "target_delay_ms", serialize_with = "serialize_ms")]
    pub target_delay: Duration,
    /// `late / unique`: share of received packets that came after their frame was played.
    pub late_loss_rate: f64,
    /// Packets handed to `insert`.
    pub received: u64,
    /// Received packets that were not duplicates.
    pub unique: u64,
    /// Duplicates dropped.
    pub duplicates: u64,
    /// Packets dropped because their frame had already been played or concealed.
    pub late: u64,
    /// Packets dropped as implausible (too far ahead, buffer full, or a lone far jump).
    pub discarded: u64,
    /// Stream restarts (SSRC change or timestamp jump).
    pub resyncs: u64,
    /// Pulls answered with [`Playout::Empty`].
    pub empty: u64,
    /// Packets played.
    pub decoded: u64,
    /// Lost frames recovered from FEC.
    pub fec_recovered: u64,
    /// Lost frames concealed.
    pub concealed: u64,
    /// Frames inserted to grow the delay (speech or silence).
    pub expanded: u64,
    /// Frames (packets or silence) dropped to shrink the delay.
    pub accelerated: u64,
    /// Comfort-noise frames during sender silence.
    pub dtx: u64,
    /// Packets currently buffered.
    pub buffered: usize,
}

fn serialize_ms<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1000.0)
}

#[derive(Debug, Clone)]
struct Stored {
    ext_seq: i64,
    seq: u16,
    timestamp: u32,
    payload: Bytes,
}

/// Outcome of recording a sequence number in [`SeenWindow`].
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    New,
    Duplicate,
    TooOld,
}

/// Bitmap of the last 1024 extended sequence numbers, for duplicate detection.
#[derive(Debug, Clone, Default)]
struct SeenWindow {
    highest: Option<i64>,
    bits: [u64; 16],
}

impl SeenWindow {
    const SPAN: i64 = 1024;

    fn record(&mut self, ext: i64) -> Seen {
        let highest = *self.highest.get_or_insert(ext);
        if ext > highest {
            if ext - highest >= Self::SPAN {
                self.bits = [0; 16];
            } else {
                for s in highest + 1..=ext {
                    self.clear(s);
                }
            }
            self.highest = Some(ext);
        } else if ext <= highest - Self::SPAN {
            return Seen::TooOld;
        }
        let (word, bit) = Self::slot(ext);
        let was = self.bits[word] & bit != 0;
        self.bits[word] |= bit;
        if was {
            Seen::Duplicate
        } else {
            Seen::New
        }
    }

    fn clear(&mut self, ext: i64) {
        let (word, bit) = Self::slot(ext);
        self.bits[word] &= !bit;
    }

    fn slot(ext: i64) -> (usize, u64) {
        let i = ext.rem_euclid(Self::SPAN) as usize;
        (i / 64, 1u64 << (i % 64))
    }
}

/// Adaptive audio jitter buffer; see the module documentation.
#[derive(Debug, Clone)]
pub struct AudioJitterBuffer {
    cfg: JitterConfig,
    frame_ts: i64,
    frame_us: i64,
    ssrc: Option<u32>,
    seq: SeqUnwrapper,
    ts: TimestampUnwrapper,
    seen: SeenWindow,
    /// Origin of the buffer's time line (first arrival ever).
    epoch: Option<Instant>,
    /// Extended timestamp at media time zero of the current stream.
    anchor_ts: Option<i64>,
    delay: DelayEstimator,
    packets: BTreeMap<i64, Stored>,
    /// Next frame position to play; `None` while idle.
    play_ts: Option<i64>,
    /// Whether playout has started at `play_ts` (false while waiting for the initial delay).
    playing: bool,
    /// Last consumed frame position: played, recovered or concealed.
    last_out_ts: Option<i64>,
    /// Extended sequence number and silence flag of the last played packet.
    last_played: Option<(i64, bool)>,
    last_arrival_us: i64,
    far_run: u32,
    current_delay_us: i64,
    /// Delay asked for on top of the target, by lip sync ([`AudioJitterBuffer::set_extra_delay`]).
    extra_delay_us: i64,
    /// RTP timestamp of the audio the last pull started to play.
    position: Option<u32>,
    /// Frame position waited for past the target only because of the warm-up floor.
    warm_up_wait: Option<i64>,
    /// How much of the warm-up floor waits for packets that turned out lost have used up.
    warm_up_cut_us: i64,
    stats: JitterStats,
}

impl Default for AudioJitterBuffer {
    fn default() -> Self {
        Self::new(JitterConfig::default())
    }
}

impl AudioJitterBuffer {
    /// Creates an empty buffer; out-of-range settings in `cfg` are clamped to usable values.
    pub fn new(mut cfg: JitterConfig) -> Self {
        cfg.clock_rate = cfg.clock_rate.clamp(1_000, 384_000);
        cfg.frame = cfg
            .frame
            .clamp(Duration::from_millis(2), Duration::from_millis(120));
        cfg.max_delay = cfg.max_delay.clamp(cfg.frame, Duration::from_secs(10));
        cfg.min_delay = cfg.min_delay.min(cfg.max_delay);
        cfg.initial_delay = cfg.initial_delay.clamp(cfg.min_delay, cfg.max_delay);
        cfg.quantile = if cfg.quantile.is_finite() {
            cfg.quantile.clamp(0.5, 1.0)
        } else {
            0.95
        };
        cfg.history = cfg.history.max(cfg.frame * 10);
        cfg.max_packets = cfg.max_packets.clamp(4, 1 << 16);
        cfg.idle_reset = cfg.idle_reset.max(cfg.frame * 2);
        cfg.resync_threshold = cfg.resync_threshold.max(cfg.max_delay * 2);
        let frame_us = micros(cfg.frame);
        let frame_ts = frame_us * i64::from(cfg.clock_rate) / 1_000_000;
        let forget = 1.0 - (frame_us as f64 / micros(cfg.history) as f64);
        let delay = DelayEstimator::new(DelayParams {
            quantile: cfg.quantile,
            forget,
            bucket_us: 2_000,
            min_us: micros(cfg.min_delay),
            max_us: micros(cfg.max_delay),
            initial_us: micros(cfg.initial_delay),
            history_us: micros(cfg.history),
            peak_hold_us: micros(cfg.peak_hold),
            decay_per_s_us: micros(cfg.decay_per_second),
            headroom_us: micros(cfg.headroom),
        });
        Self {
            frame_ts: frame_ts.max(1),
            frame_us,
            ssrc: None,
            seq: SeqUnwrapper::default(),
            ts: TimestampUnwrapper::default(),
            seen: SeenWindow::default(),
            epoch: None,
            anchor_ts: None,
            delay,
            packets: BTreeMap::new(),
            play_ts: None,
            playing: false,
            last_out_ts: None,
            last_played: None,
            last_arrival_us: 0,
            far_run: 0,
            current_delay_us: 0,
            extra_delay_us: 0,
            position: None,
            warm_up_wait: None,
            warm_up_cut_us: 0,
            stats: JitterStats::default(),
            cfg,
        }
    }

    /// The configuration in use, after clamping.
    pub fn config(&self) -> &JitterConfig {
        &self.cfg
    }

    /// Hands over one received packet and the instant it arrived.
    pub fn insert(&mut self, pkt: AudioPacket, arrival: Instant) {
        self.stats.received += 1;
        if self.ssrc != Some(pkt.ssrc) {
            if self.ssrc.is_some() {
                self.stats.resyncs += 1;
            }
            self.restart_stream(pkt.ssrc);
        }
        let epoch = *self.epoch.get_or_insert(arrival);
        let arrival_us = signed_micros(epoch, arrival);
        let mut ext_ts = self.ts.extend(pkt.timestamp);
        let mut ext_seq = self.seq.extend(pkt.seq);

        if let Some(reference) = self.play_ts.or(self.last_out_ts) {
            let distance_us = self.ts_to_us(ext_ts.saturating_sub(reference).saturating_abs());
            if distance_us > micros(self.cfg.resync_threshold) {
                self.far_run += 1;
                if self.far_run < 2 {
                    self.stats.discarded += 1;
                    return;
                }
                self.stats.resyncs += 1;
                self.restart_stream(pkt.ssrc);
                ext_ts = self.ts.extend(pkt.timestamp);
                ext_seq = self.seq.extend(pkt.seq);
            }
        }
        self.far_run = 0;

        match self.seen.record(ext_seq) {
            Seen::New => {}
            Seen::Duplicate => {
                self.stats.duplicates += 1;
                return;
            }
            Seen::TooOld => {
                self.stats.unique += 1;
                self.stats.late += 1;
                return;
            }
        }
        self.stats.unique += 1;
        let anchor = *self.anchor_ts.get_or_insert(ext_ts);
        let media_us = self.ts_to_us(ext_ts.saturating_sub(anchor));
        self.delay.update(arrival_us, media_us);
        self.last_arrival_us = arrival_us;

        let half = self.frame_ts / 2;
        if self.last_out_ts.is_some_and(|last| ext_ts <= last) {
            self.stats.late += 1;
            return;
        }
        match self.play_ts {
            None => {
                self.play_ts = Some(ext_ts);
                self.playing = false;
            }
            Some(p) if !self.playing && ext_ts < p => self.play_ts = Some(ext_ts),
            Some(p) if ext_ts < p - half => {
                self.stats.late += 1;
                return;
            }
            Some(_) => {}
        }
        let play = self.play_ts.unwrap_or(ext_ts);
        let horizon = self.frame_ts * self.cfg.max_packets as i64;
        if ext_ts > play + horizon || self.packets.contains_key(&ext_ts) {
            self.stats.discarded += 1;
            return;
        }
        if self.packets.len() >= self.cfg.max_packets {
            match self.packets.last_key_value() {
                Some((&last, _)) if last > ext_ts => {
                    self.packets.remove(&last);
                    self.stats.discarded += 1;
                }
                _ => {
                    self.stats.discarded += 1;
                    return;
                }
            }
        }
        self.packets.insert(
            ext_ts,
            Stored {
                ext_seq,
                seq: pkt.seq,
                timestamp: pkt.timestamp,
                payload: pkt.payload,
            },
        );
    }

    /// Decides what to play for the frame due at `now`; call once per frame period.
    pub fn pull(&mut self, now: Instant) -> Playout {
        let expanded = self.stats.expanded;
        let out = self.decide(now);
        // An inserted frame plays no sender audio: playout stands still at the next frame.
        let stretched = matches!(out, Playout::Expand { .. })
            || (matches!(out, Playout::Dtx { .. }) && self.stats.expanded > expanded);
        self.position = if stretched {
            self.play_ts.map(|p| self.rtp_ts(p))
        } else {
            out.timestamp()
        };
        match &out {
            Playout::Empty => self.stats.empty += 1,
            Playout::Packet { .. } => self.stats.decoded += 1,
            Playout::Fec { .. } => self.stats.fec_recovered += 1,
            Playout::Conceal { .. } => self.stats.concealed += 1,
            Playout::Expand { .. } => self.stats.expanded += 1,
            Playout::Dtx { .. } => {}
        }
        out
    }

    /// Current counters and delays.
    pub fn stats(&self) -> JitterStats {
        let mut s = self.stats.clone();
        s.current_delay = Duration::from_micros(self.current_delay_us.max(0) as u64);
        s.target_delay = self.target_delay();
        s.late_loss_rate = if s.unique == 0 {
            0.0
        } else {
            s.late as f64 / s.unique as f64
        };
        s.buffered = self.packets.len();
        s
    }

    /// Delay the buffer is currently steering towards: the adaptive target plus any extra
    /// delay set with [`AudioJitterBuffer::set_extra_delay`].
    pub fn target_delay(&self) -> Duration {
        Duration::from_micros(self.steering_target_us().max(0) as u64)
    }

    /// Adds `extra` on top of the adaptive target, for lip sync when video is later than audio
    /// (`media::sync::AvSync::audio_extra_delay`); the sum stays within
    /// [`JitterConfig::max_delay`]. The buffer reaches a higher delay by inserted frames and a
    /// lower one by dropped frames, as for any target change. Zero (the default) turns it off.
    pub fn set_extra_delay(&mut self, extra: Duration) {
        self.extra_delay_us = micros(extra.min(self.cfg.max_delay));
    }

    /// RTP timestamp of the audio the last [`AudioJitterBuffer::pull`] started to play: the
    /// played, recovered or concealed frame's, or for an inserted frame the position playout
    /// stands still at. `None` before playout starts and while idle. Lip sync
    /// (`media::sync::AvSync::audio_played`) maps it to the sender's clock.
    pub fn playout_timestamp(&self) -> Option<u32> {
        self.position
    }

    /// When playout of a waiting stream can start: the first packet's earliest arrival plus the
    /// target. `None` while playing or with nothing buffered. A caller whose pull clock runs
    /// anyway can re-phase it to this instant (the next pull then plays), which saves up to one
    /// frame period of start delay; later pulls keep their 20 ms rhythm.
    pub fn start_at(&self) -> Option<Instant> {
        if self.playing {
            return None;
        }
        let (play, epoch, anchor) = (self.play_ts?, self.epoch?, self.anchor_ts?);
        let earliest = self
            .ts_to_us(play.saturating_sub(anchor))
            .saturating_add(self.delay.min_transit_us().unwrap_or(0));
        let at = earliest.saturating_add(self.steering_target_us());
        let d = Duration::from_micros(at.unsigned_abs());
        if at >= 0 {
            epoch.checked_add(d)
        } else {
            epoch.checked_sub(d)
        }
    }

    fn steering_target_us(&self) -> i64 {
        self.delay
            .target_us()
            .saturating_add(self.extra_delay_us)
            .min(micros(self.cfg.max_delay))
    }

    /// Delay a missing packet is waited for: the target, or during warm-up the start floor
    /// ([`JitterConfig::initial_delay`] falling at [`JitterConfig::decay_per_second`], and by
    /// one frame for each wait that ended in a loss).
    fn patience_us(&self, now_us: i64) -> i64 {
        let decayed = micros(self.cfg.decay_per_second).saturating_mul(now_us.max(0)) / 1_000_000;
        let floor = micros(self.cfg.initial_delay)
            .saturating_sub(decayed)
            .saturating_sub(self.warm_up_cut_us);
        self.steering_target_us().max(floor)
    }

    /// Number of packets currently held.
    pub fn len(&self) -> usize {
        self.packets.len()
    }

    /// Whether no packet is held.
    pub fn is_empty(&self) -> bool {
        self.packets.is_empty()
    }

    fn decide(&mut self, now: Instant) -> Playout {
        let (Some(play), Some(epoch), Some(anchor)) = (self.play_ts, self.epoch, self.anchor_ts)
        else {
            return Playout::Empty;
        };
        let now_us = signed_micros(epoch, now);
        let min_transit = self.delay.min_transit_us().unwrap_or(0);
        let earliest = self
            .ts_to_us(play.saturating_sub(anchor))
            .saturating_add(min_transit);
        let current = now_us.saturating_sub(earliest);
        self.current_delay_us = current;
        let excess = current - self.steering_target_us();
        if !self.playing {
            if excess < 0 {
                return Playout::Empty;
            }
            self.playing = true;
        }
        let half = self.frame_ts / 2;
        // Entries left behind by misaligned timestamps can no longer be played.
        while let Some((&k, _)) = self.packets.first_key_value() {
            if k >= play - half {
                break;
            }
            self.packets.remove(&k);
            self.stats.discarded += 1;
        }
        let slot = self
            .packets
            .first_key_value()
            .map(|(&k, _)| k)
            .filter(|&k| k < play + half);
        match slot {
            Some(k) => self.play_present(k, excess),
            None => {
                let patience = current - self.patience_us(now_us);
                self.play_missing(play, excess, patience, now_us)
            }
        }
    }

    fn play_present(&mut self, mut key: i64, excess: i64) -> Playout {
        let silent = self
            .packets
            .get(&key)
            .is_some_and(|p| p.payload.len() <= self.cfg.dtx_max_payload);
        let too_late = if silent {
            excess >= self.frame_us
        } else {
            excess >= 3 * self.frame_us / 2
        };
        if too_late {
            if let Some(next) = self.next_after(key) {
                self.packets.remove(&key);
                self.stats.accelerated += 1;
                self.last_out_ts = Some(key);
                key = next;
            }
        } else if silent && excess < 0 {
            // Lengthen a pause: one more comfort-noise frame before this silent packet.
            self.stats.expanded += 1;
            return Playout::Dtx {
                timestamp: self.inserted_ts(),
            };
        } else if excess < -self.frame_us / 2 {
            return Playout::Expand {
                timestamp: self.inserted_ts(),
            };
        }
        let Some(p) = self.packets.remove(&key) else {
            // Unreachable: `key` was taken from the map above and nothing removed it since.
            return Playout::Empty;
        };
        self.last_out_ts = Some(key);
        self.play_ts = Some(key + self.frame_ts);
        self.last_played = Some((p.ext_seq, p.payload.len() <= self.cfg.dtx_max_payload));
        Playout::Packet {
            timestamp: p.timestamp,
            seq: p.seq,
            payload: p.payload,
        }
    }

    fn play_missing(&mut self, mut play: i64, excess: i64, patience: i64, now_us: i64) -> Playout {
        if now_us.saturating_sub(self.last_arrival_us) > micros(self.cfg.idle_reset)
            && self.packets.is_empty()
        {
            self.play_ts = None;
            self.playing = false;
            return Playout::Empty;
        }
        let dtx_gap = match (self.packets.first_key_value(), self.last_played) {
            (Some((_, first)), Some((seq, _))) => first.ext_seq == seq + 1,
            (None, Some((_, silent))) => silent,
            _ => false,
        };
        if dtx_gap {
            if excess < 0 {
                self.stats.expanded += 1;
                return Playout::Dtx {
                    timestamp: self.inserted_ts(),
                };
            }
            if excess >= self.frame_us && self.next_after(play).is_none() {
                // The next frame is silent too: skip this one.
                self.stats.accelerated += 1;
                play += self.frame_ts;
            }
            self.stats.dtx += 1;
            self.last_out_ts = Some(play);
            self.play_ts = Some(play + self.frame_ts);
            return Playout::Dtx {
                timestamp: self.rtp_ts(play),
            };
        }
        if patience < 0 {
            // Ahead of the target (or of the warm-up floor): wait for the missing packet
            // instead of declaring it lost.
            if excess >= 0 {
                self.warm_up_wait = Some(play);
            }
            return Playout::Expand {
                timestamp: self.inserted_ts(),
            };
        }
        if self.warm_up_wait.take() == Some(play) {
            // Waited past the target for a packet that did not come: a loss, not a delay.
            // Losses spend the warm-up patience, so a lossy start does not keep inserting.
            self.warm_up_cut_us = self.warm_up_cut_us.saturating_add(self.frame_us);
        }
        let timestamp = self.rtp_ts(play);
        let next = self.slot_at(play + self.frame_ts);
        self.last_out_ts = Some(play);
        self.play_ts = Some(play + self.frame_ts);
        match next.and_then(|k| self.packets.get(&k)) {
            Some(p) if self.cfg.use_fec => Playout::Fec {
                timestamp,
                payload: p.payload.clone(),
            },
            _ => Playout::Conceal { timestamp },
        }
    }

    /// Key of the packet for the frame at `pos`, if buffered.
    fn slot_at(&self, pos: i64) -> Option<i64> {
        let half = self.frame_ts / 2;
        self.packets
            .range(pos - half..pos + half)
            .next()
            .map(|(&k, _)| k)
    }

    /// Key of the packet for the frame right after `key`, if buffered.
    fn next_after(&self, key: i64) -> Option<i64> {
        self.slot_at(key + self.frame_ts)
    }

    fn restart_stream(&mut self, ssrc: u32) {
        self.ssrc = Some(ssrc);
        self.seq = SeqUnwrapper::default();
        self.ts = TimestampUnwrapper::default();
        self.seen = SeenWindow::default();
        self.anchor_ts = None;
        self.delay.reset_history();
        self.packets.clear();
        self.play_ts = None;
        self.playing = false;
        self.last_out_ts = None;
        self.last_played = None;
        self.position = None;
        self.far_run = 0;
    }

    fn ts_to_us(&self, ticks: i64) -> i64 {
        let us = i128::from(ticks) * 1_000_000 / i128::from(self.cfg.clock_rate);
        us.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
    }

    /// Timestamp reported for an inserted frame: the frame it follows.
    fn inserted_ts(&self) -> u32 {
        let pos = self
            .last_out_ts
            .or(self.play_ts.map(|p| p - self.frame_ts))
            .unwrap_or(0);
        self.rtp_ts(pos)
    }

    /// RTP timestamp of an extended position (the low 32 bits).
    fn rtp_ts(&self, ext: i64) -> u32 {
        ext as u32
    }
}

impl PlayoutBuffer for AudioJitterBuffer {
    fn insert(&mut self, pkt: AudioPacket, arrival: Instant) {
        AudioJitterBuffer::insert(self, pkt, arrival);
    }

    fn pull(&mut self, now: Instant) -> Playout {
        AudioJitterBuffer::pull(self, now)
    }
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// Signed microseconds from `epoch` to `t`.
fn signed_micros(epoch: Instant, t: Instant) -> i64 {
    match t.checked_duration_since(epoch) {
        Some(d) => micros(d),
        None => -micros(epoch.saturating_duration_since(t)),
    }
}

#[cfg(test)]
mod tests;
