//! Targets for the media files `call` reads (`--audio-in FILE.wav`, `--video-in FILE.y4m`):
//! a file from someone else is untrusted input too.

use std::io::Cursor;
use std::path::Path;

use native::video::y4m::{Y4mHeader, Y4mReader, Y4mWriter, MAX_Y4M_DIMENSION, MAX_Y4M_PIXELS};
use native::{AudioSource, WavSource, FRAME_SAMPLES};

/// Frames read per input at most (a looping source never ends by itself).
const MAX_FRAMES: usize = 512;

/// `WavSource::from_reader` on any bytes, once straight and once looping: a source that opens
/// yields 20 ms frames until it says the stream ended, and stays ended.
pub fn wav(data: &[u8]) {
    for looping in [false, true] {
        let reader = Box::new(Cursor::new(data.to_vec()));
        let Ok(mut source) = WavSource::from_reader(reader, Path::new("fuzz.wav"), looping) else {
            return;
        };
        let _ = source.describe();
        let mut frame = [0i16; FRAME_SAMPLES];
        let mut ended = false;
        // A looping source never ends: a few passes over a short file are enough.
        let frames = if looping { 16 } else { MAX_FRAMES };
        for _ in 0..frames {
            match source.read_frame(&mut frame) {
                Ok(true) => assert!(!ended, "a frame after the end"),
                Ok(false) => ended = true,
                Err(_) => break,
            }
        }
    }
}

/// `Y4mReader` on any bytes: a header that parses is within the limits and survives its own
/// `to_line`; frames have the header's size and planes of the right lengths, write back
/// through `Y4mWriter` and read back identical, and scale to another size.
pub fn y4m(data: &[u8]) {
    let Ok(mut reader) = Y4mReader::new(Cursor::new(data)) else {
        return;
    };
    let header = reader.header();
    assert!(header.width > 0 && header.height > 0);
    assert!(header.width <= MAX_Y4M_DIMENSION && header.height <= MAX_Y4M_DIMENSION);
    assert!(u64::from(header.width) * u64::from(header.height) <= MAX_Y4M_PIXELS);
    let line = header.to_line();
    let reparsed = Y4mHeader::parse(line.trim_end().as_bytes()).expect("own header parses");
    assert_eq!(
        (reparsed.width, reparsed.height),
        (header.width, header.height)
    );
    assert_eq!(
        reparsed.frame_rate,
        Some(header.frame_rate.unwrap_or((30, 1)))
    );

    let mut frames = Vec::new();
    for _ in 0..MAX_FRAMES {
        match reader.next_frame() {
            Ok(Some(frame)) => {
                assert_eq!((frame.width, frame.height), (header.width, header.height));
                assert_eq!(
                    frame.y.len() + frame.u.len() + frame.v.len(),
                    header.frame_bytes()
                );
                frames.push(frame);
            }
            Ok(None) | Err(_) => break,
        }
    }
    let mut writer = Y4mWriter::new(Vec::new(), header).expect("writing to memory");
    for frame in &frames {
        writer.write_frame(frame).expect("writing to memory");
    }
    let written = writer.into_inner().expect("writing to memory");
    let mut again = Y4mReader::new(Cursor::new(written)).expect("own file parses");
    for frame in &frames {
        assert_eq!(again.next_frame().ok().flatten().as_ref(), Some(frame));
    }
    assert!(matches!(again.next_frame(), Ok(None)));
    if let Some(frame) = frames.first() {
        let width = 2 + 2 * (data.len() as u32 % 32);
        let height = 2 + 2 * (data.len() as u32 / 32 % 24);
        let scaled = frame.scaled(width, height);
        assert_eq!((scaled.width, scaled.height), (width, height));
    }
}
