//! Writes the seed corpus `fuzz/corpus/<target>/`: the test vectors of `docs/protocol.md`,
//! messages made by the real encoders (sealed envelopes, signed SDP, packetized H.264, WAV and
//! Y4M files) and a few hand-made edge cases. Deterministic: fixed identities, nonces and
//! contents, so running it again rewrites the same files.
//!
//! `cargo run -p call-fuzz --example make_seeds` (then minimise with `cargo fuzz cmin`).

use std::fs;
use std::io::Cursor;
use std::path::{Path, PathBuf};

use call_fuzz::fixtures::{alice, alice_id, bob_id, NOW};
use call_fuzz::sealed_for_bob;
use media::chat::ChatFrame;
use media::jitter::video::packetize;
use native::video::y4m::{Y4mHeader, Y4mWriter};
use native::video::VideoFrame;
use signaling::envelope::EnvelopeKind;
use signaling::offer::{CallToken, CandidateBody, HangupBody, IceCandidate, Role, SignedSdp};
use signaling::room::{
    CallSession, Member, RoomCallBody, RoomCallOp, RoomId, RoomMessage, RoomState,
};

const DOC_ENVELOPE: &str = r#"{"v":1,"from":"aoqqpp7tzyil4hlq3umoos6atft6jvrqtosq2xy53sdgiesvgg4bkaedp4","to":"fgwlvykbxtfpbmrodkkngtily43b4utnbp7bfsexss6jgiuwnxlwrwgc6u","ts":1700000000,"nonce":"QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZX","kind":"hangup","body":"mvEiA6BR0+NY55zFl8mazRjnRbbeu+CevqS8XVxPsk4ok/xCQtKY/4y9opwAYIU121EkLB2GIWXri62aQvpr0gb+RyD0CsFv97eH12hRFy8p","sig":"O8duK8Vl/IA7f2E14c6Ft4S1ku7U1e/1Z6AY/CSDiuk9h5FCCeQzRrCjM6fQGrX5YJAdT7GW8WInNCnNP/nTAA=="}"#;
const DOC_SDP: &str = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=fingerprint:sha-256 1c:7e:31:9a:0b:44:5d:e2:68:f0:93:aa:17:c6:5b:0d:88:29:4e:f1:3a:b7:60:d5:92:0c:e4:7f:16:a3:bd:58\r\n";
const DOC_CHALLENGE: &str = r#"{"type":"challenge","server":"call-signaling","nonce":"YGFiY2RlZmdoaWprbG1ub3BxcnN0dXZ3eHl6e3x9fn8=","ts":1700000000}"#;
const DOC_AUTH: &str = r#"{"type":"auth","id":"aoqqpp7tzyil4hlq3umoos6atft6jvrqtosq2xy53sdgiesvgg4bkaedp4","sig":"B1JoLtFsDjrMt/Zt0K+kVpg7kizh9dlJO+vIGiwpxAJDsPnkaw93n40c3+4yYXSLc7Q7PefPQ3+enWAmzuJXCQ=="}"#;
const DOC_TURN: &str = r#"{"type":"turn_credentials","urls":["turn:127.0.0.1:3478?transport=udp"],"username":"1700000600:aoqqpp7tzyil4hlq3umoos6atft6jvrqtosq2xy53sdgiesvgg4bkaedp4","password":"QYGAgRz+f8wrRrGm2zWLGnyuH90=","ttl":600}"#;
const DOC_ROOM_V1: &str = r#"{"room":"ucq2fi5euwtkpkfjvkv2zlnov5hlfsph","version":1,"prev":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","ts_ms":1700000000000,"name":"Book club","members":[{"id":"aoqqpp7tzyil4hlq3umoos6atft6jvrqtosq2xy53sdgiesvgg4bkaedp4","name":"Alice","role":"admin"}],"signer":"aoqqpp7tzyil4hlq3umoos6atft6jvrqtosq2xy53sdgiesvgg4bkaedp4","sig":"BFczRPsk/d/g/6Q/7rAX8vJlS+OXEJ9KHoTxM6TxGwGJVre3+phseM8c+tMLuAt7EmtbOOToUqLjj0Hx3v1JCg=="}"#;
const DOC_ROOM_V2: &str = r#"{"room":"ucq2fi5euwtkpkfjvkv2zlnov5hlfsph","version":2,"prev":"qD9knQe0F83tI5LmHhTKRGnXg22VyRQBlW22azZ4/G0=","ts_ms":1700000001000,"name":"Book club","members":[{"id":"aoqqpp7tzyil4hlq3umoos6atft6jvrqtosq2xy53sdgiesvgg4bkaedp4","name":"Alice","role":"admin"},{"id":"fgwlvykbxtfpbmrodkkngtily43b4utnbp7bfsexss6jgiuwnxlwrwgc6u","name":"Bob","role":"member"}],"signer":"aoqqpp7tzyil4hlq3umoos6atft6jvrqtosq2xy53sdgiesvgg4bkaedp4","sig":"YgTTuINdNuKEhNbQq/n/vRzwHrN4erLjIM5TcB8MjJ1Mm0BAYVYoX0c8TnbqpASFn0nOIaPEEQ88VtV71BRuBw=="}"#;
const DOC_ROOM_MSG: &str = r#"{"room":"ucq2fi5euwtkpkfjvkv2zlnov5hlfsph","sender":"fgwlvykbxtfpbmrodkkngtily43b4utnbp7bfsexss6jgiuwnxlwrwgc6u","seq":1,"ts_ms":1700000002000,"text":"hi","sig":"Zlo4EAxw7F68iyhF/OxZfcvcuqozTzOcaOWfoYO7EpqQ3TVZSTnnH+lJZov4JbnZXK9q4g+k/XQuUmcisOLRDQ=="}"#;
const DOC_ROOM_CALL: &str = r#"{"room":"ucq2fi5euwtkpkfjvkv2zlnov5hlfsph","session":"11111111111111111111111111111111","op":"join"}"#;

