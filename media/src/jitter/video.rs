//! H.264 RTP frame assembly with NACK/PLI: the video frame buffer, one hop from the decoder.
//!
//! Position in the pipeline: `session` hands every received RTP video packet to
//! [`VideoFrameBuffer::insert`] with its arrival instant, then drains
//! [`VideoFrameBuffer::poll_frame`] (complete, decodable Annex-B access units, in order, for
//! `codec::h264::H264Decoder`) and [`VideoFrameBuffer::poll_feedback`] (NACK and PLI to send back
//! as RTCP), and wakes up again at [`VideoFrameBuffer::poll_timeout`]. The core is sans-IO: time
//! is an argument; there is no clock, socket or task inside.
//!
//! # How frames are assembled
//! Packets are keyed by 64-bit unwrapped sequence number. A frame is a run of consecutive
//! packets with one RTP timestamp ending with the marker bit (or followed by a packet with a new
//! timestamp). Frames are released as soon as they are complete *and* decodable, so on a clean
//! network the buffer adds no delay at all:
//! - while the decoder chain is intact, the next frame is the one starting right after the last
//!   released packet; it is released when all its packets are there (IPPP: a P frame needs every
//!   frame before it);
//! - a complete keyframe (an access unit with an IDR slice) further ahead is released at once
//!   and everything before it dropped, so a blocked chain never waits longer than necessary.
//!
//! # Loss
//! A sequence gap registers the missing packets. After [`VideoBufferConfig::nack_delay`]
//! (reordering grace) they are asked for in a [`Feedback::Nack`], retried every
//! [`VideoBufferConfig::nack_retry_interval`] (≈ RTT, see [`VideoFrameBuffer::set_rtt`]) at
//! most [`VideoBufferConfig::nack_max_retries`] times. When the packet blocking the next frame
//! is given up on (retries exhausted, or [`VideoBufferConfig::give_up_after`]), or the stream
//! starts without a keyframe, or a frame is malformed, the buffer drops frames until the next
//! keyframe and sends [`Feedback::Pli`], repeated every [`VideoBufferConfig::pli_interval`]
//! until a keyframe arrives.
//!
//! # Robustness
//! Duplicates and packets at or before the last released one are dropped; frames are never
//! released twice and their timestamps strictly increase (until a stream reset). Memory is
//! bounded by [`VideoBufferConfig::max_packets`] (a sliding window of sequence numbers) and
//! [`VideoBufferConfig::max_bytes`]. A jump of more than the window, or a run of packets far
//! behind it (sender restart), resets the stream. Payloads are validated by the RFC 6184
//! depacketizer ([`Payload::parse`]); malformed ones are counted and make their frame undecodable.

mod depacketize;
mod packetize;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Serialize;

pub use self::depacketize::{
    AccessUnitWriter, DepacketizeError, Payload, StapA, StapAUnits, FU_A, NAL_AUD, NAL_IDR,
    NAL_PPS, NAL_SEI, NAL_SPS, STAP_A, START_CODE,
};
pub use self::packetize::{nal_units, packetize, FramePacketizer, PacketizeError, MIN_PAYLOAD};

/// One received RTP video packet, as the buffer needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoPacket {
    /// RTP sequence number.
    pub seq: u16,
    /// RTP timestamp (90 kHz); all packets of one frame share it.
    pub timestamp: u32,
    /// RTP marker bit: set on the last packet of a frame.
    pub marker: bool,
    /// RTP payload (RFC 6184).
    pub payload: Bytes,
}

/// A complete access unit, ready for the decoder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssembledFrame {
    /// RTP timestamp of the frame.
    pub timestamp: u32,
    /// The access unit as an Annex-B byte stream (4-byte start codes).
    pub data: Vec<u8>,
    /// True when the frame holds an IDR slice.
    pub keyframe: bool,
    /// Sequence number of the frame's first packet.
    pub first_seq: u16,
    /// Sequence number of the frame's last packet.
    pub last_seq: u16,
    /// Arrival of the packet that completed the frame (release time minus this is the delay
    /// the buffer added).
    pub completed_at: Instant,
}

/// Feedback for the sender, to be sent as RTCP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Feedback {
    /// Generic NACK (RFC 4585): please retransmit these sequence numbers.
    Nack(Vec<u16>),
    /// Picture loss indication: please send a keyframe.
    Pli,
}

