//! The one place that touches webrtc-rs: a peer connection with an Opus audio track, an optional
//! H.264 video track, and a reliable, ordered `chat` data channel, ICE over host and TURN relay
//! candidates, DTLS/SRTP.
//!
//! This is the async shell around the network: it moves RTP packets, RTCP feedback and
//! data-channel messages in and out as [`SessionEvent`]s stamped with their arrival time, and
//! takes Opus packets and H.264 access units to send. It answers NACKs itself (plain
//! retransmission from a bounded history); keyframe requests go to the owner, who has the
//! encoder.
//! Everything that decides (jitter buffers, codecs, signaling checks) lives elsewhere, so the
//! webrtc-rs line can change without touching them (see `docs/decisions.md`).

mod config;
mod error;
mod feedback;
mod fingerprint;
mod history;
mod readers;
mod rtcp;
mod rtt;
mod send_log;
mod video;

pub use config::{CandidateScope, IceServer, SessionConfig, VideoConfig, VideoDirection};
pub use error::SessionError;
pub use feedback::{FeedbackStats, SentPacketLog, DEFAULT_SEND_LOG};
pub use fingerprint::{certificate_fingerprint, fingerprints_equal};
pub use history::DEFAULT_HISTORY;
pub use rtcp::{ReportBlock, RtcpFeedback, TwccArrival, MAX_NACK_SEQS};
pub use video::{SentVideoFrame, H264_FMTP, H264_PAYLOAD_TYPE, VIDEO_CLOCK_HZ};

use readers::{read_receiver_rtcp, read_remote_track, read_sender_rtcp, sender_ssrc, EventSink};
use video::VideoSender;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use tokio::sync::{mpsc, watch};
use webrtc::api::interceptor_registry::{configure_rtcp_reports, configure_twcc};
use webrtc::api::media_engine::{MediaEngine, MIME_TYPE_OPUS};
use webrtc::api::setting_engine::SettingEngine;
use webrtc::api::APIBuilder;
use webrtc::data_channel::data_channel_init::RTCDataChannelInit;
use webrtc::data_channel::data_channel_state::RTCDataChannelState;
use webrtc::data_channel::RTCDataChannel;
use webrtc::dtls_transport::dtls_role::DTLSRole;
use webrtc::ice::mdns::MulticastDnsMode;
use webrtc::ice::network_type::NetworkType;
use webrtc::ice_transport::ice_connection_state::RTCIceConnectionState;
use webrtc::ice_transport::ice_server::RTCIceServer;
use webrtc::interceptor::registry::Registry;
use webrtc::media::Sample;
use webrtc::peer_connection::configuration::RTCConfiguration;
use webrtc::peer_connection::peer_connection_state::RTCPeerConnectionState;
use webrtc::peer_connection::policy::ice_transport_policy::RTCIceTransportPolicy;
use webrtc::peer_connection::sdp::session_description::RTCSessionDescription;
use webrtc::peer_connection::RTCPeerConnection;
use webrtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use webrtc::rtcp::transport_feedbacks::transport_layer_nack::{
    nack_pairs_from_sequence_numbers, TransportLayerNack,
};
use webrtc::rtp_transceiver::rtp_codec::{
    RTCRtpCodecCapability, RTCRtpCodecParameters, RTPCodecType,
};
use webrtc::rtp_transceiver::rtp_transceiver_direction::RTCRtpTransceiverDirection;
use webrtc::stats::StatsReportType;
use webrtc::track::track_local::track_local_static_sample::TrackLocalStaticSample;
use webrtc::track::track_local::TrackLocal;

use crate::stats::{Rtt, RttSource};

/// Label of the reliable, ordered data channel that carries chat and file frames.
pub const CHAT_CHANNEL_LABEL: &str = "chat";
/// Longest wait for queued chat messages to leave when closing.
pub const CHAT_DRAIN: Duration = Duration::from_secs(2);
/// RTP payload type we register for Opus.
const OPUS_PAYLOAD_TYPE: u8 = 111;
/// Packets behind the newest one that SRTP still accepts (webrtc-rs' default is 64): a
/// retransmission answering a NACK arrives late by design and must not be refused as too old.
/// Duplicates are still refused.
const SRTP_REPLAY_WINDOW: usize = DEFAULT_HISTORY;
/// Events queued between webrtc-rs callbacks and the call loop; audio beyond this is dropped
/// (and counted) rather than buffered without bound.
const EVENT_QUEUE: usize = 1024;

