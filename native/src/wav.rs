//! WAV file source and sink (hound).
//!
//! The source reads any PCM WAV hound understands (8/16/24/32-bit integer or 32-bit float, any
//! channel count and sample rate within limits), averages the channels to mono and resamples
//! to 48 kHz with linear interpolation (see [`crate::convert`]). It streams from disk, so memory
//! use does not depend on file length; files above [`MAX_WAV_BYTES`] are refused.
//! The sink writes 48 kHz mono 16-bit PCM and rewrites the header every second, so even a
//! killed process leaves a playable file; `finish()` (or drop) finalizes it.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use hound::{SampleFormat, WavReader, WavSpec, WavWriter};

use crate::convert::{downmix, f32_to_i16, LinearResampler};
use crate::error::AudioError;
use crate::{AudioSink, AudioSource, SAMPLE_RATE};

/// Largest WAV file accepted as a source: 512 MiB (about 46 minutes of 48 kHz stereo 16-bit).
pub const MAX_WAV_BYTES: u64 = 512 * 1024 * 1024;
/// Most channels accepted in a WAV source.
pub const MAX_WAV_CHANNELS: u16 = 32;
/// Sample-rate range accepted in a WAV source, in Hz.
pub const WAV_RATE_RANGE: std::ops::RangeInclusive<u32> = 1_000..=768_000;

/// Most sample data a WAV sink writes: the RIFF format's 32-bit sizes cap a file at 4 GiB
/// (about 12 hours of 48 kHz mono 16-bit); we stop 1 MiB short of that.
pub const MAX_SINK_DATA_BYTES: u64 = (u32::MAX as u64) - 1024 * 1024;

/// Input frames read from the file per refill.
const READ_CHUNK: usize = 1024;
/// The sink rewrites the WAV header this often (in frames), so the file stays valid.
const SINK_HEADER_EVERY: u64 = 50;

/// Anything a WAV source can read from.
pub trait WavInput: Read + Seek + Send {}
impl<T: Read + Seek + Send> WavInput for T {}

/// Streams a WAV file as 48 kHz mono i16 frames.
pub struct WavSource {
    path: PathBuf,
    reader: WavReader<Box<dyn WavInput>>,
    spec: WavSpec,
    looping: bool,
    resampler: LinearResampler,
    pending: VecDeque<i16>,
    channel_buf: Vec<f32>,
    ended: bool,
    produced_since_rewind: bool,
}

impl std::fmt::Debug for WavSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WavSource")
            .field("path", &self.path)
            .field("spec", &self.spec)
            .field("looping", &self.looping)
            .finish_non_exhaustive()
    }
}

fn file_error(path: &Path, source: hound::Error) -> AudioError {
    match source {
        hound::Error::Unsupported => AudioError::UnsupportedFormat {
            path: path.to_owned(),
            detail: "hound does not support this WAV encoding (compressed or unusual layout)"
                .into(),
        },
        source => AudioError::File {
            path: path.to_owned(),
            source,
        },
    }
}

impl WavSource {
    /// Open a WAV file. With `looping`, the file restarts at its end instead of ending the stream.
    pub fn open(path: &Path, looping: bool) -> Result<Self, AudioError> {
        let file = File::open(path).map_err(|e| file_error(path, hound::Error::IoError(e)))?;
        Self::from_reader(Box::new(BufReader::new(file)), path, looping)
    }

    /// Read WAV data from any seekable reader; `name` is used in errors and `describe()`.
    pub fn from_reader(
        mut input: Box<dyn WavInput>,
        name: &Path,
        looping: bool,
    ) -> Result<Self, AudioError> {
        let io = |e| file_error(name, hound::Error::IoError(e));
        let bytes = input.seek(SeekFrom::End(0)).map_err(io)?;
        if bytes > MAX_WAV_BYTES {
            return Err(AudioError::TooLarge {
                path: name.to_owned(),
                bytes,
                limit: MAX_WAV_BYTES,
            });
        }
        input.seek(SeekFrom::Start(0)).map_err(io)?;
        let reader = WavReader::new(input).map_err(|e| file_error(name, e))?;
        let spec = reader.spec();
        let unsupported = |detail: String| AudioError::UnsupportedFormat {
            path: name.to_owned(),
            detail,
        };
        match (spec.sample_format, spec.bits_per_sample) {
            (SampleFormat::Int, 8 | 16 | 24 | 32) | (SampleFormat::Float, 32) => {}
            (format, bits) => {
                return Err(unsupported(format!("{bits}-bit {format:?} samples")));
            }
        }
        if spec.channels == 0 || spec.channels > MAX_WAV_CHANNELS {
            return Err(unsupported(format!(
                "{} channels (1 to {MAX_WAV_CHANNELS} supported)",
                spec.channels
            )));
        }
        if !WAV_RATE_RANGE.contains(&spec.sample_rate) {
            return Err(unsupported(format!(
                "sample rate {} Hz (supported {} to {} Hz)",
                spec.sample_rate,
                WAV_RATE_RANGE.start(),
                WAV_RATE_RANGE.end()
            )));
        }
        Ok(Self {
            path: name.to_owned(),
            reader,
            spec,
            looping,
            resampler: LinearResampler::new(spec.sample_rate, SAMPLE_RATE),
            pending: VecDeque::with_capacity(4 * READ_CHUNK),
            channel_buf: Vec::with_capacity(usize::from(spec.channels)),
            ended: false,
            produced_since_rewind: false,
        })
    }

