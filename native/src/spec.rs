//! Command-line forms of `--audio-in`, `--audio-out`, `--video-in` and `--video-out`, parsed into
//! specs that [`crate::open_source`], [`crate::open_sink`], [`crate::open_video_source`] and
//! [`crate::open_video_sink`] open.
//!
//! Accepted forms (prefixes are matched first, so `device:x.wav` is a device called `x.wav`):
//! - audio in: `device`, `device:NAME`, `sine:HZ` (`sine` alone is 440 Hz), `silence`,
//!   `file:PATH` or any path ending in `.wav`
//! - audio out: `device`, `device:NAME`, `null`, `file:PATH` or any path ending in `.wav`
//! - video in: `camera`, `camera:INDEX`, `camera:NAME`, `pattern`, `file:PATH` or any path
//!   ending in `.y4m`, `none`
//! - video out: `window`, `null`, `file:PATH` or any path ending in `.y4m`

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::error::{AudioError, VideoError};
use crate::SAMPLE_RATE;

const AUDIO_IN_FORMS: &str = "device, device:NAME, sine:HZ, silence, FILE.wav or file:PATH";
const AUDIO_OUT_FORMS: &str = "device, device:NAME, null, FILE.wav or file:PATH";

/// Where outgoing audio comes from (`--audio-in`).
#[derive(Debug, Clone, PartialEq)]
pub enum AudioInSpec {
    /// A capture device: the default one (`None`) or the first whose name contains the text.
    Device(Option<String>),
    /// A WAV file, converted to 48 kHz mono; ends the stream at end of file.
    File(PathBuf),
    /// A generated sine tone at this frequency in Hz (0 < f < 24000), about -12 dBFS.
    Sine(f32),
    /// Digital silence.
    Silence,
}

/// Where incoming audio goes (`--audio-out`).
#[derive(Debug, Clone, PartialEq)]
pub enum AudioOutSpec {
    /// A playback device: the default one (`None`) or the first whose name contains the text.
    Device(Option<String>),
    /// A WAV file, written as 48 kHz mono 16-bit PCM.
    File(PathBuf),
    /// Discard the audio.
    Null,
}

/// Which camera to open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CameraSelector {
    /// The camera with this index (as listed by the system, usually 0 for the first).
    Index(u32),
    /// The first camera whose name contains this text.
    Name(String),
}

/// Where outgoing video comes from (`--video-in`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VideoInSpec {
    /// A camera: the first one (`None`) or a chosen one.
    Camera(Option<CameraSelector>),
    /// Deterministic moving colour bars.
    Pattern,
    /// A YUV4MPEG2 (`.y4m`, C420) file.
    File(PathBuf),
    /// No video.
    None,
}

/// Where incoming video goes (`--video-out`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VideoOutSpec {
    /// A YUV4MPEG2 (`.y4m`, C420jpeg) file.
    File(PathBuf),
    /// Discard the pictures (they are still counted).
    Null,
    /// A window on the display, with a small self-view.
    Window,
}

fn non_empty<'a>(rest: &'a str, what: &str, s: &str) -> Result<&'a str, String> {
    if rest.trim().is_empty() {
        Err(format!(
            "empty {what} after `{}`",
            &s[..s.len() - rest.len()]
        ))
    } else {
        Ok(rest)
    }
}

fn has_ext(s: &str, ext: &str) -> bool {
    s.len() > ext.len()
        && s.is_char_boundary(s.len() - ext.len())
        && s[s.len() - ext.len()..].eq_ignore_ascii_case(ext)
}

/// Parse a sine frequency: finite, above 0 and below the Nyquist frequency of 48 kHz audio.
fn parse_hz(text: &str) -> Result<f32, String> {
    let hz: f32 = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a frequency in Hz"))?;
    let nyquist = SAMPLE_RATE as f32 / 2.0;
    if hz.is_finite() && hz > 0.0 && hz < nyquist {
        Ok(hz)
    } else {
        Err(format!("frequency {text} Hz is outside 0 < f < {nyquist}"))
    }
}

impl FromStr for AudioInSpec {
    type Err = AudioError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |reason: String| AudioError::BadSpec {
            spec: s.to_owned(),
            reason,
            expected: AUDIO_IN_FORMS,
        };
        if let Some(rest) = s.strip_prefix("device:") {
            return Ok(Self::Device(Some(
                non_empty(rest, "device name", s).map_err(bad)?.to_owned(),
            )));
        }
        if let Some(rest) = s.strip_prefix("sine:") {
            return parse_hz(rest).map(Self::Sine).map_err(bad);
        }
        if let Some(rest) = s.strip_prefix("file:") {
            return Ok(Self::File(non_empty(rest, "path", s).map_err(bad)?.into()));
        }
        match s {
            "device" => Ok(Self::Device(None)),
            "sine" => Ok(Self::Sine(440.0)),
            "silence" => Ok(Self::Silence),
            _ if has_ext(s, ".wav") => Ok(Self::File(s.into())),
            "" => Err(bad("empty value".into())),
            _ => Err(bad("unknown source".into())),
        }
    }
}

