//! [`RtpClockMap`]: one stream's RTP timestamps mapped to the sender's clock, fitted from the
//! sender reports of that stream (the role of libwebrtc's `RtpToNtpEstimator`).
//!
//! An RTCP sender report (RFC 3550 §6.4.1) pairs an NTP time of the sender's wall clock with
//! the RTP timestamp that corresponds to the same instant. Both are sampled together at the
//! sender, so the pairs of one honest sender lie on a line whatever the network does; the slope
//! is the stream's true clock rate (nominal rate plus drift). The map keeps the last
//! [`MAX_REPORTS`] accepted pairs and fits that line by least squares, which also averages out
//! the few milliseconds by which real reports scatter; with a single report it uses the nominal
//! clock rate.
//!
//! Validation, so a bad or hostile report cannot derail playout: a report must be newer than
//! the last accepted one in both clocks (NTP forward by at most an hour, RTP forward by less
//! than half the 32-bit range), and must agree with the current fit within
//! [`MAX_DEVIATION_US`] plus [`MAX_RATE_ERROR`] of the elapsed time. After
//! [`MAX_CONSECUTIVE_REJECTS`] rejected reports in a row the sender has evidently restarted its
//! clocks: the map starts over from the newest report. Sans-IO: no clock is read here.

use std::collections::VecDeque;

use super::SyncError;

/// Accepted reports kept for the fit (libwebrtc keeps 20; at one report a second that is
/// 20 s, long enough to average out timestamp rounding, short enough to follow drift).
pub const MAX_REPORTS: usize = 20;

/// How far a report may lie off the fitted line before it is an outlier, in microseconds,
/// on top of [`MAX_RATE_ERROR`] of the time since the last report. Honest reports scatter by a
/// few ms: webrtc-rs pairs the NTP time with the timestamp of the last packet *sent*,
/// extrapolated, so send-time jitter (and a video frame's encoding time) shows up here.
pub const MAX_DEVIATION_US: i64 = 20_000;

/// Largest clock-rate error accepted between the nominal rate and a fitted or implied one
/// (1 %; real crystal drift is below 0.01 %).
pub const MAX_RATE_ERROR: f64 = 0.01;

/// Shortest span of kept reports (sender time) over which the slope is fitted; below it the
/// nominal rate is used. A timestamp is a whole tick, so two reports 10 ms apart at 48 kHz
/// give the rate only to ±0.2 % (one tick in 480), which put a time 3 s later off by 1.2 ms;
/// over 1 s the rounding is one tick in 48,000. Senders report about once a second anyway.
pub const MIN_FIT_SPAN_US: i64 = 1_000_000;

/// Rejected reports in a row after which the map starts over from the newest one.
pub const MAX_CONSECUTIVE_REJECTS: u32 = 3;

/// Largest forward step of NTP time between two reports (one hour, as in libwebrtc): a
/// bigger jump is a clock step, and half the RTP range at 90 kHz is only 6.6 hours.
const MAX_NTP_STEP_US: i64 = 3_600 * 1_000_000;

/// Sender wall-clock time in microseconds since the NTP epoch (1900).
pub type SenderMicros = i64;

/// Converts a 64-bit NTP timestamp (32.32 fixed point seconds) to microseconds.
pub fn ntp_to_micros(ntp: u64) -> SenderMicros {
    let secs = (ntp >> 32) as i64;
    let frac = ((ntp & 0xFFFF_FFFF) * 1_000_000) >> 32;
    secs * 1_000_000 + frac as i64
}

/// The RTP → sender-clock map of one stream; see the module documentation.
#[derive(Debug, Clone)]
pub struct RtpClockMap {
    clock_rate: u32,
    /// Accepted `(extended RTP timestamp, sender µs)` pairs, oldest first.
    reports: VecDeque<(i64, SenderMicros)>,
    /// Fitted line: sender µs per RTP tick ...
    slope: f64,
    /// ... and its sender time at the newest report's RTP timestamp (the fit averages the
    /// reports' scatter instead of following the newest one).
    line_at_newest: f64,
    rejects: u32,
}

impl RtpClockMap {
    /// An empty map for a stream whose nominal RTP clock rate is `clock_rate` Hz (48 000 for
    /// Opus, 90 000 for video); a rate of 0 is taken as 1 Hz.
    pub fn new(clock_rate: u32) -> Self {
        let clock_rate = clock_rate.max(1);
        Self {
            clock_rate,
            reports: VecDeque::with_capacity(MAX_REPORTS),
            slope: 1e6 / f64::from(clock_rate),
            line_at_newest: 0.0,
            rejects: 0,
        }
    }