/// What [`VideoFrameBuffer::insert`] did with a packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InsertOutcome {
    /// Stored for assembly.
    Stored,
    /// Already buffered; dropped.
    Duplicate,
    /// At or before the last released frame, or behind the window; dropped.
    Late,
    /// Stored as a placeholder (so it is not NACKed) but not decodable; its frame will be dropped.
    Malformed(DepacketizeError),
}

/// Settings of the video frame buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoBufferConfig {
    /// Window of sequence numbers kept (packets and missing entries); bounds memory. Default 1024.
    pub max_packets: usize,
    /// Bytes of payload kept at most; the oldest packets are evicted above it. Default 8 MiB.
    pub max_bytes: usize,
    /// Wait this long after a gap appears before the first NACK, so reordering is not mistaken
    /// for loss. Default 5 ms.
    pub nack_delay: Duration,
    /// Interval between NACKs for the same packet; about one round-trip time. Default 100 ms.
    pub nack_retry_interval: Duration,
    /// NACKs sent per missing packet at most (0 disables NACK). Default 3.
    pub nack_max_retries: u8,
    /// Longest wait for a packet that blocks the next frame before dropping to the next
    /// keyframe. Default 500 ms.
    pub give_up_after: Duration,
    /// Minimum interval between PLIs while waiting for a keyframe. Default 300 ms.
    pub pli_interval: Duration,
}

impl Default for VideoBufferConfig {
    fn default() -> Self {
        Self {
            max_packets: 1024,
            max_bytes: 8 << 20,
            nack_delay: Duration::from_millis(5),
            nack_retry_interval: Duration::from_millis(100),
            nack_max_retries: 3,
            give_up_after: Duration::from_millis(500),
            pli_interval: Duration::from_millis(300),
        }
    }
}

/// Counters and gauges of a [`VideoFrameBuffer`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct VideoBufferStats {
    /// Packets passed to `insert`.
    pub packets_received: u64,
    /// Duplicates dropped.
    pub packets_duplicate: u64,
    /// Packets too late (their frame was already released or dropped).
    pub packets_late: u64,
    /// Payloads that are not valid RFC 6184.
    pub packets_malformed: u64,
    /// Packets that filled a gap before any NACK went out (reordering).
    pub packets_reordered: u64,
    /// Packets that filled a gap after a NACK (retransmissions).
    pub packets_recovered: u64,
    /// Packets evicted to keep memory bounded.
    pub packets_evicted: u64,
    /// Frames released.
    pub frames_assembled: u64,
    /// Keyframes released.
    pub keyframes_assembled: u64,
    /// Frames dropped (incomplete, undecodable or malformed).
    pub frames_dropped: u64,
    /// Times the buffer gave up waiting for a missing packet and fell back to a keyframe.
    pub gave_up: u64,
    /// NACK messages produced.
    pub nack_messages: u64,
    /// Sequence numbers asked for, counting retries.
    pub nacked_packets: u64,
    /// PLIs produced.
    pub pli_sent: u64,
    /// Stream resets (sequence jump or sender restart).
    pub resets: u64,
    /// Packets currently buffered.
    pub buffered_packets: usize,
    /// Payload bytes currently buffered.
    pub buffered_bytes: usize,
    /// Sequence numbers currently known missing.
    pub missing_packets: usize,
    /// True while frames are dropped until the next keyframe.
    pub waiting_for_keyframe: bool,
}

/// Most sequence numbers in one NACK; the rest follow in the next one.
const MAX_NACK_LIST: usize = 256;
/// Consecutive packets behind the window that make the buffer assume a sender restart.
const RESET_AFTER_OLD: u32 = 64;

#[derive(Debug)]
struct Stored {
    ts: i64,
    marker: bool,
    payload: Bytes,
    valid: bool,
    arrival: Instant,
}

#[derive(Debug)]
struct Missing {
    detected: Instant,
    sent: Option<Instant>,
    retries: u8,
}

/// The video frame buffer: H.264 RTP packets in, complete decodable access units and feedback out.
#[derive(Debug)]
pub struct VideoFrameBuffer {
    cfg: VideoBufferConfig,
    packets: BTreeMap<i64, Stored>,
    missing: BTreeMap<i64, Missing>,
    /// Highest unwrapped sequence number seen, and the unwrapped timestamp of that packet.
    highest: Option<(i64, i64)>,
    /// Last packet released or given up; nothing at or before it is accepted.
    released_through: Option<i64>,
    last_output_ts: Option<i64>,
    need_keyframe: bool,
    pli_due: Option<Instant>,
    last_pli: Option<Instant>,
    /// Something changed since the last keyframe scan.
    dirty: bool,
    old_run: u32,
    bytes: usize,
    stats: VideoBufferStats,
}

