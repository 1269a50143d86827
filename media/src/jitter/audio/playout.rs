//! [`AudioPlayout`]: the jitter buffer and the Opus decoder together, returning PCM frames.
//!
//! The buffer decides *what* to play; [`render`] turns each [`Playout`] into 20 ms of 48 kHz
//! mono PCM with the decoder: decode the packet, recover from the next packet's FEC, or run
//! packet-loss concealment (also for inserted frames and DTX comfort noise). A corrupt packet is
//! concealed instead, so outside input never causes an error.

use std::time::Instant;

use serde::Serialize;

use super::{AudioJitterBuffer, AudioPacket, JitterConfig, JitterStats, Playout};
use crate::codec::opus::{OpusDecoder, FRAME_SAMPLES};
use crate::codec::CodecError;

/// What kind of audio a pulled frame holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum FrameKind {
    /// Nothing received yet or idle: digital silence.
    Silence,
    /// A received packet, decoded.
    Decoded,
    /// A lost frame rebuilt from the next packet's in-band FEC.
    FecRecovered,
    /// A lost or late frame concealed (also when a packet failed to decode).
    Concealed,
    /// A frame inserted by concealment to grow the delay.
    Expanded,
    /// Comfort noise while the sender is silent (DTX).
    ComfortNoise,
}

/// Decodes one [`Playout`] decision into `out[..FRAME_SAMPLES]`.
///
/// Fails only when `out` is shorter than [`FRAME_SAMPLES`] (a caller bug); errors from corrupt
/// packets are answered with concealment, and if even that fails the frame is silence.
pub fn render(
    decoder: &mut OpusDecoder,
    playout: &Playout,
    out: &mut [i16],
) -> Result<FrameKind, CodecError> {
    let got = out.len();
    let Some(frame) = out.get_mut(..FRAME_SAMPLES) else {
        return Err(CodecError::OutputTooSmall {
            needed: FRAME_SAMPLES,
            got,
        });
    };
    let kind = match playout {
        Playout::Empty => {
            frame.fill(0);
            return Ok(FrameKind::Silence);
        }
        Playout::Packet { payload, .. } => match decoder.decode(payload, frame) {
            Ok(n) if n == FRAME_SAMPLES => return Ok(FrameKind::Decoded),
            _ => FrameKind::Concealed,
        },
        Playout::Fec { payload, .. } => match decoder.decode_fec(payload, frame) {
            Ok(_) => return Ok(FrameKind::FecRecovered),
            Err(_) => FrameKind::Concealed,
        },
        Playout::Conceal { .. } => FrameKind::Concealed,
        Playout::Expand { .. } => FrameKind::Expanded,
        Playout::Dtx { .. } => FrameKind::ComfortNoise,
    };
    if decoder.conceal(frame).is_err() {
        frame.fill(0);
    }
    Ok(kind)
}

/// Adaptive jitter buffer plus Opus decoder: packets in, 20 ms PCM frames out. Sans-IO.
#[derive(Debug)]
pub struct AudioPlayout {
    buffer: AudioJitterBuffer,
    decoder: OpusDecoder,
}

impl AudioPlayout {
    /// A playout with a fresh decoder.
    pub fn new(cfg: JitterConfig) -> Result<Self, CodecError> {
        Ok(Self {
            buffer: AudioJitterBuffer::new(cfg),
            decoder: OpusDecoder::new()?,
        })
    }

    /// Hands over one received packet and when it arrived.
    pub fn insert(&mut self, pkt: AudioPacket, arrival: Instant) {
        self.buffer.insert(pkt, arrival);
    }

    /// Writes the frame due at `now` into `out[..FRAME_SAMPLES]` and says what it is; call
    /// every 20 ms from the audio clock. Fails only if `out` is too short.
    pub fn pull(&mut self, now: Instant, out: &mut [i16]) -> Result<FrameKind, CodecError> {
        let playout = self.buffer.pull(now);
        render(&mut self.decoder, &playout, out)
    }

    /// Jitter-buffer statistics.
    pub fn stats(&self) -> JitterStats {
        self.buffer.stats()
    }

    /// The jitter buffer inside.
    pub fn buffer(&self) -> &AudioJitterBuffer {
        &self.buffer
    }

