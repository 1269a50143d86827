//! Tests of [`RtpClockMap`] and [`AvSync`] on virtual time; `av_netsim` runs both streams
//! of one sender through seeded netsim links and the real audio jitter buffer.

mod av_netsim;

use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;

/// NTP seconds of the sender's clock at virtual time zero (a date in 2023).
const NTP_EPOCH_S: u64 = 3_900_000_000;

/// The 32.32 NTP timestamp of the sender clock `us` microseconds after virtual time zero.
pub(super) fn ntp_at(us: i64) -> u64 {
    let total = NTP_EPOCH_S as i128 * 1_000_000 + i128::from(us);
    let secs = (total / 1_000_000) as u64;
    let frac = (((total % 1_000_000) as u64) << 32) / 1_000_000;
    (secs << 32) | frac
}

fn sender_us(us: i64) -> SenderMicros {
    NTP_EPOCH_S as i64 * 1_000_000 + us
}

pub(super) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn ntp_conversion_keeps_microseconds() {
    assert_eq!(ntp_to_micros(0), 0);
    assert_eq!(ntp_to_micros(1 << 32), 1_000_000);
    assert_eq!(ntp_to_micros((5 << 32) | (1 << 31)), 5_500_000);
    for us in [0, 1, 999_999, 123_456_789] {
        assert!((ntp_to_micros(ntp_at(us)) - sender_us(us)).abs() <= 1);
    }
    assert_eq!(ntp_to_micros(u64::MAX), 4_294_967_295_999_999);
}

#[test]
fn one_report_maps_at_the_nominal_rate() {
    let mut map = RtpClockMap::new(90_000);
    assert_eq!(map.sender_time(1234), None);
    map.update(ntp_at(0), 1_000).expect("first report");
    assert_eq!(map.sender_time(1_000), Some(sender_us(0)));
    assert_eq!(map.sender_time(1_000 + 90_000), Some(sender_us(1_000_000)));
    assert_eq!(map.sender_time(1_000 - 900), Some(sender_us(-10_000)));
}

#[test]
fn reports_fit_a_drifting_clock_across_the_rtp_wrap() {
    // The sender's 48 kHz clock runs 0.05 % fast against its NTP clock and wraps at 2^32.
    let rate = 48_000.0 * 1.0005;
    let start = u32::MAX - 200_000;
    let mut map = RtpClockMap::new(48_000);
    for k in 0..10i64 {
        let us = k * 1_000_000;
        let rtp = start.wrapping_add((us as f64 * rate / 1e6).round() as u32);
        map.update(ntp_at(us), rtp).expect("consistent report");
    }
    assert!(
        (map.clock_rate() - rate).abs() < 0.5,
        "{}",
        map.clock_rate()
    );
    // 2 s after the last report, far past the wrap.
    let us = 11_000_000;
    let rtp = start.wrapping_add((us as f64 * rate / 1e6).round() as u32);
    let got = map.sender_time(rtp).expect("mapped");
    assert!(
        (got - sender_us(us)).abs() <= 50,
        "off by {} µs",
        got - sender_us(us)
    );
}

#[test]
fn the_fit_averages_the_scatter_of_reports() {
    // Reports alternate 8 ms early and late around the true line (send jitter, encoding time).
    let mut map = RtpClockMap::new(90_000);
    for k in 0..20i64 {
        let us = k * 1_000_000;
        let scatter = if k % 2 == 0 { 8_000 } else { -8_000 };
        map.update(ntp_at(us), ((us + scatter) * 9 / 100) as u32)
            .expect("within tolerance");
    }
    // The newest report is 8 ms off; the line through all of them is within 2 ms.
    let probe = 19_000_000i64;
    let got = map.sender_time((probe * 9 / 100) as u32).expect("mapped");
    assert!(
        (got - sender_us(probe)).abs() < 2_000,
        "off by {} µs",
        got - sender_us(probe)
    );
}

#[test]
fn outliers_and_backward_reports_are_rejected() {
    let mut map = RtpClockMap::new(48_000);
    map.update(ntp_at(0), 0).expect("first");
    map.update(ntp_at(1_000_000), 48_000).expect("second");
    assert!(matches!(
        map.update(ntp_at(2_000_000), 48_000 * 2 + 4_800), // 100 ms off the line
        Err(SyncError::OffTheLine { .. })
    ));
    assert!(matches!(
        map.update(ntp_at(500_000), 24_000),
        Err(SyncError::NtpNotAdvancing { .. })
    ));
    assert_eq!(map.reports(), 2);
    assert_eq!(map.sender_time(96_000), Some(sender_us(2_000_000)));
    // A good report after the rejects is accepted and resets the count.
    map.update(ntp_at(4_000_000), 48_000 * 4)
        .expect("back on the line");
    assert_eq!(map.reports(), 3);
    assert!(matches!(
        map.update(ntp_at(5_000_000), 48_000),
        Err(SyncError::RtpNotAdvancing { .. })
    ));
    assert_eq!(map.reports(), 3);
}

