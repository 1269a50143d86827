//! H.264 encoder/decoder on openh264 (Constrained Baseline, Annex-B byte streams).
//!
//! Distance from the wire: one step inside the video frame buffer. The sender encodes
//! [`I420Frame`]s from a video source (camera or [`super::pattern::TestPattern`]) into Annex-B
//! access units, which `jitter::video::packetize` splits into RTP payloads; the receiver's
//! `jitter::video::VideoFrameBuffer` reassembles access units and hands them to
//! [`H264Decoder::decode`].
//!
//! [`H264Encoder::encode_into`] and [`H264Decoder::decode_into`] reuse caller buffers; the
//! allocating [`H264Encoder::encode`] and [`H264Decoder::decode`] are conveniences over them.

use openh264::formats::YUVSource;

pub use super::CodecError;

/// A picture in planar YUV 4:2:0 (I420), tightly packed: the Y plane is `width * height` bytes,
/// U and V are `width/2 * height/2` bytes each. Width and height are even.
#[derive(Clone, PartialEq, Eq)]
pub struct I420Frame {
    width: usize,
    height: usize,
    y: Vec<u8>,
    u: Vec<u8>,
    v: Vec<u8>,
}

impl std::fmt::Debug for I420Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "I420Frame({}x{})", self.width, self.height)
    }
}

impl I420Frame {
    /// A black frame; odd dimensions are rounded down to even.
    pub fn black(width: usize, height: usize) -> Self {
        let mut f = Self {
            width: 0,
            height: 0,
            y: Vec::new(),
            u: Vec::new(),
            v: Vec::new(),
        };
        f.resize(width, height);
        f
    }

    /// A frame from packed planes, checking that the plane sizes fit `width` x `height`.
    pub fn from_planes(
        width: usize,
        height: usize,
        y: Vec<u8>,
        u: Vec<u8>,
        v: Vec<u8>,
    ) -> Result<Self, CodecError> {
        let chroma = (width / 2) * (height / 2);
        if width % 2 != 0
            || height % 2 != 0
            || y.len() != width * height
            || u.len() != chroma
            || v.len() != chroma
        {
            return Err(CodecError::InvalidConfig(format!(
                "I420 planes of {}/{}/{} bytes do not fit a {width}x{height} frame (even dimensions, \
                 Y = w*h, U = V = w/2*h/2)",
                y.len(),
                u.len(),
                v.len()
            )));
        }
        Ok(Self {
            width,
            height,
            y,
            u,
            v,
        })
    }

    /// Changes the dimensions (rounded down to even), keeping the allocation when it is big
    /// enough. Pixel contents are unspecified afterwards.
    pub fn resize(&mut self, width: usize, height: usize) {
        let (width, height) = (width & !1, height & !1);
        if (width, height) == (self.width, self.height) {
            return;
        }
        self.width = width;
        self.height = height;
        self.y.resize(width * height, 16);
        self.u.resize((width / 2) * (height / 2), 128);
        self.v.resize((width / 2) * (height / 2), 128);
    }

    /// Width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }

    /// The luma plane.
    pub fn y(&self) -> &[u8] {
        &self.y
    }

    /// The Cb plane.
    pub fn u(&self) -> &[u8] {
        &self.u
    }

    /// The Cr plane.
    pub fn v(&self) -> &[u8] {
        &self.v
    }

    /// The three planes, writable.
    pub fn planes_mut(&mut self) -> (&mut [u8], &mut [u8], &mut [u8]) {
        (&mut self.y, &mut self.u, &mut self.v)
    }

    /// Peak signal-to-noise ratio of the luma plane against `other` in dB (`f64::INFINITY` when
    /// identical, 0 when the dimensions differ). For tests and quality reports.
    pub fn psnr_y(&self, other: &I420Frame) -> f64 {
        if (self.width, self.height) != (other.width, other.height) || self.y.is_empty() {
            return 0.0;
        }
        let mse = self
            .y
            .iter()
            .zip(&other.y)
            .map(|(&a, &b)| {
                let d = f64::from(a) - f64::from(b);
                d * d
            })
            .sum::<f64>()
            / self.y.len() as f64;
        if mse == 0.0 {
            f64::INFINITY
        } else {
            10.0 * (255.0 * 255.0 / mse).log10()
        }
    }
}

