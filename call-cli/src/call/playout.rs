//! Received audio to PCM frames at the 20 ms playout clock.

use std::collections::VecDeque;
use std::time::Instant;

use media::codec::opus::{CodecError, OpusDecoder, FRAME_SAMPLES};
use media::session::ReceivedRtp;
use media::stats::CallStats;

/// Interim playout: decodes packets in arrival order, one per tick.
pub(crate) struct Playout {
    queue: VecDeque<ReceivedRtp>,
    decoder: OpusDecoder,
    pcm: Vec<i16>,
    decoded: u64,
}

impl Playout {
    pub(crate) fn new() -> Result<Self, CodecError> {
        Ok(Self {
            queue: VecDeque::new(),
            decoder: OpusDecoder::new()?,
            pcm: vec![0; FRAME_SAMPLES],
            decoded: 0,
        })
    }

    pub(crate) fn insert(&mut self, pkt: ReceivedRtp) {
        if self.queue.len() < 64 {
            self.queue.push_back(pkt);
        }
    }

    pub(crate) fn pull(
        &mut self,
        _now: Instant,
        stats: &mut CallStats,
    ) -> Result<Option<&[i16]>, CodecError> {
        let Some(pkt) = self.queue.pop_front() else {
            return Ok(None);
        };
        let n = self.decoder.decode(&pkt.payload, &mut self.pcm)?;
        self.decoded += 1;
        stats.frames_decoded = self.decoded;
        Ok(Some(&self.pcm[..n]))
    }

    pub(crate) fn fill_stats(&self, stats: &mut CallStats) {
        stats.frames_decoded = self.decoded;
    }
}
