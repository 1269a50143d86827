//! Audio/video synchronisation (lip sync) of one remote peer: when to show each decoded video
//! frame so that it matches the audio being played, and how much to hold audio back when video
//! cannot keep up. The model is libwebrtc's `RtpToNtpEstimator` + `StreamSynchronization`,
//! reduced to a direct schedule.
//!
//! Position in the pipeline: beside the receive pipelines, after the decoders. Its inputs are
//! the peer's RTCP sender reports ([`AvSync::handle_sender_report`], from
//! `SessionEvent::Rtcp` with `RtcpFeedback::SenderReport`), the audio playout position
//! ([`AvSync::audio_played`], from [`crate::jitter::audio::AudioPlayout::playout_timestamp`]
//! after each pull) and each decoded video frame ([`AvSync::video_frame_ready`]). Its outputs
//! are an [`Instant`] per video frame and [`AvSync::audio_extra_delay`], which the engine hands
//! to [`crate::jitter::audio::AudioPlayout::set_extra_delay`].
//!
//! # How
//! Audio and video have unrelated RTP timestamps (random offsets, 48 and 90 kHz). Each
//! stream's sender reports pair its RTP clock with the sender's wall clock ([`RtpClockMap`]),
//! so every audio sample and video frame gets a *sender time*: when it was captured. When the
//! audio sample with sender time `s_a` starts playing at `t_a`, the video frame with sender
//! time `s_v` belongs on screen at `t_a + (s_v - s_a)`: that is [`AvSync::render_at`]. The
//! network delays of the two streams, the audio jitter buffer's delay and the video decode
//! time all cancel out; only the sender's own capture alignment remains.
//!
//! A frame decoded after its render time is shown at once, late by the difference. Over each
//! [`SyncConfig::adjust_interval`] the largest lateness raises the audio extra delay at once
//! (fast attack, up to [`SyncConfig::max_audio_extra_delay`]); slack lowers it by at most
//! [`SyncConfig::audio_delay_decay`] per interval. Without audio playout for
//! [`SyncConfig::audio_stale`] (muted, no audio stream) frames are shown as soon as decoded.
//!
//! Sans-IO: time is an argument (`now`, `at`), nothing here reads a clock.

mod clock_map;

use std::time::{Duration, Instant};

pub use self::clock_map::{ntp_to_micros, RtpClockMap, SenderMicros};

/// Which of the peer's two streams a sender report or timestamp belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SyncStream {
    /// The Opus stream (48 kHz RTP clock by default).
    Audio,
    /// The H.264 stream (90 kHz RTP clock).
    Video,
}

/// Why a sender report was not used. Harmless: the map keeps its previous fit; log at debug.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// The report's NTP time is not after the last accepted one, or jumps more than an hour.
    #[error(
        "sender report ignored: its NTP time moved {elapsed_us} µs since the last report \
         (must move forward, by at most an hour); the peer's clock stepped"
    )]
    NtpNotAdvancing {
        /// Sender-clock time since the last accepted report, µs.
        elapsed_us: i64,
    },
    /// The report's RTP timestamp is not after the last accepted one.
    #[error(
        "sender report ignored: its RTP timestamp moved {ticks} ticks since the last report \
         (must move forward); the peer's stream restarted or the report is stale"
    )]
    RtpNotAdvancing {
        /// RTP ticks since the last accepted report (unwrapped).
        ticks: i64,
    },
    /// The report disagrees with the line through the previous ones.
    #[error(
        "sender report ignored: it lies {deviation_us} µs off the RTP-to-clock line of the \
         previous reports; after 3 in a row the map starts over"
    )]
    OffTheLine {
        /// Report's NTP time minus the fitted prediction, µs.
        deviation_us: i64,
    },
}

/// Tuning of [`AvSync`]; the defaults suit `call`'s Opus + H.264 streams.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncConfig {
    /// RTP clock rate of the audio stream (default 48 000 Hz).
    pub audio_clock_rate: u32,
    /// RTP clock rate of the video stream (default 90 000 Hz).
    pub video_clock_rate: u32,
    /// Longest a decoded frame is held for audio (default 1 s); a later schedule means a bad
    /// map or a stalled audio path, and the frame is shown at `now +` this instead.
    pub max_video_delay: Duration,
    /// Most extra delay [`AvSync::audio_extra_delay`] asks of audio (default 150 ms).
    pub max_audio_extra_delay: Duration,
    /// Window over which video lateness is collected before the audio delay moves (default
    /// 500 ms: long enough for the jitter buffer to apply the previous step, by inserted
    /// frames, before lateness is measured again).
    pub adjust_interval: Duration,
    /// Largest fall of the audio extra delay per interval (default 5 ms, 10 ms/s).
    pub audio_delay_decay: Duration,
    /// Without an [`AvSync::audio_played`] for this long, audio counts as stopped and frames are
    /// not held (default 1 s).
    pub audio_stale: Duration,
}

impl Default for SyncConfig {
    fn default() -> Self {
        Self {
            audio_clock_rate: 48_000,
            video_clock_rate: 90_000,
            max_video_delay: Duration::from_secs(1),
            max_audio_extra_delay: Duration::from_millis(150),
            adjust_interval: Duration::from_millis(500),
            audio_delay_decay: Duration::from_millis(5),
            audio_stale: Duration::from_secs(1),
        }
    }
}

/// Lip sync of one remote peer's audio and video; see the module documentation.
#[derive(Debug, Clone)]
pub struct AvSync {
    cfg: SyncConfig,
    audio: RtpClockMap,
    video: RtpClockMap,
    ssrcs: [Option<u32>; 2],
    /// Last audio playout position: RTP timestamp and when it started playing.
    audio_anchor: Option<(u32, Instant)>,
    /// Start of the current lateness window and the worst lateness in it, µs.
    window: Option<(Instant, i64)>,
    audio_extra_us: i64,
}

