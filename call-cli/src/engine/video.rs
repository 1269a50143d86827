//! The call's local video: the capture thread that paces the source at `fps` (a camera blocks
//! until it has a picture, so it never runs on the call loop), and the one send pipeline whose
//! frames the loop fans out to every peer. Also the conversions between `native`'s
//! [`VideoFrame`] and `media`'s [`I420Frame`].

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use media::codec::h264::{H264Config, I420Frame};
use media::codec::CodecError;
use media::stats::VideoSendStats;
use native::video::{VideoFrame, VideoSource};
use tokio::sync::mpsc;

use super::pipeline::{default_bitrate, VideoSendPipeline};
use crate::call::VideoOptions;

/// Pictures waiting between the capture thread and the loop; a slow loop drops the oldest
/// picture's successors rather than falling behind.
const CAPTURE_QUEUE: usize = 2;

/// One captured picture.
pub(crate) struct Captured {
    pub(crate) frame: VideoFrame,
    pub(crate) at: Instant,
}

/// The local video track: the capture thread's output and the shared encoder.
pub(crate) struct LocalVideo {
    frames: mpsc::Receiver<Captured>,
    /// The capture thread ended (end of file, a failed camera): no more pictures.
    pub(crate) done: bool,
    stop: Arc<AtomicBool>,
    dropped: Arc<AtomicU64>,
    pub(crate) pipeline: VideoSendPipeline,
    /// Feedback counts the pipeline does not see (W3C names in [`VideoSendStats`]).
    pub(crate) pli_count: u64,
    pub(crate) fir_count: u64,
    pub(crate) nack_count: u64,
}

impl LocalVideo {
    /// Starts capturing from `source` at `opts.fps`, with an encoder for `opts`' size.
    pub(crate) fn start(
        source: Box<dyn VideoSource>,
        opts: &VideoOptions,
    ) -> Result<Self, CodecError> {
        let (width, height) = (opts.width as usize, opts.height as usize);
        let pipeline = VideoSendPipeline::new(H264Config {
            width,
            height,
            bitrate_bps: default_bitrate(width, height, opts.fps),
            fps: opts.fps as f32,
        })?;
        let stop = Arc::new(AtomicBool::new(false));
        let dropped = Arc::new(AtomicU64::new(0));
        let frames = spawn_capture(source, opts.fps, Arc::clone(&stop), Arc::clone(&dropped));
        Ok(Self {
            frames,
            done: false,
            stop,
            dropped,
            pipeline,
            pli_count: 0,
            fir_count: 0,
            nack_count: 0,
        })
    }

    /// The next captured picture; `None` once the source is done.
    pub(crate) async fn next(&mut self) -> Option<Captured> {
        self.frames.recv().await
    }

    /// The send statistics, with the feedback counts and `retransmitted` (from the sessions).
    pub(crate) fn stats(&self, retransmitted: u64) -> VideoSendStats {
        VideoSendStats {
            pli_count: self.pli_count,
            fir_count: self.fir_count,
            nack_count: self.nack_count,
            retransmitted_packets_sent: retransmitted,
            ..self.pipeline.stats()
        }
    }

    /// Pictures the capture thread dropped because the loop was busy.
    pub(crate) fn capture_dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl Drop for LocalVideo {
    fn drop(&mut self) {
        // The thread may be blocked in a camera read: it sees the flag (or the closed channel)
        // after that read and ends; nobody waits for it.
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Pulls pictures from `source` every `1/fps` on a thread of its own, timestamped when taken.
fn spawn_capture(
    mut source: Box<dyn VideoSource>,
    fps: u32,
    stop: Arc<AtomicBool>,
    dropped: Arc<AtomicU64>,
) -> mpsc::Receiver<Captured> {
    let (tx, rx) = mpsc::channel(CAPTURE_QUEUE);
    let period = Duration::from_secs_f64(1.0 / f64::from(fps.max(1)));
    let spawned = std::thread::Builder::new()
        .name("video-capture".into())
        .spawn(move || {
            tracing::info!(source = %source.describe(), "video capture started");
            let mut next = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                let now = Instant::now();
                if next > now {
                    std::thread::sleep(next - now);
                }
                // After a stall (a slow camera), start again from now instead of bursting.
                next = (next + period).max(Instant::now());
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
                let captured = Captured {
                    frame,
                    at: Instant::now(),
                };
                match tx.try_send(captured) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        dropped.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => break,
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "could not start the video capture thread; no video is sent");
    }
    rx
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