#[test]
fn three_rejects_in_a_row_start_the_map_over() {
    let mut map = RtpClockMap::new(48_000);
    map.update(ntp_at(0), 0).expect("first");
    map.update(ntp_at(1_000_000), 48_000).expect("second");
    // The sender restarted its RTP clock at a new random offset.
    let offset = 1_000_000_000u32;
    for k in 2..5i64 {
        let rtp = offset.wrapping_add(48_000 * k as u32);
        assert!(map.update(ntp_at(k * 1_000_000), rtp).is_err());
    }
    assert_eq!(map.reports(), 1);
    let rtp = offset.wrapping_add(48_000 * 5);
    map.update(ntp_at(5_000_000), rtp).expect("new line");
    assert_eq!(map.sender_time(rtp), Some(sender_us(5_000_000)));
}

/// An `AvSync` whose audio RTP clock starts at `a0` and video at `v0` at sender time zero,
/// with two sender reports each.
fn synced(a0: u32, v0: u32) -> AvSync {
    let mut sync = AvSync::default();
    for k in 0..2u32 {
        let us = i64::from(k) * 1_000_000;
        sync.handle_sender_report(
            SyncStream::Audio,
            1,
            ntp_at(us),
            a0.wrapping_add(48_000 * k),
        )
        .expect("audio report");
        sync.handle_sender_report(
            SyncStream::Video,
            2,
            ntp_at(us),
            v0.wrapping_add(90_000 * k),
        )
        .expect("video report");
    }
    sync
}

#[test]
fn video_is_scheduled_against_the_audio_playout() {
    let (a0, v0) = (7_000u32, u32::MAX - 45_000);
    let mut sync = synced(a0, v0);
    let t0 = Instant::now();
    assert_eq!(sync.render_at(v0), None, "no audio played yet");
    assert!(!sync.is_synchronised());
    // Audio captured at sender time 2 s starts playing at t0 + 5 s.
    sync.audio_played(a0.wrapping_add(96_000), t0 + ms(5_000));
    assert!(sync.is_synchronised());
    // Video captured at 2.1 s (after the RTP wrap) belongs 100 ms later.
    let v = v0.wrapping_add(189_000);
    assert_eq!(sync.render_at(v), Some(t0 + ms(5_100)));
    // Captured 40 ms before that audio: 40 ms before it started (already late).
    assert_eq!(
        sync.render_at(v0.wrapping_add(176_400)),
        Some(t0 + ms(4_960))
    );
    // Decoded early: held until its time.
    assert_eq!(
        sync.video_frame_ready(v, t0 + ms(5_020)),
        Some(t0 + ms(5_100))
    );
}

#[test]
fn frames_are_not_held_without_reports_or_audio() {
    let mut sync = AvSync::default();
    let t0 = Instant::now();
    sync.audio_played(100, t0);
    assert_eq!(sync.video_frame_ready(0, t0), None, "no reports");
    let mut sync = synced(0, 0);
    sync.audio_played(0, t0);
    assert!(sync.video_frame_ready(0, t0 + ms(100)).is_some());
    assert_eq!(
        sync.video_frame_ready(0, t0 + ms(1_500)),
        None,
        "audio stopped 1.5 s ago"
    );
}

#[test]
fn a_far_schedule_is_capped() {
    let mut sync = synced(0, 0);
    let t0 = Instant::now();
    sync.audio_played(0, t0);
    // A frame captured 10 s after the audio playing now.
    let at = sync.video_frame_ready(900_000, t0).expect("scheduled");
    assert_eq!(at, t0 + SyncConfig::default().max_video_delay);
}

#[test]
fn a_new_ssrc_forgets_the_old_reports() {
    let mut sync = synced(0, 0);
    assert_eq!(sync.clock_map(SyncStream::Video).reports(), 2);
    sync.handle_sender_report(SyncStream::Video, 99, ntp_at(5_000_000), 42)
        .expect("first report of the new stream");
    assert_eq!(sync.clock_map(SyncStream::Video).reports(), 1);
    assert_eq!(sync.clock_map(SyncStream::Audio).reports(), 2);
    // A new audio stream also drops the playout position taken on the old one's clock.
    sync.audio_played(0, Instant::now());
    assert!(sync.is_synchronised());
    sync.handle_sender_report(SyncStream::Audio, 98, ntp_at(5_000_000), 7)
        .expect("first report of the new audio stream");
    assert!(!sync.is_synchronised());
}

