//! The seed corpus reaches past the first check of each parser: the seeds that are meant to be
//! valid parse (a corpus of inputs every parser refuses would fuzz only the error paths).

use std::fs;
use std::io::Cursor;
use std::path::Path;

use call_fuzz::fixtures::{bob, NOW};
use media::chat::ChatFrame;
use native::video::y4m::Y4mReader;
use native::WavSource;
use signaling::envelope::{self, ReplayCache};
use signaling::offer::SignedSdp;
use signaling::protocol::{ClientFrame, ServerFrame};
use signaling::room::{RoomCallBody, SignedRoomMessage, SignedRoomState};

fn seed(target: &str, name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target)
        .join(name);
    fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn text(target: &str, name: &str) -> String {
    String::from_utf8(seed(target, name)).expect("UTF-8 seed")
}

#[test]
fn signaling_seeds_are_valid() {
    let env = envelope::parse(&seed("envelope", "doc_hangup.json")).expect("doc envelope");
    env.open(bob(), NOW, &mut ReplayCache::new(4))
        .expect("Bob opens the doc envelope");
    for kind in ["offer", "candidate", "reject", "room_call"] {
        let env = envelope::parse(&seed("envelope", &format!("sealed_{kind}.json"))).unwrap();
        env.open(bob(), NOW, &mut ReplayCache::new(4)).unwrap();
    }
    for name in ["doc_auth.json", "send.json", "turn.json"] {
        ClientFrame::parse(&text("client_frame", name)).unwrap();
    }
    for name in [
        "doc_challenge.json",
        "doc_turn_credentials.json",
        "welcome.json",
        "deliver.json",
        "error.json",
    ] {
        ServerFrame::parse(&text("server_frame", name)).unwrap();
    }
    SignedSdp::parse(&seed("offer_bodies", "signed_offer.json")).unwrap();
}

#[test]
fn room_and_chat_seeds_are_valid() {
    SignedRoomState::parse(&seed("room_state", "doc_v1.json")).unwrap();
    SignedRoomState::parse(&seed("room_state", "doc_v2.json")).unwrap();
    SignedRoomMessage::parse(&seed("room_message", "doc_bob.json")).unwrap();
    SignedRoomMessage::parse(&seed("room_message", "alice_reply.json")).unwrap();
    RoomCallBody::parse(&seed("room_call", "doc_join.json")).unwrap();
    for name in [
        "text.json",
        "ping.json",
        "pong.json",
        "bye.json",
        "room_msg.json",
    ] {
        ChatFrame::parse(&seed("chat_frame", name)).unwrap();
    }
}

#[test]
fn file_seeds_are_valid() {
    for name in [
        "mono_48k_16bit.wav",
        "stereo_8k_8bit.wav",
        "mono_44k1_24bit.wav",
        "stereo_22k_float.wav",
        "six_channels_16k_32bit.wav",
    ] {
        WavSource::from_reader(
            Box::new(Cursor::new(seed("wav", name))),
            Path::new(name),
            false,
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    for name in ["4x4_two_frames.y4m", "3x5_odd.y4m", "tags.y4m"] {
        let mut reader = Y4mReader::new(Cursor::new(seed("y4m", name))).unwrap();
        assert!(reader.next_frame().unwrap().is_some(), "{name} has a frame");
    }
}
