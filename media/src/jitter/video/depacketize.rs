//! RFC 6184 payload parsing (packetization-mode 1: single NAL unit, STAP-A, FU-A) and Annex-B
//! output. Everything here reads untrusted bytes and returns errors, never panics.

use thiserror::Error;

/// NAL unit type of an IDR slice: a picture decodable on its own.
pub const NAL_IDR: u8 = 5;
/// NAL unit type of supplemental enhancement information.
pub const NAL_SEI: u8 = 6;
/// NAL unit type of a sequence parameter set.
pub const NAL_SPS: u8 = 7;
/// NAL unit type of a picture parameter set.
pub const NAL_PPS: u8 = 8;
/// NAL unit type of an access unit delimiter.
pub const NAL_AUD: u8 = 9;
/// RTP payload type of a STAP-A aggregation packet.
pub const STAP_A: u8 = 24;
/// RTP payload type of an FU-A fragment.
pub const FU_A: u8 = 28;

/// The Annex-B start code written before each NAL unit.
pub const START_CODE: [u8; 4] = [0, 0, 0, 1];

/// Why an RTP payload is not valid H.264 (RFC 6184, packetization-mode 1).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DepacketizeError {
    /// The payload has no bytes.
    #[error("empty H.264 RTP payload")]
    Empty,
    /// The forbidden_zero_bit of the NAL header is set: the sender marks the unit as corrupt.
    #[error("H.264 NAL header has the forbidden bit set (unit marked corrupt by the sender)")]
    ForbiddenBit,
    /// NAL type 0, 30 or 31, which RFC 6184 leaves undefined.
    #[error("undefined H.264 RTP payload type {0}")]
    Undefined(u8),
    /// STAP-B, MTAP16, MTAP24 or FU-B: only packetization-mode 1 is supported.
    #[error(
        "H.264 RTP payload type {0} needs interleaved mode; only packetization-mode 1 is supported"
    )]
    Unsupported(u8),
    /// A STAP-A whose unit sizes run past the end of the payload, or that holds an empty unit.
    #[error("STAP-A aggregation packet is truncated or holds an empty NAL unit")]
    BadStapA,
    /// An FU-A without payload, with both start and end bits, or fragmenting an aggregation type.
    #[error("malformed FU-A fragment (no data, start and end bits both set, or bad inner type)")]
    BadFuA,
}

/// One parsed RTP payload, borrowing from the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload<'a> {
    /// A whole NAL unit (header included).
    Single(&'a [u8]),
    /// A STAP-A: the part after the STAP-A header, a sequence of (16-bit size, NAL unit).
    StapA(StapA<'a>),
    /// One FU-A fragment.
    FuA {
        /// The NAL header of the fragmented unit, rebuilt from the FU indicator and header.
        nal_header: u8,
        /// First fragment of the unit.
        start: bool,
        /// Last fragment of the unit.
        end: bool,
        /// Fragment bytes (after the two FU bytes).
        data: &'a [u8],
    },
}

/// The NAL units of a validated STAP-A.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StapA<'a> {
    body: &'a [u8],
}

impl<'a> StapA<'a> {
    /// Iterates the aggregated NAL units.
    pub fn units(&self) -> StapAUnits<'a> {
        StapAUnits { rest: self.body }
    }
}

/// Iterator over the NAL units of a [`StapA`].
#[derive(Debug, Clone)]
pub struct StapAUnits<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for StapAUnits<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let (len, rest) = match self.rest {
            [hi, lo, rest @ ..] => (usize::from(u16::from_be_bytes([*hi, *lo])), rest),
            _ => return None,
        };
        let unit = rest.get(..len)?;
        self.rest = &rest[len..];
        Some(unit)
    }
}

