//! RTCP feedback as plain values: what the peer's RTCP readers hand to the owner of a
//! [`super::Session`] (NACK, PLI, FIR, sender and receiver reports, transport-wide congestion
//! feedback), converted from webrtc-rs' boxed packets at the edge so nothing downstream depends
//! on the `rtcp` crate.

use webrtc::rtcp::packet::Packet;
use webrtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use webrtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use webrtc::rtcp::receiver_report::ReceiverReport;
use webrtc::rtcp::reception_report::ReceptionReport;
use webrtc::rtcp::sender_report::SenderReport;
use webrtc::rtcp::transport_feedbacks::transport_layer_cc::{
    PacketStatusChunk, SymbolTypeTcc, TransportLayerCc,
};
use webrtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;

/// Most sequence numbers one NACK event lists; a larger request is cut (the rest would be
/// hopeless anyway, and it bounds what a peer can make us allocate and retransmit).
pub const MAX_NACK_SEQS: usize = 512;

/// One report block of a sender or receiver report (RFC 3550 §6.4.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportBlock {
    /// The SSRC this block reports on (one of ours, when it reaches us).
    pub ssrc: u32,
    /// Fraction of packets lost since the previous report, in 1/256.
    pub fraction_lost: u8,
    /// Cumulative number of packets lost (24 bits).
    pub total_lost: u32,
    /// Extended highest sequence number received.
    pub highest_seq: u32,
    /// Interarrival jitter, in RTP timestamp units.
    pub jitter: u32,
    /// Middle 32 bits of the NTP time of the last sender report received (LSR).
    pub last_sr: u32,
    /// Delay since that sender report, in 1/65536 s (DLSR).
    pub delay_since_last_sr: u32,
}

impl From<&ReceptionReport> for ReportBlock {
    fn from(r: &ReceptionReport) -> Self {
        Self {
            ssrc: r.ssrc,
            fraction_lost: r.fraction_lost,
            total_lost: r.total_lost,
            highest_seq: r.last_sequence_number,
            jitter: r.jitter,
            last_sr: r.last_sender_report,
            delay_since_last_sr: r.delay,
        }
    }
}

/// One packet's fate in a transport-wide congestion-control feedback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TwccArrival {
    /// Transport-wide sequence number (the header extension, not the RTP sequence number).
    pub seq: u16,
    /// Arrival at the peer in microseconds on the peer's feedback clock (reference time plus
    /// the deltas), or `None` if the packet was not received.
    pub arrival_us: Option<i64>,
}

/// An RTCP message from the peer, as a [`super::SessionEvent::Rtcp`] carries it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RtcpFeedback {
    /// Generic NACK (RFC 4585 §6.2.1): the peer asks for these packets of `ssrc` again. The
    /// session has already retransmitted those still in its history when this is reported.
    Nack {
        /// The media SSRC the packets belong to.
        ssrc: u32,
        /// The missing sequence numbers (at most [`MAX_NACK_SEQS`]).
        seqs: Vec<u16>,
    },
    /// Picture loss indication (RFC 4585 §6.3.1): send a keyframe on `ssrc`.
    Pli {
        /// The media SSRC that needs a keyframe.
        ssrc: u32,
    },
    /// Full intra request (RFC 5104 §4.3.1): send a keyframe on `ssrc`.
    Fir {
        /// The media SSRC that needs a keyframe.
        ssrc: u32,
    },
    /// The peer's reception report blocks about one of our streams, from a receiver report
    /// or, when the peer sends media too, from the report blocks of its sender report.
    ReceiverReport {
        /// The peer's SSRC.
        sender_ssrc: u32,
        /// The blocks about our SSRC.
        blocks: Vec<ReportBlock>,
    },
    /// A sender report from the peer: maps its RTP clock to wall-clock time (for A/V sync).
    SenderReport {
        /// The SSRC of the peer's stream.
        ssrc: u32,
        /// NTP timestamp (64-bit, seconds since 1900 in 32.32 fixed point).
        ntp: u64,
        /// The RTP timestamp corresponding to `ntp`.
        rtp_ts: u32,
        /// Packets sent so far.
        packet_count: u32,
        /// Payload octets sent so far.
        octet_count: u32,
        /// The peer's report blocks about our streams.
        blocks: Vec<ReportBlock>,
    },
    /// Transport-wide congestion-control feedback (draft-holmer-rmcat-transport-wide-cc-extensions-01).
    TransportCc {
        /// The media SSRC named in the feedback.
        media_ssrc: u32,
        /// Feedback packet counter (wraps at 256), to spot lost feedback.
        feedback_count: u8,
        /// Every packet the feedback covers, in sequence order.
        arrivals: Vec<TwccArrival>,
    },
}

