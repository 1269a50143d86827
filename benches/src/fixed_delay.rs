//! Fixed-delay reference jitter buffer, the baseline the adaptive buffer is compared with.
//!
//! Playout starts a fixed delay after the first packet arrives and then advances one frame per
//! pull, whatever the network does: no adaptation, no time-stretching. A missing frame is
//! recovered from the next packet's FEC when that packet is buffered (like the adaptive
//! buffer, so the comparison isolates the delay policy), otherwise concealed.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use media::jitter::audio::{AudioPacket, Playout, PlayoutBuffer};

/// Bound on buffered packets.
const MAX_PACKETS: usize = 1024;

/// A jitter buffer with a constant playout delay.
#[derive(Debug, Clone)]
pub struct FixedDelayBuffer {
    delay: Duration,
    frame_ts: i64,
    use_fec: bool,
    start: Option<Instant>,
    started: bool,
    highest_ts: Option<i64>,
    play_ts: Option<i64>,
    packets: BTreeMap<i64, AudioPacket>,
}

impl FixedDelayBuffer {
    /// A buffer playing `delay` after the first arrival, with `frame_ts` timestamp ticks per
    /// frame (960 for 20 ms at 48 kHz).
    pub fn new(delay: Duration, frame_ts: u32, use_fec: bool) -> Self {
        Self {
            delay,
            frame_ts: i64::from(frame_ts.max(1)),
            use_fec,
            start: None,
            started: false,
            highest_ts: None,
            play_ts: None,
            packets: BTreeMap::new(),
        }
    }

    fn extend(&mut self, ts: u32) -> i64 {
        let ext = match self.highest_ts {
            None => i64::from(ts),
            Some(h) => h + i64::from(ts.wrapping_sub(h as u32) as i32),
        };
        if self.highest_ts.is_none_or(|h| ext > h) {
            self.highest_ts = Some(ext);
        }
        ext
    }
}

impl PlayoutBuffer for FixedDelayBuffer {
    fn insert(&mut self, pkt: AudioPacket, arrival: Instant) {
        let ext = self.extend(pkt.timestamp);
        let play = *self.play_ts.get_or_insert(ext);
        self.start.get_or_insert(arrival + self.delay);
        if !self.started && ext < play {
            self.play_ts = Some(ext);
        } else if ext < play {
            return; // late
        }
        if self.packets.len() < MAX_PACKETS {
            self.packets.entry(ext).or_insert(pkt);
        }
    }

    fn pull(&mut self, now: Instant) -> Playout {
        let (Some(start), Some(play)) = (self.start, self.play_ts) else {
            return Playout::Empty;
        };
        if now < start {
            return Playout::Empty;
        }
        self.started = true;
        self.play_ts = Some(play + self.frame_ts);
        let timestamp = play as u32;
        if let Some(p) = self.packets.remove(&play) {
            return Playout::Packet {
                timestamp,
                seq: p.seq,
                payload: p.payload,
            };
        }
        match self.packets.get(&(play + self.frame_ts)) {
            Some(next) if self.use_fec => Playout::Fec {
                timestamp,
                payload: next.payload.clone(),
            },
            _ => Playout::Conceal { timestamp },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn plays_after_the_fixed_delay_and_drops_late_packets() {
        let mut b = FixedDelayBuffer::new(Duration::from_millis(80), 960, true);
        let t0 = Instant::now();
        let pkt = |seq: u16| AudioPacket {
            seq,
            timestamp: u32::from(seq) * 960,
            ssrc: 1,
            payload: Bytes::from_static(b"x"),
        };
        b.insert(pkt(0), t0);
        assert_eq!(b.pull(t0 + Duration::from_millis(79)), Playout::Empty);
        assert!(matches!(
            b.pull(t0 + Duration::from_millis(80)),
            Playout::Packet { seq: 0, .. }
        ));
        assert_eq!(
            b.pull(t0 + Duration::from_millis(100)),
            Playout::Conceal { timestamp: 960 }
        );
        b.insert(pkt(1), t0 + Duration::from_millis(101));
        b.insert(pkt(3), t0 + Duration::from_millis(101));
        assert!(matches!(
            b.pull(t0 + Duration::from_millis(120)),
            Playout::Fec {
                timestamp: 1920,
                ..
            }
        ));
        assert!(matches!(
            b.pull(t0 + Duration::from_millis(140)),
            Playout::Packet { seq: 3, .. }
        ));
    }
}
