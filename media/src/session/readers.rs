//! The tasks that read from webrtc-rs (remote tracks, RTP senders' and receivers' RTCP) and
//! turn what they read into [`SessionEvent`]s on the bounded event queue. Reading RTCP is also
//! what makes webrtc-rs run its interceptors (reports, congestion feedback).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;
use webrtc::rtp_transceiver::rtp_receiver::RTCRtpReceiver;
use webrtc::rtp_transceiver::rtp_sender::RTCRtpSender;
use webrtc::track::track_remote::TrackRemote;

use super::rtcp::RtcpFeedback;
use super::send_log::SharedLog;
use super::video::VideoSender;
use super::{ReceivedRtp, SessionEvent};

/// Where the reader tasks put their events: the bounded queue, counting what does not fit.
#[derive(Clone)]
pub(super) struct EventSink {
    events: mpsc::Sender<SessionEvent>,
    dropped: Arc<AtomicU64>,
    /// What was sent, to match transport-wide feedback against.
    sent: SharedLog,
}

impl EventSink {
    pub(super) fn new(
        events: &mpsc::Sender<SessionEvent>,
        dropped: &Arc<AtomicU64>,
        sent: &SharedLog,
    ) -> Self {
        Self {
            events: events.clone(),
            dropped: Arc::clone(dropped),
            sent: Arc::clone(sent),
        }
    }

    /// The [`SessionEvent::TransportFeedback`] for a transport-cc feedback, if it names
    /// packets we remember.
    fn match_feedback(&self, kind: &RtcpFeedback, at: Instant) -> Option<SessionEvent> {
        let RtcpFeedback::TransportCc { arrivals, .. } = kind else {
            return None;
        };
        let results = self.sent.lock().ok()?.on_feedback(arrivals);
        (!results.is_empty()).then_some(SessionEvent::TransportFeedback { results, at })
    }

    /// Queues `ev`; false once the owner is gone.
    fn offer(&self, ev: SessionEvent) -> bool {
        match self.events.try_send(ev) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }
}

pub(super) async fn sender_ssrc(sender: &RTCRtpSender) -> u32 {
    sender
        .get_parameters()
        .await
        .encodings
        .first()
        .map_or(0, |e| e.ssrc)
}

pub(super) async fn read_remote_track(track: Arc<TrackRemote>, video: bool, sink: EventSink) {
    // The payload type webrtc-rs matched to this track's negotiated codec (the offerer's
    // number for it, which need not be ours: a browser may offer H.264 as 109).
    let mut filter = PayloadTypeFilter::new(track.payload_type());
    while let Ok((pkt, _)) = track.read_rtp().await {
        if !filter.admit(pkt.header.payload_type) {
            continue;
        }
        let rtp = ReceivedRtp {
            seq: pkt.header.sequence_number,
            timestamp: pkt.header.timestamp,
            ssrc: pkt.header.ssrc,
            marker: pkt.header.marker,
            payload: pkt.payload,
            arrival: Instant::now(),
        };
        let ev = if video {
            SessionEvent::Video(rtp)
        } else {
            SessionEvent::Audio(rtp)
        };
        if !sink.offer(ev) {
            break;
        }
    }
}

/// Reads the RTCP arriving for one of our senders (which also runs the interceptors), answers
/// NACKs from the video history, and reports the feedback.
pub(super) async fn read_sender_rtcp(
    sender: Arc<RTCRtpSender>,
    ssrc: u32,
    video: Option<Arc<VideoSender>>,
    sink: EventSink,
) {
    while let Ok((packets, _)) = sender.read_rtcp().await {
        let at = Instant::now();
        for kind in RtcpFeedback::from_sender_rtcp(&packets, ssrc) {
            if let (RtcpFeedback::Nack { seqs, .. }, Some(v)) = (&kind, &video) {
                let sent = v.retransmit(seqs).await;
                tracing::trace!(asked = seqs.len(), sent, "answered a NACK");
            }
            if let Some(ev) = sink.match_feedback(&kind, at) {
                if !sink.offer(ev) {
                    return;
                }
            }
            if !sink.offer(SessionEvent::Rtcp { kind, at }) {
                return;
            }
        }
    }
}

/// Reads the RTCP of the peer's stream `ssrc` (its sender reports).
pub(super) async fn read_receiver_rtcp(receiver: Arc<RTCRtpReceiver>, ssrc: u32, sink: EventSink) {
    while let Ok((packets, _)) = receiver.read_rtcp().await {
        let at = Instant::now();
        for kind in RtcpFeedback::from_receiver_rtcp(&packets, ssrc) {
            if !sink.offer(SessionEvent::Rtcp { kind, at }) {
                return;
            }
        }
    }
}

/// Only the payload type negotiated for a track reaches its decoder: a peer's packet with any
/// other (an unannounced codec, garbage) is dropped and counted, so an Opus decoder is never
/// fed H.264 or the reverse.
#[derive(Debug)]
pub(super) struct PayloadTypeFilter {
    expected: u8,
    dropped: u64,
}

impl PayloadTypeFilter {
    pub(super) fn new(expected: u8) -> Self {
        Self {
            expected,
            dropped: 0,
        }
    }

    /// Whether a packet of payload type `pt` goes on.
    pub(super) fn admit(&mut self, pt: u8) -> bool {
        if pt == self.expected {
            return true;
        }
        self.dropped += 1;
        if self.dropped == 1 {
            tracing::warn!(
                payload_type = pt,
                expected = self.expected,
                "dropped RTP with a payload type that was not announced for this track"
            );
        }
        false
    }
}

#[cfg(test)]
mod payload_type_tests {
    use super::PayloadTypeFilter;

    #[test]
    fn only_the_announced_payload_type_passes() {
        let mut f = PayloadTypeFilter::new(102);
        assert!(f.admit(102));
        for pt in [0u8, 96, 101, 103, 111, 127] {
            assert!(!f.admit(pt), "{pt}");
        }
        assert!(f.admit(102));
        assert_eq!(f.dropped, 6);
    }
}