impl RtcpFeedback {
    /// Converts the RTCP packets of one compound read by the RTP sender of `local_ssrc`: only
    /// what concerns that stream is kept, so a compound delivered to several senders is not
    /// reported several times.
    pub(crate) fn from_sender_rtcp(
        packets: &[Box<dyn Packet + Send + Sync>],
        local_ssrc: u32,
    ) -> Vec<RtcpFeedback> {
        let mut out = Vec::new();
        for p in packets {
            let any = p.as_any();
            if let Some(n) = any.downcast_ref::<TransportLayerNack>() {
                if n.media_ssrc == local_ssrc {
                    let mut seqs: Vec<u16> = n.nacks.iter().flat_map(|p| p.packet_list()).collect();
                    seqs.truncate(MAX_NACK_SEQS);
                    out.push(RtcpFeedback::Nack {
                        ssrc: n.media_ssrc,
                        seqs,
                    });
                }
            } else if let Some(p) = any.downcast_ref::<PictureLossIndication>() {
                if p.media_ssrc == local_ssrc {
                    out.push(RtcpFeedback::Pli { ssrc: p.media_ssrc });
                }
            } else if let Some(f) = any.downcast_ref::<FullIntraRequest>() {
                if f.fir.iter().any(|e| e.ssrc == local_ssrc) || f.media_ssrc == local_ssrc {
                    out.push(RtcpFeedback::Fir { ssrc: local_ssrc });
                }
            } else if let Some(rr) = any.downcast_ref::<ReceiverReport>() {
                let blocks = own_blocks(&rr.reports, local_ssrc);
                if !blocks.is_empty() {
                    out.push(RtcpFeedback::ReceiverReport {
                        sender_ssrc: rr.ssrc,
                        blocks,
                    });
                }
            } else if let Some(sr) = any.downcast_ref::<SenderReport>() {
                // A peer that sends media reports on ours inside its sender reports.
                let blocks = own_blocks(&sr.reports, local_ssrc);
                if !blocks.is_empty() {
                    out.push(RtcpFeedback::ReceiverReport {
                        sender_ssrc: sr.ssrc,
                        blocks,
                    });
                }
            } else if let Some(cc) = any.downcast_ref::<TransportLayerCc>() {
                // The feedback covers the whole transport; webrtc-rs names one media SSRC in it
                // and delivers it to that stream only.
                if cc.media_ssrc == local_ssrc {
                    out.push(transport_cc(cc));
                }
            }
        }
        out
    }

    /// Converts the RTCP packets read by the RTP receiver of the peer's stream `remote_ssrc`:
    /// its sender reports.
    pub(crate) fn from_receiver_rtcp(
        packets: &[Box<dyn Packet + Send + Sync>],
        remote_ssrc: u32,
    ) -> Vec<RtcpFeedback> {
        packets
            .iter()
            .filter_map(|p| p.as_any().downcast_ref::<SenderReport>())
            .filter(|sr| sr.ssrc == remote_ssrc)
            .map(|sr| RtcpFeedback::SenderReport {
                ssrc: sr.ssrc,
                ntp: sr.ntp_time,
                rtp_ts: sr.rtp_time,
                packet_count: sr.packet_count,
                octet_count: sr.octet_count,
                blocks: sr.reports.iter().map(ReportBlock::from).collect(),
            })
            .collect()
    }
}

fn own_blocks(reports: &[ReceptionReport], local_ssrc: u32) -> Vec<ReportBlock> {
    reports
        .iter()
        .filter(|r| r.ssrc == local_ssrc)
        .map(ReportBlock::from)
        .collect()
}

