//! YUV4MPEG2 (`.y4m`) reading: a header/frame parser for 8-bit 4:2:0 files (`C420`,
//! `C420jpeg`, `C420paldv`, `C420mpeg2` or no `C` tag) with bounded line lengths and picture
//! sizes, and a file source for `--video-in file.y4m`. A small writer is included for tests
//! and tools.
//!
//! Format: `YUV4MPEG2 W<w> H<h> [F<n>:<d>] [I<x>] [A<n>:<d>] [C<cs>] [X<any>]\n`, then per
//! frame `FRAME[ params]\n` followed by the Y, U and V planes.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use crate::error::VideoError;
use crate::video::{VideoFrame, VideoSource};

/// Longest header or frame-header line accepted, in bytes (newline included).
pub const MAX_LINE: usize = 1024;
/// Largest width or height accepted in a Y4M file.
pub const MAX_Y4M_DIMENSION: u32 = 8192;
/// Largest picture (width x height) accepted in a Y4M file: 4096 x 4096.
pub const MAX_Y4M_PIXELS: u64 = 4096 * 4096;

const MAGIC: &[u8] = b"YUV4MPEG2";

/// What is wrong with a Y4M stream.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Y4mError {
    /// The stream does not start with `YUV4MPEG2 `.
    #[error("not a YUV4MPEG2 file (missing `YUV4MPEG2` signature)")]
    BadMagic,
    /// A header line has no newline within [`MAX_LINE`] bytes.
    #[error("header line longer than {MAX_LINE} bytes or not terminated")]
    LineTooLong,
    /// `W` or `H` is missing.
    #[error("header has no {0} parameter")]
    MissingDimension(&'static str),
    /// A parameter could not be parsed.
    #[error("bad header parameter `{0}`")]
    BadParameter(String),
    /// The colour space is not 8-bit 4:2:0.
    #[error("unsupported colour space `{0}`; only 8-bit 4:2:0 (C420, C420jpeg, C420paldv, C420mpeg2) is read; convert with `ffmpeg -i in -pix_fmt yuv420p out.y4m`")]
    UnsupportedColorspace(String),
    /// The picture is bigger than the limits.
    #[error("picture {width}x{height} exceeds the limit ({MAX_Y4M_DIMENSION} per side, {MAX_Y4M_PIXELS} pixels)")]
    TooLarge {
        /// Declared width.
        width: u32,
        /// Declared height.
        height: u32,
    },
    /// A frame does not start with `FRAME`.
    #[error("bad frame header (expected `FRAME`)")]
    BadFrameHeader,
    /// The stream ended inside a frame.
    #[error("stream ends inside a frame (file truncated?)")]
    Truncated,
    /// Reading failed.
    #[error("read error: {0}")]
    Io(#[from] io::Error),
}

/// The stream header of a Y4M file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Y4mHeader {
    /// Picture width in pixels.
    pub width: u32,
    /// Picture height in pixels.
    pub height: u32,
    /// Frame rate as numerator and denominator, if given.
    pub frame_rate: Option<(u32, u32)>,
}

impl Y4mHeader {
    /// Bytes of picture data in one frame (Y + U + V).
    pub fn frame_bytes(&self) -> usize {
        let (cw, ch) = VideoFrame::chroma_size(self.width, self.height);
        self.width as usize * self.height as usize + 2 * cw as usize * ch as usize
    }