impl Default for VideoFrameBuffer {
    fn default() -> Self {
        Self::new(VideoBufferConfig::default())
    }
}

impl VideoFrameBuffer {
    /// An empty buffer waiting for its first keyframe.
    pub fn new(cfg: VideoBufferConfig) -> Self {
        Self {
            cfg,
            packets: BTreeMap::new(),
            missing: BTreeMap::new(),
            highest: None,
            released_through: None,
            last_output_ts: None,
            need_keyframe: true,
            pli_due: None,
            last_pli: None,
            dirty: false,
            old_run: 0,
            bytes: 0,
            stats: VideoBufferStats::default(),
        }
    }

    /// Sets the NACK retry interval from a measured round-trip time (RTT + 25 %, at least 10 ms).
    pub fn set_rtt(&mut self, rtt: Duration) {
        self.cfg.nack_retry_interval = (rtt + rtt / 4).max(Duration::from_millis(10));
    }

    /// Counters and current gauges.
    pub fn stats(&self) -> VideoBufferStats {
        VideoBufferStats {
            buffered_packets: self.packets.len(),
            buffered_bytes: self.bytes,
            missing_packets: self.missing.len(),
            waiting_for_keyframe: self.need_keyframe,
            ..self.stats.clone()
        }
    }

    /// Adds a received packet. Never panics, whatever the packet.
    pub fn insert(&mut self, packet: VideoPacket, arrival: Instant) -> InsertOutcome {
        self.stats.packets_received += 1;
        let parsed = Payload::parse(&packet.payload).err();
        let window = self.cfg.max_packets.max(1) as i64;
        let (seq, ts) = match self.highest {
            None => {
                self.start_stream(arrival);
                (i64::from(packet.seq), i64::from(packet.timestamp))
            }
            Some((high, high_ts)) => {
                let seq = high + i64::from(packet.seq.wrapping_sub(high as u16) as i16);
                let ts = high_ts + i64::from(packet.timestamp.wrapping_sub(high_ts as u32) as i32);
                if seq > high + window {
                    self.reset(arrival);
                    (i64::from(packet.seq), i64::from(packet.timestamp))
                } else if seq <= high - window {
                    self.old_run += 1;
                    if self.old_run < RESET_AFTER_OLD {
                        self.stats.packets_late += 1;
                        return InsertOutcome::Late;
                    }
                    self.reset(arrival);
                    (i64::from(packet.seq), i64::from(packet.timestamp))
                } else {
                    (seq, ts)
                }
            }
        };
        self.old_run = 0;
        if self.released_through.is_some_and(|r| seq <= r) {
            self.stats.packets_late += 1;
            return InsertOutcome::Late;
        }
        if self.packets.contains_key(&seq) {
            self.stats.packets_duplicate += 1;
            return InsertOutcome::Duplicate;
        }
        match self.highest {
            Some((high, _)) if seq <= high => {
                // Before the first release, a packet older than all seen so far reveals the
                // gap between it and the oldest one.
                if self.released_through.is_none() {
                    let oldest = self.packets.keys().next().copied().unwrap_or(high);
                    for s in seq + 1..oldest {
                        self.missing.entry(s).or_insert(Missing {
                            detected: arrival,
                            sent: None,
                            retries: 0,
                        });
                    }
                }
                if let Some(m) = self.missing.remove(&seq) {
                    if m.retries > 0 {
                        self.stats.packets_recovered += 1;
                    } else {
                        self.stats.packets_reordered += 1;
                    }
                }
            }
            Some((high, _)) => {
                for s in high + 1..seq {
                    self.missing.insert(
                        s,
                        Missing {
                            detected: arrival,
                            sent: None,
                            retries: 0,
                        },
                    );
                }
                self.highest = Some((seq, ts));
            }
            None => self.highest = Some((seq, ts)),
        }
        self.bytes += packet.payload.len();
        self.packets.insert(
            seq,
            Stored {
                ts,
                marker: packet.marker,
                payload: packet.payload,
                valid: parsed.is_none(),
                arrival,
            },
        );
        self.dirty = true;
        self.enforce_bounds(arrival);
        match parsed {
            Some(err) => {
                self.stats.packets_malformed += 1;
                InsertOutcome::Malformed(err)
            }
            None => InsertOutcome::Stored,
        }
    }

