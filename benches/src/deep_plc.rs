//! libopus 1.5+ deep packet-loss concealment, for measurement only (feature `deep-plc`).
//!
//! The `opus` crate that `media` uses cannot switch it on: deep PLC needs the DNN compiled into
//! libopus (opusic-sys feature `dred`, which builds the model weights shipped in the libopus
//! sources) and decoder complexity ≥ 5, and `opus::Decoder` has no complexity setter. This thin
//! raw decoder over `opusic-sys` sets it, so the quality table can compare deep PLC with the
//! classic one on the same traces.

use std::ptr::NonNull;

use media::codec::opus::{FRAME_SAMPLES, SAMPLE_RATE};
use media::jitter::audio::Playout;

/// Decoder complexity that enables deep PLC (libopus: `enable_deep_plc = complexity >= 5`).
pub const DEEP_PLC_COMPLEXITY: i32 = 5;

/// A 48 kHz mono libopus decoder with deep PLC on.
pub struct DeepPlcDecoder {
    raw: NonNull<opusic_sys::OpusDecoder>,
}

impl DeepPlcDecoder {
    /// Creates the decoder and sets complexity [`DEEP_PLC_COMPLEXITY`].
    pub fn new() -> anyhow::Result<Self> {
        let mut err = 0;
        // SAFETY: plain constructor; the result is checked for null and the error code.
        let ptr = unsafe { opusic_sys::opus_decoder_create(SAMPLE_RATE as i32, 1, &mut err) };
        let raw = NonNull::new(ptr).filter(|_| err == opusic_sys::OPUS_OK);
        let raw = raw.ok_or_else(|| anyhow::anyhow!("opus_decoder_create failed: {err}"))?;
        let dec = Self { raw };
        // SAFETY: `raw` is a live decoder; the request takes one opus_int32.
        let rc = unsafe {
            opusic_sys::opus_decoder_ctl(
                dec.raw.as_ptr(),
                opusic_sys::OPUS_SET_COMPLEXITY_REQUEST,
                DEEP_PLC_COMPLEXITY,
            )
        };
        anyhow::ensure!(
            rc == opusic_sys::OPUS_OK,
            "decoder complexity refused: {rc}"
        );
        Ok(dec)
    }

    /// `opus_decode` into one 20 ms frame; `packet` empty means conceal.
    fn decode(&mut self, packet: &[u8], out: &mut [i16], fec: bool) -> bool {
        let out = &mut out[..FRAME_SAMPLES];
        let (data, len) = if packet.is_empty() {
            (std::ptr::null(), 0)
        } else {
            (packet.as_ptr(), packet.len() as i32)
        };
        // SAFETY: `raw` is live, `data`/`len` describe `packet` (or null for PLC), `out` holds
        // FRAME_SAMPLES samples, the frame size passed.
        let n = unsafe {
            opusic_sys::opus_decode(
                self.raw.as_ptr(),
                data,
                len,
                out.as_mut_ptr(),
                FRAME_SAMPLES as i32,
                i32::from(fec),
            )
        };
        n == FRAME_SAMPLES as i32
    }

    /// Decodes one playout decision like `media::jitter::audio::render`, with deep PLC for
    /// every concealed frame.
    pub fn render(&mut self, playout: &Playout, out: &mut [i16]) {
        let done = match playout {
            Playout::Empty => {
                out[..FRAME_SAMPLES].fill(0);
                true
            }
            Playout::Packet { payload, .. } => self.decode(payload, out, false),
            Playout::Fec { payload, .. } => self.decode(payload, out, true),
            Playout::Conceal { .. } | Playout::Expand { .. } | Playout::Dtx { .. } => false,
        };
        if !done && !self.decode(&[], out, false) {
            out[..FRAME_SAMPLES].fill(0);
        }
    }
}

impl Drop for DeepPlcDecoder {
    fn drop(&mut self) {
        // SAFETY: created by opus_decoder_create, destroyed once.
        unsafe { opusic_sys::opus_decoder_destroy(self.raw.as_ptr()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio_quality::{encode, test_signal};

    /// Deep PLC conceals differently from classic PLC on the same history (so the DNN is
    /// compiled in and switched on), and keeps the signal going rather than muting it.
    #[test]
    fn deep_plc_is_active_and_conceals() {
        let packets = encode(&test_signal(1), false).unwrap();
        let mut deep = DeepPlcDecoder::new().unwrap();
        let mut classic = media::codec::opus::OpusDecoder::new().unwrap();
        let mut frame = vec![0i16; FRAME_SAMPLES];
        for p in &packets[..20] {
            assert!(deep.decode(p, &mut frame, false));
            classic.decode(p, &mut frame).unwrap();
        }
        let (mut a, mut b) = (vec![0i16; FRAME_SAMPLES], vec![0i16; FRAME_SAMPLES]);
        deep.render(&Playout::Conceal { timestamp: 0 }, &mut a);
        classic.conceal(&mut b).unwrap();
        assert_ne!(a, b);
        assert!(media::codec::opus::rms_dbfs(&a) > -60.0);
    }
}