impl YUVSource for I420Frame {
    fn dimensions(&self) -> (usize, usize) {
        (self.width, self.height)
    }

    fn strides(&self) -> (usize, usize, usize) {
        (self.width, self.width / 2, self.width / 2)
    }

    fn y(&self) -> &[u8] {
        &self.y
    }

    fn u(&self) -> &[u8] {
        &self.u
    }

    fn v(&self) -> &[u8] {
        &self.v
    }
}

/// Encoder settings.
#[derive(Clone, Debug, PartialEq)]
pub struct H264Config {
    /// Frame width in pixels (even, at most 3840).
    pub width: usize,
    /// Frame height in pixels (even, at most 2160).
    pub height: usize,
    /// Target bitrate in bits per second.
    pub bitrate_bps: u32,
    /// Frame rate the rate control plans for.
    pub fps: f32,
}

impl Default for H264Config {
    fn default() -> Self {
        Self {
            width: 640,
            height: 480,
            bitrate_bps: 1_000_000,
            fps: 30.0,
        }
    }
}

/// One encoded access unit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodedFrame {
    /// The access unit as an Annex-B byte stream (start codes before every NAL unit).
    pub data: Vec<u8>,
    /// True for an IDR picture (with SPS/PPS in front), from which a decoder can start.
    pub keyframe: bool,
}

/// The openh264 encoder settings used by [`H264Encoder`]; public so benchmarks can drive raw
/// openh264 with identical settings.
pub fn openh264_encoder_config(cfg: &H264Config) -> openh264::encoder::EncoderConfig {
    use openh264::encoder::{BitRate, FrameRate, IntraFramePeriod, RateControlMode, UsageType};
    // One keyframe every 10 s as a safety net; PLI asks for more.
    let intra_period = (cfg.fps.max(1.0) * 10.0) as u32;
    openh264::encoder::EncoderConfig::new()
        .usage_type(UsageType::CameraVideoRealTime)
        .rate_control_mode(RateControlMode::Bitrate)
        .bitrate(BitRate::from_bps(cfg.bitrate_bps))
        .max_frame_rate(FrameRate::from_hz(cfg.fps))
        .skip_frames(true)
        .num_threads(1)
        .intra_frame_period(IntraFramePeriod::from_num_frames(intra_period))
}

/// Sets a running openh264 encoder's target bitrate and its (equal) peak bitrate
/// (`ENCODER_OPTION_BITRATE`, `ENCODER_OPTION_MAX_BITRATE`); whether openh264 took both. The
/// peak moves first on a raise and last on a cut, so the target never exceeds it.
#[allow(unsafe_code)]
fn set_bitrate_in_place(
    encoder: &mut openh264::encoder::Encoder,
    from_bps: u32,
    to_bps: u32,
) -> bool {
    use openh264_sys2::{
        SBitrateInfo, ENCODER_OPTION, ENCODER_OPTION_BITRATE, ENCODER_OPTION_MAX_BITRATE,
        SPATIAL_LAYER_0, SPATIAL_LAYER_ALL,
    };
    let Ok(bitrate) = std::os::raw::c_int::try_from(to_bps) else {
        return false;
    };
    let mut set = |option: ENCODER_OPTION, layer| {
        let mut info = SBitrateInfo {
            iLayer: layer,
            iBitrate: bitrate,
        };
        // SAFETY: `raw_api` hands out this encoder's own function table and handle, valid
        // while `encoder` is borrowed here; `SetOption` with these two options reads one
        // `SBitrateInfo` through the pointer during the call and keeps no reference to it; no
        // other thread uses the encoder (`&mut`).
        let rc = unsafe {
            encoder
                .raw_api()
                .set_option(option, (&mut info as *mut SBitrateInfo).cast())
        };
        rc == 0
    };
    let peak = (ENCODER_OPTION_MAX_BITRATE, SPATIAL_LAYER_0);
    let target = (ENCODER_OPTION_BITRATE, SPATIAL_LAYER_ALL);
    let order = if to_bps > from_bps {
        [peak, target]
    } else {
        [target, peak]
    };
    order.into_iter().all(|(option, layer)| set(option, layer))
}