    /// The file's own format.
    pub fn spec(&self) -> WavSpec {
        self.spec
    }

    /// Read one sample as a float in [-1, 1]; `None` at end of data (including a truncated
    /// last sample, which a damaged file may have).
    fn next_sample(&mut self) -> Result<Option<f32>, AudioError> {
        let item = match self.spec.sample_format {
            SampleFormat::Float => self.reader.samples::<f32>().next(),
            SampleFormat::Int => {
                let scale = (1u64 << (self.spec.bits_per_sample - 1)) as f32;
                self.reader
                    .samples::<i32>()
                    .next()
                    .map(|r| r.map(|s| s as f32 / scale))
            }
        };
        match item {
            None => Ok(None),
            Some(Ok(x)) => Ok(Some(if x.is_finite() { x } else { 0.0 })),
            // A file cut short (declared data longer than the file, or a partial last
            // sample, which hound reports as `Other`) plays what it has and then ends.
            Some(Err(hound::Error::IoError(e)))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::Other
                ) =>
            {
                tracing::warn!(path = %self.path.display(), error = %e, "WAV data ends early");
                Ok(None)
            }
            Some(Err(e)) => Err(file_error(&self.path, e)),
        }
    }

    /// Read up to `READ_CHUNK` input frames into `pending`; sets `ended` at end of file.
    fn refill(&mut self) -> Result<(), AudioError> {
        let channels = usize::from(self.spec.channels);
        for _ in 0..READ_CHUNK {
            self.channel_buf.clear();
            while self.channel_buf.len() < channels {
                match self.next_sample()? {
                    Some(x) => self.channel_buf.push(x),
                    None => break,
                }
            }
            if self.channel_buf.len() < channels {
                // End of data (a partial last frame is dropped).
                // Loop only if the pass that just ended produced audio; otherwise (declared
                // data that is not there) a rewind would spin forever.
                if self.looping && self.produced_since_rewind {
                    self.produced_since_rewind = false;
                    self.reader
                        .seek(0)
                        .map_err(|e| file_error(&self.path, hound::Error::IoError(e)))?;
                    continue;
                }
                self.ended = true;
                return Ok(());
            }
            self.produced_since_rewind = true;
            let mono = downmix(&self.channel_buf);
            let pending = &mut self.pending;
            self.resampler
                .push(mono, |y| pending.push_back(f32_to_i16(y)));
        }
        Ok(())
    }
}

impl AudioSource for WavSource {
    fn read_frame(&mut self, frame: &mut [i16]) -> Result<bool, AudioError> {
        while self.pending.len() < frame.len() && !self.ended {
            self.refill()?;
        }
        if self.pending.is_empty() {
            return Ok(false);
        }
        let n = frame.len().min(self.pending.len());
        for (slot, s) in frame.iter_mut().zip(self.pending.drain(..n)) {
            *slot = s;
        }
        frame[n..].fill(0);
        Ok(true)
    }

    fn describe(&self) -> String {
        format!(
            "WAV file {} ({} Hz, {} ch, {}-bit {:?}{})",
            self.path.display(),
            self.spec.sample_rate,
            self.spec.channels,
            self.spec.bits_per_sample,
            self.spec.sample_format,
            if self.looping { ", looping" } else { "" }
        )
    }
}

/// Writes 48 kHz mono 16-bit PCM WAV.
pub struct WavSink {
    path: PathBuf,
    writer: Option<WavWriter<BufWriter<File>>>,
    frames: u64,
}

impl std::fmt::Debug for WavSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WavSink")
            .field("path", &self.path)
            .field("frames", &self.frames)
            .finish_non_exhaustive()
    }
}