impl<'a> Payload<'a> {
    /// Parses and validates one RTP payload.
    pub fn parse(payload: &'a [u8]) -> Result<Self, DepacketizeError> {
        let &header = payload.first().ok_or(DepacketizeError::Empty)?;
        if header & 0x80 != 0 {
            return Err(DepacketizeError::ForbiddenBit);
        }
        match header & 0x1F {
            1..=23 => Ok(Payload::Single(payload)),
            STAP_A => {
                let body = &payload[1..];
                let mut rest = body;
                let mut count = 0;
                while !rest.is_empty() {
                    let [hi, lo, tail @ ..] = rest else {
                        return Err(DepacketizeError::BadStapA);
                    };
                    let len = usize::from(u16::from_be_bytes([*hi, *lo]));
                    if len == 0 || len > tail.len() || tail[0] & 0x80 != 0 {
                        return Err(DepacketizeError::BadStapA);
                    }
                    rest = &tail[len..];
                    count += 1;
                }
                if count == 0 {
                    return Err(DepacketizeError::BadStapA);
                }
                Ok(Payload::StapA(StapA { body }))
            }
            FU_A => {
                let [indicator, fu_header, data @ ..] = payload else {
                    return Err(DepacketizeError::BadFuA);
                };
                let (start, end) = (fu_header & 0x80 != 0, fu_header & 0x40 != 0);
                let inner = fu_header & 0x1F;
                if data.is_empty() || (start && end) || !(1..=23).contains(&inner) {
                    return Err(DepacketizeError::BadFuA);
                }
                Ok(Payload::FuA {
                    nal_header: (indicator & 0xE0) | inner,
                    start,
                    end,
                    data,
                })
            }
            t @ (25 | 26 | 27 | 29) => Err(DepacketizeError::Unsupported(t)),
            t => Err(DepacketizeError::Undefined(t)),
        }
    }

    /// Type of the first NAL unit this payload starts or continues.
    pub fn first_nal_type(&self) -> u8 {
        match self {
            Payload::Single(nal) => nal[0] & 0x1F,
            Payload::StapA(stap) => stap.units().next().map_or(0, |n| n[0] & 0x1F),
            Payload::FuA { nal_header, .. } => nal_header & 0x1F,
        }
    }

    /// True when this payload begins a NAL unit (single, STAP-A, or first FU-A fragment).
    pub fn starts_nal(&self) -> bool {
        !matches!(self, Payload::FuA { start: false, .. })
    }

    /// True when this payload starts an IDR slice.
    pub fn has_idr(&self) -> bool {
        match self {
            Payload::Single(nal) => nal[0] & 0x1F == NAL_IDR,
            Payload::StapA(stap) => stap.units().any(|n| n[0] & 0x1F == NAL_IDR),
            Payload::FuA {
                nal_header, start, ..
            } => *start && nal_header & 0x1F == NAL_IDR,
        }
    }
}

/// Rebuilds an Annex-B access unit from the payloads of one frame, in sequence order.
///
/// Checks the FU-A structure across packets (start, continuation, end of one unit in a row);
/// returns `Err` if any payload is malformed or a fragmented unit is incomplete.
#[derive(Debug, Default)]
pub struct AccessUnitWriter {
    out: Vec<u8>,
    in_fragment: bool,
    keyframe: bool,
}