    /// Parse a header line (without its trailing newline).
    pub fn parse(line: &[u8]) -> Result<Self, Y4mError> {
        let rest = line.strip_prefix(MAGIC).ok_or(Y4mError::BadMagic)?;
        if !(rest.is_empty() || rest[0] == b' ') {
            return Err(Y4mError::BadMagic);
        }
        let mut width = None;
        let mut height = None;
        let mut frame_rate = None;
        for token in rest.split(|&b| b == b' ').filter(|t| !t.is_empty()) {
            let bad = || Y4mError::BadParameter(String::from_utf8_lossy(token).into_owned());
            let value = &token[1..];
            match token[0] {
                b'W' => width = Some(parse_dimension(value).ok_or_else(bad)?),
                b'H' => height = Some(parse_dimension(value).ok_or_else(bad)?),
                b'F' => {
                    let (n, d) = parse_ratio(value).ok_or_else(bad)?;
                    if n == 0 || d == 0 {
                        return Err(bad());
                    }
                    frame_rate = Some((n, d));
                }
                b'C' => match value {
                    b"420" | b"420jpeg" | b"420paldv" | b"420mpeg2" => {}
                    other => {
                        return Err(Y4mError::UnsupportedColorspace(
                            String::from_utf8_lossy(other).into_owned(),
                        ))
                    }
                },
                // Interlacing, aspect ratio, extensions and unknown tags do not change the
                // picture layout; ignore them.
                _ => {}
            }
        }
        let width = width.ok_or(Y4mError::MissingDimension("W (width)"))?;
        let height = height.ok_or(Y4mError::MissingDimension("H (height)"))?;
        if width > MAX_Y4M_DIMENSION
            || height > MAX_Y4M_DIMENSION
            || u64::from(width) * u64::from(height) > MAX_Y4M_PIXELS
        {
            return Err(Y4mError::TooLarge { width, height });
        }
        Ok(Self {
            width,
            height,
            frame_rate,
        })
    }

    /// The header line for this header (with newline), as `Y4mWriter` writes it.
    pub fn to_line(&self) -> String {
        let (n, d) = self.frame_rate.unwrap_or((30, 1));
        format!(
            "YUV4MPEG2 W{} H{} F{n}:{d} Ip A1:1 C420jpeg\n",
            self.width, self.height
        )
    }
}

fn parse_u32(digits: &[u8]) -> Option<u32> {
    if digits.is_empty() || digits.len() > 10 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

fn parse_dimension(digits: &[u8]) -> Option<u32> {
    parse_u32(digits).filter(|&v| v > 0)
}

fn parse_ratio(value: &[u8]) -> Option<(u32, u32)> {
    let colon = value.iter().position(|&b| b == b':')?;
    Some((parse_u32(&value[..colon])?, parse_u32(&value[colon + 1..])?))
}

/// Read one `\n`-terminated line of at most [`MAX_LINE`] bytes (newline stripped).
/// `Ok(None)` at a clean end of stream.
fn read_line(input: &mut impl BufRead) -> Result<Option<Vec<u8>>, Y4mError> {
    let mut line = Vec::new();
    input
        .by_ref()
        .take(MAX_LINE as u64)
        .read_until(b'\n', &mut line)?;
    if line.is_empty() {
        return Ok(None);
    }
    if line.pop() != Some(b'\n') {
        return Err(if line.len() + 1 >= MAX_LINE {
            Y4mError::LineTooLong
        } else {
            Y4mError::Truncated
        });
    }
    Ok(Some(line))
}

/// Reads frames from a Y4M stream.
#[derive(Debug)]
pub struct Y4mReader<R> {
    input: R,
    header: Y4mHeader,
}

impl<R: BufRead> Y4mReader<R> {
    /// Read and check the stream header.
    pub fn new(mut input: R) -> Result<Self, Y4mError> {
        let line = match read_line(&mut input) {
            Ok(Some(line)) => line,
            Ok(None) => return Err(Y4mError::BadMagic),
            Err(e) => return Err(e),
        };
        let header = Y4mHeader::parse(&line)?;
        Ok(Self { input, header })
    }

    /// The stream header.
    pub fn header(&self) -> Y4mHeader {
        self.header
    }

    /// The next frame, or `None` at the end of the stream.
    pub fn next_frame(&mut self) -> Result<Option<VideoFrame>, Y4mError> {
        let Some(line) = read_line(&mut self.input)? else {
            return Ok(None);
        };
        let rest = line
            .strip_prefix(b"FRAME")
            .ok_or(Y4mError::BadFrameHeader)?;
        if !(rest.is_empty() || rest[0] == b' ') {
            return Err(Y4mError::BadFrameHeader);
        }
        let Y4mHeader { width, height, .. } = self.header;
        let (cw, ch) = VideoFrame::chroma_size(width, height);
        let luma = width as usize * height as usize;
        let chroma = cw as usize * ch as usize;
        let mut plane = |len: usize| -> Result<Vec<u8>, Y4mError> {
            // Grow with the data actually read, so a lying header on a short stream does
            // not allocate a full frame up front.
            let mut buf = Vec::new();
            (&mut self.input).take(len as u64).read_to_end(&mut buf)?;
            if buf.len() < len {
                return Err(Y4mError::Truncated);
            }
            Ok(buf)
        };
        let y = plane(luma)?;
        let u = plane(chroma)?;
        let v = plane(chroma)?;
        Ok(Some(VideoFrame {
            width,
            height,
            y,
            u,
            v,
        }))
    }
}

/// Writes a Y4M stream (C420jpeg).
#[derive(Debug)]
pub struct Y4mWriter<W> {
    output: W,
    header: Y4mHeader,
}

impl<W: Write> Y4mWriter<W> {
    /// Write the stream header.
    pub fn new(mut output: W, header: Y4mHeader) -> io::Result<Self> {
        output.write_all(header.to_line().as_bytes())?;
        Ok(Self { output, header })
    }

    /// Write one frame; it must have the header's size and consistent planes.
    pub fn write_frame(&mut self, frame: &VideoFrame) -> io::Result<()> {
        if frame.width != self.header.width
            || frame.height != self.header.height
            || !frame.is_consistent()
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "frame size does not match the Y4M header",
            ));
        }
        self.output.write_all(b"FRAME\n")?;
        self.output.write_all(&frame.y)?;
        self.output.write_all(&frame.u)?;
        self.output.write_all(&frame.v)
    }

    /// Flush and return the output.
    pub fn into_inner(mut self) -> io::Result<W> {
        self.output.flush()?;
        Ok(self.output)
    }
}

