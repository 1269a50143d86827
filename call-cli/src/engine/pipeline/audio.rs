//! Audio pipelines: PCM → Opus for the local track, RTP → jitter buffer → PCM for each remote
//! one. Sans-IO like every pipeline (see [`super`]).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use media::codec::opus::{CodecError, EncoderConfig, OpusEncoder, FRAME_SAMPLES, MAX_PACKET_BYTES};
use media::jitter::audio::{AudioPacket, AudioPlayout, FrameKind, JitterConfig};
use media::netsim::trace::{Trace, TraceRecorder};
use media::session::ReceivedRtp;
use media::stats::{CallStats, ReceiveCounter};

/// One frame's duration (Opus at 48 kHz, [`FRAME_SAMPLES`] samples).
pub const AUDIO_FRAME: Duration = Duration::from_millis(20);

/// Opus's RTP clock rate.
const CLOCK_RATE: u32 = 48_000;

/// One encoded frame, ready for every peer's session.
#[derive(Debug, Clone)]
pub struct EncodedAudio {
    /// One Opus packet; cloning it for each peer is cheap.
    pub payload: Bytes,
    /// Media time it covers (the RTP timestamp step).
    pub duration: Duration,
    /// When its PCM was pushed.
    pub captured: Instant,
}

/// Local audio track: PCM frames in, Opus packets out. One per local track, shared by all peers
/// (the call fans each packet out), so a mesh call encodes once.
pub struct AudioSendPipeline {
    encoder: OpusEncoder,
    packet: Vec<u8>,
    out: VecDeque<EncodedAudio>,
}

impl AudioSendPipeline {
    /// A pipeline with the given encoder settings.
    pub fn new(config: &EncoderConfig) -> Result<Self, CodecError> {
        Ok(Self {
            encoder: OpusEncoder::new(config)?,
            packet: vec![0; MAX_PACKET_BYTES],
            out: VecDeque::new(),
        })
    }

    /// Encodes one frame of [`FRAME_SAMPLES`] mono samples captured at `now`.
    pub fn push(&mut self, pcm: &[i16], now: Instant) -> Result<(), CodecError> {
        let n = self.encoder.encode(pcm, &mut self.packet)?;
        self.out.push_back(EncodedAudio {
            payload: Bytes::copy_from_slice(&self.packet[..n]),
            duration: AUDIO_FRAME,
            captured: now,
        });
        Ok(())
    }

    /// The next packet to send, oldest first.
    pub fn poll(&mut self) -> Option<EncodedAudio> {
        self.out.pop_front()
    }
}

/// Remote audio track: RTP packets with their arrival times in, PCM frames at the playout clock
/// out, through the adaptive jitter buffer ([`AudioPlayout`]) and the Opus decoder. Also keeps
/// the receive counters (loss, jitter, bitrate) and, if asked, a trace of arrivals.
pub struct AudioReceivePipeline {
    playout: AudioPlayout,
    pcm: Vec<i16>,
    started: bool,
    counter: ReceiveCounter,
    recorder: Option<TraceRecorder>,
}

impl AudioReceivePipeline {
    /// A pipeline with the default jitter-buffer settings.
    pub fn new() -> Result<Self, CodecError> {
        Ok(Self {
            playout: AudioPlayout::new(JitterConfig::default())?,
            pcm: vec![0; FRAME_SAMPLES],
            started: false,
            counter: ReceiveCounter::new(CLOCK_RATE),
            recorder: None,
        })
    }

    /// Also records every arrival, for `--record-trace` (see [`Self::take_trace`]).
    pub fn record_trace(mut self) -> Self {
        self.recorder = Some(TraceRecorder::new(CLOCK_RATE));
        self
    }

    /// One packet that arrived at `now`.
    pub fn push(&mut self, pkt: &ReceivedRtp, now: Instant) {
        self.counter
            .on_packet(pkt.seq, pkt.timestamp, pkt.payload.len(), now);
        let packet = AudioPacket {
            seq: pkt.seq,
            timestamp: pkt.timestamp,
            ssrc: pkt.ssrc,
            payload: pkt.payload.clone(),
        };
        if let Some(rec) = self.recorder.as_mut() {
            rec.record(&packet, now);
        }
        self.playout.insert(packet, now);
    }

    /// The frame due at `now` (call every [`AUDIO_FRAME`]), or `None` before the first decoded
    /// frame, so a sink gets no leading silence from before the peer's audio started.
    pub fn poll(&mut self, now: Instant) -> Result<Option<&[i16]>, CodecError> {
        let kind = self.playout.pull(now, &mut self.pcm)?;
        if kind == FrameKind::Decoded {
            self.started = true;
        }
        Ok(self.started.then_some(&self.pcm[..]))
    }

    /// Before the first frame played: when the jitter buffer can start, so the play clock can
    /// be re-phased to it (the first frame then plays up to one frame sooner). `None` once
    /// playing, or while nothing has arrived.
    pub fn start_at(&self) -> Option<Instant> {
        if self.started {
            None
        } else {
            self.playout.start_at()
        }
    }

