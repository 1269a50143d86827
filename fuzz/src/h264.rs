//! Targets for RFC 6184 H.264 payloads (§18.5): the depacketizer that reads every video RTP
//! payload a peer sends, and the packetizer whose output it must read back.

use media::jitter::video::{
    nal_units, packetize, AccessUnitWriter, DepacketizeError, Payload, NAL_IDR, START_CODE,
};

use crate::input::Input;

/// Largest payload a target builds (an RTP packet fits a 1500-byte MTU).
const MAX_PAYLOAD: usize = 1500;

/// `Payload::parse` and `AccessUnitWriter` over a sequence of payloads (each prefixed with a
/// 16-bit length): every parse is consistent with its bytes (a single NAL unit is the whole
/// payload, STAP-A units tile the body exactly, an FU-A's header comes from its two FU
/// bytes), and a finished access unit is Annex-B starting with a start code, a keyframe
/// exactly when some payload holds an IDR slice.
pub fn h264_depacketize(data: &[u8]) {
    let mut input = Input::new(data);
    let mut writer = AccessUnitWriter::with_capacity(0);
    let mut any_idr = false;
    let mut failed = false;
    let mut pushed = 0usize;
    while !input.is_empty() {
        let payload = input.slice(MAX_PAYLOAD);
        match Payload::parse(payload) {
            Ok(parsed) => {
                check_payload(payload, &parsed);
                any_idr |= parsed.has_idr();
            }
            Err(err) => check_refusal(payload, &err),
        }
        if !failed {
            failed = writer.push(payload).is_err();
            pushed += 1;
        }
    }
    if failed {
        return;
    }
    if let Ok((annexb, keyframe)) = writer.finish() {
        assert_eq!(keyframe, any_idr);
        if pushed > 0 && !annexb.is_empty() {
            assert!(annexb.starts_with(&START_CODE));
        }
    }
}

fn check_payload(payload: &[u8], parsed: &Payload<'_>) {
    match parsed {
        Payload::Single(nal) => {
            assert_eq!(*nal, payload);
            assert_eq!(parsed.has_idr(), payload[0] & 0x1F == NAL_IDR);
        }
        Payload::StapA(stap) => {
            let mut covered = 1;
            for unit in stap.units() {
                assert!(!unit.is_empty());
                covered += 2 + unit.len();
            }
            assert_eq!(covered, payload.len());
        }
        Payload::FuA {
            nal_header,
            start,
            end,
            data,
        } => {
            assert!(!(*start && *end));
            assert_eq!(nal_header & 0x1F, payload[1] & 0x1F);
            assert_eq!(nal_header & 0xE0, payload[0] & 0xE0);
            assert_eq!(*data, &payload[2..]);
        }
    }
}

fn check_refusal(payload: &[u8], err: &DepacketizeError) {
    match err {
        DepacketizeError::Empty => assert!(payload.is_empty()),
        DepacketizeError::ForbiddenBit => assert!(payload[0] & 0x80 != 0),
        _ => assert!(!payload.is_empty()),
    }
}

/// `packetize` on any byte string taken as an Annex-B access unit (the first byte sets the
/// payload size): every payload fits the size, and depacketizing the payloads in order gives
/// back exactly the access unit's NAL units, each behind a 4-byte start code.
pub fn h264_packetize(data: &[u8]) {
    let mut input = Input::new(data);
    let max_payload = 3 + usize::from(input.u8()) * 4;
    let annexb = input.bytes(data.len());
    let Ok(payloads) = packetize(annexb, max_payload) else {
        return;
    };
    let mut writer = AccessUnitWriter::with_capacity(annexb.len());
    for payload in &payloads {
        assert!(payload.len() <= max_payload);
        writer
            .push(payload)
            .expect("the depacketizer reads what the packetizer writes");
    }
    let (out, keyframe) = writer.finish().expect("the access unit is complete");
    let mut expected = Vec::with_capacity(annexb.len() + 16);
    let mut idr = false;
    for nal in nal_units(annexb) {
        expected.extend_from_slice(&START_CODE);
        expected.extend_from_slice(nal);
        idr |= nal[0] & 0x1F == NAL_IDR;
    }
    assert_eq!(out, expected);
    assert_eq!(keyframe, idr);
}
