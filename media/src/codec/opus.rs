//! Opus encoder/decoder (48 kHz mono, 20 ms), PLC and in-band FEC.
//!
//! Distance from the wire: one step inside the jitter buffer. The sender feeds 20 ms PCM frames
//! from a source to [`OpusEncoder::encode`] and hands the packet to the RTP track; the receiver's
//! audio jitter buffer calls [`OpusDecoder::decode`] for packets that arrived,
//! [`OpusDecoder::decode_fec`] to rebuild a lost frame from the in-band FEC carried by the packet
//! after it, and [`OpusDecoder::conceal`] (packet-loss concealment) when neither is available.
//!
//! Every call works on caller-provided buffers and allocates nothing on the heap in steady state
//! (checked by `benches/tests/alloc.rs`).

pub use super::pcm::rms_dbfs;
pub use super::CodecError;

/// Sample rate of every PCM buffer in the engine.
pub const SAMPLE_RATE: u32 = 48_000;
/// Mono.
pub const CHANNELS: usize = 1;
/// Duration of one audio frame (and one RTP packet) in milliseconds.
pub const FRAME_MS: u32 = 20;
/// Samples in one 20 ms mono frame at 48 kHz.
pub const FRAME_SAMPLES: usize = 960;
/// Largest Opus packet we produce or accept; size encoder output buffers with it.
pub const MAX_PACKET_BYTES: usize = 1500;
/// Samples in the longest Opus packet (60 ms); a decode buffer this long takes any packet.
pub const MAX_FRAME_SAMPLES: usize = 2880;

/// Frame sizes Opus can encode, in samples at 48 kHz (2.5 to 60 ms).
const VALID_FRAME_SAMPLES: [usize; 6] = [120, 240, 480, 960, 1920, 2880];

/// Encoder settings. The defaults suit a voice call over a lossy network.
#[derive(Clone, Debug)]
pub struct EncoderConfig {
    /// Target bitrate in bits per second (6 000 to 510 000). Default 32 000.
    pub bitrate_bps: i32,
    /// In-band forward error correction: each packet carries a low-bitrate copy of the
    /// previous frame, recovered by [`OpusDecoder::decode_fec`]. Default on.
    pub fec: bool,
    /// Packet loss the encoder plans FEC for, in percent (0 to 100). Default 10.
    pub expected_loss_pct: u8,
    /// Discontinuous transmission: send almost nothing during silence. Default off.
    pub dtx: bool,
}

impl Default for EncoderConfig {
    fn default() -> Self {
        Self {
            bitrate_bps: 32_000,
            fec: true,
            expected_loss_pct: 10,
            dtx: false,
        }
    }
}

/// Opus encoder for 48 kHz mono voice (application VOIP).
pub struct OpusEncoder {
    inner: opus::Encoder,
}

impl std::fmt::Debug for OpusEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusEncoder").finish_non_exhaustive()
    }
}

impl OpusEncoder {
    /// Creates an encoder with `cfg` applied.
    pub fn new(cfg: &EncoderConfig) -> Result<Self, CodecError> {
        if !(6_000..=510_000).contains(&cfg.bitrate_bps) {
            return Err(CodecError::InvalidConfig(format!(
                "opus bitrate {} bps is outside 6000..=510000",
                cfg.bitrate_bps
            )));
        }
        if cfg.expected_loss_pct > 100 {
            return Err(CodecError::InvalidConfig(format!(
                "expected loss {}% is above 100%",
                cfg.expected_loss_pct
            )));
        }
        let mut inner =
            opus::Encoder::new(SAMPLE_RATE, opus::Channels::Mono, opus::Application::Voip)
                .map_err(|source| CodecError::Opus {
                    op: "create encoder",
                    source,
                })?;
        let ctl = |op: &'static str| move |source| CodecError::Opus { op, source };
        inner
            .set_bitrate(opus::Bitrate::Bits(cfg.bitrate_bps))
            .map_err(ctl("set bitrate"))?;
        inner
            .set_inband_fec(cfg.fec)
            .map_err(ctl("set inband fec"))?;
        inner
            .set_packet_loss_perc(i32::from(cfg.expected_loss_pct))
            .map_err(ctl("set packet loss percentage"))?;
        inner.set_dtx(cfg.dtx).map_err(ctl("set dtx"))?;
        inner
            .set_signal(opus::Signal::Voice)
            .map_err(ctl("set signal"))?;
        Ok(Self { inner })
    }

