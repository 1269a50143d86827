//! Annex-B access unit → RFC 6184 RTP payloads (packetization-mode 1): small NAL units are
//! aggregated into STAP-A packets, NAL units larger than the payload size are split into FU-A
//! fragments, the rest go as single NAL unit packets.

use bytes::{BufMut, Bytes, BytesMut};
use thiserror::Error;

use super::depacketize::{FU_A, STAP_A};
use super::VideoPacket;

/// The smallest payload size that can carry an FU-A fragment (two header bytes plus data).
pub const MIN_PAYLOAD: usize = 3;

/// Why an access unit could not be packetized.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PacketizeError {
    /// The payload size cannot hold an FU-A fragment.
    #[error("RTP payload size {0} is below the minimum of 3 bytes; use the path MTU minus RTP/SRTP overhead (about 1200)")]
    PayloadTooSmall(usize),
    /// A NAL unit has its forbidden bit set or is not a codable type (1..=23).
    #[error(
        "access unit holds a NAL unit of type {0} that cannot be sent in packetization-mode 1"
    )]
    BadNalUnit(u8),
}

/// Splits an Annex-B byte stream at its start codes (`00 00 01` or `00 00 00 01`) into NAL
/// units, without start codes or trailing zero bytes. Bytes before the first start code are
/// skipped; empty units are skipped.
pub fn nal_units(annexb: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = match find_start_code(annexb) {
        Some((_, after)) => &annexb[after..],
        None => &annexb[annexb.len()..],
    };
    std::iter::from_fn(move || loop {
        if rest.is_empty() {
            return None;
        }
        let (unit, next) = match find_start_code(rest) {
            Some((at, after)) => (&rest[..at], &rest[after..]),
            None => (rest, &rest[rest.len()..]),
        };
        rest = next;
        let trimmed_len = unit.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        if trimmed_len > 0 {
            return Some(&unit[..trimmed_len]);
        }
    })
}

/// Position of the first `00 00 01` in `data` and the index just after it.
fn find_start_code(data: &[u8]) -> Option<(usize, usize)> {
    data.windows(3)
        .position(|w| w == [0, 0, 1])
        .map(|i| (i, i + 3))
}

/// Packetizes one Annex-B access unit into RTP payloads of at most `max_payload` bytes, in
/// sending order. The caller sets the RTP marker bit on the last one.
pub fn packetize(annexb: &[u8], max_payload: usize) -> Result<Vec<Bytes>, PacketizeError> {
    if max_payload < MIN_PAYLOAD {
        return Err(PacketizeError::PayloadTooSmall(max_payload));
    }
    let mut out = Vec::new();
    let mut stap: Vec<&[u8]> = Vec::new();
    let mut stap_len = 1; // STAP-A header byte
    for nal in nal_units(annexb) {
        let header = nal[0];
        if header & 0x80 != 0 || !(1..=23).contains(&(header & 0x1F)) {
            return Err(PacketizeError::BadNalUnit(header & 0x1F));
        }
        if nal.len() + 2 + stap_len <= max_payload && nal.len() <= usize::from(u16::MAX) {
            stap.push(nal);
            stap_len += 2 + nal.len();
            continue;
        }
        flush_stap(&mut stap, &mut stap_len, &mut out);
        if nal.len() + 2 + stap_len <= max_payload && nal.len() <= usize::from(u16::MAX) {
            stap.push(nal);
            stap_len += 2 + nal.len();
        } else if nal.len() <= max_payload {
            out.push(Bytes::copy_from_slice(nal));
        } else {
            fragment(nal, max_payload, &mut out);
        }
    }
    flush_stap(&mut stap, &mut stap_len, &mut out);
    Ok(out)
}

/// Emits the pending aggregation: a single NAL packet for one unit, a STAP-A for several.
fn flush_stap(stap: &mut Vec<&[u8]>, stap_len: &mut usize, out: &mut Vec<Bytes>) {
    match stap.as_slice() {
        [] => {}
        [one] => out.push(Bytes::copy_from_slice(one)),
        units => {
            let mut buf = BytesMut::with_capacity(*stap_len);
            // NRI of the aggregate is the highest NRI of its units (RFC 6184 5.7.1).
            let nri = units.iter().map(|n| n[0] & 0x60).max().unwrap_or(0);
            buf.put_u8(nri | STAP_A);
            for unit in units {
                // Length fits: units longer than u16::MAX are never aggregated.
                buf.put_u16(unit.len() as u16);
                buf.put_slice(unit);
            }
            out.push(buf.freeze());
        }
    }
    stap.clear();
    *stap_len = 1;
}

/// Splits one NAL unit into FU-A fragments.
fn fragment(nal: &[u8], max_payload: usize, out: &mut Vec<Bytes>) {
    let header = nal[0];
    let indicator = (header & 0xE0) | FU_A;
    let body = &nal[1..];
    let chunk = max_payload - 2;
    let count = body.len().div_ceil(chunk);
    // Equal-sized fragments avoid a tiny last packet.
    let size = body.len().div_ceil(count);
    for (i, part) in body.chunks(size).enumerate() {
        let mut fu_header = header & 0x1F;
        if i == 0 {
            fu_header |= 0x80;
        }
        if i + 1 == count {
            fu_header |= 0x40;
        }
        let mut buf = BytesMut::with_capacity(2 + part.len());
        buf.put_u8(indicator);
        buf.put_u8(fu_header);
        buf.put_slice(part);
        out.push(buf.freeze());
    }
}

