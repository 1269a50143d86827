use super::*;
use proptest::prelude::*;

/// Bob's signed message of docs/protocol.md §21.7 (checked there by
/// `signaling::room::vectors`): what the `room_msg` vector carries.
const BOB_ROOM_MESSAGE: &str = r#"{"room":"ucq2fi5euwtkpkfjvkv2zlnov5hlfsph","sender":"fgwlvykbxtfpbmrodkkngtily43b4utnbp7bfsexss6jgiuwnxlwrwgc6u","seq":1,"ts_ms":1700000002000,"text":"hi","sig":"Zlo4EAxw7F68iyhF/OxZfcvcuqozTzOcaOWfoYO7EpqQ3TVZSTnnH+lJZov4JbnZXK9q4g+k/XQuUmcisOLRDQ=="}"#;

/// The test vectors of docs/protocol.md §19.5, byte for byte.
const DOC_VECTORS: [(&str, &str); 5] = [
    (
        "text",
        "{\"t\":\"text\",\"id\":1,\"ts_ms\":1700000000000,\"text\":\"hi\\n\u{260e}\"}",
    ),
    ("ping", "{\"t\":\"ping\",\"n\":7}"),
    ("pong", "{\"t\":\"pong\",\"n\":7}"),
    ("bye", "{\"t\":\"bye\",\"reason\":\"hang-up\"}"),
    (
        "room_msg",
        r#"{"t":"room_msg","msg":{"room":"ucq2fi5euwtkpkfjvkv2zlnov5hlfsph","sender":"fgwlvykbxtfpbmrodkkngtily43b4utnbp7bfsexss6jgiuwnxlwrwgc6u","seq":1,"ts_ms":1700000002000,"text":"hi","sig":"Zlo4EAxw7F68iyhF/OxZfcvcuqozTzOcaOWfoYO7EpqQ3TVZSTnnH+lJZov4JbnZXK9q4g+k/XQuUmcisOLRDQ=="}}"#,
    ),
];

fn doc_frame(name: &str) -> ChatFrame {
    match name {
        "text" => ChatFrame::text(1, 1_700_000_000_000, "hi\n\u{260e}").unwrap(),
        "ping" => ChatFrame::Ping { n: 7 },
        "pong" => ChatFrame::Pong { n: 7 },
        "room_msg" => ChatFrame::room_msg(BOB_ROOM_MESSAGE.as_bytes()).unwrap(),
        _ => ChatFrame::Bye {
            reason: "hang-up".into(),
        },
    }
}

#[test]
fn protocol_doc_chat_vectors() {
    let doc = include_str!("../../../docs/protocol.md");
    for (name, bytes) in DOC_VECTORS {
        let frame = doc_frame(name);
        assert_eq!(frame.encode(), bytes.as_bytes(), "{name}");
        assert_eq!(ChatFrame::parse(bytes.as_bytes()).unwrap(), frame, "{name}");
        assert!(
            doc.contains(&format!("`{bytes}`")),
            "docs/protocol.md lacks the {name} vector {bytes}"
        );
    }
    // The text vector's bytes in hex, as printed in the spec.
    let hex: String = DOC_VECTORS[0]
        .1
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert!(doc.contains(&hex), "docs/protocol.md lacks the hex {hex}");
    // Receivers accept any member order and JSON whitespace.
    assert_eq!(
        ChatFrame::parse(b" { \"n\" : 7 , \"t\" : \"pong\" } ").unwrap(),
        ChatFrame::Pong { n: 7 }
    );
}