#[test]
fn late_video_raises_the_audio_delay_and_slack_lowers_it_slowly() {
    let mut sync = synced(0, 0);
    let t0 = Instant::now();
    // Audio plays sender time s at t0 + s; video frames are decoded 70 ms after their time.
    let frame = |sync: &mut AvSync, j: u64| {
        let at = t0 + Duration::from_micros(j * 33_333);
        sync.audio_played((j * 33_333 * 48 / 1_000) as u32, at);
        sync.video_frame_ready((j * 3_000) as u32, at + ms(70 + j % 3));
    };
    // One adjust interval (500 ms) and a bit: one step up by the worst lateness.
    for j in 0..20 {
        frame(&mut sync, j);
    }
    let raised = sync.audio_extra_delay();
    assert!(raised >= ms(70) && raised <= ms(75), "{raised:?}");
    // The cap holds however late video is.
    for j in 40..400 {
        let at = t0 + Duration::from_micros(j * 33_333);
        sync.audio_played((j * 33_333 * 48 / 1_000) as u32, at);
        sync.video_frame_ready((j * 3_000) as u32, at + ms(400));
    }
    assert_eq!(sync.audio_extra_delay(), ms(150));
    // Video on time again (decoded 50 ms early): the delay falls 5 ms per 500 ms.
    for j in 400..520 {
        let at = t0 + Duration::from_micros(j * 33_333);
        sync.audio_played((j * 33_333 * 48 / 1_000) as u32, at);
        sync.video_frame_ready((j * 3_000) as u32, at - ms(50));
    }
    let fallen = sync.audio_extra_delay();
    assert!(fallen >= ms(110) && fallen < ms(150), "{fallen:?}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any sequence of reports, valid or not: no panic, and the map stays monotonic in RTP
    /// time around the newest report.
    #[test]
    fn clock_map_never_panics_and_stays_monotonic(
        rate in prop_oneof![Just(0u32), Just(48_000u32), Just(90_000u32), any::<u32>()],
        reports in prop::collection::vec((any::<u64>(), any::<u32>()), 0..40),
        probes in prop::collection::vec(-(1i64 << 30)..(1i64 << 30), 2..20),
    ) {
        let mut map = RtpClockMap::new(rate);
        for (ntp, rtp) in &reports {
            let _ = map.update(*ntp, *rtp);
        }
        if let Some((newest, _)) = map.newest_report() {
            let mut probes = probes;
            probes.sort_unstable();
            let times: Vec<SenderMicros> = probes
                .iter()
                .map(|&d| map.sender_time(newest.wrapping_add(d as u32)).expect("mapped"))
                .collect();
            prop_assert!(times.windows(2).all(|w| w[0] <= w[1]), "not monotonic: {times:?}");
        } else {
            prop_assert!(reports.is_empty());
        }
        prop_assert!(map.clock_rate().is_finite() && map.clock_rate() > 0.0);
    }

    /// Any interleaving of reports, audio positions and frames (outside input: reports and
    /// timestamps come from the peer): no panic, the extra audio delay stays within its cap,
    /// and a frame is never held longer than `max_video_delay`.
    #[test]
    fn av_sync_never_panics_and_keeps_its_bounds(
        ops in prop::collection::vec(
            (0u8..4, any::<u8>(), any::<u64>(), any::<u32>(), 0u64..10_000_000),
            0..80,
        ),
    ) {
        let mut sync = AvSync::default();
        let t0 = Instant::now();
        let cfg = SyncConfig::default();
        let mut clock = 0u64;
        for (op, ssrc, ntp, ts, step_us) in ops {
            clock += step_us;
            let now = t0 + Duration::from_micros(clock);
            match op {
                0 => { let _ = sync.handle_sender_report(SyncStream::Audio, u32::from(ssrc % 2), ntp, ts); }
                1 => { let _ = sync.handle_sender_report(SyncStream::Video, u32::from(ssrc % 2), ntp, ts); }
                2 => sync.audio_played(ts, now),
                _ => {
                    if let Some(at) = sync.video_frame_ready(ts, now) {
                        prop_assert!(at <= now + cfg.max_video_delay);
                    }
                    let _ = sync.render_at(ts);
                }
            }
            prop_assert!(sync.audio_extra_delay() <= cfg.max_audio_extra_delay);
        }
    }

    /// Reports from one consistent sender (random offsets, rates, intervals, wrap) are all
    /// accepted, and the map reproduces the sender's clock.
    #[test]
    fn consistent_reports_are_accepted_and_reproduced(
        rate in prop_oneof![Just(48_000u32), Just(90_000u32)],
        offset in any::<u32>(),
        start_us in 0i64..1_000_000_000,
        gaps in prop::collection::vec(10_000i64..5_000_000, 1..25),
    ) {
        let mut map = RtpClockMap::new(rate);
        let rtp = |us: i64| offset.wrapping_add((us as i128 * i128::from(rate) / 1_000_000) as u32);
        let mut us = start_us;
        map.update(ntp_at(us), rtp(us)).map_err(|e| TestCaseError::fail(e.to_string()))?;
        for gap in gaps {
            us += gap;
            map.update(ntp_at(us), rtp(us)).map_err(|e| TestCaseError::fail(e.to_string()))?;
        }
        let probe = us + 3_000_000;
        let got = map.sender_time(rtp(probe)).expect("mapped");
        // RTP timestamps are whole ticks: the fitted rate carries a little rounding error.
        prop_assert!((got - sender_us(probe)).abs() <= 1_000, "off by {}", got - sender_us(probe));
        let mut prev = None;
        for d in (-500_000i64..500_000).step_by(37_000) {
            let t = map.sender_time(rtp(us + d)).expect("mapped");
            if let Some(p) = prev {
                prop_assert!(t >= p);
            }
            prev = Some(t);
        }
    }
}