/// An SDP as webrtc-rs writes it, trimmed: session and media level fingerprints, a sha-1 line.
const WEBRTC_SDP: &str = "v=0\r\no=- 8394 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=fingerprint:sha-256 1C:7E:31:9A:0B:44:5D:E2:68:F0:93:AA:17:C6:5B:0D:88:29:4E:F1:3A:B7:60:D5:92:0C:E4:7F:16:A3:BD:58\r\na=group:BUNDLE 0 1\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=setup:actpass\r\na=mid:0\r\na=ice-ufrag:abcd\r\na=ice-pwd:efghijklmnopqrstuvwxyz12\r\na=fingerprint:sha-1 AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD\r\na=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\na=candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host\r\nm=video 9 UDP/TLS/RTP/SAVPF 102\r\na=mid:1\r\na=fingerprint:sha-256 1c:7e:31:9a:0b:44:5d:e2:68:f0:93:aa:17:c6:5b:0d:88:29:4e:f1:3a:b7:60:d5:92:0c:e4:7f:16:a3:bd:58\r\na=rtpmap:102 H264/90000\r\n";

struct Seeds {
    root: PathBuf,
}

impl Seeds {
    fn put(&self, target: &str, name: &str, bytes: impl AsRef<[u8]>) {
        let dir = self.root.join(target);
        fs::create_dir_all(&dir).expect("corpus folder");
        fs::write(dir.join(name), bytes).expect("corpus file");
    }
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let seeds = Seeds { root };
    signaling_seeds(&seeds);
    room_seeds(&seeds);
    media_seeds(&seeds);
    file_seeds(&seeds);
    turn_seeds(&seeds);
    cluster_seeds(&seeds);
    fast_path_seeds(&seeds);
    println!("seeds written to {}", seeds.root.display());
}

fn token() -> CallToken {
    CallToken::from_bytes([
        0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee,
        0xff,
    ])
}