    /// Encodes one PCM frame (usually [`FRAME_SAMPLES`] samples) into `out`, returning the
    /// packet length. `out` should hold [`MAX_PACKET_BYTES`].
    pub fn encode(&mut self, pcm: &[i16], out: &mut [u8]) -> Result<usize, CodecError> {
        if !VALID_FRAME_SAMPLES.contains(&pcm.len()) {
            return Err(CodecError::FrameSize {
                expected: FRAME_SAMPLES,
                got: pcm.len(),
            });
        }
        if out.is_empty() {
            return Err(CodecError::OutputTooSmall {
                needed: MAX_PACKET_BYTES,
                got: 0,
            });
        }
        let max = out.len().min(MAX_PACKET_BYTES);
        self.inner
            .encode(pcm, &mut out[..max])
            .map_err(|source| CodecError::Opus {
                op: "encode",
                source,
            })
    }
}

/// Opus decoder for 48 kHz mono, with FEC recovery and packet-loss concealment.
pub struct OpusDecoder {
    inner: opus::Decoder,
}

impl std::fmt::Debug for OpusDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusDecoder").finish_non_exhaustive()
    }
}

impl OpusDecoder {
    /// Creates a decoder producing 48 kHz mono.
    pub fn new() -> Result<Self, CodecError> {
        let inner = opus::Decoder::new(SAMPLE_RATE, opus::Channels::Mono).map_err(|source| {
            CodecError::Opus {
                op: "create decoder",
                source,
            }
        })?;
        Ok(Self { inner })
    }

    /// Decodes a received packet into `out`, returning the number of samples written
    /// ([`FRAME_SAMPLES`] for our 20 ms packets). `out` must hold the packet's duration;
    /// [`MAX_FRAME_SAMPLES`] takes any packet. Corrupt packets give an error, never a panic.
    pub fn decode(&mut self, packet: &[u8], out: &mut [i16]) -> Result<usize, CodecError> {
        if packet.is_empty() {
            return Err(CodecError::EmptyPacket);
        }
        let max = out.len().min(MAX_FRAME_SAMPLES);
        self.inner
            .decode(packet, &mut out[..max], false)
            .map_err(|source| CodecError::Opus {
                op: "decode",
                source,
            })
    }

    /// Recovers the frame *before* `next_packet` from `next_packet`'s in-band FEC, writing
    /// [`FRAME_SAMPLES`] samples. Call it when a packet is lost and its successor has arrived,
    /// then call [`decode`](Self::decode) on the successor as usual. When the successor carries no
    /// FEC, libopus falls back to concealment, so the result is never worse than [`conceal`](Self::conceal).
    pub fn decode_fec(&mut self, next_packet: &[u8], out: &mut [i16]) -> Result<usize, CodecError> {
        if next_packet.is_empty() {
            return Err(CodecError::EmptyPacket);
        }
        let out = frame_slice(out)?;
        self.inner
            .decode(next_packet, out, true)
            .map_err(|source| CodecError::Opus {
                op: "decode fec",
                source,
            })
    }

    /// Conceals one lost 20 ms frame (packet-loss concealment), writing [`FRAME_SAMPLES`] samples.
    pub fn conceal(&mut self, out: &mut [i16]) -> Result<usize, CodecError> {
        let out = frame_slice(out)?;
        self.inner
            .decode(&[], out, false)
            .map_err(|source| CodecError::Opus {
                op: "conceal",
                source,
            })
    }
}