/// One RTP packet of a remote track (audio or video), as it left SRTP, stamped with its arrival time.
#[derive(Clone, Debug)]
pub struct ReceivedRtp {
    /// RTP sequence number.
    pub seq: u16,
    /// RTP timestamp (48 kHz clock for Opus, 90 kHz for video).
    pub timestamp: u32,
    /// Synchronisation source.
    pub ssrc: u32,
    /// RTP marker bit.
    pub marker: bool,
    /// Codec payload (one Opus packet, or an RFC 6184 H.264 payload).
    pub payload: Bytes,
    /// When the shell received it.
    pub arrival: Instant,
}

/// What the session reports to its owner.
#[derive(Debug)]
#[non_exhaustive]
pub enum SessionEvent {
    /// An audio RTP packet arrived.
    Audio(ReceivedRtp),
    /// A video RTP packet arrived (feed it to `media::jitter::video::VideoFrameBuffer`).
    Video(ReceivedRtp),
    /// RTCP from the peer about our streams (or its sender reports about its own).
    Rtcp {
        /// What it said.
        kind: RtcpFeedback,
        /// When the shell read it.
        at: Instant,
    },
    /// The chat data channel is open in both directions.
    ChatOpen,
    /// A message arrived on the chat data channel (a frame, see `media::chat`).
    Chat(Bytes),
    /// The chat data channel closed (the peer hung up or the transport failed).
    ChatClosed,
    /// Transport-wide congestion feedback matched with our send times: one result per packet
    /// the feedback covers (plus packets it skipped, as lost), for
    /// `media::bwe::CongestionController::on_transport_feedback`. The raw feedback is also
    /// reported as [`SessionEvent::Rtcp`] with [`RtcpFeedback::TransportCc`].
    TransportFeedback {
        /// Sent packets and their fate, by sequence number.
        results: Vec<crate::bwe::PacketResult>,
        /// When the shell read the feedback.
        at: Instant,
    },
}

/// Transport-level statistics read from webrtc-rs.
#[derive(Clone, Debug, Default)]
pub struct TransportStats {
    /// Round-trip time from RTCP receiver reports (or the ICE pair, where the stack fills it).
    pub rtt: Option<Duration>,
    /// How [`TransportStats::rtt`] was measured ([`RttSource::Rtcp`] or [`RttSource::Ice`]).
    pub rtt_source: Option<RttSource>,
    /// Bytes sent on the selected candidate pair.
    pub bytes_sent: u64,
    /// Bytes received on the selected candidate pair.
    pub bytes_received: u64,
    /// Local candidate type of the selected pair ("host", "relay", ...), if known.
    pub local_candidate_type: Option<String>,
}

impl TransportStats {
    /// The RTT with its source as one value, for [`crate::stats::CallStats::offer_rtt`].
    pub fn rtt_measurement(&self) -> Option<Rtt> {
        Some(Rtt {
            value: self.rtt?,
            source: self.rtt_source?,
        })
    }
}

/// A peer connection with one outgoing Opus track, an optional H.264 track, the incoming remote
/// tracks and a chat channel.
///
/// Dropping a `Session` without [`Session::close`] still releases everything once webrtc-rs'
/// own tasks notice; call `close` to do it now.
pub struct Session {
    pc: Arc<RTCPeerConnection>,
    audio: Arc<TrackLocalStaticSample>,
    video: Option<Arc<VideoSender>>,
    /// SSRC of the peer's video stream, known once its first packet arrived.
    remote_video_ssrc: Arc<Mutex<Option<u32>>>,
    /// Our SSRC as the sender of feedback (that of our first sending track, or 0).
    feedback_ssrc: u32,
    /// Whether [`SessionConfig::video`] asked for video; if not, a video offer is declined.
    wants_video: bool,
    chat: Arc<Mutex<Option<Arc<RTCDataChannel>>>>,
    state: watch::Receiver<RTCPeerConnectionState>,
    events: mpsc::Sender<SessionEvent>,
    dropped_events: Arc<std::sync::atomic::AtomicU64>,
    ice_connected: Arc<std::sync::atomic::AtomicBool>,
    /// Send times of every outgoing RTP packet, for transport-wide feedback.
    sent_log: send_log::SharedLog,
}

