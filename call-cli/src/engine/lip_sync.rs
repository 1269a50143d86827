//! Lip sync of one peer: its sender reports map both streams' RTP clocks to its wall clock
//! (`media::sync::AvSync`), so each decoded picture is held until the audio of the same
//! instant plays, and when video comes later than audio, audio is asked to wait (up to
//! 150 ms). Plain state fed `(input, now)`; the loop shows what [`LipSync::due`] releases.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use media::sync::{AvSync, SyncStream};

use super::pipeline::DecodedVideo;

/// Pictures held at most; beyond it the oldest is shown at once (a stalled audio path must not
/// grow memory).
const MAX_HELD: usize = 30;

/// One peer's lip sync.
#[derive(Default)]
pub(crate) struct LipSync {
    sync: AvSync,
    audio_ssrc: Option<u32>,
    video_ssrc: Option<u32>,
    held: VecDeque<(Instant, DecodedVideo)>,
}

impl LipSync {
    /// An audio packet of `ssrc` arrived (the stream its sender reports are about).
    pub(crate) fn on_audio_ssrc(&mut self, ssrc: u32) {
        self.audio_ssrc = Some(ssrc);
    }

    /// A video packet of `ssrc` arrived.
    pub(crate) fn on_video_ssrc(&mut self, ssrc: u32) {
        self.video_ssrc = Some(ssrc);
    }

    /// A sender report from the peer about one of its streams.
    pub(crate) fn on_sender_report(&mut self, ssrc: u32, ntp: u64, rtp_ts: u32) {
        let stream = if Some(ssrc) == self.audio_ssrc {
            SyncStream::Audio
        } else if Some(ssrc) == self.video_ssrc {
            SyncStream::Video
        } else {
            return;
        };
        if let Err(e) = self.sync.handle_sender_report(stream, ssrc, ntp, rtp_ts) {
            tracing::debug!(error = %e, "sender report not used for lip sync");
        }
    }

    /// Audio of RTP time `rtp_ts` started playing at `at`; returns the extra delay audio
    /// should have.
    pub(crate) fn audio_played(&mut self, rtp_ts: Option<u32>, at: Instant) -> Duration {
        if let Some(ts) = rtp_ts {
            self.sync.audio_played(ts, at);
        }
        self.sync.audio_extra_delay()
    }

    /// A decoded picture: returned at once when it is due (or there is nothing to sync to),
    /// else held until [`LipSync::due`] releases it.
    pub(crate) fn schedule(&mut self, picture: DecodedVideo, now: Instant) -> Option<DecodedVideo> {
        match self.sync.video_frame_ready(picture.rtp_timestamp, now) {
            Some(at) if at > now => {
                self.held.push_back((at, picture));
                if self.held.len() > MAX_HELD {
                    return self.held.pop_front().map(|(_, p)| p);
                }
                None
            }
            _ => Some(picture),
        }
    }

    /// Held pictures whose time has come, oldest first.
    pub(crate) fn due(&mut self, now: Instant) -> Vec<DecodedVideo> {
        let mut out = Vec::new();
        while self.held.front().is_some_and(|(at, _)| *at <= now) {
            if let Some((_, p)) = self.held.pop_front() {
                out.push(p);
            }
        }
        out
    }

    /// Every held picture, oldest first (the call is ending).
    pub(crate) fn flush(&mut self) -> Vec<DecodedVideo> {
        self.held.drain(..).map(|(_, p)| p).collect()
    }

    /// When the next held picture is due.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.held.front().map(|(at, _)| *at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use media::codec::h264::I420Frame;

    fn picture(ts: u32) -> DecodedVideo {
        DecodedVideo {
            frame: I420Frame::black(16, 16),
            marker: None,
            glass_to_glass: None,
            rtp_timestamp: ts,
        }
    }

    /// NTP (32.32) of `secs` seconds.
    fn ntp(secs: f64) -> u64 {
        (secs * 4_294_967_296.0) as u64
    }

    /// Audio SSRC 1 and video SSRC 2, three sender reports each: both RTP clocks start at 0
    /// at sender time 1000 s.
    fn synced() -> LipSync {
        let mut ls = LipSync::default();
        ls.on_audio_ssrc(1);
        ls.on_video_ssrc(2);
        for k in 0..3u32 {
            let secs = 1000.0 + f64::from(k);
            ls.on_sender_report(1, ntp(secs), 48_000 * k);
            ls.on_sender_report(2, ntp(secs), 90_000 * k);
        }
        ls
    }

    #[test]
    fn without_reports_pictures_pass_at_once() {
        let now = Instant::now();
        let mut ls = LipSync::default();
        assert!(ls.schedule(picture(90_000), now).is_some());
        assert!(ls.next_due().is_none());
    }

    /// Audio plays media time T at `t0`; a picture of media time T + 100 ms, decoded at `t0`,
    /// is held 100 ms and released then.
    #[test]
    fn a_picture_waits_for_its_audio() {
        let t0 = Instant::now();
        let mut ls = synced();
        // Audio at media time 2 s plays now.
        ls.audio_played(Some(96_000), t0);
        let early = picture(180_000 + 9_000); // 2.1 s
        assert!(ls.schedule(early, t0).is_none(), "held for its audio");
        let at = ls.next_due().expect("held");
        let wait = at.saturating_duration_since(t0);
        assert!(
            (Duration::from_millis(90)..=Duration::from_millis(110)).contains(&wait),
            "{wait:?}"
        );
        assert!(ls.due(at - Duration::from_millis(1)).is_empty());
        assert_eq!(ls.due(at).len(), 1);
        // Unknown SSRCs are ignored.
        ls.on_sender_report(99, ntp(2000.0), 0);
    }

    #[test]
    fn holding_is_bounded() {
        let t0 = Instant::now();
        let mut ls = synced();
        ls.audio_played(Some(0), t0);
        let mut shown = 0;
        for n in 0..100u32 {
            if ls.schedule(picture(45_000 + n * 3_000), t0).is_some() {
                shown += 1;
            }
        }
        assert!(ls.held.len() <= MAX_HELD);
        assert_eq!(shown + ls.held.len(), 100);
    }
}
