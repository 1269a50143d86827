//! The call's local video: a thread that paces the source at `fps` (a camera blocks until it
//! has a picture) and runs the one send pipeline, so neither capture nor encoding ever holds up
//! the call loop's audio; the loop fans each encoded frame out to every peer. Also the
//! conversions between `native`'s [`VideoFrame`] and `media`'s [`I420Frame`].

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use media::codec::h264::{H264Config, I420Frame};
use media::codec::CodecError;
use media::stats::VideoSendStats;
use native::video::{VideoFrame, VideoSource};
use tokio::sync::mpsc;

use super::pipeline::{default_bitrate, EncodedVideo, VideoSendPipeline};
use crate::call::VideoOptions;

/// Captures waiting between the thread and the loop. Encoded frames are never dropped (a lost
/// frame would break the chain of P-frames): when the loop is behind, the thread waits, and
/// its pacing skips the pictures it could not take.
const CAPTURE_QUEUE: usize = 2;

/// One captured picture, as the loop gets it.
pub(crate) struct Captured {
    /// The picture for the self-view, when one is shown.
    pub(crate) self_view: Option<VideoFrame>,
    /// When it was taken.
    pub(crate) at: Instant,
    /// The picture encoded (empty when no peer receives video or rate control skipped it).
    pub(crate) encoded: Vec<EncodedVideo>,
}

/// What the loop tells the capture thread, and what the thread reports back.
#[derive(Default)]
struct Control {
    stop: AtomicBool,
    /// Some peer receives video: encode.
    encode: AtomicBool,
    keyframe: AtomicBool,
    /// A new target bitrate; 0 = unchanged.
    bitrate: AtomicU32,
    /// Congestion control's frame size and rate (0 = as asked), and whether video is paused.
    rung_width: AtomicU32,
    rung_height: AtomicU32,
    rung_fps: AtomicU32,
    paused: AtomicBool,
    /// Pictures the source gave that were not taken because the loop was behind.
    late: AtomicU64,
    stats: Mutex<VideoSendStats>,
}

/// The local video track, seen from the loop.
pub(crate) struct LocalVideo {
    frames: mpsc::Receiver<Captured>,
    /// The capture thread ended (end of file, a failed camera): no more pictures.
    pub(crate) done: bool,
    control: Arc<Control>,
    /// Encoded frames handed to at least one peer's session.
    pub(crate) frames_sent: u64,
    /// Feedback counts the pipeline does not see (W3C names in [`VideoSendStats`]).
    pub(crate) pli_count: u64,
    pub(crate) fir_count: u64,
    pub(crate) nack_count: u64,
}

impl LocalVideo {
    /// Starts capturing from `source` at `opts.fps` with an encoder for `opts`' size (created
    /// here, so a codec error fails the call at once). `self_view`: also hand the loop each
    /// raw picture.
    pub(crate) fn start(
        source: Box<dyn VideoSource>,
        opts: &VideoOptions,
        self_view: bool,
    ) -> Result<Self, CodecError> {
        let (width, height) = (opts.width as usize, opts.height as usize);
        let pipeline = VideoSendPipeline::new(H264Config {
            width,
            height,
            // No faster than congestion control's start estimate allows video (before any
            // feedback, a faster start only fills the first bottleneck's queue).
            bitrate_bps: default_bitrate(width, height, opts.fps).min(start_video_bps()),
            fps: opts.fps as f32,
        })?;
        let control = Arc::new(Control::default());
        let frames = spawn_capture(source, pipeline, opts.fps, self_view, Arc::clone(&control));
        Ok(Self {
            frames,
            done: false,
            control,
            frames_sent: 0,
            pli_count: 0,
            fir_count: 0,
            nack_count: 0,
        })
    }

    /// The next captured picture; `None` once the source is done.
    pub(crate) async fn next(&mut self) -> Option<Captured> {
        self.frames.recv().await
    }

    /// Encode from now on (a peer receives video).
    pub(crate) fn start_encoding(&self) {
        self.control.encode.store(true, Ordering::Relaxed);
    }

    /// Makes the next encoded frame an IDR, for every peer.
    pub(crate) fn request_keyframe(&self) {
        self.control.keyframe.store(true, Ordering::Relaxed);
    }

    /// Asks the encoder for `bps` (see [`VideoSendPipeline::set_bitrate`]); congestion control
    /// drives it.
    pub(crate) fn set_bitrate(&self, bps: u32) {
        self.control.bitrate.store(bps.max(1), Ordering::Relaxed);
    }

