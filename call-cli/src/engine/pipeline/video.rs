//! Video pipelines: I420 → H.264 for the local track ([`VideoSendPipeline`]), RTP → frame buffer
//! → H.264 decoder → I420 for each remote one ([`VideoReceivePipeline`]). Sans-IO like every
//! pipeline (see [`super`]): encode and decode times are measured by the shell and passed in.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use media::codec::h264::{H264Config, H264Decoder, H264Encoder, I420Frame};
use media::codec::marker::{read_marker, Marker};
use media::codec::CodecError;
use media::jitter::video::{Feedback, VideoFrameBuffer, VideoPacket};
use media::session::ReceivedRtp;
use media::stats::{VideoReceiveStats, VideoSendStats};

/// How long after the first packet (or after a decode error) the receiver waits for a decodable
/// picture before asking for a keyframe, and the least time between two such requests.
pub const KEYFRAME_WAIT: Duration = Duration::from_millis(300);

/// The receive pipeline ignores a keyframe request of the frame buffer this soon after one of
/// its own (one PLI answers both).
const REQUEST_DEDUP: Duration = Duration::from_millis(100);

/// Glass-to-glass samples kept for the percentiles (about 20 s at 30 fps).
const LATENCY_WINDOW: usize = 600;

/// Ages above this are not latencies but clocks that disagree (a sender on another machine).
const MAX_PLAUSIBLE_AGE_US: u64 = 10_000_000;

/// Frame intervals the freeze detector averages over (W3C webrtc-stats: the last 30 frames).
const FREEZE_WINDOW: usize = 30;

/// A starting bitrate for `width` x `height` at `fps`: 0.1 bit per pixel, between 150 kbit/s
/// and 2.5 Mbit/s (about 900 kbit/s at 640x480@30). Congestion control moves it from there.
pub fn default_bitrate(width: usize, height: usize, fps: u32) -> u32 {
    let bps = width as f64 * height as f64 * f64::from(fps.max(1)) * 0.1;
    bps.clamp(150_000.0, 2_500_000.0) as u32
}

/// One encoded access unit, ready for every peer's session.
#[derive(Debug, Clone)]
pub struct EncodedVideo {
    /// The access unit, Annex-B; cloning it for each peer is cheap.
    pub data: Bytes,
    /// Whether it is an IDR picture (a decoder can start here).
    pub keyframe: bool,
    /// The RTP timestamp step after this frame (1/fps, plus any frames rate control skipped).
    pub duration: Duration,
    /// When its picture was captured.
    pub captured: Instant,
    /// Its size in pixels.
    pub width: usize,
    /// Its height in pixels.
    pub height: usize,
}

/// Local video track: I420 pictures in, H.264 access units out. One per call, shared by all
/// peers (the call fans each frame out), so a mesh call encodes once; a keyframe request from
/// any peer gives every peer the same IDR.
pub struct VideoSendPipeline {
    encoder: H264Encoder,
    cfg: H264Config,
    force_keyframe: bool,
    /// A bitrate asked for that the encoder does not run at yet (applied with the next frame).
    pending_bitrate: Option<u32>,
    /// Media time of frames rate control skipped, added to the next frame's step.
    skipped: Duration,
    buf: Vec<u8>,
    out: VecDeque<EncodedVideo>,
    stats: VideoSendStats,
    encode_time: Duration,
    /// When the frames of the last second were captured (for the frame rate).
    recent: VecDeque<Instant>,
}

impl std::fmt::Debug for VideoSendPipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VideoSendPipeline")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

impl VideoSendPipeline {
    /// A pipeline encoding `cfg.width` x `cfg.height` at `cfg.fps` and `cfg.bitrate_bps`.
    pub fn new(cfg: H264Config) -> Result<Self, CodecError> {
        Ok(Self {
            encoder: H264Encoder::new(cfg.clone())?,
            stats: VideoSendStats {
                target_bitrate: cfg.bitrate_bps,
                ..VideoSendStats::default()
            },
            cfg,
            force_keyframe: false,
            pending_bitrate: None,
            skipped: Duration::ZERO,
            buf: Vec::new(),
            out: VecDeque::new(),
            encode_time: Duration::ZERO,
            recent: VecDeque::new(),
        })
    }

