//! The test-pattern marker through the real openh264 encoder and decoder at the sizes and
//! bitrates of a video call: every decoded picture's frame number and capture time read back
//! exactly, and a damaged marker is an error, never a wrong number.

use media::codec::h264::{H264Config, H264Decoder, H264Encoder, I420Frame};
use media::codec::marker::{read_marker, strip_height, Marker, MarkerError};
use media::codec::pattern::TestPattern;

/// Frames per run: two seconds at 30 fps.
const FRAMES: u32 = 60;

/// A capture clock that is not a multiple of anything: 33 333 µs steps from a 2025 unix time
/// (plus a little jitter), so every bit of the 48-bit field gets exercised.
fn capture_us(n: u32) -> u64 {
    1_764_000_000_000_000 + u64::from(n) * 33_333 + u64::from(n * 7919 % 97)
}

/// Encodes `FRAMES` pattern frames at `bitrate_bps`, decodes them, and checks each decoded
/// picture's marker against the frame that went in. Returns how many pictures were decoded.
fn through_h264(width: usize, height: usize, bitrate_bps: u32) -> usize {
    let mut enc = H264Encoder::new(H264Config {
        width,
        height,
        bitrate_bps,
        fps: 30.0,
    })
    .unwrap();
    let mut dec = H264Decoder::new().unwrap();
    let mut pattern = TestPattern::new(width, height);
    let mut frame = I420Frame::black(width, height);
    let mut au = Vec::new();
    let mut decoded = 0;
    for n in 0..FRAMES {
        pattern.next_into_at(&mut frame, capture_us(n));
        enc.encode_into(&frame, false, &mut au).unwrap();
        // Rate control may skip a frame; a skipped frame has nothing to decode.
        let Some(view) = dec.decode_view(&au).unwrap() else {
            continue;
        };
        decoded += 1;
        let got = read_marker(view.y(), view.width(), view.height(), view.strides().0);
        let want = Marker {
            frame: n,
            capture_us: capture_us(n),
        }
        .on_the_wire();
        assert_eq!(got, Ok(want), "{width}x{height} frame {n}");
    }
    assert!(
        decoded as u32 >= FRAMES * 9 / 10,
        "{width}x{height}: only {decoded} of {FRAMES} frames decoded"
    );
    decoded
}

#[test]
fn survives_h264_at_320x240_150_kbps() {
    through_h264(320, 240, 150_000);
}

#[test]
fn survives_h264_at_640x480_500_kbps() {
    through_h264(640, 480, 500_000);
}

#[test]
fn survives_h264_at_1280x720_1500_kbps() {
    through_h264(1280, 720, 1_500_000);
}

#[test]
fn survives_h264_at_176x144_100_kbps() {
    through_h264(176, 144, 100_000);
}

#[test]
fn damaged_marker_after_decoding_is_a_checksum_error_not_a_wrong_number() {
    let (w, h) = (320, 240);
    let mut enc = H264Encoder::new(H264Config {
        width: w,
        height: h,
        bitrate_bps: 150_000,
        fps: 30.0,
    })
    .unwrap();
    let mut dec = H264Decoder::new().unwrap();
    let mut pattern = TestPattern::new(w, h);
    let frame = pattern.next_frame_at(capture_us(0));
    let au = enc.encode(&frame, true).unwrap().data;
    let mut picture = dec.decode(&au).unwrap().unwrap();
    let s = 8;
    assert_eq!(strip_height(w, h), 5 * s);
    // Invert one message cell (row 2, column 7) of the decoded picture.
    let (y, _, _) = picture.planes_mut();
    for py in 2 * s..3 * s {
        for px in &mut y[py * w + 7 * s..py * w + 8 * s] {
            *px = 255 - *px;
        }
    }
    assert!(matches!(
        read_marker(picture.y(), w, h, w),
        Err(MarkerError::ChecksumMismatch { .. })
    ));
    // A picture that is not the pattern has no marker.
    let mut other = I420Frame::black(w, h);
    other.planes_mut().0.fill(120);
    let au = enc.encode(&other, true).unwrap().data;
    let picture = dec.decode(&au).unwrap().unwrap();
    assert_eq!(
        read_marker(picture.y(), w, h, w),
        Err(MarkerError::NotFound)
    );
}