    /// Records one sender report (`ntp` as sent, 32.32 seconds; `rtp_ts` its RTP timestamp).
    ///
    /// A rejected report leaves the map as it was and says why; the caller only logs it.
    pub fn update(&mut self, ntp: u64, rtp_ts: u32) -> Result<(), SyncError> {
        let sender_us = ntp_to_micros(ntp);
        let Some(&(last_rtp, last_us)) = self.reports.back() else {
            self.reset_to(rtp_ts, sender_us);
            return Ok(());
        };
        let ext = last_rtp + i64::from(rtp_ts.wrapping_sub(last_rtp as u32) as i32);
        match self.check(ext, sender_us, last_rtp, last_us) {
            Ok(()) => {
                self.rejects = 0;
                if self.reports.len() == MAX_REPORTS {
                    self.reports.pop_front();
                }
                self.reports.push_back((ext, sender_us));
                self.fit();
                Ok(())
            }
            Err(e) => {
                self.rejects += 1;
                if self.rejects >= MAX_CONSECUTIVE_REJECTS {
                    self.reset_to(rtp_ts, sender_us);
                }
                Err(e)
            }
        }
    }

    /// Sender-clock time of the sample with RTP timestamp `rtp_ts`, or `None` before the first
    /// report. Timestamps are unwrapped around the newest report, so they must lie within
    /// half the 32-bit range of it (6.6 hours at 90 kHz).
    pub fn sender_time(&self, rtp_ts: u32) -> Option<SenderMicros> {
        let &(last_rtp, _) = self.reports.back()?;
        let ticks = i64::from(rtp_ts.wrapping_sub(last_rtp as u32) as i32);
        Some((self.line_at_newest + ticks as f64 * self.slope).round() as i64)
    }

    /// The newest accepted report: its RTP timestamp and sender time. Timestamps are unwrapped
    /// around it (see [`RtpClockMap::sender_time`]).
    pub fn newest_report(&self) -> Option<(u32, SenderMicros)> {
        self.reports.back().map(|&(rtp, us)| (rtp as u32, us))
    }

    /// Accepted reports currently used by the fit.
    pub fn reports(&self) -> usize {
        self.reports.len()
    }

    /// Fitted clock rate in Hz (the nominal one until two reports were accepted).
    pub fn clock_rate(&self) -> f64 {
        1e6 / self.slope
    }

    /// Forgets every report (new SSRC).
    pub fn reset(&mut self) {
        *self = Self::new(self.clock_rate);
    }

    fn reset_to(&mut self, rtp_ts: u32, sender_us: SenderMicros) {
        self.reset();
        self.reports.push_back((i64::from(rtp_ts), sender_us));
        self.line_at_newest = sender_us as f64;
    }

    fn check(
        &self,
        ext: i64,
        sender_us: SenderMicros,
        last_rtp: i64,
        last_us: SenderMicros,
    ) -> Result<(), SyncError> {
        let elapsed_us = sender_us.saturating_sub(last_us);
        if elapsed_us <= 0 || elapsed_us > MAX_NTP_STEP_US {
            return Err(SyncError::NtpNotAdvancing { elapsed_us });
        }
        if ext <= last_rtp {
            return Err(SyncError::RtpNotAdvancing {
                ticks: ext - last_rtp,
            });
        }
        let predicted = self.line_at_newest + (ext - last_rtp) as f64 * self.slope;
        let deviation_us = (sender_us as f64 - predicted).round() as i64;
        let allowed = MAX_DEVIATION_US + (elapsed_us as f64 * MAX_RATE_ERROR) as i64;
        if deviation_us.abs() > allowed {
            return Err(SyncError::OffTheLine { deviation_us });
        }
        Ok(())
    }

    /// Least-squares line through the kept reports, centred on the newest so the numbers
    /// stay small; the slope is clamped to the nominal rate ± [`MAX_RATE_ERROR`].
    fn fit(&mut self) {
        let nominal = 1e6 / f64::from(self.clock_rate);
        let Some(&(x0, y0)) = self.reports.back() else {
            return;
        };
        let n = self.reports.len() as f64;
        let span_us = self.reports.front().map_or(0, |&(_, oldest)| y0 - oldest);
        if n < 2.0 || span_us < MIN_FIT_SPAN_US {
            self.slope = nominal;
            self.line_at_newest = y0 as f64;
            return;
        }
        let (sx, sy) = self.reports.iter().fold((0.0, 0.0), |(sx, sy), &(x, y)| {
            (sx + (x - x0) as f64, sy + (y - y0) as f64)
        });
        let (mx, my) = (sx / n, sy / n);
        let (sxx, sxy) = self.reports.iter().fold((0.0, 0.0), |(sxx, sxy), &(x, y)| {
            let dx = (x - x0) as f64 - mx;
            let dy = (y - y0) as f64 - my;
            (sxx + dx * dx, sxy + dx * dy)
        });
        let slope = if sxx > 0.0 { sxy / sxx } else { nominal };
        self.slope = if slope.is_finite() {
            slope.clamp(
                nominal * (1.0 - MAX_RATE_ERROR),
                nominal * (1.0 + MAX_RATE_ERROR),
            )
        } else {
            nominal
        };
        // The line through the centroid, evaluated at the newest report.
        self.line_at_newest = y0 as f64 + my - self.slope * mx;
    }
}