fn check_rate(bitrate_bps: u32, fps: f32) -> Result<(), CodecError> {
    if !(fps > 0.0 && fps <= 240.0) || bitrate_bps < 10_000 {
        return Err(CodecError::InvalidConfig(format!(
            "fps {fps} must be in (0, 240] and bitrate {bitrate_bps} bps at least 10000"
        )));
    }
    Ok(())
}

fn new_openh264(cfg: &H264Config) -> Result<openh264::encoder::Encoder, CodecError> {
    let api = openh264::OpenH264API::from_source();
    openh264::encoder::Encoder::with_api_config(api, openh264_encoder_config(cfg)).map_err(
        |source| CodecError::H264 {
            op: "create encoder",
            source,
        },
    )
}

/// H.264 encoder producing Annex-B access units.
pub struct H264Encoder {
    inner: openh264::encoder::Encoder,
    cfg: H264Config,
    frames: u64,
}

impl std::fmt::Debug for H264Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H264Encoder")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

impl H264Encoder {
    /// Creates an encoder for frames of `cfg.width` x `cfg.height`.
    pub fn new(cfg: H264Config) -> Result<Self, CodecError> {
        if cfg.width == 0 || cfg.height == 0 || cfg.width % 2 != 0 || cfg.height % 2 != 0 {
            return Err(CodecError::InvalidConfig(format!(
                "video size {}x{} must be non-zero and even",
                cfg.width, cfg.height
            )));
        }
        if cfg.width.max(cfg.height) > 3840 || cfg.width.min(cfg.height) > 2160 {
            return Err(CodecError::InvalidConfig(format!(
                "video size {}x{} is above openh264's 3840x2160",
                cfg.width, cfg.height
            )));
        }
        check_rate(cfg.bitrate_bps, cfg.fps)?;
        let inner = new_openh264(&cfg)?;
        Ok(Self {
            inner,
            cfg,
            frames: 0,
        })
    }

    /// Changes the target bitrate and the frame rate the rate control plans for (what
    /// `media::bwe::CongestionController` asks for). Returns whether anything changed.
    ///
    /// A bitrate change alone is applied to the running encoder (no keyframe: the next frame
    /// is coded at the new rate). A frame-rate change, or a bitrate openh264 refuses in place,
    /// starts a fresh encoder, and the next frame is then a keyframe (with SPS/PPS, so the
    /// receiver decodes straight on). Frame timestamps continue either way.
    pub fn set_rate(&mut self, bitrate_bps: u32, fps: f32) -> Result<bool, CodecError> {
        check_rate(bitrate_bps, fps)?;
        if bitrate_bps == self.cfg.bitrate_bps && fps == self.cfg.fps {
            return Ok(false);
        }
        if fps == self.cfg.fps
            && set_bitrate_in_place(&mut self.inner, self.cfg.bitrate_bps, bitrate_bps)
        {
            self.cfg.bitrate_bps = bitrate_bps;
            return Ok(true);
        }
        let cfg = H264Config {
            bitrate_bps,
            fps,
            ..self.cfg.clone()
        };
        let inner = new_openh264(&cfg)?;
        // Timestamps continue at the new rate from where the old one stopped.
        let elapsed_ms = self.frames as f64 * 1000.0 / f64::from(self.cfg.fps);
        self.frames = (elapsed_ms * f64::from(fps) / 1000.0).ceil() as u64;
        self.inner = inner;
        self.cfg = cfg;
        Ok(true)
    }

    /// The settings this encoder was created with.
    pub fn config(&self) -> &H264Config {
        &self.cfg
    }

    /// Encodes one frame; `force_keyframe` asks for an IDR picture (answer to a PLI).
    /// `data` is empty when rate control skipped the frame (nothing to send).
    pub fn encode(
        &mut self,
        frame: &I420Frame,
        force_keyframe: bool,
    ) -> Result<EncodedFrame, CodecError> {
        let mut data = Vec::new();
        let keyframe = self.encode_into(frame, force_keyframe, &mut data)?;
        Ok(EncodedFrame { data, keyframe })
    }

