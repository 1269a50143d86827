//! Audio devices through cpal: a capture source and a playback sink.
//!
//! A cpal `Stream` is `!Send` on some platforms, so each source or sink owns one thread that
//! opens the device, builds and plays the stream, then parks until told to stop; dropping the
//! source or sink stops the stream and joins the thread. The device callback converts between
//! the device's format (any rate, channels, sample type) and 48 kHz mono i16 and exchanges
//! samples with the engine through a bounded [`SampleQueue`] (200 ms): capture fills silence on
//! underrun, playback drops the oldest samples on overflow; both are counted.

use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{FromSample, Sample, SampleFormat, SizedSample, StreamConfig, SupportedStreamConfig};

use crate::convert::{f32_to_i16, i16_to_f32, LinearResampler, PullResampler};
use crate::error::{AudioError, Direction};
use crate::sample_queue::{SampleQueue, StreamCounters};
use crate::{AudioSink, AudioSource, FRAME_SAMPLES, SAMPLE_RATE};

/// Samples buffered between a device callback and the engine: 10 frames, 200 ms.
pub const DEVICE_QUEUE_SAMPLES: usize = 10 * FRAME_SAMPLES;
/// How long opening a device may take before we give up.
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `finish()` on a playback sink waits for queued audio to play out.
const DRAIN_TIMEOUT: Duration = Duration::from_millis(300);

/// An audio device as the system lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    /// The device name, usable in `device:NAME` (a unique substring also works).
    pub name: String,
    /// Whether it can capture.
    pub input: bool,
    /// Whether it can play.
    pub output: bool,
    /// Whether it is the system's default capture device.
    pub default_input: bool,
    /// Whether it is the system's default playback device.
    pub default_output: bool,
}

impl std::fmt::Display for DeviceInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut tags = Vec::new();
        if self.input {
            tags.push(if self.default_input {
                "input (default)"
            } else {
                "input"
            });
        }
        if self.output {
            tags.push(if self.default_output {
                "output (default)"
            } else {
                "output"
            });
        }
        write!(f, "{} [{}]", self.name, tags.join(", "))
    }
}

/// List the audio devices of the default host (ALSA on Linux, CoreAudio, WASAPI).
pub fn list_audio_devices() -> Result<Vec<DeviceInfo>, AudioError> {
    quiet_alsa();
    let host = cpal::default_host();
    let default_in = host.default_input_device().and_then(|d| d.name().ok());
    let default_out = host.default_output_device().and_then(|d| d.name().ok());
    let devices = host.devices().map_err(|e| AudioError::Device {
        direction: Direction::Input,
        detail: format!("cannot list devices: {e}"),
    })?;
    Ok(devices
        .filter_map(|d| {
            let name = d.name().ok()?;
            Some(DeviceInfo {
                input: d.supports_input(),
                output: d.supports_output(),
                default_input: default_in.as_deref() == Some(name.as_str()),
                default_output: default_out.as_deref() == Some(name.as_str()),
                name,
            })
        })
        .collect())
}

/// Stop ALSA from printing its configuration errors to stderr (once per process), unless
/// `CALL_ALSA_VERBOSE` is set. Our own error already says what is wrong and what to do.
fn quiet_alsa() {
    #[cfg(target_os = "linux")]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            if std::env::var_os("CALL_ALSA_VERBOSE").is_some() {
                return;
            }
            extern "C" {
                fn native_alsa_quiet() -> std::os::raw::c_int;
            }
            // SAFETY: `native_alsa_quiet` (src/alsa_quiet.c) takes no arguments and only calls
            // `snd_lib_error_set_handler` with a valid C-variadic function that ignores its
            // arguments; it is safe to call at any time from any thread.
            #[allow(unsafe_code)]
            let rc = unsafe { native_alsa_quiet() };
            if rc != 0 {
                tracing::debug!(rc, "could not install the ALSA error handler");
            }
        });
    }
}

fn device_error(direction: Direction, detail: impl std::fmt::Display) -> AudioError {
    AudioError::Device {
        direction,
        detail: detail.to_string(),
    }
}

