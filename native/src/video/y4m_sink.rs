//! The Y4M file sink (`--video-out FILE.y4m`): decoded pictures written as a YUV4MPEG2 stream
//! (C420jpeg) that ffplay, mpv or this crate's own reader play back.
//!
//! The header is written with the first picture and takes its size. A Y4M stream has one size,
//! so a picture of another size later (the sender changed resolution) is scaled to the first
//! size (nearest neighbour) and counted in [`VideoSinkCounters::rescaled`]; the file stays one
//! valid, playable stream. A sink finished before any picture arrived writes a header of the
//! size it was opened with and no frames, so the file is still a valid (empty) stream.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::error::VideoError;
use crate::video::sink::{VideoSink, VideoSinkCounters};
use crate::video::y4m::{Y4mHeader, Y4mWriter};
use crate::video::VideoFrame;

enum State {
    /// File created, header not yet written (no picture yet).
    Created(BufWriter<File>),
    /// Header written; frames go here.
    Writing(Y4mWriter<BufWriter<File>>),
    /// Finished (or failed): takes nothing more.
    Closed,
}

/// Writes pictures to a Y4M file.
pub struct Y4mSink {
    path: PathBuf,
    state: State,
    width: u32,
    height: u32,
    fps: u32,
    counters: VideoSinkCounters,
}

impl std::fmt::Debug for Y4mSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Y4mSink")
            .field("path", &self.path)
            .field("width", &self.width)
            .field("height", &self.height)
            .field("fps", &self.fps)
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl Y4mSink {
    /// Create (or truncate) `path` now, so a bad path fails at once. `width x height` is only
    /// used if no picture ever arrives; `fps` goes into the header as `F<fps>:1`.
    pub fn create(path: &Path, width: u32, height: u32, fps: u32) -> Result<Self, VideoError> {
        let file = File::create(path).map_err(|source| VideoError::File {
            path: path.to_owned(),
            source,
        })?;
        Ok(Self {
            path: path.to_owned(),
            state: State::Created(BufWriter::new(file)),
            width,
            height,
            fps,
            counters: VideoSinkCounters::default(),
        })
    }

    fn io_error(&self, source: std::io::Error) -> VideoError {
        VideoError::File {
            path: self.path.clone(),
            source,
        }
    }

    /// Move from `Created` to `Writing` with a header of `width x height`.
    fn start(&mut self, width: u32, height: u32) -> Result<(), VideoError> {
        let State::Created(output) = std::mem::replace(&mut self.state, State::Closed) else {
            return Ok(());
        };
        let header = Y4mHeader {
            width,
            height,
            frame_rate: Some((self.fps, 1)),
        };
        let writer = Y4mWriter::new(output, header).map_err(|e| self.io_error(e))?;
        self.width = width;
        self.height = height;
        self.state = State::Writing(writer);
        Ok(())
    }
}

impl VideoSink for Y4mSink {
    fn show(&mut self, remote: &VideoFrame, _now: Instant) -> Result<(), VideoError> {
        self.counters.received += 1;
        match self.state {
            State::Closed => return Err(VideoError::Finished(self.describe())),
            State::Created(_) => {
                if !remote.is_consistent() || remote.width == 0 || remote.height == 0 {
                    return Err(self.io_error(std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        "picture planes do not match its size",
                    )));
                }
                self.start(remote.width, remote.height)?;
            }
            State::Writing(_) => {}
        }
        let (width, height) = (self.width, self.height);
        let resized;
        let frame = if remote.width == width && remote.height == height {
            remote
        } else {
            if self.counters.rescaled == 0 {
                tracing::warn!(
                    path = %self.path.display(),
                    from = %format!("{}x{}", remote.width, remote.height),
                    to = %format!("{width}x{height}"),
                    "video size changed mid-stream; scaling to the file's size"
                );
            }
            self.counters.rescaled += 1;
            resized = remote.scaled(width, height);
            &resized
        };
        let State::Writing(writer) = &mut self.state else {
            return Ok(());
        };
        let written = writer.write_frame(frame);
        written.map_err(|e| self.io_error(e))?;
        self.counters.shown += 1;
        Ok(())
    }

    fn finish(&mut self) -> Result<(), VideoError> {
        if matches!(self.state, State::Created(_)) {
            self.start(self.width, self.height)?;
        }
        match std::mem::replace(&mut self.state, State::Closed) {
            State::Writing(writer) => {
                let mut output = writer.into_inner().map_err(|e| self.io_error(e))?;
                output.flush().map_err(|e| self.io_error(e))?;
                Ok(())
            }
            State::Created(_) | State::Closed => Ok(()),
        }
    }

    fn describe(&self) -> String {
        format!("Y4M file {}", self.path.display())
    }

    fn counters(&self) -> VideoSinkCounters {
        self.counters
    }
}