/// Turns encoded access units into numbered [`VideoPacket`]s, as a sender would: consecutive
/// sequence numbers (wrapping), the frame's RTP timestamp, the marker on each frame's last packet.
#[derive(Debug, Clone)]
pub struct FramePacketizer {
    next_seq: u16,
    max_payload: usize,
}

impl FramePacketizer {
    /// A packetizer starting at `first_seq` with payloads of at most `max_payload` bytes.
    pub fn new(first_seq: u16, max_payload: usize) -> Result<Self, PacketizeError> {
        if max_payload < MIN_PAYLOAD {
            return Err(PacketizeError::PayloadTooSmall(max_payload));
        }
        Ok(Self {
            next_seq: first_seq,
            max_payload,
        })
    }

    /// Packetizes one access unit with RTP timestamp `timestamp` (90 kHz clock).
    pub fn packetize(
        &mut self,
        annexb: &[u8],
        timestamp: u32,
    ) -> Result<Vec<VideoPacket>, PacketizeError> {
        let payloads = packetize(annexb, self.max_payload)?;
        let last = payloads.len().saturating_sub(1);
        Ok(payloads
            .into_iter()
            .enumerate()
            .map(|(i, payload)| {
                let seq = self.next_seq;
                self.next_seq = self.next_seq.wrapping_add(1);
                VideoPacket {
                    seq,
                    timestamp,
                    marker: i == last,
                    payload,
                }
            })
            .collect())
    }

    /// The sequence number of the next packet.
    pub fn next_seq(&self) -> u16 {
        self.next_seq
    }
}

#[cfg(test)]
mod tests {
    use super::super::depacketize::AccessUnitWriter;
    use super::*;
    use proptest::prelude::*;

    fn annexb(nals: &[Vec<u8>]) -> Vec<u8> {
        nals.iter()
            .flat_map(|n| [0, 0, 0, 1].iter().chain(n.iter()).copied())
            .collect()
    }

    #[test]
    fn splits_annexb() {
        let data = [
            9, 9, 0, 0, 1, 0x67, 1, 0, 0, 0, 1, 0x68, 2, 0, 0, 0, 0, 1, 0x65, 3, 0, 0,
        ];
        let units: Vec<&[u8]> = nal_units(&data).collect();
        assert_eq!(units, vec![&[0x67, 1][..], &[0x68, 2], &[0x65, 3]]);
        assert_eq!(nal_units(&[1, 2, 3]).count(), 0);
        assert_eq!(nal_units(&[]).count(), 0);
    }

    #[test]
    fn aggregates_small_and_fragments_large() {
        let sps = vec![0x67, 1, 2, 3];
        let pps = vec![0x68, 4];
        let idr: Vec<u8> = std::iter::once(0x65)
            .chain((0..3000u32).map(|i| (i % 250 + 1) as u8))
            .collect();
        let au = annexb(&[sps.clone(), pps.clone(), idr.clone()]);
        let payloads = packetize(&au, 1200).unwrap();
        assert_eq!(payloads[0][0] & 0x1F, STAP_A);
        assert!(payloads.iter().all(|p| p.len() <= 1200));
        assert_eq!(payloads.len(), 1 + 3);
        let mut w = AccessUnitWriter::default();
        for p in &payloads {
            w.push(p).unwrap();
        }
        let (out, key) = w.finish().unwrap();
        assert!(key);
        assert_eq!(out, au);
    }

    #[test]
    fn payload_too_small_and_bad_nal_are_errors() {
        assert_eq!(
            packetize(&[0, 0, 1, 0x65, 1], 2),
            Err(PacketizeError::PayloadTooSmall(2))
        );
        assert_eq!(
            packetize(&[0, 0, 1, 0x7C, 1], 100),
            Err(PacketizeError::BadNalUnit(28))
        );
        assert!(FramePacketizer::new(0, 1).is_err());
    }

    #[test]
    fn frame_packetizer_numbers_and_marks() {
        let mut p = FramePacketizer::new(u16::MAX - 1, 10).unwrap();
        let au = annexb(&[vec![0x41; 25]]);
        let pkts = p.packetize(&au, 90_000).unwrap();
        assert_eq!(pkts.len(), 3);
        assert_eq!(
            pkts.iter().map(|p| p.seq).collect::<Vec<_>>(),
            vec![u16::MAX - 1, u16::MAX, 0]
        );
        assert_eq!(
            pkts.iter().map(|p| p.marker).collect::<Vec<_>>(),
            vec![false, false, true]
        );
        assert_eq!(p.next_seq(), 1);
    }

    proptest! {
        #[test]
        fn packetize_round_trips(
            nals in proptest::collection::vec(
                (1u8..=23, proptest::collection::vec(1u8..=255, 0..400)), 1..8),
            max_payload in 3usize..1500,
        ) {
            let nals: Vec<Vec<u8>> = nals.into_iter().map(|(t, mut body)| {
                body.insert(0, 0x60 | t);
                body
            }).collect();
            let au = annexb(&nals);
            let payloads = packetize(&au, max_payload).unwrap();
            prop_assert!(payloads.iter().all(|p| p.len() <= max_payload && !p.is_empty()));
            let mut w = AccessUnitWriter::default();
            for p in &payloads {
                w.push(p).unwrap();
            }
            prop_assert_eq!(w.finish().unwrap().0, au);
        }

        #[test]
        fn packetize_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300), mp in 0usize..64) {
            let _ = packetize(&bytes, mp);
        }
    }
}
