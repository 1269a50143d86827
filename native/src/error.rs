//! Error types of the `native` crate: one enum for audio, one for video. Messages say what went
//! wrong and what the user can do instead (usually: use a file or a generated source).

use std::path::PathBuf;

/// Which way audio flows through a device; used in error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Capture (microphone): `--audio-in`.
    Input,
    /// Playback (speaker): `--audio-out`.
    Output,
}

impl Direction {
    /// The hint for running without a device in this direction.
    pub fn alternatives(self) -> &'static str {
        match self {
            Direction::Input => "use --audio-in sine:440 or --audio-in file.wav",
            Direction::Output => "use --audio-out file.wav or --audio-out null",
        }
    }

    fn word(self) -> &'static str {
        match self {
            Direction::Input => "input",
            Direction::Output => "output",
        }
    }
}

impl std::fmt::Display for Direction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.word())
    }
}

/// Errors from audio sources and sinks (devices, WAV files, generated signals).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AudioError {
    /// The system has no audio device for this direction.
    #[error("no audio {direction} device found; {}", direction.alternatives())]
    NoDevice {
        /// Capture or playback.
        direction: Direction,
    },
    /// A device was asked for by name and none matched.
    #[error(
        "audio {direction} device `{name}` not found (available: {}); pick one of those or {}",
        list_or_none(available),
        direction.alternatives()
    )]
    DeviceNotFound {
        /// Capture or playback.
        direction: Direction,
        /// The name that was asked for.
        name: String,
        /// Names of the devices that do exist.
        available: Vec<String>,
    },
    /// The device exists but could not be opened or failed while running.
    #[error("audio {direction} device error: {detail}; {}", direction.alternatives())]
    Device {
        /// Capture or playback.
        direction: Direction,
        /// What the audio backend reported.
        detail: String,
    },
    /// A WAV file could not be opened, read, written or parsed.
    #[error("WAV file {}: {source}; check the path and that it is a valid .wav file", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// The underlying I/O or format error.
        #[source]
        source: hound::Error,
    },
    /// The WAV file is valid but in a format this program does not read.
    #[error("unsupported WAV format in {}: {detail}; convert it to 16-bit PCM (e.g. `ffmpeg -i in -ac 1 -ar 48000 out.wav`)", path.display())]
    UnsupportedFormat {
        /// The file.
        path: PathBuf,
        /// What is unsupported.
        detail: String,
    },
    /// The WAV file is bigger than this program accepts.
    #[error("WAV file {} is too large ({bytes} bytes, limit {limit}); use a shorter file", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size (or declared data size) in bytes.
        bytes: u64,
        /// The limit in bytes.
        limit: u64,
    },
    /// An `--audio-in` / `--audio-out` value could not be understood.
    #[error("bad audio option `{spec}`: {reason}; expected {expected}")]
    BadSpec {
        /// The text given.
        spec: String,
        /// What is wrong with it.
        reason: String,
        /// The accepted forms.
        expected: &'static str,
    },
    /// The sink was already finished and cannot take more frames.
    #[error("audio sink {0} is already finished; open a new one")]
    Finished(String),
}

/// Errors from video sources (camera, pattern, Y4M files) and sinks (Y4M files, window).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VideoError {
    /// The system has no camera.
    #[error("no camera found; use --video-in pattern or --video-in file.y4m")]
    NoCamera,
    /// A camera was asked for by name or index and none matched.
    #[error("camera `{name}` not found (available: {}); pick one of those or use --video-in pattern or --video-in file.y4m", list_or_none(available))]
    CameraNotFound {
        /// The name or index that was asked for.
        name: String,
        /// The cameras that do exist.
        available: Vec<String>,
    },
    /// The camera exists but could not be opened or failed while running.
    #[error("camera error: {0}; use --video-in pattern or --video-in file.y4m")]
    Camera(String),
    /// A Y4M file could not be opened, read or written.
    #[error("Y4M file {}: {source}; check the path", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A Y4M file is malformed, unsupported or too large.
    #[error("Y4M file {}: {source}", path.display())]
    Y4m {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: crate::video::y4m::Y4mError,
    },
    /// The requested frame size or rate is out of range.
    #[error("bad video size {width}x{height} @ {fps} fps: {reason}")]
    BadSize {
        /// Requested width.
        width: u32,
        /// Requested height.
        height: u32,
        /// Requested frame rate.
        fps: u32,
        /// What is wrong.
        reason: &'static str,
    },
    /// A `--video-in` value could not be understood.
    #[error("bad video option `{spec}`: {reason}; expected camera, camera:INDEX, camera:NAME, pattern, FILE.y4m, file:PATH or none")]
    BadSpec {
        /// The text given.
        spec: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `open_video_source` was called with `VideoInSpec::None`.
    #[error("video is disabled (--video-in none); there is no video source to open")]
    Disabled,
    /// A `--video-out` value could not be understood.
    #[error("bad video output `{spec}`: {reason}; expected FILE.y4m, file:PATH, null or window")]
    BadSinkSpec {
        /// The text given.
        spec: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A window was asked for but there is no display to show it on.
    #[error("no display: set DISPLAY or use --video-out file.y4m")]
    NoDisplay,
    /// The window could not be opened (display library missing, display refused, ...).
    #[error("cannot open a video window: {0}; use --video-out file.y4m or --video-out null")]
    Window(String),
    /// The sink was already finished and cannot take more frames.
    #[error("video sink {0} is already finished; open a new one")]
    Finished(String),
}

fn list_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}