impl Default for AvSync {
    fn default() -> Self {
        Self::new(SyncConfig::default())
    }
}

impl AvSync {
    /// A synchroniser with no reports yet.
    pub fn new(cfg: SyncConfig) -> Self {
        Self {
            audio: RtpClockMap::new(cfg.audio_clock_rate),
            video: RtpClockMap::new(cfg.video_clock_rate),
            ssrcs: [None; 2],
            audio_anchor: None,
            window: None,
            audio_extra_us: 0,
            cfg,
        }
    }

    /// Records one RTCP sender report of `stream` (`ssrc`, `ntp` and `rtp_ts` as in
    /// `RtcpFeedback::SenderReport`). A new SSRC for the stream forgets its old reports (and, for
    /// audio, the playout position until the next [`AvSync::audio_played`]). A
    /// rejected report changes nothing; the error says why (log it, do not end the call).
    pub fn handle_sender_report(
        &mut self,
        stream: SyncStream,
        ssrc: u32,
        ntp: u64,
        rtp_ts: u32,
    ) -> Result<(), SyncError> {
        let slot = &mut self.ssrcs[stream as usize];
        let map = match stream {
            SyncStream::Audio => &mut self.audio,
            SyncStream::Video => &mut self.video,
        };
        if *slot != Some(ssrc) {
            *slot = Some(ssrc);
            map.reset();
            if stream == SyncStream::Audio {
                // The playout position belongs to the old stream's clock.
                self.audio_anchor = None;
            }
        }
        map.update(ntp, rtp_ts)
    }

    /// Records that the audio sample with RTP timestamp `rtp_ts` started playing at `at`; call
    /// after each audio pull with [`crate::jitter::audio::AudioPlayout::playout_timestamp`]
    /// and the pull's `now` (plus the output device latency, if known).
    pub fn audio_played(&mut self, rtp_ts: u32, at: Instant) {
        self.audio_anchor = Some((rtp_ts, at));
    }

    /// When the video frame with RTP timestamp `video_ts` should be on screen to match the
    /// audio, or `None` until both streams have a sender report and audio has played. The
    /// instant may be in the past (the frame is late: show it now).
    pub fn render_at(&self, video_ts: u32) -> Option<Instant> {
        let (audio_ts, at) = self.audio_anchor?;
        let s_v = self.video.sender_time(video_ts)?;
        let s_a = self.audio.sender_time(audio_ts)?;
        offset_instant(at, s_v.saturating_sub(s_a))
    }

    /// Call once per decoded video frame, at `now`: returns when to show it (`None`: at once,
    /// not synchronised yet or audio stopped; an instant not after `now`: at once, it is late).
    /// Its lateness feeds [`AvSync::audio_extra_delay`].
    pub fn video_frame_ready(&mut self, video_ts: u32, now: Instant) -> Option<Instant> {
        let (_, anchor_at) = self.audio_anchor?;
        if now.saturating_duration_since(anchor_at) > self.cfg.audio_stale {
            return None;
        }
        let at = self.render_at(video_ts)?;
        self.record_lateness(signed_micros(at, now), now);
        Some(
            now.checked_add(self.cfg.max_video_delay)
                .map_or(at, |cap| at.min(cap)),
        )
    }

    /// Extra delay the audio playout should add so that video is not late (0 while video keeps
    /// up). Hand it to [`crate::jitter::audio::AudioPlayout::set_extra_delay`] after each
    /// [`AvSync::video_frame_ready`] (or every pull; it changes at most once per interval).
    pub fn audio_extra_delay(&self) -> Duration {
        Duration::from_micros(self.audio_extra_us.max(0) as u64)
    }

    /// Whether both streams have a sender report and audio has played, so frames are scheduled.
    pub fn is_synchronised(&self) -> bool {
        self.audio_anchor.is_some() && self.audio.reports() > 0 && self.video.reports() > 0
    }

    /// The RTP → sender-clock map of `stream`.
    pub fn clock_map(&self, stream: SyncStream) -> &RtpClockMap {
        match stream {
            SyncStream::Audio => &self.audio,
            SyncStream::Video => &self.video,
        }
    }

    /// Collects `late_us` (frame decoded after its render time when positive) and, once per
    /// interval, moves the audio extra delay: up by the worst lateness at once, down slowly.
    fn record_lateness(&mut self, late_us: i64, now: Instant) {
        let (start, worst) = self.window.get_or_insert((now, late_us));
        *worst = (*worst).max(late_us);
        if now.saturating_duration_since(*start) < self.cfg.adjust_interval {
            return;
        }
        let worst = *worst;
        self.window = None;
        let max = micros(self.cfg.max_audio_extra_delay);
        self.audio_extra_us = if worst > 0 {
            self.audio_extra_us.saturating_add(worst)
        } else {
            let decay = micros(self.cfg.audio_delay_decay).min(-worst);
            self.audio_extra_us - decay
        }
        .clamp(0, max);
    }
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// Signed microseconds from `from` to `to`.
fn signed_micros(from: Instant, to: Instant) -> i64 {
    match to.checked_duration_since(from) {
        Some(d) => micros(d),
        None => -micros(from.saturating_duration_since(to)),
    }
}

/// `at` moved by `us` microseconds (either way); `None` if that leaves `Instant`'s range.
fn offset_instant(at: Instant, us: i64) -> Option<Instant> {
    let d = Duration::from_micros(us.unsigned_abs());
    if us >= 0 {
        at.checked_add(d)
    } else {
        at.checked_sub(d)
    }
}

#[cfg(test)]
mod tests;