impl Session {
    /// Creates the peer connection. Returns the session and the stream of its events.
    pub async fn new(
        cfg: &SessionConfig,
    ) -> Result<(Session, mpsc::Receiver<SessionEvent>), SessionError> {
        let mut media = MediaEngine::default();
        media
            .register_codec(
                RTCRtpCodecParameters {
                    capability: opus_capability(),
                    payload_type: OPUS_PAYLOAD_TYPE,
                    ..Default::default()
                },
                RTPCodecType::Audio,
            )
            .map_err(SessionError::webrtc("register the Opus codec"))?;
        // Registered even without video: an answer that declines a video offer must still
        // name the codec, or webrtc-rs on the offering side fails to apply it
        // (`ErrUnsupportedCodec`); the m-section is then answered inactive (see accept_offer).
        media
            .register_codec(
                RTCRtpCodecParameters {
                    capability: video::h264_capability(),
                    payload_type: H264_PAYLOAD_TYPE,
                    ..Default::default()
                },
                RTPCodecType::Video,
            )
            .map_err(SessionError::webrtc("register the H.264 codec"))?;
        // Not webrtc-rs' NACK generator and responder: the video frame buffer decides when to
        // NACK (after its reordering grace, retried at the RTT) and the session answers from
        // its own history, so each happens once and is counted (docs/decisions.md).
        // The send log goes first: the chain wraps later interceptors around earlier ones, so
        // it sees each packet after the TWCC sender numbered it.
        let sent_log: send_log::SharedLog =
            Arc::new(Mutex::new(SentPacketLog::new(DEFAULT_SEND_LOG)));
        let mut registry = Registry::new();
        registry.add(Box::new(send_log::SendLogBuilder {
            log: Arc::clone(&sent_log),
        }));
        let registry = configure_twcc(configure_rtcp_reports(registry), &mut media)
            .map_err(SessionError::webrtc("register interceptors"))?;

        let mut settings = SettingEngine::default();
        // mDNS candidates would leave loopback and hide the real address we want to sign.
        settings.set_ice_multicast_dns_mode(MulticastDnsMode::Disabled);
        settings.set_network_types(vec![NetworkType::Udp4]);
        if cfg.candidate_scope == CandidateScope::LoopbackOnly {
            settings.set_include_loopback_candidate(true);
            settings.set_ip_filter(Box::new(|ip| ip.is_loopback()));
            // The answerer's checks can reach the offerer before it has applied the answer, so
            // the offerer first learns the answerer's host address as peer-reflexive, and
            // webrtc-rs waits 1 s before accepting a prflx pair. On loopback a prflx address is
            // a host address; accept it at once (removes 1 s outliers in `call-setup`).
            settings.set_prflx_acceptance_min_wait(Some(Duration::ZERO));
        }
        settings.set_ice_timeouts(
            Some(cfg.ice_disconnected_timeout),
            Some(cfg.ice_failed_timeout),
            Some(Duration::from_secs(1)),
        );
        if cfg.relay_only {
            // webrtc-rs waits 2 s before accepting a relay pair, in case a better one turns up;
            // with a relay-only policy nothing better can.
            settings.set_relay_acceptance_min_wait(Some(Duration::ZERO));
        }
        // The answerer waits for the ClientHello. As DTLS client it would send it the moment
        // its ICE side connects, which can be before the offerer's DTLS transport listens:
        // webrtc-rs' mux drops the flight ("no endpoint for packet starting with 22") and the
        // handshake waits out the 1 s retransmission timer (seen as 1 s outliers in
        // `call-setup`). The offerer's ICE connects last, so it makes the better client.
        settings
            .set_answering_dtls_role(DTLSRole::Server)
            .map_err(SessionError::webrtc("set the DTLS role"))?;
        // Never relax this: it is what binds the DTLS certificate to the signed SDP.
        settings.disable_certificate_fingerprint_verification(false);
        settings.set_srtp_replay_protection_window(SRTP_REPLAY_WINDOW);

        let api = APIBuilder::new()
            .with_media_engine(media)
            .with_interceptor_registry(registry)
            .with_setting_engine(settings)
            .build();
        let rtc_config = RTCConfiguration {
            ice_servers: cfg
                .ice_servers
                .iter()
                .map(|s| RTCIceServer {
                    urls: s.urls.clone(),
                    username: s.username.clone(),
                    credential: s.credential.clone(),
                })
                .collect(),
            ice_transport_policy: if cfg.relay_only {
                RTCIceTransportPolicy::Relay
            } else {
                RTCIceTransportPolicy::All
            },
            ..Default::default()
        };
        let pc = Arc::new(
            api.new_peer_connection(rtc_config)
                .await
                .map_err(SessionError::webrtc("create the peer connection"))?,
        );

        let audio = Arc::new(TrackLocalStaticSample::new(
            opus_capability(),
            "audio".to_owned(),
            "call".to_owned(),
        ));
        let (events, events_rx) = mpsc::channel(EVENT_QUEUE);
        let dropped_events = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let mut feedback_ssrc = None;
        // A chat-only session keeps the track unbound: writing to it then sends nothing.
        if cfg.audio {
            let sender = pc
                .add_track(Arc::clone(&audio) as Arc<dyn TrackLocal + Send + Sync>)
                .await
                .map_err(SessionError::webrtc("add the audio track"))?;
            let ssrc = sender_ssrc(&sender).await;
            feedback_ssrc = feedback_ssrc.or(Some(ssrc));
            // RTCP must be read for interceptors (reports, congestion feedback) to run.
            let sink = EventSink::new(&events, &dropped_events, &sent_log);
            tokio::spawn(read_sender_rtcp(sender, ssrc, None, sink));
        }
        let video = match &cfg.video {
            Some(v) => {
                let sink = EventSink::new(&events, &dropped_events, &sent_log);
                let (sender, ssrc) = video::add_video(&pc, v, sink).await?;
                feedback_ssrc = feedback_ssrc.or(ssrc);
                sender
            }
            None => None,
        };
        let remote_video_ssrc = Arc::new(Mutex::new(None));
        let (state_tx, state) = watch::channel(RTCPeerConnectionState::New);
        let ice_connected = Arc::new(std::sync::atomic::AtomicBool::new(false));
        {
            let ice_connected = Arc::clone(&ice_connected);
            pc.on_ice_connection_state_change(Box::new(move |s| {
                if s == RTCIceConnectionState::Connected {
                    ice_connected.store(true, std::sync::atomic::Ordering::Relaxed);
                }
                Box::pin(async {})
            }));
        }
        pc.on_peer_connection_state_change(Box::new(move |s| {
            tracing::debug!(state = %s, "peer connection state");
            let _ = state_tx.send(s);
            Box::pin(async {})
        }));

        {
            let events = events.clone();
            let dropped = Arc::clone(&dropped_events);
            let remote_video_ssrc = Arc::clone(&remote_video_ssrc);
            let sent_log = Arc::clone(&sent_log);
            pc.on_track(Box::new(move |track, receiver, _transceiver| {
                let sink = EventSink::new(&events, &dropped, &sent_log);
                let video = track.kind() == RTPCodecType::Video;
                if video {
                    if let Ok(mut s) = remote_video_ssrc.lock() {
                        *s = Some(track.ssrc());
                    }
                }
                let ssrc = track.ssrc();
                tokio::spawn(read_remote_track(track, video, sink.clone()));
                // The peer's sender reports reach the interceptors only when the receiver's
                // RTCP is read. Unread, our receiver reports carry LSR = DLSR = 0 and neither
                // side can compute an RTCP round-trip time.
                tokio::spawn(read_receiver_rtcp(receiver, ssrc, sink));
                Box::pin(async {})
            }));
        }

        let chat = Arc::new(Mutex::new(None));
        {
            let events = events.clone();
            let chat = Arc::clone(&chat);
            pc.on_data_channel(Box::new(move |dc| {
                let events = events.clone();
                let chat = Arc::clone(&chat);
                Box::pin(async move {
                    if dc.label() == CHAT_CHANNEL_LABEL {
                        wire_chat_channel(dc, chat, events);
                    }
                })
            }));
        }

        Ok((
            Session {
                pc,
                audio,
                video,
                remote_video_ssrc,
                feedback_ssrc: feedback_ssrc.unwrap_or(0),
                wants_video: cfg.video.is_some(),
                chat,
                state,
                events,
                dropped_events,
                ice_connected,
                sent_log,
            },
            events_rx,
        ))
    }

