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
    total_samples: u32,
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
        let total_samples = reader.len();
        Ok(Self {
            path: name.to_owned(),
            reader,
            spec,
            looping,
            resampler: LinearResampler::new(spec.sample_rate, SAMPLE_RATE),
            pending: VecDeque::with_capacity(4 * READ_CHUNK),
            channel_buf: Vec::with_capacity(usize::from(spec.channels)),
            ended: false,
            total_samples,
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
            Some(Err(hound::Error::IoError(e)))
                if e.kind() == std::io::ErrorKind::UnexpectedEof =>
            {
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
                if self.looping && self.total_samples >= self.spec.channels.into() {
                    self.reader
                        .seek(0)
                        .map_err(|e| file_error(&self.path, hound::Error::IoError(e)))?;
                    continue;
                }
                self.ended = true;
                return Ok(());
            }
            let mono = downmix(&self.channel_buf);
            let pending = &mut self.pending;
            self.resampler.push(mono, |y| pending.push_back(f32_to_i16(y)));
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