/// Find the default device, or the one whose name equals (else contains) `name`.
fn find_device(
    host: &cpal::Host,
    direction: Direction,
    name: Option<&str>,
) -> Result<cpal::Device, AudioError> {
    let Some(wanted) = name else {
        let device = match direction {
            Direction::Input => host.default_input_device(),
            Direction::Output => host.default_output_device(),
        };
        let device = device.ok_or(AudioError::NoDevice { direction })?;
        // ALSA always offers a `default` device, even with no sound card behind it; if it
        // has no configuration and nothing else is listed, there is no device.
        let usable = match direction {
            Direction::Input => device.default_input_config().is_ok(),
            Direction::Output => device.default_output_config().is_ok(),
        };
        let listed = match direction {
            Direction::Input => host.input_devices().map(|mut d| d.next().is_some()),
            Direction::Output => host.output_devices().map(|mut d| d.next().is_some()),
        }
        .unwrap_or(false);
        if !usable && !listed {
            return Err(AudioError::NoDevice { direction });
        }
        return Ok(device);
    };
    let devices: Vec<cpal::Device> = match direction {
        Direction::Input => host.input_devices().map(|d| d.collect()),
        Direction::Output => host.output_devices().map(|d| d.collect()),
    }
    .map_err(|e| device_error(direction, format!("cannot list devices: {e}")))?;
    let named: Vec<(String, cpal::Device)> = devices
        .into_iter()
        .filter_map(|d| Some((d.name().ok()?, d)))
        .collect();
    if named.is_empty() {
        return Err(AudioError::NoDevice { direction });
    }
    let lower = wanted.to_lowercase();
    let position = named.iter().position(|(n, _)| n == wanted).or_else(|| {
        named
            .iter()
            .position(|(n, _)| n.to_lowercase().contains(&lower))
    });
    match position {
        Some(i) => Ok(named
            .into_iter()
            .nth(i)
            .map(|(_, d)| d)
            .ok_or(AudioError::NoDevice { direction })?),
        None => Err(AudioError::DeviceNotFound {
            direction,
            name: wanted.to_owned(),
            available: named.into_iter().map(|(n, _)| n).collect(),
        }),
    }
}

fn format_rank(format: SampleFormat) -> Option<u8> {
    Some(match format {
        SampleFormat::I16 => 0,
        SampleFormat::F32 => 1,
        SampleFormat::I32 => 2,
        SampleFormat::U16 => 3,
        SampleFormat::F64 => 4,
        SampleFormat::I8 => 5,
        SampleFormat::U8 => 6,
        SampleFormat::U32 => 7,
        SampleFormat::I64 => 8,
        SampleFormat::U64 => 9,
        _ => return None,
    })
}

/// Prefer a 48 kHz configuration with few channels in a common sample format; else the
/// device's default configuration.
fn choose_config(
    device: &cpal::Device,
    direction: Direction,
) -> Result<SupportedStreamConfig, AudioError> {
    let ranges: Vec<cpal::SupportedStreamConfigRange> = match direction {
        Direction::Input => device.supported_input_configs().map(|r| r.collect()),
        Direction::Output => device.supported_output_configs().map(|r| r.collect()),
    }
    .unwrap_or_default();
    let best = ranges
        .into_iter()
        .filter(|r| format_rank(r.sample_format()).is_some())
        .filter(|r| r.channels() > 0)
        .filter_map(|r| r.try_with_sample_rate(cpal::SampleRate(SAMPLE_RATE)))
        .min_by_key(|c| (c.channels(), format_rank(c.sample_format())));
    if let Some(config) = best {
        return Ok(config);
    }
    let default = match direction {
        Direction::Input => device.default_input_config(),
        Direction::Output => device.default_output_config(),
    }
    .map_err(|e| device_error(direction, format!("no usable stream configuration: {e}")))?;
    if format_rank(default.sample_format()).is_none() || default.channels() == 0 {
        return Err(device_error(
            direction,
            format!(
                "unsupported device format {} with {} channels",
                default.sample_format(),
                default.channels()
            ),
        ));
    }
    Ok(default)
}

/// Capture callback body: downmix interleaved device samples, resample to 48 kHz and queue.
fn capture_into<T>(
    queue: &SampleQueue,
    resampler: &mut LinearResampler,
    data: &[T],
    channels: usize,
) where
    T: Sample,
    f32: FromSample<T>,
{
    queue.with_pusher(|push| {
        for chunk in data.chunks(channels.max(1)) {
            let sum: f32 = chunk.iter().map(|s| s.to_sample::<f32>()).sum();
            let mono = sum / chunk.len() as f32;
            resampler.push(mono, |y| push(f32_to_i16(y)));
        }
    });
}