impl fmt::Display for AudioInSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Device(None) => f.write_str("device"),
            Self::Device(Some(name)) => write!(f, "device:{name}"),
            Self::File(path) => write!(f, "file:{}", path.display()),
            Self::Sine(hz) => write!(f, "sine:{hz}"),
            Self::Silence => f.write_str("silence"),
        }
    }
}

impl FromStr for AudioOutSpec {
    type Err = AudioError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |reason: String| AudioError::BadSpec {
            spec: s.to_owned(),
            reason,
            expected: AUDIO_OUT_FORMS,
        };
        if let Some(rest) = s.strip_prefix("device:") {
            return Ok(Self::Device(Some(
                non_empty(rest, "device name", s).map_err(bad)?.to_owned(),
            )));
        }
        if let Some(rest) = s.strip_prefix("file:") {
            return Ok(Self::File(non_empty(rest, "path", s).map_err(bad)?.into()));
        }
        match s {
            "device" => Ok(Self::Device(None)),
            "null" => Ok(Self::Null),
            _ if has_ext(s, ".wav") => Ok(Self::File(s.into())),
            "" => Err(bad("empty value".into())),
            _ => Err(bad("unknown sink".into())),
        }
    }
}

impl fmt::Display for AudioOutSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Device(None) => f.write_str("device"),
            Self::Device(Some(name)) => write!(f, "device:{name}"),
            Self::File(path) => write!(f, "file:{}", path.display()),
            Self::Null => f.write_str("null"),
        }
    }
}

impl FromStr for VideoInSpec {
    type Err = VideoError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |reason: String| VideoError::BadSpec {
            spec: s.to_owned(),
            reason,
        };
        if let Some(rest) = s.strip_prefix("camera:") {
            let rest = non_empty(rest, "camera index or name", s).map_err(bad)?;
            let selector = match rest.parse::<u32>() {
                Ok(index) => CameraSelector::Index(index),
                Err(_) => CameraSelector::Name(rest.to_owned()),
            };
            return Ok(Self::Camera(Some(selector)));
        }
        if let Some(rest) = s.strip_prefix("file:") {
            return Ok(Self::File(non_empty(rest, "path", s).map_err(bad)?.into()));
        }
        match s {
            "camera" => Ok(Self::Camera(None)),
            "pattern" => Ok(Self::Pattern),
            "none" => Ok(Self::None),
            _ if has_ext(s, ".y4m") => Ok(Self::File(s.into())),
            "" => Err(bad("empty value".into())),
            _ => Err(bad("unknown video source".into())),
        }
    }
}

impl fmt::Display for VideoInSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Camera(None) => f.write_str("camera"),
            Self::Camera(Some(CameraSelector::Index(i))) => write!(f, "camera:{i}"),
            Self::Camera(Some(CameraSelector::Name(n))) => write!(f, "camera:{n}"),
            Self::Pattern => f.write_str("pattern"),
            Self::File(path) => write!(f, "file:{}", path.display()),
            Self::None => f.write_str("none"),
        }
    }
}

impl FromStr for VideoOutSpec {
    type Err = VideoError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |reason: String| VideoError::BadSinkSpec {
            spec: s.to_owned(),
            reason,
        };
        if let Some(rest) = s.strip_prefix("file:") {
            return Ok(Self::File(non_empty(rest, "path", s).map_err(bad)?.into()));
        }
        match s {
            "null" => Ok(Self::Null),
            "window" => Ok(Self::Window),
            _ if has_ext(s, ".y4m") => Ok(Self::File(s.into())),
            "" => Err(bad("empty value".into())),
            _ => Err(bad("unknown video sink".into())),
        }
    }
}