/// Plays a Y4M file (`--video-in file.y4m`), scaled to the requested size.
#[derive(Debug)]
pub struct Y4mSource {
    path: PathBuf,
    reader: Y4mReader<BufReader<File>>,
    width: u32,
    height: u32,
    looping: bool,
    frames: u64,
}

impl Y4mSource {
    /// Open `path`, delivering `width x height` frames. With `looping`, the file restarts at
    /// its end instead of ending the stream.
    pub fn open(path: &Path, width: u32, height: u32, looping: bool) -> Result<Self, VideoError> {
        Ok(Self {
            path: path.to_owned(),
            reader: Self::reader(path)?,
            width,
            height,
            looping,
            frames: 0,
        })
    }

    fn reader(path: &Path) -> Result<Y4mReader<BufReader<File>>, VideoError> {
        let file = File::open(path).map_err(|source| VideoError::File {
            path: path.to_owned(),
            source,
        })?;
        Y4mReader::new(BufReader::new(file)).map_err(|source| VideoError::Y4m {
            path: path.to_owned(),
            source,
        })
    }

    /// The file's header.
    pub fn header(&self) -> Y4mHeader {
        self.reader.header()
    }
}

impl VideoSource for Y4mSource {
    fn next_frame(&mut self) -> Result<Option<VideoFrame>, VideoError> {
        let y4m_error = |source| VideoError::Y4m {
            path: self.path.clone(),
            source,
        };
        let mut frame = self.reader.next_frame().map_err(y4m_error)?;
        if frame.is_none() && self.looping && self.frames > 0 {
            self.reader = Self::reader(&self.path)?;
            frame = self.reader.next_frame().map_err(|source| VideoError::Y4m {
                path: self.path.clone(),
                source,
            })?;
        }
        Ok(frame.map(|f| {
            self.frames += 1;
            f.scaled(self.width, self.height)
        }))
    }

    fn describe(&self) -> String {
        let h = self.reader.header();
        format!(
            "Y4M file {} ({}x{}, delivered as {}x{}{})",
            self.path.display(),
            h.width,
            h.height,
            self.width,
            self.height,
            if self.looping { ", looping" } else { "" }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample_frame(w: u32, h: u32, seed: u8) -> VideoFrame {
        let mut f = VideoFrame::filled(w, h, [0, 0, 0]);
        for (i, b) in f.y.iter_mut().enumerate() {
            *b = (i as u8).wrapping_add(seed);
        }
        for (i, b) in f.u.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(3).wrapping_add(seed);
        }
        for (i, b) in f.v.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(7) ^ seed;
        }
        f
    }