/// Expands the run-length and vector chunks into one entry per packet, giving received
/// packets their arrival time (reference time in 64 ms units plus the running deltas, which
/// webrtc-rs already scaled to microseconds).
fn transport_cc(cc: &TransportLayerCc) -> RtcpFeedback {
    let count = usize::from(cc.packet_status_count);
    let mut symbols = Vec::with_capacity(count);
    // Never expand beyond the announced count: a peer's run lengths could otherwise make
    // millions of entries out of one packet.
    for chunk in &cc.packet_chunks {
        let room = count - symbols.len();
        match chunk {
            PacketStatusChunk::RunLengthChunk(r) => symbols.extend(std::iter::repeat_n(
                r.packet_status_symbol,
                usize::from(r.run_length).min(room),
            )),
            PacketStatusChunk::StatusVectorChunk(v) => {
                symbols.extend(v.symbol_list.iter().take(room))
            }
        }
        if symbols.len() == count {
            break;
        }
    }
    let mut deltas = cc.recv_deltas.iter();
    let mut at = i64::from(cc.reference_time) * 64_000;
    let arrivals = symbols
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            let seq = cc.base_sequence_number.wrapping_add(i as u16);
            let received = matches!(
                s,
                SymbolTypeTcc::PacketReceivedSmallDelta | SymbolTypeTcc::PacketReceivedLargeDelta
            );
            let arrival_us = if received {
                // A short delta list (malformed feedback) leaves later packets without a time.
                deltas.next().map(|d| {
                    at += d.delta;
                    at
                })
            } else {
                None
            };
            TwccArrival { seq, arrival_us }
        })
        .collect();
    RtcpFeedback::TransportCc {
        media_ssrc: cc.media_ssrc,
        feedback_count: cc.fb_pkt_count,
        arrivals,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use webrtc::rtcp::transport_feedbacks::transport_layer_cc::{
        RecvDelta, RunLengthChunk, StatusChunkTypeTcc, StatusVectorChunk, SymbolSizeTypeTcc,
    };
    use webrtc::rtcp::transport_feedbacks::transport_layer_nack::nack_pairs_from_sequence_numbers;

    fn boxed(p: impl Packet + Send + Sync + 'static) -> Vec<Box<dyn Packet + Send + Sync>> {
        vec![Box::new(p)]
    }

    #[test]
    fn nack_for_our_ssrc_lists_its_seqs_and_others_are_ignored() {
        let nack = TransportLayerNack {
            sender_ssrc: 9,
            media_ssrc: 7,
            nacks: nack_pairs_from_sequence_numbers(&[65535, 0, 3, 40]),
        };
        let got = RtcpFeedback::from_sender_rtcp(&boxed(nack.clone()), 7);
        assert_eq!(
            got,
            vec![RtcpFeedback::Nack {
                ssrc: 7,
                seqs: vec![65535, 0, 3, 40]
            }]
        );
        assert!(RtcpFeedback::from_sender_rtcp(&boxed(nack), 8).is_empty());
    }

    #[test]
    fn nack_lists_are_capped() {
        let seqs: Vec<u16> = (0..2000).collect();
        let nack = TransportLayerNack {
            sender_ssrc: 9,
            media_ssrc: 7,
            nacks: nack_pairs_from_sequence_numbers(&seqs),
        };
        match &RtcpFeedback::from_sender_rtcp(&boxed(nack), 7)[..] {
            [RtcpFeedback::Nack { seqs, .. }] => assert_eq!(seqs.len(), MAX_NACK_SEQS),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn pli_and_fir_become_keyframe_requests() {
        let pli = PictureLossIndication {
            sender_ssrc: 1,
            media_ssrc: 7,
        };
        assert_eq!(
            RtcpFeedback::from_sender_rtcp(&boxed(pli), 7),
            vec![RtcpFeedback::Pli { ssrc: 7 }]
        );
        let fir = FullIntraRequest {
            sender_ssrc: 1,
            media_ssrc: 0,
            fir: vec![
                webrtc::rtcp::payload_feedbacks::full_intra_request::FirEntry {
                    ssrc: 7,
                    sequence_number: 1,
                },
            ],
        };
        assert_eq!(
            RtcpFeedback::from_sender_rtcp(&boxed(fir), 7),
            vec![RtcpFeedback::Fir { ssrc: 7 }]
        );
    }

    #[test]
    fn receiver_report_keeps_only_our_blocks() {
        let rr = ReceiverReport {
            ssrc: 1,
            reports: vec![
                ReceptionReport {
                    ssrc: 7,
                    fraction_lost: 3,
                    ..Default::default()
                },
                ReceptionReport {
                    ssrc: 8,
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        match &RtcpFeedback::from_sender_rtcp(&boxed(rr), 7)[..] {
            [RtcpFeedback::ReceiverReport {
                sender_ssrc: 1,
                blocks,
            }] => {
                assert_eq!(blocks.len(), 1);
                assert_eq!((blocks[0].ssrc, blocks[0].fraction_lost), (7, 3));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn report_blocks_inside_a_sender_report_reach_the_sender() {
        let sr = SenderReport {
            ssrc: 5,
            reports: vec![ReceptionReport {
                ssrc: 7,
                total_lost: 4,
                ..Default::default()
            }],
            ..Default::default()
        };
        match &RtcpFeedback::from_sender_rtcp(&boxed(sr.clone()), 7)[..] {
            [RtcpFeedback::ReceiverReport {
                sender_ssrc: 5,
                blocks,
            }] => assert_eq!(blocks[0].total_lost, 4),
            other => panic!("{other:?}"),
        }
        assert!(RtcpFeedback::from_sender_rtcp(&boxed(sr), 8).is_empty());
    }

    #[test]
    fn sender_report_of_the_remote_stream() {
        let sr = SenderReport {
            ssrc: 5,
            ntp_time: 0x1122_3344_5566_7788,
            rtp_time: 90_000,
            packet_count: 10,
            octet_count: 1000,
            ..Default::default()
        };
        let got = RtcpFeedback::from_receiver_rtcp(&boxed(sr.clone()), 5);
        assert!(matches!(
            &got[..],
            [RtcpFeedback::SenderReport {
                ssrc: 5,
                ntp: 0x1122_3344_5566_7788,
                rtp_ts: 90_000,
                ..
            }]
        ));
        assert!(RtcpFeedback::from_receiver_rtcp(&boxed(sr), 6).is_empty());
    }

    proptest::proptest! {
        /// Whatever a peer puts in a transport-cc feedback, the expansion lists exactly
        /// `packet_status_count` packets (or fewer when the chunks run short), in sequence
        /// order, and never panics.
        #[test]
        fn transport_cc_expansion_is_bounded(
            base in proptest::prelude::any::<u16>(),
            count in 0u16..2000,
            runs in proptest::collection::vec((0u16..8192, 0u8..4), 0..40),
            deltas in proptest::collection::vec(-100_000i64..100_000, 0..100),
        ) {
            let symbol = |k: u8| match k {
                0 => SymbolTypeTcc::PacketNotReceived,
                1 => SymbolTypeTcc::PacketReceivedSmallDelta,
                2 => SymbolTypeTcc::PacketReceivedLargeDelta,
                _ => SymbolTypeTcc::PacketReceivedWithoutDelta,
            };
            let cc = TransportLayerCc {
                media_ssrc: 7,
                base_sequence_number: base,
                packet_status_count: count,
                packet_chunks: runs
                    .iter()
                    .map(|&(n, k)| {
                        PacketStatusChunk::RunLengthChunk(RunLengthChunk {
                            type_tcc: StatusChunkTypeTcc::RunLengthChunk,
                            packet_status_symbol: symbol(k),
                            run_length: n,
                        })
                    })
                    .collect(),
                recv_deltas: deltas
                    .iter()
                    .map(|&d| RecvDelta {
                        type_tcc_packet: SymbolTypeTcc::PacketReceivedSmallDelta,
                        delta: d,
                    })
                    .collect(),
                ..Default::default()
            };
            match &RtcpFeedback::from_sender_rtcp(&boxed(cc), 7)[..] {
                [RtcpFeedback::TransportCc { arrivals, .. }] => {
                    let total: usize = runs.iter().map(|&(n, _)| usize::from(n)).sum();
                    proptest::prop_assert_eq!(arrivals.len(), total.min(usize::from(count)));
                    for (i, a) in arrivals.iter().enumerate() {
                        proptest::prop_assert_eq!(a.seq, base.wrapping_add(i as u16));
                    }
                }
                other => proptest::prop_assert!(false, "{:?}", other),
            }
        }
    }

    #[test]
    fn transport_cc_expands_chunks_and_accumulates_deltas() {
        let cc = TransportLayerCc {
            sender_ssrc: 1,
            media_ssrc: 7,
            base_sequence_number: 65534,
            packet_status_count: 4,
            reference_time: 2,
            fb_pkt_count: 9,
            packet_chunks: vec![
                PacketStatusChunk::RunLengthChunk(RunLengthChunk {
                    type_tcc: StatusChunkTypeTcc::RunLengthChunk,
                    packet_status_symbol: SymbolTypeTcc::PacketReceivedSmallDelta,
                    run_length: 2,
                }),
                PacketStatusChunk::StatusVectorChunk(StatusVectorChunk {
                    type_tcc: StatusChunkTypeTcc::StatusVectorChunk,
                    symbol_size: SymbolSizeTypeTcc::OneBit,
                    symbol_list: vec![
                        SymbolTypeTcc::PacketNotReceived,
                        SymbolTypeTcc::PacketReceivedSmallDelta,
                        SymbolTypeTcc::PacketReceivedSmallDelta,
                    ],
                }),
            ],
            recv_deltas: vec![
                RecvDelta {
                    type_tcc_packet: SymbolTypeTcc::PacketReceivedSmallDelta,
                    delta: 1000,
                },
                RecvDelta {
                    type_tcc_packet: SymbolTypeTcc::PacketReceivedSmallDelta,
                    delta: 250,
                },
                RecvDelta {
                    type_tcc_packet: SymbolTypeTcc::PacketReceivedSmallDelta,
                    delta: 500,
                },
            ],
        };
        let got = RtcpFeedback::from_sender_rtcp(&boxed(cc), 7);
        let arrivals = vec![
            TwccArrival {
                seq: 65534,
                arrival_us: Some(129_000),
            },
            TwccArrival {
                seq: 65535,
                arrival_us: Some(129_250),
            },
            TwccArrival {
                seq: 0,
                arrival_us: None,
            },
            TwccArrival {
                seq: 1,
                arrival_us: Some(129_750),
            },
        ];
        assert_eq!(
            got,
            vec![RtcpFeedback::TransportCc {
                media_ssrc: 7,
                feedback_count: 9,
                arrivals
            }]
        );
    }
}