    /// Encodes one picture captured at `now`. A picture of another size than the encoder's
    /// restarts the encoder at that size (the next frame is then an IDR).
    pub fn push(&mut self, frame: &I420Frame, now: Instant) -> Result<(), CodecError> {
        self.stats.frames_captured += 1;
        let resized = (frame.width(), frame.height()) != (self.cfg.width, self.cfg.height);
        if resized {
            self.restart_encoder(frame.width(), frame.height())?;
        }
        if let Some(bps) = self.pending_bitrate.take() {
            // In place, without a keyframe (a frame-rate change would restart the encoder).
            self.encoder.set_rate(bps, self.cfg.fps)?;
            self.cfg.bitrate_bps = bps;
        }
        let step = Duration::from_secs_f64(1.0 / f64::from(self.cfg.fps));
        let keyframe = self.encoder.encode_into(
            frame,
            std::mem::take(&mut self.force_keyframe),
            &mut self.buf,
        )?;
        if self.buf.is_empty() {
            // Rate control skipped it: the next frame's RTP time must still cover it.
            self.skipped += step;
            return Ok(());
        }
        self.stats.frames_encoded += 1;
        self.stats.key_frames_encoded += u64::from(keyframe);
        self.stats.frame_width = frame.width() as u32;
        self.stats.frame_height = frame.height() as u32;
        self.recent.push_back(now);
        while self
            .recent
            .front()
            .is_some_and(|&t| now.saturating_duration_since(t) >= Duration::from_secs(1))
        {
            self.recent.pop_front();
        }
        self.out.push_back(EncodedVideo {
            data: Bytes::copy_from_slice(&self.buf),
            keyframe,
            duration: step + std::mem::take(&mut self.skipped),
            captured: now,
            width: frame.width(),
            height: frame.height(),
        });
        Ok(())
    }

    /// A captured picture deliberately not encoded (congestion control lowered the frame rate
    /// or paused video): the next frame's RTP time still covers it.
    pub fn skip_frame(&mut self) {
        self.stats.frames_captured += 1;
        self.skipped += Duration::from_secs_f64(1.0 / f64::from(self.cfg.fps));
    }

    /// Makes the next frame an IDR (a peer sent PLI or FIR, or a new peer joined).
    pub fn request_keyframe(&mut self) {
        self.force_keyframe = true;
    }

    /// The bitrate congestion control wants, bits per second: the running encoder takes it
    /// with the next frame, without a keyframe (`H264Encoder::set_rate`).
    pub fn set_bitrate(&mut self, bps: u32) {
        self.stats.target_bitrate = bps;
        self.pending_bitrate = (bps != self.cfg.bitrate_bps).then_some(bps);
    }

    /// The next encoded frame to send, oldest first.
    pub fn poll(&mut self) -> Option<EncodedVideo> {
        self.out.pop_front()
    }

    /// Adds the time the shell measured around one [`Self::push`].
    pub fn add_encode_time(&mut self, took: Duration) {
        self.encode_time += took;
    }

    /// The counters so far; what happens after encoding (frames sent, PLI, NACK) is the
    /// caller's to fill.
    pub fn stats(&self) -> VideoSendStats {
        let mut s = self.stats.clone();
        s.frames_per_second = self.recent.len() as f64;
        s.total_encode_time = self.encode_time.as_secs_f64();
        if s.frames_encoded > 0 {
            s.encode_ms_per_frame = s.total_encode_time * 1e3 / s.frames_encoded as f64;
        }
        s
    }

    fn restart_encoder(&mut self, width: usize, height: usize) -> Result<(), CodecError> {
        let cfg = H264Config {
            width,
            height,
            bitrate_bps: self.pending_bitrate.take().unwrap_or(self.cfg.bitrate_bps),
            ..self.cfg.clone()
        };
        tracing::debug!(?cfg, "restarting the video encoder");
        self.encoder = H264Encoder::new(cfg.clone())?;
        self.cfg = cfg;
        // A new encoder starts with an IDR anyway.
        self.force_keyframe = false;
        Ok(())
    }
}

/// One decoded remote picture.
#[derive(Debug, Clone)]
pub struct DecodedVideo {
    /// The picture.
    pub frame: I420Frame,
    /// The frame number and capture time burned in by a `pattern` source, if readable.
    pub marker: Option<Marker>,
    /// Capture (the marker's Unix time) to the end of decoding, when the marker was read.
    pub glass_to_glass: Option<Duration>,
    /// The frame's RTP timestamp (90 kHz), for lip sync.
    pub rtp_timestamp: u32,
}

/// What the receive pipeline asks the sender for (the call sends it as RTCP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VideoFeedback {
    /// Retransmit these packets (generic NACK).
    Nack(Vec<u16>),
    /// Send a keyframe (PLI).
    KeyframeRequest,
}

