//! The bounded history of sent video RTP packets that NACKs are answered from (plain
//! retransmission: the same SSRC, sequence number and payload, RFC 4585 §6.2.1 without RTX).

use std::collections::VecDeque;

use webrtc::rtp::packet::Packet;

/// Packets kept per video track by default: about 4 s at 1 Mbit/s, far longer than any NACK
/// round trip worth answering.
pub const DEFAULT_HISTORY: usize = 512;

/// The last `capacity` packets sent, oldest first.
#[derive(Debug)]
pub(crate) struct SentHistory {
    packets: VecDeque<Packet>,
    capacity: usize,
}

impl SentHistory {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            packets: VecDeque::with_capacity(capacity.min(DEFAULT_HISTORY)),
            capacity: capacity.max(1),
        }
    }

    /// Remembers a sent packet, forgetting the oldest beyond the capacity.
    pub(crate) fn push(&mut self, packet: Packet) {
        if self.packets.len() == self.capacity {
            self.packets.pop_front();
        }
        self.packets.push_back(packet);
    }

    /// The packets among `seqs` still in the history. A sequence number sent twice (after a
    /// wrap of 65536 packets) resolves to the newest one.
    pub(crate) fn lookup(&self, seqs: &[u16]) -> Vec<Packet> {
        seqs.iter()
            .filter_map(|&s| {
                self.packets
                    .iter()
                    .rev()
                    .find(|p| p.header.sequence_number == s)
                    .cloned()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use webrtc::rtp::header::Header;

    fn pkt(seq: u16, byte: u8) -> Packet {
        Packet {
            header: Header {
                sequence_number: seq,
                ..Default::default()
            },
            payload: bytes::Bytes::from(vec![byte]),
        }
    }

    #[test]
    fn keeps_the_last_capacity_packets() {
        let mut h = SentHistory::new(3);
        for s in 0..5u16 {
            h.push(pkt(s, s as u8));
        }
        let got: Vec<u16> = h
            .lookup(&[0, 1, 2, 3, 4, 9])
            .iter()
            .map(|p| p.header.sequence_number)
            .collect();
        assert_eq!(got, vec![2, 3, 4]);
    }

    #[test]
    fn across_the_wrap_the_newest_wins() {
        let mut h = SentHistory::new(4);
        h.push(pkt(65535, 1));
        h.push(pkt(0, 2));
        h.push(pkt(65535, 3));
        let got = h.lookup(&[65535, 0]);
        assert_eq!(got[0].payload[0], 3);
        assert_eq!(got[1].payload[0], 2);
    }
}
