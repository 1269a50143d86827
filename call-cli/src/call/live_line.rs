//! The statistics line printed every second during a call. The audio line is
//! [`CallStats::line`], with the RTT's source shown (`rtt 3.3 ms (rtcp)`): round-trip times from
//! RTCP, ICE consent checks and the chat data channel differ (the last includes SCTP and the
//! peer's event loop). A chat-only call has no audio: its line carries only time and RTT.

use media::stats::CallStats;

/// The line for a call with audio.
pub(crate) fn audio_line(stats: &CallStats) -> String {
    stats.line()
}

/// The line for a chat-only call: no audio figures.
pub(crate) fn chat_line(stats: &CallStats) -> String {
    format!("[{:>5.1}s] rtt {}", stats.elapsed_s, stats.rtt_text())
}

#[cfg(test)]
mod tests {
    use super::*;
    use media::stats::RttSource;

    #[test]
    fn the_rtt_is_labelled_with_its_source() {
        let with = |source| CallStats {
            rtt_ms: Some(3.31),
            rtt_source: source,
            elapsed_s: 2.0,
            ..CallStats::default()
        };
        assert!(audio_line(&with(Some(RttSource::DataChannel))).contains("rtt 3.3 ms (dc) |"));
        assert!(audio_line(&with(Some(RttSource::Rtcp))).contains("rtt 3.3 ms (rtcp) |"));
        assert!(chat_line(&with(Some(RttSource::Ice))).ends_with("rtt 3.3 ms (ice)"));
        assert!(audio_line(&CallStats::default()).contains("rtt - |"));
    }

    #[test]
    fn the_chat_line_has_no_audio_figures() {
        let line = chat_line(&CallStats::default());
        for audio in ["pkts", "kbps", "dBFS", "buffer", "fec"] {
            assert!(!line.contains(audio), "{line}");
        }
    }
}