    /// The next complete, decodable frame, if any. Call until it returns `None` after every
    /// insert and timeout.
    pub fn poll_frame(&mut self, now: Instant) -> Option<AssembledFrame> {
        if let Some(frame) = self.release_head(now) {
            return Some(frame);
        }
        self.check_give_up(now);
        if self.dirty && self.may_jump(now) {
            self.dirty = false;
            if let Some(frame) = self.scan_for_keyframe(now) {
                return Some(frame);
            }
        }
        None
    }

    /// The next feedback message to send, if any is due: PLI first, then NACKs.
    pub fn poll_feedback(&mut self, now: Instant) -> Option<Feedback> {
        self.check_give_up(now);
        if self.need_keyframe && self.pli_due.is_some_and(|due| due <= now) {
            self.last_pli = Some(now);
            self.pli_due = now.checked_add(self.cfg.pli_interval);
            self.stats.pli_sent += 1;
            return Some(Feedback::Pli);
        }
        let floor = self.released_through.map_or(i64::MIN, |r| r + 1);
        let mut list = Vec::new();
        for (&seq, m) in self.missing.range_mut(floor..) {
            if list.len() >= MAX_NACK_LIST {
                break;
            }
            if next_nack(&self.cfg, m).is_some_and(|due| due <= now) {
                m.sent = Some(now);
                m.retries += 1;
                list.push(seq as u16);
            }
        }
        if list.is_empty() {
            return None;
        }
        self.stats.nack_messages += 1;
        self.stats.nacked_packets += list.len() as u64;
        Some(Feedback::Nack(list))
    }