    /// Encodes one frame into `out` (cleared first, capacity reused) and returns whether it is
    /// a keyframe. `out` stays empty if the encoder skipped the frame.
    pub fn encode_into(
        &mut self,
        frame: &I420Frame,
        force_keyframe: bool,
        out: &mut Vec<u8>,
    ) -> Result<bool, CodecError> {
        if (frame.width, frame.height) != (self.cfg.width, self.cfg.height) {
            return Err(CodecError::FrameDimensions {
                width: self.cfg.width,
                height: self.cfg.height,
                got_width: frame.width,
                got_height: frame.height,
            });
        }
        if force_keyframe {
            self.inner.force_intra_frame();
        }
        let ts_ms = (self.frames as f64 * 1000.0 / f64::from(self.cfg.fps)) as u64;
        self.frames += 1;
        let bitstream = self
            .inner
            .encode_at(frame, openh264::Timestamp::from_millis(ts_ms))
            .map_err(|source| CodecError::H264 {
                op: "encode",
                source,
            })?;
        out.clear();
        bitstream.write_vec(out);
        use openh264::encoder::FrameType;
        Ok(matches!(
            bitstream.frame_type(),
            FrameType::IDR | FrameType::I
        ))
    }
}

/// H.264 decoder taking Annex-B access units.
pub struct H264Decoder {
    inner: openh264::decoder::Decoder,
}

impl std::fmt::Debug for H264Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H264Decoder").finish_non_exhaustive()
    }
}

impl H264Decoder {
    /// Creates a decoder.
    pub fn new() -> Result<Self, CodecError> {
        let api = openh264::OpenH264API::from_source();
        let inner = openh264::decoder::Decoder::with_api_config(
            api,
            openh264::decoder::DecoderConfig::new(),
        )
        .map_err(|source| CodecError::H264 {
            op: "create decoder",
            source,
        })?;
        Ok(Self { inner })
    }

    /// Decodes one Annex-B access unit. `Ok(None)` means no picture is ready yet (for example
    /// SPS/PPS alone); corrupt data gives an error, after which decoding resumes at the next
    /// keyframe.
    pub fn decode(&mut self, annexb: &[u8]) -> Result<Option<I420Frame>, CodecError> {
        let mut frame = I420Frame::black(0, 0);
        Ok(self.decode_into(annexb, &mut frame)?.then_some(frame))
    }

    /// Decodes one Annex-B access unit into `out` (resized as needed, allocation reused) and
    /// returns whether a picture was written.
    pub fn decode_into(&mut self, annexb: &[u8], out: &mut I420Frame) -> Result<bool, CodecError> {
        match self.decode_view(annexb)? {
            Some(view) => {
                view.copy_into(out);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Decodes one Annex-B access unit and lends the picture without copying it; the view is
    /// valid until the next call. The cheapest way to hand a picture to a renderer.
    pub fn decode_view(&mut self, annexb: &[u8]) -> Result<Option<I420View<'_>>, CodecError> {
        if annexb.is_empty() {
            return Ok(None);
        }
        let Some(yuv) = self
            .inner
            .decode(annexb)
            .map_err(|source| CodecError::H264 {
                op: "decode",
                source,
            })?
        else {
            return Ok(None);
        };
        let (width, height) = yuv.dimensions();
        let strides = yuv.strides();
        let fits = |plane: &[u8], stride: usize, w: usize, h: usize| {
            stride >= w && (h == 0 || plane.len() >= (h - 1) * stride + w)
        };
        let (cw, ch) = (width / 2, height / 2);
        if width % 2 != 0
            || height % 2 != 0
            || !fits(yuv.y(), strides.0, width, height)
            || !fits(yuv.u(), strides.1, cw, ch)
            || !fits(yuv.v(), strides.2, cw, ch)
        {
            return Err(CodecError::H264 {
                op: "decode",
                source: openh264::Error::msg("decoder returned a picture with unexpected geometry"),
            });
        }
        Ok(Some(I420View {
            width,
            height,
            yuv,
            strides,
        }))
    }
}

/// A decoded picture borrowed from the decoder: I420 planes with row strides.
pub struct I420View<'a> {
    width: usize,
    height: usize,
    yuv: openh264::decoder::DecodedYUV<'a>,
    strides: (usize, usize, usize),
}

impl std::fmt::Debug for I420View<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "I420View({}x{})", self.width, self.height)
    }
}

