//! Received audio to PCM frames at the 20 ms playout clock, through the adaptive jitter buffer.

use std::time::Instant;

use media::codec::opus::{CodecError, FRAME_SAMPLES};
use media::jitter::audio::{AudioPacket, AudioPlayout, FrameKind, JitterConfig};
use media::stats::CallStats;

/// The jitter buffer and decoder, plus whether playout has started (so a sink gets no leading
/// silence from before the first packet).
pub(crate) struct Playout {
    inner: AudioPlayout,
    pcm: Vec<i16>,
    started: bool,
}

impl Playout {
    pub(crate) fn new() -> Result<Self, CodecError> {
        Ok(Self {
            inner: AudioPlayout::new(JitterConfig::default())?,
            pcm: vec![0; FRAME_SAMPLES],
            started: false,
        })
    }

    pub(crate) fn insert(&mut self, pkt: AudioPacket, arrival: Instant) {
        self.inner.insert(pkt, arrival);
    }

    /// The frame due at `now`, or `None` before playout has started.
    pub(crate) fn pull(
        &mut self,
        now: Instant,
        stats: &mut CallStats,
    ) -> Result<Option<&[i16]>, CodecError> {
        let kind = self.inner.pull(now, &mut self.pcm)?;
        if kind == FrameKind::Decoded && !self.started {
            self.started = true;
        }
        self.fill_stats(stats);
        Ok(self.started.then_some(&self.pcm[..]))
    }

    /// Copies the jitter-buffer counters into the call statistics.
    pub(crate) fn fill_stats(&self, stats: &mut CallStats) {
        let j = self.inner.stats();
        stats.frames_decoded = j.decoded;
        stats.frames_fec = j.fec_recovered;
        stats.frames_concealed = j.concealed;
        stats.jitter_buffer_ms = j.current_delay.as_secs_f64() * 1e3;
        stats.jitter_target_ms = j.target_delay.as_secs_f64() * 1e3;
        stats.late_loss_rate = j.late_loss_rate;
    }
}