/// The first [`FRAME_SAMPLES`] of `out`, which FEC and PLC fill exactly.
fn frame_slice(out: &mut [i16]) -> Result<&mut [i16], CodecError> {
    let got = out.len();
    out.get_mut(..FRAME_SAMPLES)
        .ok_or(CodecError::OutputTooSmall {
            needed: FRAME_SAMPLES,
            got,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::PI;

    fn tone(freq: f64, amp: f64, start: usize, len: usize) -> Vec<i16> {
        (start..start + len)
            .map(|i| ((i as f64 * 2.0 * PI * freq / f64::from(SAMPLE_RATE)).sin() * amp) as i16)
            .collect()
    }

    /// Frequency (Hz) of the strongest DFT bin between 50 and 4000 Hz, in 10 Hz steps.
    fn dominant_freq(pcm: &[i16]) -> f64 {
        let mut best = (0.0, 0.0);
        for f in (50..4000).step_by(10) {
            let f = f64::from(f);
            let (mut re, mut im) = (0.0, 0.0);
            for (i, &s) in pcm.iter().enumerate() {
                let ph = 2.0 * PI * f * i as f64 / f64::from(SAMPLE_RATE);
                re += f64::from(s) * ph.cos();
                im += f64::from(s) * ph.sin();
            }
            let p = re * re + im * im;
            if p > best.1 {
                best = (f, p);
            }
        }
        best.0
    }

    fn energy(a: &[i16], b: &[i16]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(&x, &y)| {
                let d = f64::from(x) - f64::from(y);
                d * d
            })
            .sum()
    }

    #[test]
    fn sine_round_trip_keeps_dominant_frequency() {
        let mut enc = OpusEncoder::new(&EncoderConfig::default()).unwrap();
        let mut dec = OpusDecoder::new().unwrap();
        let mut packet = [0u8; MAX_PACKET_BYTES];
        let mut decoded = Vec::new();
        let mut out = [0i16; MAX_FRAME_SAMPLES];
        for n in 0..50 {
            let pcm = tone(440.0, 12_000.0, n * FRAME_SAMPLES, FRAME_SAMPLES);
            let len = enc.encode(&pcm, &mut packet).unwrap();
            assert!(len > 0 && len <= MAX_PACKET_BYTES);
            let got = dec.decode(&packet[..len], &mut out).unwrap();
            assert_eq!(got, FRAME_SAMPLES);
            decoded.extend_from_slice(&out[..got]);
        }
        let tail = &decoded[decoded.len() - 4800..];
        let f = dominant_freq(tail);
        assert!((f - 440.0).abs() <= 10.0, "dominant frequency {f} Hz");
        let level = rms_dbfs(tail);
        assert!(level > -15.0 && level < -5.0, "level {level} dBFS");
    }

    /// A signal PLC cannot predict: the pitch and level change every frame.
    fn changing_signal(frames: usize) -> Vec<Vec<i16>> {
        (0..frames)
            .map(|n| {
                let f = 200.0 + 150.0 * (n % 7) as f64;
                let a = 4_000.0 + 1_500.0 * (n % 5) as f64;
                let mut v = tone(f, a, n * FRAME_SAMPLES, FRAME_SAMPLES);
                let h = tone(f * 2.5, a / 3.0, n * FRAME_SAMPLES, FRAME_SAMPLES);
                for (s, h) in v.iter_mut().zip(h) {
                    *s = s.saturating_add(h);
                }
                v
            })
            .collect()
    }

    #[test]
    fn fec_recovers_a_lost_frame_better_than_plc() {
        let frames = changing_signal(60);
        let mut enc = OpusEncoder::new(&EncoderConfig::default()).unwrap();
        let packets: Vec<Vec<u8>> = frames
            .iter()
            .map(|pcm| {
                let mut buf = [0u8; MAX_PACKET_BYTES];
                let len = enc.encode(pcm, &mut buf).unwrap();
                buf[..len].to_vec()
            })
            .collect();

        let (mut fec_wins, mut fec_total, mut plc_total) = (0, 0.0, 0.0);
        let lost_frames = [20, 27, 34, 41, 48];
        for &lost in &lost_frames {
            // Reference: the clean decode of the lost frame.
            let mut clean = OpusDecoder::new().unwrap();
            let mut fec = OpusDecoder::new().unwrap();
            let mut plc = OpusDecoder::new().unwrap();
            let mut out = [0i16; FRAME_SAMPLES];
            for p in &packets[..lost] {
                clean.decode(p, &mut out).unwrap();
                fec.decode(p, &mut out).unwrap();
                plc.decode(p, &mut out).unwrap();
            }
            let mut reference = [0i16; FRAME_SAMPLES];
            clean.decode(&packets[lost], &mut reference).unwrap();
            let mut recovered = [0i16; FRAME_SAMPLES];
            assert_eq!(
                fec.decode_fec(&packets[lost + 1], &mut recovered).unwrap(),
                FRAME_SAMPLES
            );
            let mut concealed = [0i16; FRAME_SAMPLES];
            assert_eq!(plc.conceal(&mut concealed).unwrap(), FRAME_SAMPLES);
            let e_fec = energy(&recovered, &reference);
            let e_plc = energy(&concealed, &reference);
            if e_fec < e_plc {
                fec_wins += 1;
            }
            fec_total += e_fec;
            plc_total += e_plc;
            eprintln!("lost frame {lost}: fec error {e_fec:.3e}, plc error {e_plc:.3e}");
        }
        // The reference is the clean decode of the lost frame: the best any receiver can do.
        assert!(
            fec_wins * 2 > lost_frames.len(),
            "FEC beat PLC on only {fec_wins} frames"
        );
        assert!(
            fec_total * 2.0 < plc_total,
            "FEC error {fec_total:.3e} is not clearly below PLC error {plc_total:.3e}"
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut dec = OpusDecoder::new().unwrap();
        let mut out = [0i16; MAX_FRAME_SAMPLES];
        // TOC code 2 (two frames of different sizes) without the length byte.
        assert!(dec.decode(&[0x02], &mut out).is_err());
        // TOC code 3 (arbitrary frame count) with a count of 0 frames.
        assert!(dec.decode(&[0x03, 0x00], &mut out).is_err());
        assert!(matches!(
            dec.decode(&[], &mut out),
            Err(CodecError::EmptyPacket)
        ));
        assert!(dec.decode_fec(&[0x02], &mut out).is_err());
        // The decoder still works afterwards.
        assert_eq!(dec.conceal(&mut out).unwrap(), FRAME_SAMPLES);
    }

    #[test]
    fn bad_sizes_are_errors() {
        let mut enc = OpusEncoder::new(&EncoderConfig::default()).unwrap();
        let mut buf = [0u8; MAX_PACKET_BYTES];
        assert!(matches!(
            enc.encode(&[0; 100], &mut buf),
            Err(CodecError::FrameSize { got: 100, .. })
        ));
        assert!(enc.encode(&[0; FRAME_SAMPLES], &mut []).is_err());
        let mut dec = OpusDecoder::new().unwrap();
        assert!(matches!(
            dec.conceal(&mut [0; 10]),
            Err(CodecError::OutputTooSmall {
                needed: FRAME_SAMPLES,
                got: 10
            })
        ));
        let bad = EncoderConfig {
            bitrate_bps: 1,
            ..EncoderConfig::default()
        };
        assert!(OpusEncoder::new(&bad).is_err());
    }

    proptest::proptest! {
        #[test]
        fn decode_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
            let mut dec = OpusDecoder::new().unwrap();
            let mut out = [0i16; MAX_FRAME_SAMPLES];
            let _ = dec.decode(&bytes, &mut out);
            let _ = dec.decode_fec(&bytes, &mut out);
            let _ = dec.decode(&bytes, &mut out[..10]);
        }
    }
}