    /// Creates the offer (with the chat channel) and returns its SDP once ICE gathering is
    /// complete, so every candidate is inside the signed SDP.
    pub async fn create_offer(&self) -> Result<String, SessionError> {
        let dc = self
            .pc
            .create_data_channel(
                CHAT_CHANNEL_LABEL,
                Some(RTCDataChannelInit {
                    ordered: Some(true),
                    ..Default::default()
                }),
            )
            .await
            .map_err(SessionError::webrtc("create the chat data channel"))?;
        wire_chat_channel(dc, Arc::clone(&self.chat), self.events.clone());
        let offer = self
            .pc
            .create_offer(None)
            .await
            .map_err(SessionError::webrtc("create the offer"))?;
        self.set_local_and_gather(offer).await
    }

    /// Applies the peer's offer and returns our answer SDP once ICE gathering is complete.
    pub async fn accept_offer(&self, offer_sdp: &str) -> Result<String, SessionError> {
        let offer = RTCSessionDescription::offer(offer_sdp.to_owned())
            .map_err(SessionError::webrtc("parse the offer SDP"))?;
        self.pc
            .set_remote_description(offer)
            .await
            .map_err(SessionError::webrtc("apply the offer"))?;
        if !self.wants_video {
            // webrtc-rs created a receiving transceiver for the peer's video; we did not ask
            // for video, so answer it inactive and no video is sent to us.
            for t in self.pc.get_transceivers().await {
                if t.kind() == RTPCodecType::Video {
                    t.set_direction(RTCRtpTransceiverDirection::Inactive).await;
                }
            }
        }
        let answer = self
            .pc
            .create_answer(None)
            .await
            .map_err(SessionError::webrtc("create the answer"))?;
        self.set_local_and_gather(answer).await
    }

