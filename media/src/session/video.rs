//! The outgoing H.264 track: our own packetizer (so we choose sequence numbers and
//! timestamps), a bounded history of what was sent, and plain retransmission on NACK.
//! Keyframe requests are only reported: the encoder belongs to the session's owner.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use webrtc::api::media_engine::MIME_TYPE_H264;
use webrtc::rtp::header::Header;
use webrtc::rtp::packet::Packet;
use webrtc::rtp_transceiver::rtp_codec::RTCRtpCodecCapability;
use webrtc::rtp_transceiver::RTCPFeedback;
use webrtc::track::track_local::track_local_static_rtp::TrackLocalStaticRTP;
use webrtc::track::track_local::TrackLocalWriter;

use super::config::VideoConfig;
use super::history::SentHistory;
use super::SessionError;
use crate::jitter::video::{FramePacketizer, VideoPacket};

/// RTP payload type we register for H.264.
pub const H264_PAYLOAD_TYPE: u8 = 102;
/// Largest RTP payload [`VideoConfig::max_payload`] may ask for: RTP header with extensions,
/// the SRTP tag, UDP, IP and a TURN channel header still fit 1500 bytes.
const MAX_PAYLOAD: usize = 1300;
/// RTP clock of video (RFC 6184).
pub const VIDEO_CLOCK_HZ: u32 = 90_000;
/// The `a=fmtp` parameters we offer: constrained baseline level 3.1, packetization mode 1
/// (FU-A and STAP-A), and a receiver that decodes any level.
pub const H264_FMTP: &str =
    "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f";

/// The H.264 codec as registered and offered, with NACK, PLI and FIR feedback (transport-cc is
/// added by the interceptor registry).
pub(crate) fn h264_capability() -> RTCRtpCodecCapability {
    let fb = |typ: &str, parameter: &str| RTCPFeedback {
        typ: typ.to_owned(),
        parameter: parameter.to_owned(),
    };
    RTCRtpCodecCapability {
        mime_type: MIME_TYPE_H264.to_owned(),
        clock_rate: VIDEO_CLOCK_HZ,
        channels: 0,
        sdp_fmtp_line: H264_FMTP.to_owned(),
        rtcp_feedback: vec![fb("nack", ""), fb("nack", "pli"), fb("ccm", "fir")],
    }
}

/// What [`super::Session::send_video_frame`] did with one access unit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SentVideoFrame {
    /// RTP timestamp (90 kHz) of the frame.
    pub timestamp: u32,
    /// Sequence numbers of its packets, in order.
    pub seqs: Vec<u16>,
    /// Those withheld by [`VideoConfig::drop_every_nth`] (in the history, not on the wire).
    pub withheld: Vec<u16>,
}

struct SendState {
    packetizer: FramePacketizer,
    timestamp: u32,
    /// Packets offered for sending so far (for `drop_every_nth`).
    count: u64,
}

/// The sending half of the video m-section.
pub(crate) struct VideoSender {
    pub(crate) track: Arc<TrackLocalStaticRTP>,
    state: Mutex<SendState>,
    history: Mutex<SentHistory>,
    drop_every_nth: Option<u32>,
    retransmitted: AtomicU64,
}

impl VideoSender {
    pub(crate) fn new(
        cfg: &VideoConfig,
        first_seq: u16,
        first_timestamp: u32,
    ) -> Result<Self, SessionError> {
        if cfg.max_payload > MAX_PAYLOAD {
            return Err(SessionError::VideoConfig(format!(
                "max_payload {} is above {MAX_PAYLOAD} bytes: the SRTP packet would not fit a 1500-byte MTU",
                cfg.max_payload
            )));
        }
        let packetizer = FramePacketizer::new(first_seq, cfg.max_payload)
            .map_err(|e| SessionError::VideoConfig(e.to_string()))?;
        Ok(Self {
            track: Arc::new(TrackLocalStaticRTP::new(
                h264_capability(),
                "video".to_owned(),
                "call".to_owned(),
            )),
            state: Mutex::new(SendState {
                packetizer,
                timestamp: first_timestamp,
                count: 0,
            }),
            history: Mutex::new(SentHistory::new(cfg.history)),
            drop_every_nth: cfg.drop_every_nth.filter(|&n| n > 0),
            retransmitted: AtomicU64::new(0),
        })
    }

    /// Packetizes one Annex-B access unit at the current timestamp, then advances the
    /// timestamp by `duration`.
    pub(crate) async fn send_frame(
        &self,
        annexb: &[u8],
        duration: Duration,
    ) -> Result<SentVideoFrame, SessionError> {
        let (timestamp, packets) = {
            let mut st = self.state.lock().map_err(|_| SessionError::Poisoned)?;
            let ts = st.timestamp;
            let packets = st
                .packetizer
                .packetize(annexb, ts)
                .map_err(|e| SessionError::BadAccessUnit(e.to_string()))?;
            let ticks = duration.as_micros() * u128::from(VIDEO_CLOCK_HZ) / 1_000_000;
            st.timestamp = ts.wrapping_add(ticks as u32);
            (ts, packets)
        };
        let seqs = packets.iter().map(|p| p.seq).collect();
        let withheld = self.send_packets(&packets).await?;
        Ok(SentVideoFrame {
            timestamp,
            seqs,
            withheld,
        })
    }

    /// Sends packets the caller numbered itself, remembering them for retransmission. Returns
    /// the sequence numbers withheld by `drop_every_nth`.
    pub(crate) async fn send_packets(
        &self,
        packets: &[VideoPacket],
    ) -> Result<Vec<u16>, SessionError> {
        let mut withheld = Vec::new();
        for p in packets {
            let rtp = rtp_packet(p);
            let send = {
                let mut st = self.state.lock().map_err(|_| SessionError::Poisoned)?;
                st.count += 1;
                let drop = self
                    .drop_every_nth
                    .is_some_and(|n| st.count % u64::from(n) == 0);
                self.history
                    .lock()
                    .map_err(|_| SessionError::Poisoned)?
                    .push(rtp.clone());
                !drop
            };
            if send {
                self.track
                    .write_rtp(&rtp)
                    .await
                    .map_err(SessionError::webrtc("send video"))?;
            } else {
                withheld.push(p.seq);
            }
        }
        Ok(withheld)
    }

    /// Sends again the packets of `seqs` still in the history; returns how many.
    pub(crate) async fn retransmit(&self, seqs: &[u16]) -> usize {
        let found = match self.history.lock() {
            Ok(h) => h.lookup(seqs),
            Err(_) => return 0,
        };
        let mut sent = 0;
        for p in &found {
            match self.track.write_rtp(p).await {
                Ok(_) => sent += 1,
                Err(e) => tracing::debug!(error = %e, "retransmitting video"),
            }
        }
        self.retransmitted.fetch_add(sent as u64, Ordering::Relaxed);
        sent
    }

    pub(crate) fn retransmitted(&self) -> u64 {
        self.retransmitted.load(Ordering::Relaxed)
    }
}

fn rtp_packet(p: &VideoPacket) -> Packet {
    Packet {
        header: Header {
            version: 2,
            marker: p.marker,
            // Payload type and SSRC are filled in by the track from the negotiated binding.
            sequence_number: p.seq,
            timestamp: p.timestamp,
            ..Default::default()
        },
        payload: p.payload.clone(),
    }
}