    fn encode(header: Y4mHeader, frames: &[VideoFrame]) -> Vec<u8> {
        let mut w = Y4mWriter::new(Vec::new(), header).unwrap();
        for f in frames {
            w.write_frame(f).unwrap();
        }
        w.into_inner().unwrap()
    }

    #[test]
    fn header_forms() {
        let h =
            Y4mHeader::parse(b"YUV4MPEG2 W640 H480 F30000:1001 Ip A1:1 C420jpeg XYSCSS=420JPEG")
                .unwrap();
        assert_eq!(
            (h.width, h.height, h.frame_rate),
            (640, 480, Some((30000, 1001)))
        );
        let h = Y4mHeader::parse(b"YUV4MPEG2 H2 W4").unwrap();
        assert_eq!((h.width, h.height, h.frame_rate), (4, 2, None));
        assert_eq!(h.frame_bytes(), 8 + 2 * 2);
        // Odd sizes round chroma up.
        assert_eq!(
            Y4mHeader::parse(b"YUV4MPEG2 W3 H3").unwrap().frame_bytes(),
            9 + 2 * 4
        );
    }

    #[test]
    fn header_errors() {
        type Check = fn(&Y4mError) -> bool;
        let cases: &[(&[u8], Check)] = &[
            (b"YUV4MPEG W2 H2", |e| matches!(e, Y4mError::BadMagic)),
            (b"YUV4MPEG2W2 H2", |e| matches!(e, Y4mError::BadMagic)),
            (b"YUV4MPEG2 H2", |e| {
                matches!(e, Y4mError::MissingDimension(_))
            }),
            (b"YUV4MPEG2 W2", |e| {
                matches!(e, Y4mError::MissingDimension(_))
            }),
            (b"YUV4MPEG2 W0 H2", |e| {
                matches!(e, Y4mError::BadParameter(_))
            }),
            (b"YUV4MPEG2 W-2 H2", |e| {
                matches!(e, Y4mError::BadParameter(_))
            }),
            (b"YUV4MPEG2 W99999999999 H2", |e| {
                matches!(e, Y4mError::BadParameter(_))
            }),
            (b"YUV4MPEG2 W2 H2 F30", |e| {
                matches!(e, Y4mError::BadParameter(_))
            }),
            (b"YUV4MPEG2 W2 H2 F30:0", |e| {
                matches!(e, Y4mError::BadParameter(_))
            }),
            (b"YUV4MPEG2 W2 H2 C444", |e| {
                matches!(e, Y4mError::UnsupportedColorspace(_))
            }),
            (b"YUV4MPEG2 W2 H2 C420p10", |e| {
                matches!(e, Y4mError::UnsupportedColorspace(_))
            }),
            (b"YUV4MPEG2 W8192 H8192", |e| {
                matches!(e, Y4mError::TooLarge { .. })
            }),
            (b"YUV4MPEG2 W9000 H2", |e| {
                matches!(e, Y4mError::TooLarge { .. })
            }),
        ];
        for (line, check) in cases {
            let err = Y4mHeader::parse(line).unwrap_err();
            assert!(check(&err), "{}: {err:?}", String::from_utf8_lossy(line));
        }
    }

    #[test]
    fn round_trip() {
        let header = Y4mHeader {
            width: 6,
            height: 4,
            frame_rate: Some((25, 1)),
        };
        let frames: Vec<_> = (0..3).map(|i| sample_frame(6, 4, i)).collect();
        let bytes = encode(header, &frames);
        let mut r = Y4mReader::new(&bytes[..]).unwrap();
        assert_eq!(r.header(), header);
        for f in &frames {
            assert_eq!(r.next_frame().unwrap().as_ref(), Some(f));
        }
        assert!(r.next_frame().unwrap().is_none());
    }