#[test]
fn unknown_and_reserved_types_are_told_apart_from_malformed_frames() {
    for (raw, t) in [
        (
            &br#"{"t":"file_offer","name":"a.txt","size":3}"#[..],
            "file_offer",
        ),
        (br#"{"t":"room_invite"}"#, "room_invite"),
        (br#"{"extra":[1,2],"t":"typing"}"#, "typing"),
    ] {
        assert_eq!(ChatFrame::parse(raw), Err(ChatError::UnknownType(t.into())));
    }
    let long = format!(r#"{{"t":"{}"}}"#, "é".repeat(100));
    match ChatFrame::parse(long.as_bytes()) {
        Err(ChatError::UnknownType(t)) => assert!(t.len() <= 64 && t.starts_with('é')),
        other => panic!("{other:?}"),
    }
    // What an implementation sending plain text, or other JSON, gets.
    for raw in [
        &b"hello"[..],
        b"",
        b"[]",
        b"\"text\"",
        br#"{"type":"text","text":"hi"}"#,
        br#"{"t":7}"#,
        br#"{"t":"ping","n":1,"n":2}"#,
        br#"{"t":"ping","t":"pong","n":1}"#,
        br#"{"t":"ping","n":-1}"#,
        br#"{"t":"ping","n":1.5}"#,
        br#"{"t":"ping","n":18446744073709551616}"#,
        br#"{"t":"text","id":1,"ts_ms":0}"#,
        br#"{"t":"text","id":1,"ts_ms":0,"text":"\ud800"}"#,
        b"{\"t\":\"ping\",\"n\":1}\xff",
    ] {
        assert!(
            matches!(ChatFrame::parse(raw), Err(ChatError::Malformed(_))),
            "{:?} gave {:?}",
            String::from_utf8_lossy(raw),
            ChatFrame::parse(raw)
        );
    }
}

#[test]
fn round_trip() {
    let f = ChatFrame::text(1, 1_700_000_000_000, "hello, world").unwrap();
    assert_eq!(ChatFrame::parse(&f.encode()).unwrap(), f);
    for f in [ChatFrame::Ping { n: 0 }, ChatFrame::Pong { n: u64::MAX }] {
        assert_eq!(ChatFrame::parse(&f.encode()).unwrap(), f);
    }
}

#[test]
fn rejects_oversize_and_escapes() {
    assert_eq!(
        ChatFrame::parse(&vec![b' '; MAX_FRAME_BYTES + 1]),
        Err(ChatError::FrameTooLarge(MAX_FRAME_BYTES + 1))
    );
    assert_eq!(
        ChatFrame::text(1, 0, &"x".repeat(MAX_TEXT_BYTES + 1)),
        Err(ChatError::TextTooLarge(MAX_TEXT_BYTES + 1))
    );
    // Exactly at the limits is fine.
    let f = ChatFrame::text(1, 0, &"x".repeat(MAX_TEXT_BYTES)).unwrap();
    assert_eq!(ChatFrame::parse(&f.encode()).unwrap(), f);
    let bye = |n| format!(r#"{{"t":"bye","reason":"{}"}}"#, "r".repeat(n));
    assert!(ChatFrame::parse(bye(MAX_REASON_BYTES).as_bytes()).is_ok());
    assert_eq!(
        ChatFrame::parse(bye(MAX_REASON_BYTES + 1).as_bytes()),
        Err(ChatError::ReasonTooLarge(MAX_REASON_BYTES + 1))
    );
    assert_eq!(
        ChatFrame::text(1, 0, "\x1b[2J"),
        Err(ChatError::ControlCharacters)
    );
    for raw in [
        &br#"{"t":"text","id":1,"ts_ms":0,"text":"\u001b[31m"}"#[..],
        br#"{"t":"text","id":1,"ts_ms":0,"text":"a\rb"}"#,
        br#"{"t":"text","id":1,"ts_ms":0,"text":"\u009b2J"}"#,
        br#"{"t":"bye","reason":"\u007f"}"#,
    ] {
        assert_eq!(ChatFrame::parse(raw), Err(ChatError::ControlCharacters));
    }
    assert!(matches!(
        ChatFrame::parse(br#"{"t":"bye","reason":"x","extra":1}"#),
        Err(ChatError::Malformed(_))
    ));
}

proptest! {
    #[test]
    fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = ChatFrame::parse(&bytes);
    }

    /// JSON-shaped input reaches the deeper branches (unknown types, wrong member types).
    #[test]
    fn parse_never_panics_on_json_like_input(
        t in "[a-z_]{0,12}",
        key in "[a-z_]{1,8}",
        value in prop_oneof![
            Just("1".to_owned()),
            Just("-1".to_owned()),
            Just("\"x\"".to_owned()),
            Just("null".to_owned()),
            Just("[]".to_owned()),
            "\\PC{0,20}".prop_map(|s| serde_json::to_string(&s).unwrap()),
        ],
    ) {
        let raw = format!(r#"{{"t":"{t}","{key}":{value}}}"#);
        match ChatFrame::parse(raw.as_bytes()) {
            Err(ChatError::UnknownType(got)) => prop_assert_eq!(got, t),
            Ok(f) => {
                let tag = format!(r#"{{"t":"{t}""#);
                prop_assert!(KNOWN_TYPES.contains(&t.as_str()));
                prop_assert!(f.encode().starts_with(tag.as_bytes()));
            }
            Err(_) => {}
        }
    }

    #[test]
    fn any_printable_text_round_trips(text in "[^\\p{Cc}]{0,200}", id in any::<u64>(), ts in any::<u64>()) {
        let f = ChatFrame::text(id, ts, &text).unwrap();
        prop_assert_eq!(ChatFrame::parse(&f.encode()).unwrap(), f);
    }
}

/// A signed-message-shaped object (the engine verifies it; here only its size matters).
fn room_message_json(text: &str) -> String {
    serde_json::json!({
        "room": "ucq2fi5euwtkpkfjvkv2zlnov5hlfsph",
        "sender": "fgwlvykbxtfpbmrodkkngtily43b4utnbp7bfsexss6jgiuwnxlwrwgc6u",
        "seq": u64::MAX,
        "ts_ms": u64::MAX,
        "reply_to": "cd521faa3a550e288c0b283cd2c9db3a",
        "text": text,
        "sig": "Zlo4EAxw7F68iyhF/OxZfcvcuqozTzOcaOWfoYO7EpqQ3TVZSTnnH+lJZov4JbnZXK9q4g+k/XQuUmcisOLRDQ==",
    })
    .to_string()
}

#[test]
fn room_msg_carries_the_message_bytes_exactly() {
    let inner = room_message_json("hello");
    let frame = ChatFrame::room_msg(inner.as_bytes()).unwrap();
    let bytes = frame.encode();
    assert_eq!(
        bytes,
        format!(r#"{{"t":"room_msg","msg":{inner}}}"#).as_bytes()
    );
    match ChatFrame::parse(&bytes).unwrap() {
        ChatFrame::RoomMsg { msg } => assert_eq!(msg.as_bytes(), inner.as_bytes()),
        other => panic!("{other:?}"),
    }
    // Other member order and whitespace are accepted; the nested object is kept as sent.
    let spaced = format!(" {{ \"msg\" : {inner} , \"t\" : \"room_msg\" }} ");
    assert_eq!(ChatFrame::parse(spaced.as_bytes()).unwrap(), frame);
}

#[test]
fn the_largest_room_message_fits_a_frame() {
    // 8 KiB of quotes and backslashes: each doubles under JSON escaping.
    let text: String = "\"\\".repeat(MAX_TEXT_BYTES / 2);
    assert_eq!(text.len(), MAX_TEXT_BYTES);
    let inner = room_message_json(&text);
    assert!(inner.len() > 2 * MAX_TEXT_BYTES);
    let frame = ChatFrame::room_msg(inner.as_bytes()).unwrap();
    assert!(frame.encode().len() <= MAX_FRAME_BYTES);
    assert_eq!(ChatFrame::parse(&frame.encode()).unwrap(), frame);
}

#[test]
fn room_msg_frames_that_break_the_rules_are_refused() {
    let inner = room_message_json("hi");
    // Over the frame limit: the sender learns it before sending.
    let huge = room_message_json(&"x".repeat(MAX_FRAME_BYTES));
    assert!(matches!(
        ChatFrame::room_msg(huge.as_bytes()),
        Err(ChatError::FrameTooLarge(_))
    ));
    for raw in [
        // `msg` twice, `t` twice, an extra member, `msg` missing.
        format!(r#"{{"t":"room_msg","msg":{inner},"msg":{inner}}}"#),
        format!(r#"{{"t":"room_msg","t":"room_msg","msg":{inner}}}"#),
        format!(r#"{{"t":"room_msg","msg":{inner},"extra":1}}"#),
        r#"{"t":"room_msg"}"#.to_owned(),
        // `msg` not an object.
        r#"{"t":"room_msg","msg":"{}"}"#.to_owned(),
        r#"{"t":"room_msg","msg":[1]}"#.to_owned(),
        r#"{"t":"room_msg","msg":null}"#.to_owned(),
        // `msg` not JSON.
        r#"{"t":"room_msg","msg":{"a":}}"#.to_owned(),
    ] {
        assert!(
            matches!(
                ChatFrame::parse(raw.as_bytes()),
                Err(ChatError::Malformed(_))
            ),
            "{raw} gave {:?}",
            ChatFrame::parse(raw.as_bytes())
        );
    }
    assert!(matches!(
        ChatFrame::parse(b"{\"t\":\"room_msg\",\"msg\":{\"a\":\"\xff\"}}"),
        Err(ChatError::Malformed(_))
    ));
    for bad in [&b"[1]"[..], b"\"x\"", b"{", b"", b"{} {}"] {
        assert!(matches!(
            ChatFrame::room_msg(bad),
            Err(ChatError::Malformed(_))
        ));
    }
}

proptest! {
    /// Whatever object is carried comes out byte for byte, and the frame parses back.
    #[test]
    fn any_room_message_round_trips(text in "\\PC{0,300}", seq in any::<u64>()) {
        let inner = serde_json::json!({"seq": seq, "text": text}).to_string();
        let frame = ChatFrame::room_msg(inner.as_bytes()).unwrap();
        let back = ChatFrame::parse(&frame.encode()).unwrap();
        match &back {
            ChatFrame::RoomMsg { msg } => prop_assert_eq!(msg.as_bytes(), inner.as_bytes()),
            other => prop_assert!(false, "{:?}", other),
        }
        prop_assert_eq!(back, frame);
    }

    /// Arbitrary bytes in the `msg` slot never panic the parser.
    #[test]
    fn room_msg_parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut raw = br#"{"t":"room_msg","msg":"#.to_vec();
        raw.extend_from_slice(&bytes);
        raw.push(b'}');
        let _ = ChatFrame::parse(&raw);
        let _ = ChatFrame::room_msg(&bytes);
    }
}