/// Playback callback body: pull 48 kHz mono from the queue (silence when empty), resample to
/// the device rate and write the same value to every channel.
fn play_from<T>(queue: &SampleQueue, resampler: &mut PullResampler, data: &mut [T], channels: usize)
where
    T: Sample + FromSample<f32>,
{
    queue.with_popper(|pop| {
        for chunk in data.chunks_mut(channels.max(1)) {
            let y = resampler.next_sample(|| pop().map(i16_to_f32).unwrap_or(0.0));
            chunk.fill(y.to_sample::<T>());
        }
    });
}

fn build_input<T>(
    device: &cpal::Device,
    config: &StreamConfig,
    queue: Arc<SampleQueue>,
) -> Result<cpal::Stream, cpal::BuildStreamError>
where
    T: SizedSample,
    f32: FromSample<T>,
{
    let channels = usize::from(config.channels.max(1));
    let mut resampler = LinearResampler::new(config.sample_rate.0, SAMPLE_RATE);
    let err_queue = Arc::clone(&queue);
    device.build_input_stream(
        config,
        move |data: &[T], _: &cpal::InputCallbackInfo| {
            capture_into(&queue, &mut resampler, data, channels);
        },
        move |e| {
            tracing::warn!(error = %e, "audio input stream error");
            err_queue.note_stream_error();
        },
        None,
    )
}

fn build_output<T>(
    device: &cpal::Device,
    config: &StreamConfig,
    queue: Arc<SampleQueue>,
) -> Result<cpal::Stream, cpal::BuildStreamError>
where
    T: SizedSample + FromSample<f32>,
{
    let channels = usize::from(config.channels.max(1));
    let mut resampler = PullResampler::new(SAMPLE_RATE, config.sample_rate.0);
    let err_queue = Arc::clone(&queue);
    device.build_output_stream(
        config,
        move |data: &mut [T], _: &cpal::OutputCallbackInfo| {
            play_from(&queue, &mut resampler, data, channels);
        },
        move |e| {
            tracing::warn!(error = %e, "audio output stream error");
            err_queue.note_stream_error();
        },
        None,
    )
}

/// Open the device and start its stream; runs on the device thread.
fn start_stream(
    direction: Direction,
    name: Option<&str>,
    queue: Arc<SampleQueue>,
) -> Result<(cpal::Stream, String), AudioError> {
    quiet_alsa();
    let host = cpal::default_host();
    let device = find_device(&host, direction, name)?;
    let device_name = device.name().unwrap_or_else(|_| "unnamed".to_owned());
    let supported = choose_config(&device, direction)?;
    let format = supported.sample_format();
    let config = supported.config();
    macro_rules! build {
        ($($variant:ident => $ty:ty),* $(,)?) => {
            match (direction, format) {
                $(
                    (Direction::Input, SampleFormat::$variant) => build_input::<$ty>(&device, &config, queue),
                    (Direction::Output, SampleFormat::$variant) => build_output::<$ty>(&device, &config, queue),
                )*
                (_, other) => {
                    return Err(device_error(direction, format!("unsupported sample format {other}")))
                }
            }
        };
    }
    let stream = build!(
        I8 => i8, I16 => i16, I32 => i32, I64 => i64,
        U8 => u8, U16 => u16, U32 => u32, U64 => u64,
        F32 => f32, F64 => f64,
    )
    .map_err(|e| device_error(direction, format!("cannot open `{device_name}`: {e}")))?;
    stream
        .play()
        .map_err(|e| device_error(direction, format!("cannot start `{device_name}`: {e}")))?;
    let description = format!(
        "audio {direction} device `{device_name}` ({} Hz, {} ch, {format}; converted to 48000 Hz mono)",
        config.sample_rate.0, config.channels
    );
    Ok((stream, description))
}

/// The thread that owns a cpal stream. Dropping it stops the stream and joins the thread.
#[derive(Debug)]
struct DeviceThread {
    stop: Option<mpsc::Sender<()>>,
    handle: Option<JoinHandle<()>>,
}

