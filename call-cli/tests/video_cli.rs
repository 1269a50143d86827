//! `call dial --video` and `call listen --video-out FILE.y4m` as two processes over a real
//! signaling server on loopback: the listener's file holds the dialer's pattern frames, and
//! `--stats-json` carries the video figures under their W3C names.

mod support;

use std::fs;
use std::path::PathBuf;

use support::*;

#[test]
fn a_video_call_between_two_processes_fills_the_y4m_file() {
    let server = TestServer::start();
    let url = server.url();
    let (a, b) = (tempdir(), tempdir());
    new_id(a.path());
    let id_b = new_id(b.path());
    let seen: PathBuf = b.path().join("seen.y4m");
    let stats: PathBuf = a.path().join("stats.json");

    let before = server.connected_clients();
    let mut listener = Running::spawn(
        call_in(b.path())
            .args(["listen", "--auto-accept", "--audio-in", "silence"])
            .args(["--audio-out", "null", "--video-in", "none", "--video-out"])
            .arg(&seen)
            .args(["--video-size", "320x240"])
            .args(conn_args(&url, false)),
        "call listen --video-out FILE.y4m",
    );
    server.wait_for_clients(before + 1, &mut listener);

    let dialer = run(
        call_in(a.path())
            .args([
                "dial",
                &id_b.to_string(),
                "--video",
                "--video-in",
                "pattern",
            ])
            .args(["--video-size", "320x240", "--fps", "15"])
            .args(["--audio-in", "silence", "--audio-out", "null"])
            .args(["--duration", "2", "--stats-json"])
            .arg(&stats)
            .args(conn_args(&url, false)),
        "call dial --video",
    );
    let listener = listener.wait(PROCESS_LIMIT);
    dialer.assert_success("call dial --video");
    listener.assert_success("call listen --video-out");

    let json: serde_json::Value =
        serde_json::from_slice(&fs::read(&stats).expect("stats.json")).expect("stats.json is JSON");
    let sent = &json["video_sent"];
    let frames_sent = sent["framesSent"]
        .as_u64()
        .unwrap_or_else(|| panic!("no video_sent.framesSent: {json}"));
    assert!(
        frames_sent >= 20,
        "15 fps for 2 s sent {frames_sent}: {json}"
    );
    assert_eq!(sent["frameWidth"], 320, "{json}");
    assert_eq!(
        sent["keyFramesEncoded"].as_u64().map(|k| k >= 1),
        Some(true)
    );

    // The Y4M file: a header line, then one `FRAME` + I420 picture per received frame.
    let bytes = fs::read(&seen).expect("the listener wrote its Y4M file");
    let header_end = bytes
        .iter()
        .position(|&b| b == b'\n')
        .expect("a header line");
    let header = String::from_utf8_lossy(&bytes[..header_end]);
    assert!(header.starts_with("YUV4MPEG2 W320 H240"), "{header}");
    let picture = 320 * 240 * 3 / 2 + "FRAME\n".len();
    let frames = (bytes.len() - header_end - 1) / picture;
    assert!(
        frames as u64 * 100 >= frames_sent * 95,
        "the file holds {frames} of the {frames_sent} frames sent"
    );
}