    /// When the buffer next needs [`poll_feedback`](Self::poll_feedback) /
    /// [`poll_frame`](Self::poll_frame) without a new packet; `None` when only a packet can
    /// change anything. Waking up earlier or more often is harmless.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let floor = self.released_through.map_or(i64::MIN, |r| r + 1);
        let mut earliest = if self.need_keyframe {
            self.pli_due
        } else {
            None
        };
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                earliest = Some(earliest.map_or(t, |e| e.min(t)));
            }
        };
        for m in self.missing.range(floor..).map(|(_, m)| m) {
            consider(next_nack(&self.cfg, m));
        }
        if !self.need_keyframe {
            if let Some((_, m)) = self.missing.range(floor..).next() {
                consider(give_up_at(&self.cfg, m));
            }
        }
        earliest
    }

    fn start_stream(&mut self, arrival: Instant) {
        self.need_keyframe = true;
        // Give the first keyframe a moment to complete before asking for one.
        self.pli_due = arrival.checked_add(self.cfg.pli_interval);
    }

    fn reset(&mut self, arrival: Instant) {
        self.stats.resets += 1;
        self.stats.frames_dropped += count_frames(self.packets.values());
        self.packets.clear();
        self.missing.clear();
        self.bytes = 0;
        self.highest = None;
        self.released_through = None;
        self.last_output_ts = None;
        self.old_run = 0;
        self.start_stream(arrival);
        self.request_keyframe(arrival);
    }

    /// Enters (or stays in) the drop-until-keyframe state and schedules a PLI.
    fn request_keyframe(&mut self, now: Instant) {
        self.need_keyframe = true;
        self.dirty = true;
        let earliest = self
            .last_pli
            .and_then(|t| t.checked_add(self.cfg.pli_interval))
            .map_or(now, |t| t.max(now));
        self.pli_due = Some(self.pli_due.map_or(earliest, |due| due.min(earliest)));
    }

    /// Keeps the sequence window and the byte budget.
    fn enforce_bounds(&mut self, now: Instant) {
        let Some((high, _)) = self.highest else {
            return;
        };
        let floor = high - self.cfg.max_packets.max(1) as i64 + 1;
        let mut evict_below = floor;
        if self.bytes > self.cfg.max_bytes {
            let mut bytes = self.bytes;
            for (&seq, p) in &self.packets {
                if bytes <= self.cfg.max_bytes {
                    break;
                }
                bytes -= p.payload.len();
                evict_below = evict_below.max(seq + 1);
            }
        }
        if self.released_through.is_some_and(|r| r + 1 >= evict_below) {
            return;
        }
        let kept = self.packets.split_off(&evict_below);
        let evicted = std::mem::replace(&mut self.packets, kept);
        let kept_missing = self.missing.split_off(&evict_below);
        self.missing = kept_missing;
        if self.released_through.is_none() && evicted.is_empty() {
            return;
        }
        self.stats.packets_evicted += evicted.len() as u64;
        self.stats.frames_dropped += count_frames(evicted.values());
        self.bytes -= evicted.values().map(|p| p.payload.len()).sum::<usize>();
        self.released_through = Some(evict_below - 1);
        self.request_keyframe(now);
    }

    /// Releases the frame right after the last released packet if the chain is intact and
    /// the frame is complete.
    fn release_head(&mut self, now: Instant) -> Option<AssembledFrame> {
        if self.need_keyframe {
            return None;
        }
        let start = self.released_through? + 1;
        let (end, ts) = self.frame_extent(start)?;
        if self.last_output_ts.is_some_and(|last| ts <= last) {
            self.drop_through(end);
            self.request_keyframe(now);
            return None;
        }
        match self.build(start, end) {
            Some(frame) => Some(self.release(start, end, ts, frame)),
            None => {
                self.drop_through(end);
                self.request_keyframe(now);
                None
            }
        }
    }

    /// Finds the earliest complete keyframe after the last released packet and releases it,
    /// dropping everything before it. Asks for a keyframe when only delta frames are complete.
    fn scan_for_keyframe(&mut self, now: Instant) -> Option<AssembledFrame> {
        let floor = self.released_through.map_or(i64::MIN, |r| r + 1);
        let mut cursor = floor;
        let mut saw_complete_delta = false;
        let mut found = None;
        while let Some((&seq, _)) = self.packets.range(cursor..).next() {
            cursor = seq + 1;
            if !self.may_start_frame(seq) {
                continue;
            }
            let Some((end, ts)) = self.frame_extent(seq) else {
                continue;
            };
            cursor = end + 1;
            if self.last_output_ts.is_some_and(|last| ts <= last) {
                continue;
            }
            let has_idr = self
                .packets
                .range(seq..=end)
                .any(|(_, p)| p.valid && Payload::parse(&p.payload).is_ok_and(|p| p.has_idr()));
            if !has_idr {
                saw_complete_delta = true;
                continue;
            }
            if let Some(frame) = self.build(seq, end) {
                found = Some((seq, end, ts, frame));
                break;
            }
        }
        match found {
            Some((start, end, ts, frame)) => Some(self.release(start, end, ts, frame)),
            None => {
                if self.need_keyframe && saw_complete_delta {
                    self.request_keyframe(now);
                    self.dirty = false;
                }
                None
            }
        }
    }

    /// Whether to look for a keyframe ahead: always while waiting for one; with an intact
    /// chain only once the packet blocking the next frame is overdue by the reordering grace
    /// ([`VideoBufferConfig::nack_delay`]), so mere reordering never costs a frame.
    fn may_jump(&self, now: Instant) -> bool {
        if self.need_keyframe {
            return true;
        }
        let floor = self.released_through.map_or(i64::MIN, |r| r + 1);
        match self.missing.range(floor..).next() {
            Some((_, m)) => m
                .detected
                .checked_add(self.cfg.nack_delay)
                .is_some_and(|t| t <= now),
            None => true,
        }
    }

    /// Whether a frame may begin at `seq` even though the frame before it was not released:
    /// right after the last released packet, after a packet of another frame, or at an access
    /// unit's first NAL unit type (SPS or access unit delimiter).
    fn may_start_frame(&self, seq: i64) -> bool {
        if self.released_through == Some(seq - 1) {
            return true;
        }
        let Some(p) = self.packets.get(&seq) else {
            return false;
        };
        if let Some(prev) = self.packets.get(&(seq - 1)) {
            return prev.ts != p.ts || prev.marker;
        }
        p.valid
            && Payload::parse(&p.payload)
                .is_ok_and(|pl| pl.starts_nal() && matches!(pl.first_nal_type(), NAL_SPS | NAL_AUD))
    }

    /// End (last sequence number) and timestamp of the complete frame starting at `start`.
    fn frame_extent(&self, start: i64) -> Option<(i64, i64)> {
        let mut iter = self.packets.range(start..);
        let (&first_seq, first) = iter.next()?;
        if first_seq != start {
            return None;
        }
        if first.marker {
            return Some((start, first.ts));
        }
        for (expected, (&seq, p)) in (start + 1..).zip(iter) {
            if seq != expected {
                return None;
            }
            if p.ts != first.ts {
                return Some((seq - 1, first.ts));
            }
            if p.marker {
                return Some((seq, first.ts));
            }
        }
        None
    }

    /// The access unit of packets `start..=end`, or `None` if it is malformed.
    fn build(&self, start: i64, end: i64) -> Option<(Vec<u8>, bool, Instant)> {
        let size: usize = self
            .packets
            .range(start..=end)
            .map(|(_, p)| p.payload.len() + 4)
            .sum();
        let mut writer = AccessUnitWriter::with_capacity(size);
        let mut completed_at: Option<Instant> = None;
        for (_, p) in self.packets.range(start..=end) {
            if !p.valid {
                return None;
            }
            writer.push(&p.payload).ok()?;
            completed_at = Some(completed_at.map_or(p.arrival, |t| t.max(p.arrival)));
        }
        let (data, keyframe) = writer.finish().ok()?;
        Some((data, keyframe, completed_at?))
    }

    fn release(
        &mut self,
        start: i64,
        end: i64,
        ts: i64,
        (data, keyframe, completed_at): (Vec<u8>, bool, Instant),
    ) -> AssembledFrame {
        self.stats.frames_dropped += count_frames(self.packets.range(..start).map(|(_, p)| p));
        self.drop_through(end);
        self.last_output_ts = Some(ts);
        self.stats.frames_assembled += 1;
        if keyframe {
            self.stats.keyframes_assembled += 1;
            self.need_keyframe = false;
            self.pli_due = None;
        }
        self.dirty = true;
        AssembledFrame {
            timestamp: ts as u32,
            data,
            keyframe,
            first_seq: start as u16,
            last_seq: end as u16,
            completed_at,
        }
    }

    /// Forgets every packet and missing entry up to `end`.
    fn drop_through(&mut self, end: i64) {
        let kept = self.packets.split_off(&(end + 1));
        let dropped = std::mem::replace(&mut self.packets, kept);
        self.bytes -= dropped.values().map(|p| p.payload.len()).sum::<usize>();
        self.missing = self.missing.split_off(&(end + 1));
        self.released_through = Some(self.released_through.map_or(end, |r| r.max(end)));
    }

    /// Falls back to the next keyframe when the packet blocking the next frame is given up on.
    fn check_give_up(&mut self, now: Instant) {
        if self.need_keyframe {
            return;
        }
        let Some(released) = self.released_through else {
            return;
        };
        let Some((_, m)) = self.missing.range(released + 1..).next() else {
            return;
        };
        if give_up_at(&self.cfg, m).is_some_and(|t| t <= now)
            && self.frame_extent(released + 1).is_none()
        {
            self.stats.gave_up += 1;
            self.request_keyframe(now);
        }
    }
}

/// When the next NACK for `m` is due, or `None` once its retries are used up.
fn next_nack(cfg: &VideoBufferConfig, m: &Missing) -> Option<Instant> {
    if m.retries >= cfg.nack_max_retries {
        return None;
    }
    match m.sent {
        None => m.detected.checked_add(cfg.nack_delay),
        Some(t) => t.checked_add(cfg.nack_retry_interval),
    }
}

/// When waiting for `m` stops being worthwhile.
fn give_up_at(cfg: &VideoBufferConfig, m: &Missing) -> Option<Instant> {
    let hard = m.detected.checked_add(cfg.give_up_after);
    let soft = if m.retries >= cfg.nack_max_retries {
        match m.sent {
            Some(t) => t.checked_add(cfg.nack_retry_interval),
            None => m.detected.checked_add(cfg.nack_delay),
        }
    } else {
        None
    };
    match (hard, soft) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Number of distinct frames (timestamp runs) among packets in sequence order.
fn count_frames<'a>(packets: impl Iterator<Item = &'a Stored>) -> u64 {
    let mut count = 0;
    let mut last = None;
    for p in packets {
        if last != Some(p.ts) {
            count += 1;
            last = Some(p.ts);
        }
    }
    count
}

#[cfg(test)]
mod tests;