impl WavSink {
    /// The format the sink writes.
    pub const SPEC: WavSpec = WavSpec {
        channels: 1,
        sample_rate: SAMPLE_RATE,
        bits_per_sample: 16,
        sample_format: SampleFormat::Int,
    };

    /// Create (or truncate) the file at `path`.
    pub fn create(path: &Path) -> Result<Self, AudioError> {
        let writer = WavWriter::create(path, Self::SPEC).map_err(|e| file_error(path, e))?;
        Ok(Self {
            path: path.to_owned(),
            writer: Some(writer),
            frames: 0,
        })
    }

    /// Frames written so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }
}

impl AudioSink for WavSink {
    fn write_frame(&mut self, frame: &[i16]) -> Result<(), AudioError> {
        let writer = self
            .writer
            .as_mut()
            .ok_or_else(|| AudioError::Finished(self.path.display().to_string()))?;
        let data_bytes = (u64::from(writer.len()) + frame.len() as u64) * 2;
        if data_bytes > MAX_SINK_DATA_BYTES {
            return Err(AudioError::TooLarge {
                path: self.path.clone(),
                bytes: data_bytes,
                limit: MAX_SINK_DATA_BYTES,
            });
        }
        let mut w = writer.get_i16_writer(frame.len() as u32);
        for &s in frame {
            w.write_sample(s);
        }
        w.flush().map_err(|e| file_error(&self.path, e))?;
        self.frames += 1;
        if self.frames % SINK_HEADER_EVERY == 0 {
            writer.flush().map_err(|e| file_error(&self.path, e))?;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), AudioError> {
        match self.writer.take() {
            Some(writer) => writer.finalize().map_err(|e| file_error(&self.path, e)),
            None => Ok(()),
        }
    }

    fn describe(&self) -> String {
        format!("WAV file {} (48000 Hz mono 16-bit)", self.path.display())
    }
}

impl Drop for WavSink {
    fn drop(&mut self) {
        if let Err(e) = self.finish() {
            tracing::warn!(error = %e, "could not finalize WAV file on drop");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SineSource, FRAME_SAMPLES};
    use proptest::prelude::*;
    use std::io::Cursor;

    fn read_all(source: &mut dyn AudioSource) -> Vec<i16> {
        let mut out = Vec::new();
        let mut frame = [0i16; FRAME_SAMPLES];
        let mut guard = 0;
        while source.read_frame(&mut frame).unwrap() {
            out.extend_from_slice(&frame);
            guard += 1;
            assert!(guard < 100_000, "source never ended");
        }
        out
    }

    #[test]
    fn sink_source_round_trip_is_exact() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rt.wav");
        let mut sine = SineSource::new(440.0);
        let mut written = Vec::new();
        let mut sink = crate::open_sink(&crate::AudioOutSpec::File(path.clone())).unwrap();
        let mut frame = [0i16; FRAME_SAMPLES];
        for i in 0..120 {
            sine.read_frame(&mut frame).unwrap();
            frame[0] = if i % 2 == 0 { i16::MIN } else { i16::MAX }; // extremes survive too
            sink.write_frame(&frame).unwrap();
            written.extend_from_slice(&frame);
        }
        sink.finish().unwrap();
        sink.finish().unwrap(); // idempotent
        assert!(matches!(
            sink.write_frame(&frame),
            Err(AudioError::Finished(_))
        ));
        drop(sink);

        let reader = hound::WavReader::open(&path).unwrap();
        assert_eq!(reader.spec(), WavSink::SPEC);
        let mut source = crate::open_source(&crate::AudioInSpec::File(path)).unwrap();
        assert!(source.describe().contains("48000 Hz, 1 ch"));
        assert_eq!(read_all(source.as_mut()), written);
    }

    #[test]
    fn drop_finalizes_header() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("drop.wav");
        {
            let mut sink = WavSink::create(&path).unwrap();
            sink.write_frame(&[7i16; FRAME_SAMPLES]).unwrap();
        }
        let reader = hound::WavReader::open(&path).unwrap();
        assert_eq!(reader.len() as usize, FRAME_SAMPLES);
    }