impl I420View<'_> {
    /// Width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }

    /// The luma plane, `strides().0` bytes per row.
    pub fn y(&self) -> &[u8] {
        self.yuv.y()
    }

    /// The Cb plane, `strides().1` bytes per row.
    pub fn u(&self) -> &[u8] {
        self.yuv.u()
    }

    /// The Cr plane, `strides().2` bytes per row.
    pub fn v(&self) -> &[u8] {
        self.yuv.v()
    }

    /// Row strides of the Y, U and V planes in bytes.
    pub fn strides(&self) -> (usize, usize, usize) {
        self.strides
    }

    /// Copies the picture into a packed frame (resized as needed, allocation reused).
    pub fn copy_into(&self, out: &mut I420Frame) {
        let (w, h) = (self.width, self.height);
        out.resize(w, h);
        copy_plane(self.yuv.y(), self.strides.0, &mut out.y, w, h);
        copy_plane(self.yuv.u(), self.strides.1, &mut out.u, w / 2, h / 2);
        copy_plane(self.yuv.v(), self.strides.2, &mut out.v, w / 2, h / 2);
    }

    /// The picture as a new packed frame.
    pub fn to_frame(&self) -> I420Frame {
        let mut f = I420Frame::black(self.width, self.height);
        self.copy_into(&mut f);
        f
    }
}