    #[test]
    fn frame_errors() {
        let header = Y4mHeader {
            width: 4,
            height: 4,
            frame_rate: None,
        };
        let bytes = encode(header, &[sample_frame(4, 4, 1)]);
        // Truncated inside the frame data.
        let mut r = Y4mReader::new(&bytes[..bytes.len() - 1]).unwrap();
        assert!(matches!(r.next_frame(), Err(Y4mError::Truncated)));
        // Garbage instead of FRAME.
        let mut bad = header.to_line().into_bytes();
        bad.extend_from_slice(b"FRAMX\n");
        let mut r = Y4mReader::new(&bad[..]).unwrap();
        assert!(matches!(r.next_frame(), Err(Y4mError::BadFrameHeader)));
        // Endless frame header line.
        let mut long = header.to_line().into_bytes();
        long.extend(std::iter::repeat_n(b'A', 5000));
        let mut r = Y4mReader::new(&long[..]).unwrap();
        assert!(matches!(r.next_frame(), Err(Y4mError::LineTooLong)));
        // Empty input and endless header.
        assert!(matches!(Y4mReader::new(&b""[..]), Err(Y4mError::BadMagic)));
        let endless = [b'Y'; 4096];
        assert!(Y4mReader::new(&endless[..]).is_err());
    }

    #[test]
    fn file_source_scales_and_ends() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clip.y4m");
        let header = Y4mHeader {
            width: 4,
            height: 2,
            frame_rate: Some((30, 1)),
        };
        std::fs::write(
            &path,
            encode(header, &[sample_frame(4, 2, 9), sample_frame(4, 2, 10)]),
        )
        .unwrap();
        let spec = crate::VideoInSpec::File(path.clone());
        let mut src = crate::open_video_source(&spec, 8, 4, 30).unwrap();
        for _ in 0..2 {
            let f = src.next_frame().unwrap().unwrap();
            assert_eq!((f.width, f.height), (8, 4));
            assert!(f.is_consistent());
        }
        assert!(src.next_frame().unwrap().is_none());
        // Looping restarts.
        let mut looping = Y4mSource::open(&path, 4, 2, true).unwrap();
        for i in 0..5u8 {
            let f = looping.next_frame().unwrap().unwrap();
            assert_eq!(f, sample_frame(4, 2, 9 + i % 2));
        }
        // Missing and malformed files are typed errors.
        let missing = crate::VideoInSpec::File(dir.path().join("nope.y4m"));
        assert!(matches!(
            crate::open_video_source(&missing, 8, 4, 30).err().unwrap(),
            VideoError::File { .. }
        ));
        std::fs::write(&path, b"not a y4m\n").unwrap();
        assert!(matches!(
            crate::open_video_source(&spec, 8, 4, 30).err().unwrap(),
            VideoError::Y4m {
                source: Y4mError::BadMagic,
                ..
            }
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            if let Ok(mut r) = Y4mReader::new(&bytes[..]) {
                for _ in 0..4 {
                    match r.next_frame() {
                        Ok(Some(f)) => prop_assert!(f.is_consistent()),
                        _ => break,
                    }
                }
            }
        }

        #[test]
        fn mutated_headers_never_panic(
            prefix in "YUV4MPEG2( [WHFCIAX][0-9:a-z]{0,12}){0,8}",
            tail in proptest::collection::vec(any::<u8>(), 0..512),
        ) {
            let mut bytes = prefix.into_bytes();
            bytes.push(b'\n');
            bytes.extend_from_slice(&tail);
            if let Ok(mut r) = Y4mReader::new(&bytes[..]) {
                let h = r.header();
                prop_assert!(h.width > 0 && h.height > 0);
                while let Ok(Some(f)) = r.next_frame() {
                    prop_assert!(f.is_consistent());
                }
            }
        }

        #[test]
        fn round_trip_any_size(w in 1u32..24, h in 1u32..24, n in 0usize..4, seed: u8) {
            let header = Y4mHeader { width: w, height: h, frame_rate: Some((30, 1)) };
            let frames: Vec<_> = (0..n).map(|i| sample_frame(w, h, seed.wrapping_add(i as u8))).collect();
            let bytes = encode(header, &frames);
            let mut r = Y4mReader::new(&bytes[..]).unwrap();
            prop_assert_eq!(r.header(), header);
            for f in &frames {
                let got = r.next_frame().unwrap();
                prop_assert_eq!(got.as_ref(), Some(f));
            }
            prop_assert!(r.next_frame().unwrap().is_none());
        }
    }
}