impl DeviceThread {
    /// Spawn the thread, open the device on it and wait until the stream plays (or fails).
    fn spawn(
        direction: Direction,
        name: Option<&str>,
        queue: Arc<SampleQueue>,
    ) -> Result<(Self, String), AudioError> {
        let (ready_tx, ready_rx) = mpsc::sync_channel::<Result<String, AudioError>>(1);
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let name = name.map(str::to_owned);
        let handle = std::thread::Builder::new()
            .name(format!("audio-{direction}"))
            .spawn(
                move || match start_stream(direction, name.as_deref(), queue) {
                    Ok((stream, description)) => {
                        if ready_tx.send(Ok(description)).is_ok() {
                            // Park until the owner drops the sender (or sends).
                            let _ = stop_rx.recv();
                        }
                        drop(stream);
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                    }
                },
            )
            .map_err(|e| device_error(direction, format!("cannot start device thread: {e}")))?;
        let mut thread = DeviceThread {
            stop: Some(stop_tx),
            handle: Some(handle),
        };
        match ready_rx.recv_timeout(OPEN_TIMEOUT) {
            Ok(Ok(description)) => Ok((thread, description)),
            Ok(Err(e)) => Err(e), // the thread has ended; drop joins it
            Err(mpsc::RecvTimeoutError::Timeout) => {
                // The backend hangs in open; do not block on join, let the thread go.
                thread.stop.take();
                thread.handle.take();
                Err(device_error(direction, "opening the device timed out"))
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(device_error(
                direction,
                "the device thread ended unexpectedly",
            )),
        }
    }
}

impl Drop for DeviceThread {
    fn drop(&mut self) {
        self.stop.take();
        if let Some(handle) = self.handle.take() {
            if handle.join().is_err() {
                tracing::warn!("audio device thread panicked");
            }
        }
    }
}

/// Captures from an audio input device (`--audio-in device[:NAME]`).
#[derive(Debug)]
pub struct DeviceSource {
    queue: Arc<SampleQueue>,
    description: String,
    _thread: DeviceThread,
}

impl DeviceSource {
    /// Open the default input device, or the one named (exact name or a substring of it).
    pub fn open(name: Option<&str>) -> Result<Self, AudioError> {
        let queue = Arc::new(SampleQueue::new(DEVICE_QUEUE_SAMPLES));
        let (thread, description) =
            DeviceThread::spawn(Direction::Input, name, Arc::clone(&queue))?;
        tracing::info!(%description, "audio input opened");
        Ok(Self {
            queue,
            description,
            _thread: thread,
        })
    }
}

impl AudioSource for DeviceSource {
    fn read_frame(&mut self, frame: &mut [i16]) -> Result<bool, AudioError> {
        self.queue.pop_into(frame);
        Ok(true)
    }

    fn describe(&self) -> String {
        self.description.clone()
    }

    fn counters(&self) -> StreamCounters {
        self.queue.counters()
    }
}

/// Plays to an audio output device (`--audio-out device[:NAME]`).
#[derive(Debug)]
pub struct DeviceSink {
    queue: Arc<SampleQueue>,
    description: String,
    thread: Option<DeviceThread>,
}

impl DeviceSink {
    /// Open the default output device, or the one named (exact name or a substring of it).
    pub fn open(name: Option<&str>) -> Result<Self, AudioError> {
        let queue = Arc::new(SampleQueue::new(DEVICE_QUEUE_SAMPLES));
        let (thread, description) =
            DeviceThread::spawn(Direction::Output, name, Arc::clone(&queue))?;
        tracing::info!(%description, "audio output opened");
        Ok(Self {
            queue,
            description,
            thread: Some(thread),
        })
    }
}

impl AudioSink for DeviceSink {
    fn write_frame(&mut self, frame: &[i16]) -> Result<(), AudioError> {
        if self.thread.is_none() {
            return Err(AudioError::Finished(self.description.clone()));
        }
        self.queue.push_all(frame.iter().copied());
        Ok(())
    }

    /// Let queued audio play out (up to 300 ms), then stop the stream and join its thread.
    fn finish(&mut self) -> Result<(), AudioError> {
        if self.thread.is_some() {
            let deadline = Instant::now() + DRAIN_TIMEOUT;
            while !self.queue.is_empty() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            self.thread.take();
        }
        Ok(())
    }

    fn describe(&self) -> String {
        self.description.clone()
    }