    /// Sends at most this frame size and rate (`None`: pause video, audio goes on), as
    /// congestion control's ladder says.
    pub(crate) fn set_rung(&self, rung: Option<media::bwe::VideoRung>) {
        let c = &self.control;
        match rung {
            Some(r) => {
                c.rung_width.store(r.width, Ordering::Relaxed);
                c.rung_height.store(r.height, Ordering::Relaxed);
                c.rung_fps.store(r.fps, Ordering::Relaxed);
                if c.paused.swap(false, Ordering::Relaxed) {
                    // Receivers froze on the last picture; restart them cleanly.
                    c.keyframe.store(true, Ordering::Relaxed);
                }
            }
            None => c.paused.store(true, Ordering::Relaxed),
        }
    }

    /// The send statistics, with the feedback counts and `retransmitted` (from the sessions).
    pub(crate) fn stats(&self, retransmitted: u64) -> VideoSendStats {
        let encoder = self
            .control
            .stats
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default();
        VideoSendStats {
            frames_sent: self.frames_sent,
            pli_count: self.pli_count,
            fir_count: self.fir_count,
            nack_count: self.nack_count,
            retransmitted_packets_sent: retransmitted,
            ..encoder
        }
    }

    /// Pictures the capture thread could not take because the loop was behind.
    pub(crate) fn capture_late(&self) -> u64 {
        self.control.late.load(Ordering::Relaxed)
    }
}

impl Drop for LocalVideo {
    fn drop(&mut self) {
        // The thread may be blocked in a camera read: it sees the flag (or the closed channel)
        // after that read and ends; nobody waits for it.
        self.control.stop.store(true, Ordering::Relaxed);
    }
}