    /// Applies the peer's answer.
    pub async fn accept_answer(&self, answer_sdp: &str) -> Result<(), SessionError> {
        let answer = RTCSessionDescription::answer(answer_sdp.to_owned())
            .map_err(SessionError::webrtc("parse the answer SDP"))?;
        self.pc
            .set_remote_description(answer)
            .await
            .map_err(SessionError::webrtc("apply the answer"))
    }

    async fn set_local_and_gather(
        &self,
        desc: RTCSessionDescription,
    ) -> Result<String, SessionError> {
        let mut gathered = self.pc.gathering_complete_promise().await;
        self.pc
            .set_local_description(desc)
            .await
            .map_err(SessionError::webrtc("apply the local description"))?;
        let _ = gathered.recv().await;
        self.pc
            .local_description()
            .await
            .map(|d| d.sdp)
            .ok_or(SessionError::NoLocalDescription)
    }

    /// Waits until ICE and DTLS are up, then checks that the certificate the peer presented in
    /// the DTLS handshake has `expected_fingerprint` (the one in the peer's signed SDP).
    ///
    /// webrtc-rs already refuses a certificate that does not match the remote SDP; this second,
    /// explicit check makes the binding visible here and keeps it if the stack ever changes.
    pub async fn wait_connected(
        &self,
        timeout: Duration,
        expected_fingerprint: &str,
    ) -> Result<(), SessionError> {
        let mut state = self.state.clone();
        let wait = async {
            loop {
                let s = *state.borrow_and_update();
                match s {
                    RTCPeerConnectionState::Connected => return Ok(()),
                    // ICE worked but the connection failed: DTLS refused the peer's certificate.
                    RTCPeerConnectionState::Failed
                        if self
                            .ice_connected
                            .load(std::sync::atomic::Ordering::Relaxed) =>
                    {
                        return Err(SessionError::DtlsFailed)
                    }
                    RTCPeerConnectionState::Failed => return Err(SessionError::ConnectionFailed),
                    RTCPeerConnectionState::Closed => return Err(SessionError::Closed),
                    _ => {}
                }
                if state.changed().await.is_err() {
                    return Err(SessionError::Closed);
                }
            }
        };
        tokio::time::timeout(timeout, wait)
            .await
            .map_err(|_| SessionError::ConnectTimeout(timeout))??;
        let der = self.pc.sctp().transport().get_remote_certificate().await;
        if der.is_empty() {
            return Err(SessionError::NoRemoteCertificate);
        }
        let presented = certificate_fingerprint(&der);
        if !fingerprints_equal(&presented, expected_fingerprint) {
            return Err(SessionError::FingerprintMismatch {
                signed: expected_fingerprint.to_owned(),
                presented,
            });
        }
        Ok(())
    }