impl AccessUnitWriter {
    /// A writer with room for `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            out: Vec::with_capacity(capacity),
            in_fragment: false,
            keyframe: false,
        }
    }

    /// Appends one RTP payload.
    pub fn push(&mut self, payload: &[u8]) -> Result<(), DepacketizeError> {
        let parsed = Payload::parse(payload)?;
        if parsed.has_idr() {
            self.keyframe = true;
        }
        match parsed {
            Payload::Single(nal) => {
                self.expect_no_fragment()?;
                self.out.extend_from_slice(&START_CODE);
                self.out.extend_from_slice(nal);
            }
            Payload::StapA(stap) => {
                self.expect_no_fragment()?;
                for nal in stap.units() {
                    self.out.extend_from_slice(&START_CODE);
                    self.out.extend_from_slice(nal);
                }
            }
            Payload::FuA {
                nal_header,
                start,
                end,
                data,
            } => {
                if start {
                    self.expect_no_fragment()?;
                    self.out.extend_from_slice(&START_CODE);
                    self.out.push(nal_header);
                } else if !self.in_fragment {
                    return Err(DepacketizeError::BadFuA);
                }
                self.out.extend_from_slice(data);
                self.in_fragment = !end;
            }
        }
        Ok(())
    }

    fn expect_no_fragment(&self) -> Result<(), DepacketizeError> {
        if self.in_fragment {
            Err(DepacketizeError::BadFuA)
        } else {
            Ok(())
        }
    }

    /// Finishes the access unit: `(annexb, keyframe)`. Fails if a fragmented unit never ended.
    pub fn finish(self) -> Result<(Vec<u8>, bool), DepacketizeError> {
        if self.in_fragment {
            return Err(DepacketizeError::BadFuA);
        }
        Ok((self.out, self.keyframe))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_the_three_kinds() {
        assert_eq!(
            Payload::parse(&[0x65, 1, 2]).unwrap(),
            Payload::Single(&[0x65, 1, 2])
        );
        let stap = [0x78, 0, 2, 0x67, 9, 0, 1, 0x68];
        let Payload::StapA(s) = Payload::parse(&stap).unwrap() else {
            panic!()
        };
        assert_eq!(
            s.units().collect::<Vec<_>>(),
            vec![&[0x67, 9][..], &[0x68][..]]
        );
        assert_eq!(Payload::parse(&stap).unwrap().first_nal_type(), NAL_SPS);
        let fu = [0x7C, 0x85, 1, 2];
        assert_eq!(
            Payload::parse(&fu).unwrap(),
            Payload::FuA {
                nal_header: 0x65,
                start: true,
                end: false,
                data: &[1, 2]
            }
        );
        assert!(Payload::parse(&fu).unwrap().has_idr());
    }

    #[test]
    fn rejects_bad_payloads() {
        use DepacketizeError::*;
        assert_eq!(Payload::parse(&[]), Err(Empty));
        assert_eq!(Payload::parse(&[0xE5, 0]), Err(ForbiddenBit));
        assert_eq!(Payload::parse(&[0x00]), Err(Undefined(0)));
        assert_eq!(Payload::parse(&[0x1E]), Err(Undefined(30)));
        assert_eq!(Payload::parse(&[0x19, 0]), Err(Unsupported(25)));
        assert_eq!(Payload::parse(&[0x18]), Err(BadStapA));
        assert_eq!(Payload::parse(&[0x18, 0, 5, 1]), Err(BadStapA));
        assert_eq!(Payload::parse(&[0x18, 0, 0]), Err(BadStapA));
        assert_eq!(Payload::parse(&[0x18, 0, 1, 0x65, 0]), Err(BadStapA));
        assert_eq!(Payload::parse(&[0x1C, 0x85]), Err(BadFuA));
        assert_eq!(Payload::parse(&[0x1C, 0xC5, 1]), Err(BadFuA));
        assert_eq!(Payload::parse(&[0x1C, 0x98, 1]), Err(BadFuA));
    }

    #[test]
    fn writer_rebuilds_fragments_and_checks_structure() {
        let mut w = AccessUnitWriter::default();
        w.push(&[0x78, 0, 2, 0x67, 9, 0, 1, 0x68]).unwrap();
        w.push(&[0x7C, 0x85, 1, 2]).unwrap();
        w.push(&[0x7C, 0x05, 3]).unwrap();
        w.push(&[0x7C, 0x45, 4]).unwrap();
        let (au, key) = w.finish().unwrap();
        assert!(key);
        assert_eq!(
            au,
            [0, 0, 0, 1, 0x67, 9, 0, 0, 0, 1, 0x68, 0, 0, 0, 1, 0x65, 1, 2, 3, 4]
        );

        let mut w = AccessUnitWriter::default();
        assert!(
            w.push(&[0x7C, 0x05, 3]).is_err(),
            "continuation without start"
        );
        let mut w = AccessUnitWriter::default();
        w.push(&[0x7C, 0x85, 1]).unwrap();
        assert!(
            w.push(&[0x41, 1]).is_err(),
            "single NAL inside a fragmented unit"
        );
        let mut w = AccessUnitWriter::default();
        w.push(&[0x7C, 0x85, 1]).unwrap();
        assert!(w.finish().is_err(), "unit never ended");
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(p) = Payload::parse(&bytes) {
                let _ = p.first_nal_type();
                let _ = p.has_idr();
                if let Payload::StapA(s) = p {
                    prop_assert!(s.units().all(|u| !u.is_empty()));
                }
            }
            let mut w = AccessUnitWriter::default();
            let _ = w.push(&bytes);
            let _ = w.push(&bytes);
            let _ = w.finish();
        }

        #[test]
        fn structured_payloads_never_panic(
            kind in prop_oneof![Just(24u8), Just(28u8), 0u8..32],
            body in proptest::collection::vec(any::<u8>(), 0..40),
        ) {
            let mut bytes = vec![kind];
            bytes.extend(body);
            let _ = Payload::parse(&bytes).map(|p| (p.first_nal_type(), p.has_idr(), p.starts_nal()));
        }
    }
}