impl fmt::Display for VideoOutSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => write!(f, "file:{}", path.display()),
            Self::Null => f.write_str("null"),
            Self::Window => f.write_str("window"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audio_in_forms() {
        let cases: &[(&str, AudioInSpec)] = &[
            ("device", AudioInSpec::Device(None)),
            (
                "device:USB Mic",
                AudioInSpec::Device(Some("USB Mic".into())),
            ),
            ("device:x.wav", AudioInSpec::Device(Some("x.wav".into()))),
            ("sine:440", AudioInSpec::Sine(440.0)),
            ("sine:1000.5", AudioInSpec::Sine(1000.5)),
            ("sine", AudioInSpec::Sine(440.0)),
            ("silence", AudioInSpec::Silence),
            ("in.wav", AudioInSpec::File("in.wav".into())),
            ("/tmp/A B.WAV", AudioInSpec::File("/tmp/A B.WAV".into())),
            ("file:/tmp/raw", AudioInSpec::File("/tmp/raw".into())),
        ];
        for (text, want) in cases {
            let got: AudioInSpec = text.parse().unwrap();
            assert_eq!(&got, want, "{text}");
            // Display gives a form that parses back to the same spec.
            assert_eq!(got.to_string().parse::<AudioInSpec>().unwrap(), got);
        }
    }

    #[test]
    fn audio_in_errors() {
        for text in [
            "",
            "mic",
            "device:",
            "sine:",
            "sine:abc",
            "sine:0",
            "sine:-5",
            "sine:24000",
            "sine:NaN",
            "sine:inf",
            "file:",
            ".wav",
            "null",
        ] {
            let err = text.parse::<AudioInSpec>().unwrap_err();
            assert!(matches!(err, AudioError::BadSpec { .. }), "{text}: {err:?}");
            let msg = err.to_string();
            assert!(msg.contains("sine:HZ") && msg.contains("FILE.wav"), "{msg}");
        }
    }

    #[test]
    fn audio_out_forms_and_errors() {
        let cases: &[(&str, AudioOutSpec)] = &[
            ("device", AudioOutSpec::Device(None)),
            (
                "device:Speakers",
                AudioOutSpec::Device(Some("Speakers".into())),
            ),
            ("null", AudioOutSpec::Null),
            ("out.wav", AudioOutSpec::File("out.wav".into())),
            ("file:out.raw", AudioOutSpec::File("out.raw".into())),
        ];
        for (text, want) in cases {
            let got: AudioOutSpec = text.parse().unwrap();
            assert_eq!(&got, want, "{text}");
            assert_eq!(got.to_string().parse::<AudioOutSpec>().unwrap(), got);
        }
        for text in ["", "speaker", "device:", "sine:440", "silence", "file:"] {
            let err = text.parse::<AudioOutSpec>().unwrap_err();
            assert!(matches!(err, AudioError::BadSpec { .. }), "{text}: {err:?}");
            assert!(err.to_string().contains("null"));
        }
    }

    #[test]
    fn video_in_forms_and_errors() {
        let cases: &[(&str, VideoInSpec)] = &[
            ("camera", VideoInSpec::Camera(None)),
            (
                "camera:0",
                VideoInSpec::Camera(Some(CameraSelector::Index(0))),
            ),
            (
                "camera:HD Webcam",
                VideoInSpec::Camera(Some(CameraSelector::Name("HD Webcam".into()))),
            ),
            ("pattern", VideoInSpec::Pattern),
            ("none", VideoInSpec::None),
            ("clip.y4m", VideoInSpec::File("clip.y4m".into())),
            ("file:clip.yuv", VideoInSpec::File("clip.yuv".into())),
        ];
        for (text, want) in cases {
            let got: VideoInSpec = text.parse().unwrap();
            assert_eq!(&got, want, "{text}");
            assert_eq!(got.to_string().parse::<VideoInSpec>().unwrap(), got);
        }
        for text in ["", "webcam", "camera:", "file:", "clip.mp4", ".y4m"] {
            let err = text.parse::<VideoInSpec>().unwrap_err();
            assert!(matches!(err, VideoError::BadSpec { .. }), "{text}: {err:?}");
            assert!(err.to_string().contains("pattern"));
        }
    }

    #[test]
    fn video_out_forms_and_errors() {
        let cases: &[(&str, VideoOutSpec)] = &[
            ("window", VideoOutSpec::Window),
            ("null", VideoOutSpec::Null),
            ("out.y4m", VideoOutSpec::File("out.y4m".into())),
            ("/tmp/A B.Y4M", VideoOutSpec::File("/tmp/A B.Y4M".into())),
            ("file:out.yuv", VideoOutSpec::File("out.yuv".into())),
            ("file:window", VideoOutSpec::File("window".into())),
        ];
        for (text, want) in cases {
            let got: VideoOutSpec = text.parse().unwrap();
            assert_eq!(&got, want, "{text}");
            assert_eq!(got.to_string().parse::<VideoOutSpec>().unwrap(), got);
        }
        for text in ["", "screen", "file:", "out.mp4", ".y4m", "pattern", "none"] {
            let err = text.parse::<VideoOutSpec>().unwrap_err();
            assert!(
                matches!(err, VideoError::BadSinkSpec { .. }),
                "{text}: {err:?}"
            );
            let msg = err.to_string();
            assert!(msg.contains("window") && msg.contains("FILE.y4m"), "{msg}");
        }
    }

    #[test]
    fn odd_unicode_does_not_panic() {
        for text in ["é.wav", "ü", "sine:４４０", "device:🎤", ".wAv", "x.y4ḿ"] {
            let _ = text.parse::<AudioInSpec>();
            let _ = text.parse::<AudioOutSpec>();
            let _ = text.parse::<VideoInSpec>();
            let _ = text.parse::<VideoOutSpec>();
        }
    }
}