/// Copies a strided plane into a packed one, tolerating short sources.
fn copy_plane(src: &[u8], stride: usize, dst: &mut [u8], width: usize, height: usize) {
    for (row, line) in dst.chunks_exact_mut(width).take(height).enumerate() {
        if let Some(s) = src.get(row * stride..row * stride + width) {
            line.copy_from_slice(s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::pattern::TestPattern;
    use super::*;

    /// The test pattern with seeded noise on top: detail the encoder cannot squeeze, so its
    /// output follows the rate it is given instead of what the plain bars need.
    fn noisy(pattern: &mut TestPattern, rng: &mut u64) -> I420Frame {
        let mut f = pattern.next_frame();
        let (y, _, _) = f.planes_mut();
        for p in y.iter_mut() {
            *rng ^= *rng << 13;
            *rng ^= *rng >> 7;
            *rng ^= *rng << 17;
            *p = p.wrapping_add((*rng % 48) as u8);
        }
        f
    }

    /// Bytes per frame over `n` frames at the encoder's current rate, keyframes left out.
    fn mean_size(enc: &mut H264Encoder, pattern: &mut TestPattern, rng: &mut u64, n: usize) -> f64 {
        let mut total = 0usize;
        let mut counted = 0usize;
        for _ in 0..n {
            let e = enc.encode(&noisy(pattern, rng), false).unwrap();
            if !e.keyframe {
                total += e.data.len();
                counted += 1;
            }
        }
        total as f64 / counted.max(1) as f64
    }

    #[test]
    fn encoded_size_follows_set_rate() {
        let mut enc = H264Encoder::new(H264Config {
            width: 320,
            height: 240,
            bitrate_bps: 800_000,
            fps: 30.0,
        })
        .unwrap();
        let mut pattern = TestPattern::new(320, 240);
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let high = mean_size(&mut enc, &mut pattern, &mut rng, 60);
        assert!(enc.set_rate(200_000, 30.0).unwrap());
        assert!(
            !enc.set_rate(200_000, 30.0).unwrap(),
            "same rate: no change"
        );
        let first = enc.encode(&noisy(&mut pattern, &mut rng), false).unwrap();
        assert!(
            !first.keyframe,
            "a bitrate change is applied in place: no keyframe"
        );
        let low = mean_size(&mut enc, &mut pattern, &mut rng, 60);
        assert!(enc.set_rate(800_000, 30.0).unwrap());
        let back = mean_size(&mut enc, &mut pattern, &mut rng, 60);
        // 800 kbit/s at 30 fps is 3333 bytes a frame, 200 kbit/s 833.
        assert!(
            low * 2.5 < high,
            "200 kbit/s: {low:.0} B/frame, 800 kbit/s: {high:.0}"
        );
        assert!(low * 2.5 < back, "back at 800 kbit/s: {back:.0} B/frame");
        assert!(
            matches!(enc.set_rate(5_000, 30.0), Err(CodecError::InvalidConfig(_))),
            "a rate below 10 kbit/s is refused"
        );
        assert_eq!(enc.config().bitrate_bps, 800_000);
        // A frame-rate change needs a fresh encoder: it starts with a keyframe.
        assert!(enc.set_rate(800_000, 15.0).unwrap());
        let next = enc.encode(&noisy(&mut pattern, &mut rng), false).unwrap();
        assert!(next.keyframe, "a fresh encoder starts with a keyframe");
    }

    fn round_trip(width: usize, height: usize) {
        let cfg = H264Config {
            width,
            height,
            ..H264Config::default()
        };
        let mut enc = H264Encoder::new(cfg).unwrap();
        let mut dec = H264Decoder::new().unwrap();
        let mut pattern = TestPattern::new(width, height);
        let mut decoded_count = 0;
        for n in 0..15 {
            let frame = pattern.next_frame();
            let encoded = enc.encode(&frame, n == 10).unwrap();
            assert!(!encoded.data.is_empty(), "frame {n} produced no data");
            assert!(
                encoded.data.starts_with(&[0, 0, 0, 1]) || encoded.data.starts_with(&[0, 0, 1])
            );
            assert_eq!(encoded.keyframe, n == 0 || n == 10, "frame {n}");
            if let Some(out) = dec.decode(&encoded.data).unwrap() {
                decoded_count += 1;
                assert_eq!((out.width(), out.height()), (width, height));
                let psnr = out.psnr_y(&frame);
                assert!(psnr > 28.0, "frame {n}: PSNR {psnr:.1} dB");
            }
        }
        assert_eq!(
            decoded_count, 15,
            "every access unit must decode to a picture at once"
        );
    }

    #[test]
    fn round_trip_small() {
        round_trip(176, 144);
    }

    #[test]
    fn round_trip_vga() {
        round_trip(640, 480);
    }

    #[test]
    fn view_and_copy_agree() {
        let (w, h) = (96, 64);
        let mut enc = H264Encoder::new(H264Config {
            width: w,
            height: h,
            ..H264Config::default()
        })
        .unwrap();
        let frame = TestPattern::new(w, h).next_frame();
        let au = enc.encode(&frame, true).unwrap().data;
        let mut a = H264Decoder::new().unwrap();
        let mut b = H264Decoder::new().unwrap();
        let copied = a.decode(&au).unwrap().unwrap();
        let view = b.decode_view(&au).unwrap().unwrap();
        assert_eq!((view.width(), view.height()), (w, h));
        assert!(view.strides().0 >= w);
        assert_eq!(view.to_frame(), copied);
        assert!(copied.psnr_y(&frame) > 28.0);
    }

    #[test]
    fn wrong_size_and_bad_config_are_errors() {
        let mut enc = H264Encoder::new(H264Config {
            width: 64,
            height: 48,
            ..H264Config::default()
        })
        .unwrap();
        let frame = I420Frame::black(32, 32);
        assert!(matches!(
            enc.encode(&frame, false),
            Err(CodecError::FrameDimensions { .. })
        ));
        assert!(H264Encoder::new(H264Config {
            width: 63,
            ..H264Config::default()
        })
        .is_err());
        assert!(H264Encoder::new(H264Config {
            fps: 0.0,
            ..H264Config::default()
        })
        .is_err());
        assert!(I420Frame::from_planes(4, 4, vec![0; 16], vec![0; 4], vec![0; 3]).is_err());
        assert!(I420Frame::from_planes(4, 4, vec![0; 16], vec![0; 4], vec![0; 4]).is_ok());
    }

    #[test]
    fn garbage_does_not_panic_and_decoder_recovers() {
        let mut dec = H264Decoder::new().unwrap();
        let garbage: Vec<Vec<u8>> = vec![
            vec![],
            vec![0, 0, 0, 1],
            vec![0, 0, 0, 1, 0x65, 0xff, 0x00, 0x12],
            vec![0, 0, 1, 0x67, 0x42, 0xff, 0xff, 0xff, 0xff],
            (0..500u32).map(|i| (i * 7919 % 251) as u8).collect(),
        ];
        for g in &garbage {
            let _ = dec.decode(g);
        }
        let mut enc = H264Encoder::new(H264Config {
            width: 64,
            height: 48,
            ..H264Config::default()
        })
        .unwrap();
        let frame = TestPattern::new(64, 48).next_frame();
        let key = enc.encode(&frame, true).unwrap();
        assert!(key.keyframe);
        assert!(
            dec.decode(&key.data).unwrap().is_some(),
            "decoder must recover at a keyframe"
        );
    }
}