    /// Current connection state, for loops that watch for the peer going away.
    pub fn is_failed_or_closed(&self) -> bool {
        matches!(
            *self.state.borrow(),
            RTCPeerConnectionState::Failed
                | RTCPeerConnectionState::Closed
                | RTCPeerConnectionState::Disconnected
        )
    }

    /// A receiver that changes whenever the connection state does.
    pub fn state_changes(&self) -> watch::Receiver<RTCPeerConnectionState> {
        self.state.clone()
    }

    /// Sends one encoded Opus packet covering `duration` of audio.
    pub async fn send_audio(&self, packet: Bytes, duration: Duration) -> Result<(), SessionError> {
        self.audio
            .write_sample(&Sample {
                data: packet,
                timestamp: SystemTime::now(),
                duration,
                ..Default::default()
            })
            .await
            .map_err(SessionError::webrtc("send audio"))
    }

    /// Sends one H.264 access unit (Annex-B) on the video track, packetized by the session
    /// (RFC 6184 mode 1, FU-A/STAP-A) at the current RTP timestamp; the timestamp then advances
    /// by `duration` on the 90 kHz clock. Every packet is kept for retransmission on NACK.
    pub async fn send_video_frame(
        &self,
        access_unit: &[u8],
        duration: Duration,
    ) -> Result<SentVideoFrame, SessionError> {
        let video = self.video.as_ref().ok_or(SessionError::NoVideoTrack)?;
        video.send_frame(access_unit, duration).await
    }

    /// Sends video RTP packets the caller packetized and numbered itself (do not mix with
    /// [`Session::send_video_frame`] on one session: the sequence numbers would clash).
    /// Returns the sequence numbers withheld by [`VideoConfig::drop_every_nth`].
    pub async fn send_video_rtp(
        &self,
        packets: &[crate::jitter::video::VideoPacket],
    ) -> Result<Vec<u16>, SessionError> {
        let video = self.video.as_ref().ok_or(SessionError::NoVideoTrack)?;
        video.send_packets(packets).await
    }

    /// Video packets sent again in answer to the peer's NACKs.
    pub fn video_retransmitted(&self) -> u64 {
        self.video.as_ref().map_or(0, |v| v.retransmitted())
    }

    /// Asks the peer for a keyframe on its video stream (RTCP PLI, RFC 4585 §6.3.1).
    pub async fn request_keyframe(&self) -> Result<(), SessionError> {
        let media_ssrc = self.remote_video_ssrc()?;
        let pli = PictureLossIndication {
            sender_ssrc: self.feedback_ssrc,
            media_ssrc,
        };
        self.pc
            .write_rtcp(&[Box::new(pli)])
            .await
            .map(|_| ())
            .map_err(SessionError::webrtc("send a PLI"))
    }

    /// Asks the peer to retransmit video packets `seqs` (RTCP generic NACK, RFC 4585 §6.2.1).
    pub async fn send_nack(&self, seqs: &[u16]) -> Result<(), SessionError> {
        let media_ssrc = self.remote_video_ssrc()?;
        let seqs = &seqs[..seqs.len().min(MAX_NACK_SEQS)];
        let nack = TransportLayerNack {
            sender_ssrc: self.feedback_ssrc,
            media_ssrc,
            nacks: nack_pairs_from_sequence_numbers(seqs),
        };
        self.pc
            .write_rtcp(&[Box::new(nack)])
            .await
            .map(|_| ())
            .map_err(SessionError::webrtc("send a NACK"))
    }