/// Pulls pictures from `source` every `1/fps` on a thread of its own, timestamps them, encodes
/// them while `control.encode` is set, and hands them to the loop.
fn spawn_capture(
    mut source: Box<dyn VideoSource>,
    mut pipeline: VideoSendPipeline,
    fps: u32,
    self_view: bool,
    control: Arc<Control>,
) -> mpsc::Receiver<Captured> {
    let (tx, rx) = mpsc::channel(CAPTURE_QUEUE);
    let period = Duration::from_secs_f64(1.0 / f64::from(fps.max(1)));
    let spawned = std::thread::Builder::new()
        .name("video-capture".into())
        .spawn(move || {
            tracing::info!(source = %source.describe(), "video capture started");
            let mut next = Instant::now();
            let mut thin = Thinning::default();
            while !control.stop.load(Ordering::Relaxed) {
                let now = Instant::now();
                if next > now {
                    std::thread::sleep(next - now);
                }
                // After a stall (a slow camera, a busy loop), go on from now instead of bursting.
                let due = next + period;
                next = due.max(Instant::now());
                if next > due {
                    control.late.fetch_add(1, Ordering::Relaxed);
                }
                let frame = match source.next_frame() {
                    Ok(Some(frame)) => frame,
                    Ok(None) => {
                        tracing::info!("video source ended");
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "video source failed; no more video is sent");
                        break;
                    }
                };
                let at = Instant::now();
                let view = self_view.then(|| frame.clone());
                let encoded = if thin.take(&control, fps) {
                    encode(&mut pipeline, &control, frame, at)
                } else {
                    if control.encode.load(Ordering::Relaxed) {
                        pipeline.skip_frame();
                    }
                    Vec::new()
                };
                let captured = Captured {
                    self_view: view,
                    at,
                    encoded,
                };
                if captured.self_view.is_none() && captured.encoded.is_empty() {
                    continue;
                }
                if tx.blocking_send(captured).is_err() {
                    break; // the call is over
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "could not start the video capture thread; no video is sent");
    }
    rx
}

/// Runs one picture through the send pipeline if some peer receives video.
fn encode(
    pipeline: &mut VideoSendPipeline,
    control: &Control,
    frame: VideoFrame,
    at: Instant,
) -> Vec<EncodedVideo> {
    if !control.encode.load(Ordering::Relaxed) {
        return Vec::new();
    }
    if control.keyframe.swap(false, Ordering::Relaxed) {
        pipeline.request_keyframe();
    }
    let bps = control.bitrate.swap(0, Ordering::Relaxed);
    if bps > 0 {
        pipeline.set_bitrate(bps);
    }
    let frame = scaled_to_rung(frame, control);
    let Some(picture) = to_i420(frame) else {
        tracing::warn!("the video source gave a broken picture; skipped");
        return Vec::new();
    };
    let started = Instant::now();
    match pipeline.push(&picture, at) {
        Ok(()) => pipeline.add_encode_time(started.elapsed()),
        Err(e) => tracing::warn!(error = %e, "video frame not encoded"),
    }
    if let Ok(mut stats) = control.stats.lock() {
        *stats = pipeline.stats();
    }
    std::iter::from_fn(|| pipeline.poll()).collect()
}

/// `native`'s picture as the encoder's (planes moved, not copied). Pictures whose planes do
/// not fit their size (a broken source) give `None`.
pub(crate) fn to_i420(frame: VideoFrame) -> Option<I420Frame> {
    I420Frame::from_planes(
        frame.width as usize,
        frame.height as usize,
        frame.y,
        frame.u,
        frame.v,
    )
    .ok()
}

/// A decoded picture as a sink takes it.
pub(crate) fn to_video_frame(frame: &I420Frame) -> VideoFrame {
    VideoFrame {
        width: frame.width() as u32,
        height: frame.height() as u32,
        y: frame.y().to_vec(),
        u: frame.u().to_vec(),
        v: frame.v().to_vec(),
    }
}

/// The video share of congestion control's start estimate, bits per second.
fn start_video_bps() -> u32 {
    let cc = media::bwe::CongestionConfig::default();
    u32::try_from(cc.bwe.start.saturating_sub(cc.audio).bps()).unwrap_or(u32::MAX)
}

/// Which captured pictures congestion control lets through: all of them normally, none while
/// paused, and an even share of them when its frame rate is below the capture rate.
#[derive(Default)]
struct Thinning {
    credit: f64,
}

impl Thinning {
    fn take(&mut self, control: &Control, capture_fps: u32) -> bool {
        if control.paused.load(Ordering::Relaxed) {
            return false;
        }
        let rung = control.rung_fps.load(Ordering::Relaxed);
        if rung == 0 || rung >= capture_fps {
            self.credit = 0.0;
            return true;
        }
        self.credit += f64::from(rung) / f64::from(capture_fps.max(1));
        if self.credit >= 1.0 {
            self.credit -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The picture scaled down to congestion control's frame size, when that is smaller.
fn scaled_to_rung(frame: VideoFrame, control: &Control) -> VideoFrame {
    let (w, h) = (
        control.rung_width.load(Ordering::Relaxed),
        control.rung_height.load(Ordering::Relaxed),
    );
    if w == 0 || h == 0 || (w >= frame.width && h >= frame.height) {
        frame
    } else {
        frame.scaled(w.min(frame.width) & !1, h.min(frame.height) & !1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thinning_lets_through_an_even_share_and_nothing_while_paused() {
        let control = Control::default();
        let mut thin = Thinning::default();
        assert!(
            (0..30).all(|_| thin.take(&control, 30)),
            "no rung: every picture"
        );
        control.rung_fps.store(10, Ordering::Relaxed);
        let taken: Vec<bool> = (0..30).map(|_| thin.take(&control, 30)).collect();
        assert_eq!(taken.iter().filter(|&&t| t).count(), 10);
        assert!(
            taken
                .windows(3)
                .all(|w| w.iter().filter(|&&t| t).count() == 1),
            "{taken:?}"
        );
        control.paused.store(true, Ordering::Relaxed);
        assert!((0..30).all(|_| !thin.take(&control, 30)));
    }

    #[test]
    fn pictures_are_scaled_down_to_the_rung_never_up() {
        let control = Control::default();
        let frame = VideoFrame::filled(640, 480, [100, 128, 128]);
        assert_eq!(scaled_to_rung(frame.clone(), &control).width, 640);
        control.rung_width.store(320, Ordering::Relaxed);
        control.rung_height.store(240, Ordering::Relaxed);
        let small = scaled_to_rung(frame.clone(), &control);
        assert_eq!((small.width, small.height), (320, 240));
        assert!(small.is_consistent());
        control.rung_width.store(1280, Ordering::Relaxed);
        control.rung_height.store(720, Ordering::Relaxed);
        assert_eq!(scaled_to_rung(frame, &control).width, 640);
    }
}
