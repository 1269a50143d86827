//! Video sinks, where decoded I420 pictures end up (`--video-out`): a Y4M file, nothing (null),
//! or a window with a small self-view. The receive pipeline pushes each decoded picture with
//! [`VideoSink::show`] (a 1:1 call) or [`VideoSink::show_from`] (a room's call, one source per
//! member: the window shows a grid); no sink blocks on a display or paces the caller.

use std::path::Path;
use std::time::Instant;

use crate::error::VideoError;
use crate::spec::VideoOutSpec;
use crate::video::{check_size, VideoFrame};

#[cfg(feature = "window")]
pub use crate::video::window::WindowSink;
pub use crate::video::y4m_sink::Y4mSink;

/// What a sink did with the pictures it was given.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VideoSinkCounters {
    /// Remote pictures given to [`VideoSink::show`].
    pub received: u64,
    /// Remote pictures written or drawn.
    pub shown: u64,
    /// Remote pictures replaced by a newer one before the window drew them.
    pub skipped: u64,
    /// Remote pictures scaled to the file's size because their size changed mid-stream.
    pub rescaled: u64,
    /// Remote pictures dropped because the window already showed its most sources
    /// ([`MAX_TILES`](crate::video::render::MAX_TILES)) and this one was not among them.
    pub too_many_sources: u64,
}

/// A sink of decoded I420 pictures, pushed by the caller.
pub trait VideoSink: Send {
    /// Take one decoded remote picture. `now` is when the caller shows it (its clock); sinks
    /// show or store the picture at once and never wait for a display.
    fn show(&mut self, remote: &VideoFrame, now: Instant) -> Result<(), VideoError>;
    /// Take one decoded picture of one of several remote sources (a room call's members, each
    /// with its own stable key). A window shows each source in its own tile of a grid, in the
    /// order of the keys; other sinks take it as [`VideoSink::show`].
    fn show_from(
        &mut self,
        source: u64,
        remote: &VideoFrame,
        now: Instant,
    ) -> Result<(), VideoError> {
        let _ = source;
        self.show(remote, now)
    }
    /// `source` is gone (the member left the call): a window drops its tile and lays the
    /// others out again. Sinks without tiles ignore it.
    fn forget(&mut self, source: u64) {
        let _ = source;
    }
    /// Take the local (camera or pattern) picture for the self-view; sinks without one ignore it.
    fn show_self_view(&mut self, local: &VideoFrame, now: Instant) -> Result<(), VideoError> {
        let _ = (local, now);
        Ok(())
    }
    /// Flush and close (writes a file's last bytes, closes the window). Idempotent.
    fn finish(&mut self) -> Result<(), VideoError>;
    /// One line saying what this sink is, for logs and the terminal.
    fn describe(&self) -> String;
    /// Whether pictures are still seen: `false` once the user closed the window (the call may
    /// go on; [`VideoSink::show`] then drops pictures). Files and null are always open.
    fn is_open(&self) -> bool {
        true
    }
    /// What happened to the pictures so far.
    fn counters(&self) -> VideoSinkCounters;
}

/// Discards pictures, counting them (`--video-out null`).
#[derive(Debug, Default)]
pub struct NullVideoSink {
    counters: VideoSinkCounters,
}

impl VideoSink for NullVideoSink {
    fn show(&mut self, _remote: &VideoFrame, _now: Instant) -> Result<(), VideoError> {
        self.counters.received += 1;
        self.counters.shown += 1;
        Ok(())
    }

    fn finish(&mut self) -> Result<(), VideoError> {
        Ok(())
    }

    fn describe(&self) -> String {
        "no video output (null)".into()
    }

    fn counters(&self) -> VideoSinkCounters {
        self.counters
    }
}

/// Open the video sink a spec names, for pictures of `width x height` (even, at most 4096)
/// arriving about `fps` times a second: a Y4M file's header carries that rate and, if no picture
/// ever arrives, that size; a window opens at that size (resizable).
pub fn open_video_sink(
    spec: &VideoOutSpec,
    width: u32,
    height: u32,
    fps: u32,
) -> Result<Box<dyn VideoSink>, VideoError> {
    check_size(width, height, fps)?;
    Ok(match spec {
        VideoOutSpec::File(path) => Box::new(Y4mSink::create(Path::new(path), width, height, fps)?),
        VideoOutSpec::Null => Box::new(NullVideoSink::default()),
        #[cfg(feature = "window")]
        VideoOutSpec::Window => Box::new(WindowSink::open("call", width, height)?),
        #[cfg(not(feature = "window"))]
        VideoOutSpec::Window => {
            return Err(VideoError::Window(
                "this build has no window support (the `window` feature of `native` is off)".into(),
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_counts_and_sizes_are_checked() {
        let mut sink = open_video_sink(&VideoOutSpec::Null, 64, 48, 30).unwrap();
        let frame = VideoFrame::filled(64, 48, [16, 128, 128]);
        let now = Instant::now();
        for _ in 0..3 {
            sink.show(&frame, now).unwrap();
        }
        sink.show_self_view(&frame, now).unwrap();
        // Pictures of a room call's members count as any other.
        sink.show_from(9, &frame, now).unwrap();
        sink.forget(9);
        sink.finish().unwrap();
        assert!(sink.is_open());
        assert_eq!(sink.counters().shown, 4);
        for (w, h, fps) in [(0, 48, 30), (63, 48, 30), (64, 48, 0), (8192, 48, 30)] {
            let err = open_video_sink(&VideoOutSpec::Null, w, h, fps)
                .err()
                .unwrap();
            assert!(matches!(err, VideoError::BadSize { .. }), "{err}");
        }
    }
}