    /// RTP timestamp of the audio the last [`AudioPlayout::pull`] started to play (see
    /// [`AudioJitterBuffer::playout_timestamp`]); lip sync's `AvSync::audio_played` input.
    pub fn playout_timestamp(&self) -> Option<u32> {
        self.buffer.playout_timestamp()
    }

    /// When a waiting playout can start (see [`AudioJitterBuffer::start_at`]): re-phasing the
    /// pull clock to it makes the first frame play up to 20 ms sooner.
    pub fn start_at(&self) -> Option<Instant> {
        self.buffer.start_at()
    }

    /// Extra playout delay on top of the adaptive target, for lip sync (see
    /// [`AudioJitterBuffer::set_extra_delay`]); from `AvSync::audio_extra_delay`.
    pub fn set_extra_delay(&mut self, extra: std::time::Duration) {
        self.buffer.set_extra_delay(extra);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::opus::{EncoderConfig, OpusEncoder, MAX_PACKET_BYTES};
    use bytes::Bytes;
    use std::time::Duration;

    #[test]
    fn decodes_recovers_and_conceals() {
        let mut enc = OpusEncoder::new(&EncoderConfig::default()).expect("encoder");
        let mut play = AudioPlayout::new(JitterConfig::default()).expect("playout");
        let t0 = Instant::now();
        let mut kinds = Vec::new();
        let mut pcm = vec![0i16; FRAME_SAMPLES];
        let mut out = vec![0i16; FRAME_SAMPLES];
        let mut packet = vec![0u8; MAX_PACKET_BYTES];
        for k in 0..60u32 {
            for (i, s) in pcm.iter_mut().enumerate() {
                let t = (k as usize * FRAME_SAMPLES + i) as f64 / 48_000.0;
                *s = (8000.0 * (std::f64::consts::TAU * 220.0 * t).sin()) as i16;
            }
            let n = enc.encode(&pcm, &mut packet).expect("encode");
            let now = t0 + Duration::from_millis(20) * k;
            if k != 20 {
                play.insert(
                    AudioPacket {
                        seq: k as u16,
                        timestamp: k * 960,
                        ssrc: 1,
                        payload: Bytes::copy_from_slice(&packet[..n]),
                    },
                    now,
                );
            }
            if k == 30 {
                // A corrupt packet is concealed, not an error.
                play.insert(
                    AudioPacket {
                        seq: 1000,
                        timestamp: 31 * 960 + 10,
                        ssrc: 1,
                        payload: Bytes::from_static(&[0xFF, 0xFF, 0xFF]),
                    },
                    now,
                );
            }
            kinds.push(play.pull(now, &mut out).expect("frame"));
        }
        assert_eq!(kinds[0], FrameKind::Silence);
        assert!(kinds.contains(&FrameKind::Decoded));
        assert!(kinds.contains(&FrameKind::FecRecovered));
        assert!(play.pull(t0, &mut [0i16; 10]).is_err());
    }
}

#[cfg(test)]
mod dtx_tests {
    use super::*;
    use crate::codec::opus::{EncoderConfig, OpusEncoder, MAX_PACKET_BYTES};

    /// The buffer treats payloads up to `dtx_max_payload` bytes as sender silence; check that
    /// this is what the Opus encoder emits for silence with DTX on.
    #[test]
    fn opus_dtx_silence_packets_are_recognised_as_silence() {
        let mut enc = OpusEncoder::new(&EncoderConfig {
            dtx: true,
            ..EncoderConfig::default()
        })
        .expect("encoder");
        let silence = vec![0i16; FRAME_SAMPLES];
        let mut packet = vec![0u8; MAX_PACKET_BYTES];
        let sizes: Vec<usize> = (0..50)
            .map(|_| enc.encode(&silence, &mut packet).expect("encode"))
            .collect();
        let max_dtx = JitterConfig::default().dtx_max_payload;
        // After a 200 ms hangover libopus sends 1-byte frames, with a comfort-noise update
        // every 400 ms.
        let silent = sizes[10..].iter().filter(|&&n| n <= max_dtx).count();
        assert!(silent >= 35, "packet sizes in silence: {sizes:?}");
    }
}
