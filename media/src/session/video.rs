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

use webrtc::peer_connection::RTCPeerConnection;
use webrtc::rtp_transceiver::rtp_codec::RTPCodecType;
use webrtc::rtp_transceiver::rtp_transceiver_direction::RTCRtpTransceiverDirection;
use webrtc::rtp_transceiver::RTCRtpTransceiverInit;
use webrtc::track::track_local::TrackLocal;

use super::config::{VideoConfig, VideoDirection};
use super::history::SentHistory;
use super::readers::{read_sender_rtcp, sender_ssrc, EventSink};
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

/// Adds the video transceiver in the direction `cfg` asks for. When this side sends, returns
/// its sender and SSRC, and starts the task that reads the sender's RTCP (answering NACKs).
pub(crate) async fn add_video(
    pc: &RTCPeerConnection,
    cfg: &VideoConfig,
    sink: EventSink,
) -> Result<(Option<Arc<VideoSender>>, Option<u32>), SessionError> {
    let init = Some(RTCRtpTransceiverInit {
        direction: match cfg.direction {
            VideoDirection::SendRecv => RTCRtpTransceiverDirection::Sendrecv,
            VideoDirection::SendOnly => RTCRtpTransceiverDirection::Sendonly,
            VideoDirection::RecvOnly => RTCRtpTransceiverDirection::Recvonly,
        },
        send_encodings: vec![],
    });
    if !cfg.direction.sends() {
        pc.add_transceiver_from_kind(RTPCodecType::Video, init)
            .await
            .map_err(SessionError::webrtc("add the video transceiver"))?;
        return Ok((None, None));
    }
    // RFC 3550 §5.1: random initial sequence number and timestamp.
    let sender = Arc::new(VideoSender::new(
        cfg,
        rand::random::<u16>(),
        rand::random::<u32>(),
    )?);
    let t = pc
        .add_transceiver_from_track(
            Arc::clone(&sender.track) as Arc<dyn TrackLocal + Send + Sync>,
            init,
        )
        .await
        .map_err(SessionError::webrtc("add the video track"))?;
    let rtp_sender = t.sender().await;
    let ssrc = sender_ssrc(&rtp_sender).await;
    tokio::spawn(read_sender_rtcp(
        rtp_sender,
        ssrc,
        Some(Arc::clone(&sender)),
        sink,
    ));
    Ok((Some(sender), Some(ssrc)))
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