    fn remote_video_ssrc(&self) -> Result<u32, SessionError> {
        self.remote_video_ssrc
            .lock()
            .map_err(|_| SessionError::Poisoned)?
            .ok_or(SessionError::NoRemoteVideo)
    }

    /// Sends one message on the chat data channel. Fails if the channel is not open yet.
    pub async fn send_chat(&self, frame: Bytes) -> Result<(), SessionError> {
        let dc = self
            .chat
            .lock()
            .map_err(|_| SessionError::ChatNotOpen)?
            .clone()
            .ok_or(SessionError::ChatNotOpen)?;
        dc.send(&frame)
            .await
            .map(|_| ())
            .map_err(SessionError::webrtc("send on the chat channel"))
    }

    /// Reads the selected candidate pair's statistics.
    pub async fn transport_stats(&self) -> TransportStats {
        let report = self.pc.get_stats().await;
        let mut out = TransportStats::default();
        let mut local_id = None;
        if let Some(rtt) = rtt::transport_rtt(&report) {
            out.rtt = Some(rtt.value);
            out.rtt_source = Some(rtt.source);
        }
        for stat in report.reports.values() {
            if let StatsReportType::CandidatePair(p) = stat {
                if p.nominated {
                    out.bytes_sent = p.bytes_sent;
                    out.bytes_received = p.bytes_received;
                    local_id = Some(p.local_candidate_id.clone());
                }
            }
        }
        if let Some(id) = local_id {
            if let Some(StatsReportType::LocalCandidate(c)) = report.reports.get(&id) {
                out.local_candidate_type = Some(c.candidate_type.to_string());
            }
        }
        out
    }

    /// What matching transport-wide feedback against our send log skipped so far (unknown
    /// sequence numbers, duplicate reports) and inferred (packets no report named).
    pub fn feedback_stats(&self) -> FeedbackStats {
        self.sent_log
            .lock()
            .map_or(FeedbackStats::default(), |l| l.stats())
    }

    /// Events (audio and video packets, RTCP feedback) dropped because the owner did not keep
    /// up with the event queue.
    pub fn dropped_events(&self) -> u64 {
        self.dropped_events
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Closes the chat channel and the peer connection, releasing sockets and tasks.
    ///
    /// Chat messages still queued in SCTP are given up to [`CHAT_DRAIN`] to leave first, so a
    /// message typed just before hanging up is not lost.
    pub async fn close(&self) {
        let dc = self.chat.lock().ok().and_then(|mut c| c.take());
        if let Some(dc) = dc {
            let deadline = tokio::time::Instant::now() + CHAT_DRAIN;
            // Only an open channel can drain; after the peer's hang-up nothing more will leave.
            while dc.ready_state() == RTCDataChannelState::Open
                && dc.buffered_amount().await > 0
                && tokio::time::Instant::now() < deadline
            {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let _ = dc.close().await;
        }
        if let Err(e) = self.pc.close().await {
            tracing::debug!(error = %e, "closing the peer connection");
        }
    }
}

fn opus_capability() -> RTCRtpCodecCapability {
    RTCRtpCodecCapability {
        mime_type: MIME_TYPE_OPUS.to_owned(),
        clock_rate: 48_000,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
        rtcp_feedback: vec![],
    }
}

fn wire_chat_channel(
    dc: Arc<RTCDataChannel>,
    slot: Arc<Mutex<Option<Arc<RTCDataChannel>>>>,
    events: mpsc::Sender<SessionEvent>,
) {
    let weak = Arc::downgrade(&dc);
    {
        let events = events.clone();
        dc.on_open(Box::new(move || {
            if let (Some(dc), Ok(mut s)) = (weak.upgrade(), slot.lock()) {
                *s = Some(dc);
            }
            Box::pin(async move {
                let _ = events.send(SessionEvent::ChatOpen).await;
            })
        }));
    }
    {
        let events = events.clone();
        dc.on_message(Box::new(move |msg| {
            let events = events.clone();
            Box::pin(async move {
                let _ = events.send(SessionEvent::Chat(msg.data)).await;
            })
        }));
    }
    dc.on_close(Box::new(move || {
        let events = events.clone();
        Box::pin(async move {
            let _ = events.send(SessionEvent::ChatClosed).await;
        })
    }));
}