impl Drop for Y4mSink {
    fn drop(&mut self) {
        if let Err(e) = self.finish() {
            tracing::warn!(error = %e, "closing the Y4M sink");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::VideoOutSpec;
    use crate::video::sink::open_video_sink;
    use crate::video::y4m::Y4mReader;
    use crate::video::PatternSource;
    use crate::VideoSource;
    use std::io::BufReader;

    fn read_all(path: &Path) -> (Y4mHeader, Vec<VideoFrame>) {
        let mut reader = Y4mReader::new(BufReader::new(File::open(path).unwrap())).unwrap();
        let mut frames = Vec::new();
        while let Some(f) = reader.next_frame().unwrap() {
            frames.push(f);
        }
        (reader.header(), frames)
    }

    #[test]
    fn pattern_frames_round_trip_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.y4m");
        let spec: VideoOutSpec = path.to_str().unwrap().parse().unwrap();
        // Opened for 640x480 but fed 320x240: the header follows the first picture.
        let mut sink = open_video_sink(&spec, 640, 480, 25).unwrap();
        let mut source = PatternSource::with_clock(320, 240, 25, || 0);
        let sent: Vec<_> = (0..4)
            .map(|_| source.next_frame().unwrap().unwrap())
            .collect();
        for f in &sent {
            sink.show(f, Instant::now()).unwrap();
        }
        sink.finish().unwrap();
        sink.finish().unwrap();
        assert!(matches!(
            sink.show(&sent[0], Instant::now()),
            Err(VideoError::Finished(_))
        ));
        let (header, frames) = read_all(&path);
        assert_eq!((header.width, header.height), (320, 240));
        assert_eq!(header.frame_rate, Some((25, 1)));
        assert_eq!(frames, sent);
        assert_eq!(sink.counters().shown, 4);
    }

    #[test]
    fn size_change_is_scaled_to_the_first_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.y4m");
        let mut sink = Y4mSink::create(&path, 64, 48, 30).unwrap();
        let small = VideoFrame::filled(32, 24, [50, 60, 70]);
        let big = VideoFrame::filled(64, 48, [200, 100, 150]);
        sink.show(&small, Instant::now()).unwrap();
        sink.show(&big, Instant::now()).unwrap();
        sink.finish().unwrap();
        let (header, frames) = read_all(&path);
        assert_eq!((header.width, header.height), (32, 24));
        assert_eq!(frames, vec![small, big.scaled(32, 24)]);
        assert_eq!(sink.counters().rescaled, 1);
    }

    #[test]
    fn no_pictures_still_gives_a_valid_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.y4m");
        drop(Y4mSink::create(&path, 64, 48, 30).unwrap());
        let (header, frames) = read_all(&path);
        assert_eq!((header.width, header.height, frames.len()), (64, 48, 0));
    }

    #[test]
    fn bad_paths_and_broken_pictures_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing_dir = dir.path().join("no/such/dir/out.y4m");
        let err = Y4mSink::create(&missing_dir, 64, 48, 30).unwrap_err();
        assert!(matches!(err, VideoError::File { .. }), "{err}");
        let mut sink = Y4mSink::create(&dir.path().join("x.y4m"), 64, 48, 30).unwrap();
        let mut broken = VideoFrame::filled(64, 48, [1, 2, 3]);
        broken.u.pop();
        assert!(sink.show(&broken, Instant::now()).is_err());
    }
}