    /// RTP timestamp of the audio the last poll started to play (lip sync's input).
    pub fn playout_timestamp(&self) -> Option<u32> {
        self.playout.playout_timestamp()
    }

    /// Extra playout delay on top of the adaptive target, so video that arrives later than
    /// audio can be shown in sync (lip sync's output).
    pub fn set_extra_delay(&mut self, extra: Duration) {
        self.playout.set_extra_delay(extra);
    }

    /// Payload bytes received so far (for the receive bitrate).
    pub fn bytes_received(&self) -> u64 {
        self.counter.bytes()
    }

    /// Copies the receive and jitter-buffer counters into the call statistics.
    pub fn fill_stats(&self, stats: &mut CallStats) {
        let c = &self.counter;
        stats.packets_received = c.received();
        stats.packets_lost = c.lost();
        stats.loss_fraction = if c.expected() > 0 {
            c.lost().max(0) as f64 / c.expected() as f64
        } else {
            0.0
        };
        stats.jitter_ms = c.jitter().as_secs_f64() * 1e3;
        let j = self.playout.stats();
        stats.frames_decoded = j.decoded;
        stats.frames_fec = j.fec_recovered;
        stats.frames_concealed = j.concealed;
        stats.jitter_buffer_ms = j.current_delay.as_secs_f64() * 1e3;
        stats.jitter_target_ms = j.target_delay.as_secs_f64() * 1e3;
        stats.late_loss_rate = j.late_loss_rate;
    }

    /// The recorded arrivals, if recording was asked for.
    pub fn take_trace(&mut self) -> Option<Trace> {
        self.recorder.take().map(TraceRecorder::into_trace)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(n: usize) -> Vec<i16> {
        (0..FRAME_SAMPLES)
            .map(|i| {
                let t = (n * FRAME_SAMPLES + i) as f64 / 48_000.0;
                ((t * 440.0 * std::f64::consts::TAU).sin() * 8_000.0) as i16
            })
            .collect()
    }

    fn rtp(seq: u16, payload: Bytes, arrival: Instant) -> ReceivedRtp {
        ReceivedRtp {
            seq,
            timestamp: u32::from(seq) * FRAME_SAMPLES as u32,
            ssrc: 7,
            marker: false,
            payload,
            arrival,
        }
    }

    #[test]
    fn send_pipeline_gives_one_packet_per_frame_in_order() {
        let t0 = Instant::now();
        let mut send = AudioSendPipeline::new(&EncoderConfig::default()).unwrap();
        assert!(send.poll().is_none());
        for n in 0..3 {
            send.push(&sine(n), t0 + AUDIO_FRAME * n as u32).unwrap();
        }
        for n in 0..3 {
            let p = send.poll().expect("one packet per pushed frame");
            assert_eq!(p.captured, t0 + AUDIO_FRAME * n);
            assert_eq!(p.duration, AUDIO_FRAME);
            assert!(!p.payload.is_empty());
        }
        assert!(send.poll().is_none());
    }

    #[test]
    fn receive_pipeline_is_silent_before_the_first_packet() {
        let t0 = Instant::now();
        let mut rx = AudioReceivePipeline::new().unwrap();
        for n in 0..10 {
            assert!(rx.poll(t0 + AUDIO_FRAME * n).unwrap().is_none());
        }
    }

    /// Send → receive on virtual time: every frame is decoded and the loss gap is counted.
    #[test]
    fn frames_flow_from_send_to_receive_on_virtual_time() {
        let t0 = Instant::now();
        let mut send = AudioSendPipeline::new(&EncoderConfig::default()).unwrap();
        let mut rx = AudioReceivePipeline::new().unwrap().record_trace();
        let mut played = 0;
        let mut loud = 0;
        for n in 0..100u32 {
            let now = t0 + AUDIO_FRAME * n;
            send.push(&sine(n as usize), now).unwrap();
            let p = send.poll().unwrap();
            // Packet 50 is lost on the way.
            if n != 50 {
                rx.push(&rtp(n as u16, p.payload, now), now);
            }
            if let Some(frame) = rx.poll(now).unwrap() {
                played += 1;
                if media::codec::pcm::rms_dbfs(frame) > -40.0 {
                    loud += 1;
                }
            }
        }
        let mut stats = CallStats::default();
        rx.fill_stats(&mut stats);
        assert_eq!(stats.packets_received, 99);
        assert_eq!(stats.packets_lost, 1);
        assert!(played > 80, "played {played} frames");
        assert!(loud > 70, "only {loud} frames carried the tone");
        // Every frame played was decoded, recovered, concealed, or inserted to grow the delay.
        let j = rx.playout.stats();
        assert_eq!(
            j.decoded + j.fec_recovered + j.concealed + j.expanded,
            played,
            "{j:?}"
        );
        assert_eq!(rx.take_trace().map(|t| t.arrivals().len()), Some(99));
    }
}