/// Remote video track: RTP packets with their arrival times in, decoded pictures out, through
/// the frame buffer ([`VideoFrameBuffer`]: NACK, drop until keyframe) and the H.264 decoder.
/// Asks for a keyframe when no picture decodes within [`KEYFRAME_WAIT`] of the first packet and
/// when decoding fails (then frames are dropped until the keyframe). Keeps the receive
/// counters, and the glass-to-glass latency of pictures that carry a marker.
pub struct VideoReceivePipeline {
    buffer: VideoFrameBuffer,
    decoder: H264Decoder,
    /// The same moment on the shell's monotonic clock and as Unix microseconds: turns `now` into
    /// the wall-clock time marker capture times are on.
    wall: (Instant, u64),
    first_packet: Option<Instant>,
    decoded_any: bool,
    /// A decode failed: drop frames until a keyframe.
    await_keyframe: bool,
    request_due: Option<Instant>,
    last_request: Option<Instant>,
    stats: VideoReceiveStats,
    bytes_received: u64,
    frames_skipped: u64,
    decode_time: Duration,
    ages_us: VecDeque<u64>,
    recent: VecDeque<Instant>,
    intervals: VecDeque<Duration>,
    last_picture: Option<Instant>,
}

impl std::fmt::Debug for VideoReceivePipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VideoReceivePipeline")
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl VideoReceivePipeline {
    /// A pipeline whose clock reads `unix_us` (Unix microseconds) at `now`.
    pub fn new(now: Instant, unix_us: u64) -> Result<Self, CodecError> {
        Ok(Self {
            buffer: VideoFrameBuffer::default(),
            decoder: H264Decoder::new()?,
            wall: (now, unix_us),
            first_packet: None,
            decoded_any: false,
            await_keyframe: false,
            request_due: None,
            last_request: None,
            stats: VideoReceiveStats::default(),
            bytes_received: 0,
            frames_skipped: 0,
            decode_time: Duration::ZERO,
            ages_us: VecDeque::new(),
            recent: VecDeque::new(),
            intervals: VecDeque::new(),
            last_picture: None,
        })
    }

    /// One packet that arrived at `now`.
    pub fn push(&mut self, pkt: &ReceivedRtp, now: Instant) {
        self.stats.packets_received += 1;
        self.bytes_received += pkt.payload.len() as u64;
        if self.first_packet.is_none() {
            self.first_packet = Some(now);
            self.request_due = now.checked_add(KEYFRAME_WAIT);
        }
        let packet = VideoPacket {
            seq: pkt.seq,
            timestamp: pkt.timestamp,
            marker: pkt.marker,
            payload: pkt.payload.clone(),
        };
        // Malformed payloads are counted by the buffer and make their frame undecodable.
        let _ = self.buffer.insert(packet, now);
    }

    /// Uses the measured round-trip time for NACK retries.
    pub fn set_rtt(&mut self, rtt: Duration) {
        self.buffer.set_rtt(rtt);
    }

    /// The next decoded picture, if one is ready at `now`. Call until `None` after every
    /// [`Self::push`] and at [`Self::poll_timeout`].
    pub fn poll_frame(&mut self, now: Instant) -> Option<DecodedVideo> {
        while let Some(frame) = self.buffer.poll_frame(now) {
            self.stats.frames_received += 1;
            if self.await_keyframe && !frame.keyframe {
                self.frames_skipped += 1;
                continue;
            }
            match self.decoder.decode(&frame.data) {
                Ok(Some(picture)) => {
                    self.await_keyframe = false;
                    self.decoded_any = true;
                    self.request_due = None;
                    self.stats.key_frames_decoded += u64::from(frame.keyframe);
                    return Some(self.on_picture(picture, frame.timestamp, now));
                }
                // Parameter sets alone: nothing to show yet.
                Ok(None) => {}
                Err(e) => {
                    tracing::debug!(error = %e, "video frame did not decode; asking for a keyframe");
                    self.stats.decode_errors += 1;
                    self.frames_skipped += 1;
                    self.await_keyframe = true;
                    self.request_due = Some(self.request_due.map_or(now, |d| d.min(now)));
                }
            }
        }
        None
    }

    /// The next feedback to send, if any is due at `now`: keyframe requests first, then NACKs.
    pub fn poll_feedback(&mut self, now: Instant) -> Option<VideoFeedback> {
        if self.own_request_due(now) {
            return Some(self.keyframe_request(now));
        }
        while let Some(feedback) = self.buffer.poll_feedback(now) {
            match feedback {
                Feedback::Nack(seqs) => {
                    self.stats.nack_count += 1;
                    return Some(VideoFeedback::Nack(seqs));
                }
                Feedback::Pli
                    if self
                        .last_request
                        .is_some_and(|t| now.saturating_duration_since(t) < REQUEST_DEDUP) => {}
                Feedback::Pli => return Some(self.keyframe_request(now)),
            }
        }
        None
    }

    /// When the pipeline next needs polling without a new packet; `None` when only a packet can
    /// change anything.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.buffer.poll_timeout(), self.request_due) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Payload bytes received so far (for the receive bitrate).
    pub fn bytes_received(&self) -> u64 {
        self.bytes_received
    }

    /// Adds the time the shell measured around a [`Self::poll_frame`] that gave a picture.
    pub fn add_decode_time(&mut self, took: Duration) {
        self.decode_time += took;
    }

    /// The counters at `now`.
    pub fn stats(&self, now: Instant) -> VideoReceiveStats {
        let mut s = self.stats.clone();
        let buffer = self.buffer.stats();
        s.frames_dropped = buffer.frames_dropped + self.frames_skipped;
        s.frames_per_second = self
            .recent
            .iter()
            .filter(|&&t| now.saturating_duration_since(t) < Duration::from_secs(1))
            .count() as f64;
        s.total_decode_time = self.decode_time.as_secs_f64();
        if s.frames_decoded > 0 {
            s.decode_ms_per_frame = s.total_decode_time * 1e3 / s.frames_decoded as f64;
        }
        let mut ages: Vec<u64> = self.ages_us.iter().copied().collect();
        ages.sort_unstable();
        s.glass_to_glass_p50_ms = nearest_rank(&ages, 50).map(|us| us as f64 / 1e3);
        s.glass_to_glass_p95_ms = nearest_rank(&ages, 95).map(|us| us as f64 / 1e3);
        s
    }

    fn own_request_due(&self, now: Instant) -> bool {
        (self.await_keyframe || !self.decoded_any) && self.request_due.is_some_and(|d| d <= now)
    }

    fn keyframe_request(&mut self, now: Instant) -> VideoFeedback {
        self.stats.pli_count += 1;
        self.last_request = Some(now);
        if self.await_keyframe || !self.decoded_any {
            self.request_due = now.checked_add(KEYFRAME_WAIT);
        }
        VideoFeedback::KeyframeRequest
    }

    fn on_picture(&mut self, frame: I420Frame, rtp_timestamp: u32, now: Instant) -> DecodedVideo {
        self.stats.frames_decoded += 1;
        self.stats.frame_width = frame.width() as u32;
        self.stats.frame_height = frame.height() as u32;
        self.count_freeze(now);
        self.recent.push_back(now);
        while self
            .recent
            .front()
            .is_some_and(|&t| now.saturating_duration_since(t) >= Duration::from_secs(1))
        {
            self.recent.pop_front();
        }
        let marker = read_marker(frame.y(), frame.width(), frame.height(), frame.width()).ok();
        let glass_to_glass = marker.and_then(|m| {
            let age = m.age_us(self.unix_us(now));
            (age <= MAX_PLAUSIBLE_AGE_US).then(|| {
                if self.ages_us.len() == LATENCY_WINDOW {
                    self.ages_us.pop_front();
                }
                self.ages_us.push_back(age);
                Duration::from_micros(age)
            })
        });
        DecodedVideo {
            frame,
            marker,
            glass_to_glass,
            rtp_timestamp,
        }
    }

    /// W3C freeze: the gap since the last picture is above max(3 × mean, mean + 150 ms) of the
    /// last [`FREEZE_WINDOW`] intervals.
    fn count_freeze(&mut self, now: Instant) {
        let Some(last) = self.last_picture.replace(now) else {
            return;
        };
        let gap = now.saturating_duration_since(last);
        if !self.intervals.is_empty() {
            let mean = self.intervals.iter().sum::<Duration>() / self.intervals.len() as u32;
            if gap > (mean * 3).max(mean + Duration::from_millis(150)) {
                self.stats.freeze_count += 1;
                self.stats.total_freezes_duration += gap.as_secs_f64();
            }
        }
        if self.intervals.len() == FREEZE_WINDOW {
            self.intervals.pop_front();
        }
        self.intervals.push_back(gap);
    }

    fn unix_us(&self, now: Instant) -> u64 {
        let (at, unix) = self.wall;
        match now.checked_duration_since(at) {
            Some(d) => unix + d.as_micros() as u64,
            None => unix.saturating_sub(at.duration_since(now).as_micros() as u64),
        }
    }
}

/// The nearest-rank percentile `p` of sorted `values`.
fn nearest_rank(sorted: &[u64], p: usize) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

#[cfg(test)]
mod tests;