    #[test]
    fn partial_last_frame_is_padded_then_ends() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("short.wav");
        let mut w = hound::WavWriter::create(&path, WavSink::SPEC).unwrap();
        for i in 0..1000i16 {
            w.write_sample(i + 1).unwrap();
        }
        w.finalize().unwrap();
        let mut src = WavSource::open(&path, false).unwrap();
        let out = read_all(&mut src);
        assert_eq!(out.len(), 2 * FRAME_SAMPLES);
        assert_eq!(out[999], 1000);
        assert!(out[1000..].iter().all(|&s| s == 0));
        // Ended sources stay ended.
        assert!(!src.read_frame(&mut [0i16; FRAME_SAMPLES]).unwrap());
    }

    #[test]
    fn looping_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("loop.wav");
        let mut w = hound::WavWriter::create(&path, WavSink::SPEC).unwrap();
        for i in 0..FRAME_SAMPLES as i16 {
            w.write_sample(i).unwrap();
        }
        w.finalize().unwrap();
        let mut src = WavSource::open(&path, true).unwrap();
        let mut frame = [0i16; FRAME_SAMPLES];
        for _ in 0..5 {
            assert!(src.read_frame(&mut frame).unwrap());
            assert_eq!(frame[0], 0);
            assert_eq!(frame[FRAME_SAMPLES - 1], FRAME_SAMPLES as i16 - 1);
        }
    }

    fn write_file(path: &Path, spec: WavSpec, frames: usize, sample: impl Fn(usize, u16) -> f32) {
        let mut w = hound::WavWriter::create(path, spec).unwrap();
        for i in 0..frames {
            for ch in 0..spec.channels {
                let x = sample(i, ch);
                match (spec.sample_format, spec.bits_per_sample) {
                    (SampleFormat::Float, _) => w.write_sample(x).unwrap(),
                    (SampleFormat::Int, bits) => {
                        let scale = (1i64 << (bits - 1)) as f32;
                        let v = (x * scale).round().clamp(-scale, scale - 1.0) as i32;
                        w.write_sample(v).unwrap()
                    }
                }
            }
        }
        w.finalize().unwrap();
    }

    #[test]
    fn resamples_44k1_stereo_to_48k_mono() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cd.wav");
        let spec = WavSpec {
            channels: 2,
            sample_rate: 44_100,
            bits_per_sample: 16,
            sample_format: SampleFormat::Int,
        };
        let frames = 44_100 * 3 / 2; // 1.5 s
                                     // Left carries a 1 kHz tone, right is silent: mono is the tone at half amplitude.
        write_file(&path, spec, frames, |i, ch| {
            if ch == 0 {
                0.5 * (std::f32::consts::TAU * 1000.0 * i as f32 / 44_100.0).sin()
            } else {
                0.0
            }
        });
        let mut src = WavSource::open(&path, false).unwrap();
        let out = read_all(&mut src);
        let expected = frames as f64 * 48_000.0 / 44_100.0;
        assert!(
            (out.len() as f64 - expected).abs() <= FRAME_SAMPLES as f64,
            "{} vs {expected}",
            out.len()
        );
        let peak = out.iter().map(|s| s.unsigned_abs()).max().unwrap();
        assert!((7900..=8300).contains(&peak), "peak {peak}"); // 0.25 of full scale
                                                               // Zero crossings of the resampled signal give about 1 kHz.
        let crossings = out[..48_000]
            .windows(2)
            .filter(|w| (w[0] < 0) != (w[1] < 0))
            .count();
        assert!((1990..=2010).contains(&crossings), "{crossings}");
    }

    #[test]
    fn reads_24_bit_and_float() {
        let dir = tempfile::tempdir().unwrap();
        for (bits, format) in [
            (24u16, SampleFormat::Int),
            (32, SampleFormat::Float),
            (8, SampleFormat::Int),
            (32, SampleFormat::Int),
        ] {
            let path = dir.path().join(format!("f{bits}{format:?}.wav"));
            let spec = WavSpec {
                channels: 1,
                sample_rate: 48_000,
                bits_per_sample: bits,
                sample_format: format,
            };
            write_file(&path, spec, FRAME_SAMPLES, |_, _| 0.5);
            let mut src = WavSource::open(&path, false).unwrap();
            let out = read_all(&mut src);
            assert_eq!(out.len(), FRAME_SAMPLES);
            assert!(
                out.iter().all(|&s| (i32::from(s) - 16_384).abs() <= 1),
                "{bits} {format:?}: {}",
                out[0]
            );
        }
    }

    #[test]
    fn malformed_and_missing_files_are_typed_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.wav");
        assert!(matches!(
            WavSource::open(&missing, false),
            Err(AudioError::File { .. })
        ));
        let garbage = dir.path().join("garbage.wav");
        std::fs::write(&garbage, b"RIFF\x10\x00\x00\x00WAVEfmt nonsense").unwrap();
        let err = crate::open_source(&crate::AudioInSpec::File(garbage))
            .err()
            .unwrap();
        assert!(
            matches!(
                err,
                AudioError::File { .. } | AudioError::UnsupportedFormat { .. }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("garbage.wav"));
        let empty = dir.path().join("empty.wav");
        std::fs::write(&empty, b"").unwrap();
        assert!(WavSource::open(&empty, false).is_err());
        // Unwritable sink path.
        let err = WavSink::create(&dir.path().join("no/such/dir/out.wav"))
            .err()
            .unwrap();
        assert!(matches!(err, AudioError::File { .. }));
    }

    #[test]
    fn truncated_data_ends_cleanly() {
        let mut bytes = Cursor::new(Vec::new());
        {
            let mut w = hound::WavWriter::new(&mut bytes, WavSink::SPEC).unwrap();
            for i in 0..3000i16 {
                w.write_sample(i).unwrap();
            }
            w.finalize().unwrap();
        }
        let mut bytes = bytes.into_inner();
        bytes.truncate(bytes.len() - 1001); // cut mid-sample
        let mut src =
            WavSource::from_reader(Box::new(Cursor::new(bytes)), Path::new("cut.wav"), false)
                .unwrap();
        let out = read_all(&mut src);
        assert_eq!(out.len(), 3 * FRAME_SAMPLES);
        assert_eq!(out[2000], 2000);
    }

    #[test]
    fn looping_over_missing_data_ends() {
        // A header that declares data the file does not have must not loop forever.
        let mut bytes = Cursor::new(Vec::new());
        {
            let mut w = hound::WavWriter::new(&mut bytes, WavSink::SPEC).unwrap();
            for _ in 0..100 {
                w.write_sample(1i16).unwrap();
            }
            w.finalize().unwrap();
        }
        let mut bytes = bytes.into_inner();
        bytes.truncate(44); // header only
        let mut src =
            WavSource::from_reader(Box::new(Cursor::new(bytes)), Path::new("h.wav"), true).unwrap();
        assert!(!src.read_frame(&mut [0i16; FRAME_SAMPLES]).unwrap());
    }

    #[test]
    fn too_large_is_refused() {
        // A sparse stream whose length exceeds the limit; nothing is read.
        struct Huge;
        impl Read for Huge {
            fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
                Ok(0)
            }
        }
        impl Seek for Huge {
            fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
                Ok(match pos {
                    SeekFrom::End(_) => MAX_WAV_BYTES + 1,
                    _ => 0,
                })
            }
        }
        let err = WavSource::from_reader(Box::new(Huge), Path::new("big.wav"), false).unwrap_err();
        assert!(matches!(err, AudioError::TooLarge { .. }), "{err:?}");
    }

    #[test]
    fn unsupported_layouts_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        // hound writes a 500 Hz or a 40-channel file happily; we refuse them.
        for (name, sample_rate, channels) in [("rate.wav", 500, 1), ("chans.wav", 48_000, 40)] {
            let path = dir.path().join(name);
            let spec = WavSpec {
                channels,
                sample_rate,
                bits_per_sample: 16,
                sample_format: SampleFormat::Int,
            };
            write_file(&path, spec, 10, |_, _| 0.0);
            assert!(
                matches!(
                    WavSource::open(&path, false),
                    Err(AudioError::UnsupportedFormat { .. })
                ),
                "{name} must be refused"
            );
        }
    }

    fn valid_wav_bytes() -> Vec<u8> {
        let mut bytes = Cursor::new(Vec::new());
        let spec = WavSpec {
            channels: 2,
            sample_rate: 22_050,
            bits_per_sample: 24,
            sample_format: SampleFormat::Int,
        };
        let mut w = hound::WavWriter::new(&mut bytes, spec).unwrap();
        for i in 0..200 {
            w.write_sample(i * 1000).unwrap();
        }
        w.finalize().unwrap();
        bytes.into_inner()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1024)) {
            if let Ok(mut src) = WavSource::from_reader(Box::new(Cursor::new(bytes)), Path::new("fuzz.wav"), false) {
                let mut frame = [0i16; FRAME_SAMPLES];
                for _ in 0..8 {
                    if !matches!(src.read_frame(&mut frame), Ok(true)) { break; }
                }
            }
        }

        #[test]
        fn mutated_valid_files_never_panic(flips in proptest::collection::vec((0usize..1300, any::<u8>()), 1..8)) {
            let mut bytes = valid_wav_bytes();
            for (at, value) in flips {
                let i = at % bytes.len();
                bytes[i] = value;
            }
            if let Ok(mut src) = WavSource::from_reader(Box::new(Cursor::new(bytes)), Path::new("fuzz.wav"), true) {
                let mut frame = [0i16; FRAME_SAMPLES];
                for _ in 0..8 {
                    if !matches!(src.read_frame(&mut frame), Ok(true)) { break; }
                }
            }
        }
    }
}
