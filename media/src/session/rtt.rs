//! Picks the round-trip time out of a webrtc-rs stats report and labels where it came from.
//!
//! What webrtc-rs 0.17.2 fills in (read from its source): the RTCP stats interceptor computes
//! RTT from each receiver report about our outgoing stream (arrival − LSR − DLSR) and stores it
//! in `RemoteInboundRTPStats::round_trip_time` **in milliseconds** (the W3C field is in seconds);
//! the ICE agent reports candidate pairs with `current_round_trip_time` left at zero, although it
//! sends consent checks. So RTCP is what we get in practice; an ICE value is used if a later
//! stack version fills it in, and the data-channel ping stays the caller's fallback.

use std::time::Duration;

use webrtc::stats::{StatsReport, StatsReportType};

use crate::stats::{Rtt, RttSource};

/// Longest RTT we believe; anything above is a bogus report (e.g. a peer's clock-skewed LSR).
const MAX_PLAUSIBLE_RTT: Duration = Duration::from_secs(60);

/// The transport RTT in `report`: RTCP if any stream has one, else the nominated ICE pair's.
pub(super) fn transport_rtt(report: &StatsReport) -> Option<Rtt> {
    let mut rtcp_ms = None;
    let mut ice_s = None;
    for stat in report.reports.values() {
        match stat {
            StatsReportType::RemoteInboundRTP(r) => {
                rtcp_ms = rtcp_ms.or(r.round_trip_time);
            }
            StatsReportType::CandidatePair(p) if p.nominated => {
                ice_s = ice_s.or(Some(p.current_round_trip_time));
            }
            _ => {}
        }
    }
    pick(rtcp_ms, ice_s)
}

/// Chooses between an RTCP RTT in milliseconds and an ICE RTT in seconds (units as webrtc-rs
/// 0.17.2 reports them). Zero, negative, non-finite and implausible values count as absent.
pub(super) fn pick(rtcp_ms: Option<f64>, ice_s: Option<f64>) -> Option<Rtt> {
    let valid = |secs: f64| {
        (secs.is_finite() && secs > 0.0)
            .then(|| Duration::from_secs_f64(secs))
            .filter(|d| *d <= MAX_PLAUSIBLE_RTT)
    };
    let rtcp = rtcp_ms.and_then(|ms| valid(ms / 1e3)).map(|value| Rtt {
        value,
        source: RttSource::Rtcp,
    });
    let ice = ice_s.and_then(valid).map(|value| Rtt {
        value,
        source: RttSource::Ice,
    });
    rtcp.or(ice)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: the RTCP RTT is in milliseconds in webrtc-rs 0.17.2; it used to be read as
    /// seconds, turning a 1.5 ms loopback RTT into 1.5 s.
    #[test]
    fn rtcp_rtt_is_read_in_milliseconds() {
        let rtt = pick(Some(1.5), None).unwrap();
        assert_eq!(rtt.source, RttSource::Rtcp);
        assert_eq!(rtt.value, Duration::from_micros(1_500));
    }

    #[test]
    fn rtcp_is_preferred_and_ice_is_the_fallback() {
        assert_eq!(
            pick(Some(20.0), Some(0.005)).unwrap().source,
            RttSource::Rtcp
        );
        let ice = pick(None, Some(0.005)).unwrap();
        assert_eq!(ice.source, RttSource::Ice);
        assert_eq!(ice.value, Duration::from_millis(5));
        // webrtc-rs reports zero for "not measured".
        assert_eq!(pick(Some(0.0), Some(0.0)), None);
        assert_eq!(pick(Some(0.0), Some(0.002)).unwrap().source, RttSource::Ice);
    }

    #[test]
    fn garbage_values_are_ignored() {
        for bad in [f64::NAN, f64::INFINITY, -3.0, 1e12] {
            assert_eq!(pick(Some(bad), Some(bad)), None, "{bad}");
        }
    }
}