fn signaling_seeds(s: &Seeds) {
    let offer = SignedSdp::sign(alice(), &bob_id(), token(), Role::Offer, DOC_SDP, NOW + 30)
        .expect("doc SDP signs");
    let candidate = CandidateBody {
        call_id: token(),
        candidate: IceCandidate {
            candidate: "candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host".into(),
            sdp_mid: Some("0".into()),
            sdp_mline_index: Some(0),
            username_fragment: Some("abcd".into()),
        },
    };
    let hangup = HangupBody {
        call_id: token(),
        reason: "hang-up".into(),
    };

    s.put("envelope", "doc_hangup.json", DOC_ENVELOPE);
    let sealed = [
        (EnvelopeKind::Offer, offer.to_json()),
        (EnvelopeKind::Candidate, candidate.to_json()),
        (EnvelopeKind::Reject, hangup.to_json()),
        (EnvelopeKind::RoomCall, DOC_ROOM_CALL.as_bytes().to_vec()),
    ];
    for (i, (kind, plaintext)) in sealed.iter().enumerate() {
        let env = sealed_for_bob(*kind, plaintext, i as u8);
        s.put(
            "envelope",
            &format!("sealed_{}.json", kind.as_str()),
            env.to_json(),
        );
    }
    s.put(
        "envelope",
        "duplicate_field.json",
        DOC_ENVELOPE.replace(r#""v":1,"#, r#""v":1,"v":1,"#),
    );

    let env = sealed_for_bob(EnvelopeKind::Hangup, &hangup.to_json(), 9).to_json();
    s.put("client_frame", "doc_auth.json", DOC_AUTH);
    s.put(
        "client_frame",
        "send.json",
        format!(r#"{{"type":"send","envelope":{env}}}"#),
    );
    s.put("client_frame", "turn.json", r#"{"type":"turn"}"#);
    s.put(
        "client_frame",
        "unknown.json",
        r#"{"type":"hello","x":[1,2.5e3,null]}"#,
    );

    s.put("server_frame", "doc_challenge.json", DOC_CHALLENGE);
    s.put("server_frame", "doc_turn_credentials.json", DOC_TURN);
    s.put(
        "server_frame",
        "welcome.json",
        format!(r#"{{"type":"welcome","id":"{}","kept":3}}"#, bob_id()),
    );
    s.put(
        "server_frame",
        "deliver.json",
        format!(r#"{{"type":"deliver","envelope":{env}}}"#),
    );
    s.put(
        "server_frame",
        "error.json",
        r#"{"type":"error","code":"not_online","message":"the recipient is not connected"}"#,
    );

    s.put("ids", "alice", alice_id().to_string());
    s.put(
        "ids",
        "bob_grouped",
        "FGWL-VYKB XTFP-BMRO DKKN-GTIL Y43B-4UTN BP7B-FSEX SS6J-GIUW NXLW-RWGC 6U",
    );
    s.put("ids", "room", "ucq2fi5euwtkpkfjvkv2zlnov5hlfsph");
    s.put("ids", "token", "00112233445566778899aabbccddeeff");
    s.put("ids", "message", "cd521faa3a550e288c0b283cd2c9db3a");

    s.put("offer_bodies", "signed_offer.json", offer.to_json());
    s.put("offer_bodies", "candidate.json", candidate.to_json());
    s.put("offer_bodies", "hangup.json", hangup.to_json());

    s.put("sdp_fingerprint", "doc.sdp", DOC_SDP);
    s.put("sdp_fingerprint", "webrtc.sdp", WEBRTC_SDP);
    s.put(
        "sdp_fingerprint",
        "two_values.sdp",
        format!("{DOC_SDP}a=fingerprint:sha-256 {}\n", ["00"; 32].join(":")),
    );
}

fn room_seeds(s: &Seeds) {
    let room: RoomId = "ucq2fi5euwtkpkfjvkv2zlnov5hlfsph"
        .parse()
        .expect("doc room ID");
    s.put("room_state", "doc_v1.json", DOC_ROOM_V1);
    s.put("room_state", "doc_v2.json", DOC_ROOM_V2);
    let mut state = RoomState::create(room, "Book club", alice_id(), "Alice", 1_700_000_000_000);
    state.upsert(Member {
        id: bob_id(),
        name: "Bob".into(),
        role: signaling::room::Role::Member,
    });
    s.put(
        "room_state",
        "unsigned_with_bob.json",
        format!(
            r#"{{"room":"{room}","version":1,"ts_ms":1700000000000,"name":"Book club","members":{}}}"#,
            serde_json::to_string(&state.members).expect("members serialise")
        ),
    );
    s.put(
        "room_state",
        "unsigned_v3.json",
        format!(
            r#"{{"room":"{room}","version":3,"prev_hex":"cd521faa3a550e288c0b283cd2c9db3a","ts_ms":5,"name":"x","members":{}}}"#,
            serde_json::to_string(&state.members).expect("members serialise")
        ),
    );

    s.put("room_message", "doc_bob.json", DOC_ROOM_MSG);
    let mine = RoomMessage {
        room,
        sender: alice_id(),
        seq: 2,
        ts_ms: 1_700_000_003_000,
        reply_to: Some("cd521faa3a550e288c0b283cd2c9db3a".parse().expect("doc ID")),
        text: "yes\tplease\n".into(),
    }
    .sign(alice())
    .expect("valid message signs");
    s.put("room_message", "alice_reply.json", mine.to_json());
    s.put(
        "room_message",
        "unsigned.json",
        format!(r#"{{"room":"{room}","seq":1,"ts_ms":0,"reply_to":"cd521faa3a550e288c0b283cd2c9db3a","text":"hi"}}"#),
    );

    s.put("room_call", "doc_join.json", DOC_ROOM_CALL);
    let leave = RoomCallBody {
        room,
        session: CallSession([0x22; 16]),
        op: RoomCallOp::Leave,
    };
    s.put("room_call", "leave.json", leave.to_json());

    let msg = ChatFrame::room_msg(DOC_ROOM_MSG.as_bytes()).expect("doc message is an object");
    s.put("chat_frame", "room_msg.json", msg.encode());
}

/// A synthetic access unit: SPS, PPS, an IDR slice of `idr_len` bytes, all NAL headers valid.
fn access_unit(idr_len: usize, keyframe: bool) -> Vec<u8> {
    let mut au = Vec::new();
    if keyframe {
        au.extend_from_slice(&[0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1f, 0x8c, 0x8d]);
        au.extend_from_slice(&[0, 0, 0, 1, 0x68, 0xce, 0x3c, 0x80]);
    }
    au.extend_from_slice(&[0, 0, 0, 1, if keyframe { 0x65 } else { 0x41 }]);
    au.extend((0..idr_len).map(|i| (i * 7 + 3) as u8 | 0x10));
    au
}

fn media_seeds(s: &Seeds) {
    for (name, text) in [
        (
            "text.json",
            r#"{"t":"text","id":1,"ts_ms":1700000000000,"text":"hi\n☎"}"#,
        ),
        ("ping.json", r#"{"t":"ping","n":7}"#),
        ("pong.json", r#"{"t":"pong","n":7}"#),
        ("bye.json", r#"{"t":"bye","reason":"hang-up"}"#),
        (
            "file_offer.json",
            r#"{"t":"file_offer","name":"a.txt","size":3}"#,
        ),
        (
            "escape.json",
            r#"{"t":"text","id":1,"ts_ms":0,"text":"\u001b[2J"}"#,
        ),
    ] {
        s.put("chat_frame", name, text);
    }

    // Depacketizer programs: payloads with 16-bit lengths.
    for (name, mtu, idr) in [("stap_and_single", 1200, 100), ("fu_a", 60, 400)] {
        let payloads = packetize(&access_unit(idr, true), mtu).expect("valid access unit");
        let mut program = Vec::new();
        for p in &payloads {
            program.extend_from_slice(&(p.len() as u16).to_be_bytes());
            program.extend_from_slice(p);
        }
        s.put("h264_depacketize", name, program);
    }
    let mut packetize_seed = vec![20];
    packetize_seed.extend(access_unit(200, true));
    s.put("h264_packetize", "keyframe", packetize_seed);
    let mut three_byte = vec![255];
    three_byte.extend([0, 0, 1, 0x41, 1, 2, 3, 0, 0, 1, 0x01, 9]);
    s.put("h264_packetize", "three_byte_start_codes", three_byte);

    // Video buffer program: config (window 64, 16 KiB, 3 retries), first seq and timestamp,
    // then a keyframe and two P frames, one packet lost (NACKed, then a PLI), time passing.
    let mut program = vec![64, 255, 3, 0x12, 0x34, 0, 0, 0x10, 0];
    let mut frames = vec![
        access_unit(300, true),
        access_unit(120, false),
        access_unit(90, false),
    ];
    let mut step = 0;
    for (i, au) in frames.drain(..).enumerate() {
        let payloads = packetize(&au, 100).expect("valid access unit");
        let last = payloads.len() - 1;
        for (j, p) in payloads.iter().enumerate() {
            if i == 1 && j == 1 {
                program.extend_from_slice(&[2, 50]); // lost: time passes, NACK goes out
                step += 1;
                continue;
            }
            let mut op = if i > 0 && j == 0 { 0x80 } else { 0 };
            if j == last {
                op |= 0x40;
            }
            program.push(op);
            program.push(step);
            step = 1;
            if op & 0x80 != 0 {
                program.push(1);
            }
            program.push(p.len() as u8);
            program.extend_from_slice(p);
        }
        program.extend_from_slice(&[2, 33]);
    }
    s.put("video_buffer", "keyframe_loss_nack", program);

    // Audio program: default-like config, 50 packets with a gap, a duplicate and pulls.
    let mut audio = vec![0, 20, 20, 0, 200, 64, 1, 2, 0, 1, 0, 0, 0, 0];
    for i in 0..50u8 {
        if i != 17 {
            audio.extend_from_slice(&[0x0c, 1, 0xfc, 0x01, 0x02]);
        } else {
            audio.extend_from_slice(&[0x08, 2, 0xfc, 0x01]);
        }
        if i % 2 == 1 {
            audio.extend_from_slice(&[2, 2]);
        }
        if i == 30 {
            audio.extend_from_slice(&[0x0c, 0, 0xfc, 0x01, 0x02]);
        }
    }
    audio.extend_from_slice(&[3, 255, 2, 2, 2]);
    s.put("audio_jitter", "talk_with_loss", audio);
    let mut jumps = vec![1, 10, 60, 1, 0, 8, 0, 3, 0, 7, 0xff, 0xff, 0xff, 0xf0];
    for i in 0..20u8 {
        jumps.extend_from_slice(&[0x80 | (i & 1) << 5, 1, 0, 0, 0, i, 2]);
    }
    s.put("audio_jitter", "ssrc_changes_and_jumps", jumps);
}

fn wav_bytes(spec: hound::WavSpec, samples: usize) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    {
        let mut w = hound::WavWriter::new(&mut out, spec).expect("wav header");
        for i in 0..samples * usize::from(spec.channels) {
            let x = ((i as f32) * 0.3).sin();
            match (spec.sample_format, spec.bits_per_sample) {
                (hound::SampleFormat::Float, _) => w.write_sample(x).expect("sample"),
                (_, 8) => w.write_sample((x * 100.0) as i8).expect("sample"),
                (_, 16) => w.write_sample((x * 30000.0) as i16).expect("sample"),
                (_, bits) => w
                    .write_sample((x * ((1i64 << (bits - 1)) - 1) as f32) as i32)
                    .expect("sample"),
            }
        }
        w.finalize().expect("wav finalize");
    }
    out.into_inner()
}

fn file_seeds(s: &Seeds) {
    use hound::{SampleFormat, WavSpec};
    for (name, channels, rate, bits, format, samples) in [
        ("mono_48k_16bit.wav", 1, 48_000, 16, SampleFormat::Int, 200),
        ("stereo_8k_8bit.wav", 2, 8_000, 8, SampleFormat::Int, 40),
        ("mono_44k1_24bit.wav", 1, 44_100, 24, SampleFormat::Int, 100),
        (
            "stereo_22k_float.wav",
            2,
            22_050,
            32,
            SampleFormat::Float,
            50,
        ),
        (
            "six_channels_16k_32bit.wav",
            6,
            16_000,
            32,
            SampleFormat::Int,
            20,
        ),
    ] {
        let spec = WavSpec {
            channels,
            sample_rate: rate,
            bits_per_sample: bits,
            sample_format: format,
        };
        s.put("wav", name, wav_bytes(spec, samples));
    }
    let mut truncated = wav_bytes(
        WavSpec {
            channels: 1,
            sample_rate: 48_000,
            bits_per_sample: 16,
            sample_format: SampleFormat::Int,
        },
        100,
    );
    truncated.truncate(120);
    s.put("wav", "truncated.wav", truncated);

    for (name, width, height, frames, rate) in [
        ("4x4_two_frames.y4m", 4, 4, 2, Some((25, 1))),
        ("3x5_odd.y4m", 3, 5, 1, None),
    ] {
        let header = Y4mHeader {
            width,
            height,
            frame_rate: rate,
        };
        let mut w = Y4mWriter::new(Vec::new(), header).expect("y4m header");
        for i in 0..frames {
            w.write_frame(&VideoFrame::filled(width, height, [16 + i as u8, 128, 128]))
                .expect("y4m frame");
        }
        s.put("y4m", name, w.into_inner().expect("y4m bytes"));
    }
    let mut tagged = b"YUV4MPEG2 W2 H2 F30000:1001 It A0:0 C420mpeg2 XYSCSS=420MPEG2\n".to_vec();
    tagged.extend_from_slice(b"FRAME Ixyz\n");
    tagged.extend_from_slice(&[1, 2, 3, 4, 5, 6]);
    s.put("y4m", "tags.y4m", tagged);
}

/// A STUN message: type, attributes (type, value), padded; length and cookie filled in.
fn stun(kind: u16, txid: u8, attrs: &[(u16, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (t, v) in attrs {
        body.extend_from_slice(&t.to_be_bytes());
        body.extend_from_slice(&(v.len() as u16).to_be_bytes());
        body.extend_from_slice(v);
        while body.len() % 4 != 0 {
            body.push(0);
        }
    }
    let mut out = Vec::new();
    out.extend_from_slice(&kind.to_be_bytes());
    out.extend_from_slice(&(body.len() as u16).to_be_bytes());
    out.extend_from_slice(&[0x21, 0x12, 0xA4, 0x42]);
    out.extend_from_slice(&[txid; 12]);
    out.extend_from_slice(&body);
    out
}

fn turn_seeds(s: &Seeds) {
    let username = format!("{}:{}", NOW + 600, alice_id());
    s.put(
        "turn_credentials",
        "doc",
        format!("{username}\nQYGAgRz+f8wrRrGm2zWLGnyuH90="),
    );
    s.put(
        "turn_credentials",
        "expired",
        format!("1:{}\nAAAA", alice_id()),
    );
    s.put(
        "turn_credentials",
        "nonce_shaped",
        "0000000a0123456789abcdef0123456789abcdef\n0000000a0123456789abcdef0123456789abcdef",
    );

    let transport: &[u8] = &[17, 0, 0, 0];
    let integrity = [0x5a; 20];
    let peer = [
        0,
        1,
        0x21 ^ 0x12,
        0x34,
        81 ^ 0x21,
        2 ^ 0x12,
        69 ^ 0xA4,
        160 ^ 0x42,
    ];
    let datagrams = [
        (0, stun(0x0001, 1, &[])),
        (0, stun(0x0003, 2, &[(0x0019, transport)])),
        (
            1,
            stun(
                0x0003,
                3,
                &[
                    (0x0019, transport),
                    (0x0006, username.as_bytes()),
                    (0x0014, b"call"),
                    (0x0015, b"0000000a0123456789abcdef0123456789abcdef"),
                    (0x0008, &integrity),
                ],
            ),
        ),
        (
            2,
            stun(
                0x0008,
                4,
                &[
                    (0x0012, &peer),
                    (0x0006, username.as_bytes()),
                    (0x0015, b"00000000"),
                    (0x0008, &integrity),
                ],
            ),
        ),
        (3, stun(0x0004, 5, &[(0x000D, &[0, 0, 0, 0])])),
        (0, vec![0x40, 0x00, 0x00, 0x04, 1, 2, 3, 4]),
        (1, stun(0x0016, 6, &[(0x0012, &peer)])),
    ];
    let mut program = Vec::new();
    for (from, d) in &datagrams {
        program.push(*from);
        program.push(1);
        program.extend_from_slice(&(d.len() as u16).to_be_bytes());
        program.extend_from_slice(d);
    }
    s.put("turn_gate", "requests", program);
    for (i, (from, d)) in datagrams.iter().enumerate().take(4) {
        let mut one = vec![*from, 0];
        one.extend_from_slice(&(d.len() as u16).to_be_bytes());
        one.extend_from_slice(d);
        s.put("turn_gate", &format!("single_{i}"), one);
    }
}

/// The two shapes of `cluster_message`: a `deliver` for Bob from Alice, and a kick.
fn cluster_seeds(s: &Seeds) {
    let env = sealed_for_bob(EnvelopeKind::Offer, b"seed", 7).to_json();
    s.put(
        "cluster_message",
        "deliver",
        format!(
            r#"d {} {} {{"type":"deliver","envelope":{env}}}"#,
            bob_id(),
            alice_id()
        ),
    );
    s.put("cluster_message", "kick", format!("k {} 42", alice_id()));
}

/// `send` frames from Alice (the fast path's connection) to Bob, of every kind, as clients
/// write them.
fn fast_path_seeds(s: &Seeds) {
    for (i, kind) in EnvelopeKind::ALL.into_iter().enumerate() {
        let env = sealed_for_bob(kind, &vec![b'x'; i * 40], i as u8).to_json();
        s.put(
            "send_fast_path",
            &format!("send_{}", kind.as_str()),
            format!(r#"{{"type":"send","envelope":{env}}}"#),
        );
    }
}