    fn counters(&self) -> StreamCounters {
        self.queue.counters()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{open_sink, open_source, AudioInSpec, AudioOutSpec};

    // These run against whatever the machine has. With no usable device they must return a
    // clear error naming the file/sine alternatives; with one they must work. Never panic.

    #[test]
    fn default_input_works_or_says_what_to_do() {
        match open_source(&AudioInSpec::Device(None)) {
            Ok(mut source) => {
                let mut frame = [1i16; FRAME_SAMPLES];
                assert!(source.read_frame(&mut frame).unwrap());
                assert!(!source.describe().is_empty());
            }
            Err(e) => {
                assert!(
                    matches!(e, AudioError::NoDevice { .. } | AudioError::Device { .. }),
                    "{e:?}"
                );
                let msg = e.to_string();
                eprintln!("audio input: {msg}");
                assert!(
                    msg.contains("sine:440") && msg.contains("file.wav"),
                    "{msg}"
                );
            }
        }
    }

    #[test]
    fn default_output_works_or_says_what_to_do() {
        match open_sink(&AudioOutSpec::Device(None)) {
            Ok(mut sink) => {
                sink.write_frame(&[0i16; FRAME_SAMPLES]).unwrap();
                sink.finish().unwrap();
                sink.finish().unwrap();
            }
            Err(e) => {
                assert!(
                    matches!(e, AudioError::NoDevice { .. } | AudioError::Device { .. }),
                    "{e:?}"
                );
                let msg = e.to_string();
                eprintln!("audio output: {msg}");
                assert!(msg.contains("file.wav") && msg.contains("null"), "{msg}");
            }
        }
    }

    #[test]
    fn unknown_device_name_lists_alternatives() {
        let err = open_source(&AudioInSpec::Device(Some("no-such-device-xyzzy".into())))
            .err()
            .unwrap();
        assert!(
            matches!(
                err,
                AudioError::DeviceNotFound { .. }
                    | AudioError::NoDevice { .. }
                    | AudioError::Device { .. }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("sine:440"), "{err}");
    }

    #[test]
    fn capture_converts_44k1_stereo_f32_to_48k_mono() {
        let queue = SampleQueue::new(DEVICE_QUEUE_SAMPLES);
        let mut resampler = LinearResampler::new(44_100, SAMPLE_RATE);
        // 100 ms of stereo in 10 ms callbacks: left 0.5, right 0.0 -> mono 0.25.
        let callback: Vec<f32> = [0.5f32, 0.0].repeat(441);
        for _ in 0..10 {
            capture_into(&queue, &mut resampler, &callback, 2);
        }
        let n = queue.len();
        assert!((4790..=4800).contains(&n), "{n}");
        let mut frame = [0i16; FRAME_SAMPLES];
        queue.pop_into(&mut frame);
        assert!(frame.iter().all(|&s| s == 8192), "{:?}", &frame[..4]);
        assert_eq!(queue.counters(), StreamCounters::default());
    }

    #[test]
    fn capture_overflow_drops_oldest() {
        let queue = SampleQueue::new(DEVICE_QUEUE_SAMPLES);
        let mut resampler = LinearResampler::new(SAMPLE_RATE, SAMPLE_RATE);
        let data: Vec<i16> = vec![100; 3 * DEVICE_QUEUE_SAMPLES];
        capture_into(&queue, &mut resampler, &data, 1);
        assert_eq!(queue.len(), DEVICE_QUEUE_SAMPLES);
        assert_eq!(
            queue.counters().dropped_samples,
            2 * DEVICE_QUEUE_SAMPLES as u64
        );
    }

    #[test]
    fn playback_upmixes_and_underruns_to_silence() {
        let queue = SampleQueue::new(DEVICE_QUEUE_SAMPLES);
        let mut resampler = PullResampler::new(SAMPLE_RATE, SAMPLE_RATE);
        queue.push_all([16_384i16; 4]);
        let mut out = [0.0f32; 12]; // 6 stereo frames, only 4 samples queued
        play_from(&queue, &mut resampler, &mut out, 2);
        // The pull resampler starts one sample late (first output is the initial zero).
        assert_eq!(&out[..2], &[0.0, 0.0]);
        assert_eq!(&out[2..10], &[0.5; 8]);
        assert_eq!(&out[10..], &[0.0, 0.0]);
        assert_eq!(queue.counters().underruns, 1);
        let mut out = [0i16; 8];
        play_from(&queue, &mut resampler, &mut out, 1);
        assert_eq!(out, [0; 8]);
    }

    #[test]
    fn listing_does_not_panic() {
        if let Ok(devices) = list_audio_devices() {
            for d in devices {
                assert!(!d.to_string().is_empty());
            }
        }
    }
}
