use super::*;
use proptest::prelude::*;

/// The sizes the video issue names, and the smallest one.
const SIZES: [(usize, usize); 4] = [(1280, 720), (640, 480), (320, 240), (176, 144)];

/// A plane of `stride * height` bytes of mid-grey texture, as if a picture were underneath.
fn plane(width: usize, height: usize, stride: usize) -> Vec<u8> {
    (0..stride * height)
        .map(|i| {
            if i % stride < width {
                (96 + i * 31 % 64) as u8
            } else {
                0
            }
        })
        .collect()
}

fn written(width: usize, height: usize, stride: usize, marker: Marker) -> Vec<u8> {
    let mut y = plane(width, height, stride);
    write_marker(&mut y, width, height, stride, marker).unwrap();
    y
}

#[test]
fn cell_sizes_follow_the_picture() {
    assert_eq!(cell_size(176, 144), Some(8));
    assert_eq!(cell_size(320, 240), Some(8));
    assert_eq!(cell_size(640, 480), Some(16));
    assert_eq!(cell_size(640, 360), Some(8));
    assert_eq!(cell_size(1280, 720), Some(24));
    assert_eq!(cell_size(1920, 1080), Some(32));
    assert_eq!(cell_size(175, 144), None);
    assert_eq!(cell_size(176, 143), None);
    assert_eq!(strip_height(1280, 720), 120);
    assert_eq!(strip_height(100, 100), 0);
    for (w, h) in SIZES {
        let s = cell_size(w, h).unwrap();
        assert!(GRID_COLS * s <= w && GRID_ROWS * s <= h / 3, "{w}x{h}");
    }
}

#[test]
fn round_trip_at_the_named_sizes() {
    for (w, h) in SIZES {
        let marker = Marker {
            frame: 0xdead_beef,
            capture_us: 0x0000_8123_4567_89ab,
        };
        let y = written(w, h, w, marker);
        assert_eq!(read_marker(&y, w, h, w), Ok(marker), "{w}x{h}");
    }
}

#[test]
fn too_small_and_bad_planes_are_typed_errors() {
    let y = vec![0u8; 176 * 144];
    assert_eq!(
        read_marker(&y, 174, 144, 176),
        Err(MarkerError::TooSmall {
            width: 174,
            height: 144
        })
    );
    assert!(matches!(
        read_marker(&y, 176, 100, 176),
        Err(MarkerError::TooSmall { .. })
    ));
    // Plane one byte short, stride below width, absurd stride: errors, no panic.
    assert!(matches!(
        read_marker(&y[1..], 176, 144, 176),
        Err(MarkerError::BadPlane { .. })
    ));
    assert!(matches!(
        read_marker(&y, 176, 144, 175),
        Err(MarkerError::BadPlane { .. })
    ));
    assert!(matches!(
        read_marker(&y, 176, 144, usize::MAX),
        Err(MarkerError::BadPlane { .. })
    ));
    let mut y = y;
    assert!(matches!(
        write_marker(
            &mut y,
            176,
            144,
            200,
            Marker {
                frame: 1,
                capture_us: 1
            }
        ),
        Err(MarkerError::BadPlane { .. })
    ));
    let msg = MarkerError::TooSmall {
        width: 1,
        height: 2,
    }
    .to_string();
    assert!(msg.contains("176x144"), "{msg}");
}

#[test]
fn pictures_without_a_marker_are_not_found() {
    let (w, h) = (320, 240);
    for fill in [0u8, 16, 128, 235, 255] {
        assert_eq!(
            read_marker(&vec![fill; w * h], w, h, w),
            Err(MarkerError::NotFound),
            "fill {fill}"
        );
    }
    assert_eq!(
        read_marker(&plane(w, h, w), w, h, w),
        Err(MarkerError::NotFound)
    );
}

/// Overwrites cell `index` of the grid (row-major over all 22 x 5 cells) with `luma`.
fn paint_cell(y: &mut [u8], width: usize, height: usize, index: usize, luma: u8) {
    let s = cell_size(width, height).unwrap();
    let (r, c) = (index / GRID_COLS, index % GRID_COLS);
    for py in r * s..(r + 1) * s {
        y[py * width + c * s..py * width + (c + 1) * s].fill(luma);
    }
}

#[test]
fn any_flipped_message_cell_is_a_checksum_error_not_a_wrong_number() {
    let (w, h) = (320, 240);
    let marker = Marker {
        frame: 4321,
        capture_us: 1_764_000_000_123_456,
    };
    let clean = written(w, h, w, marker);
    let mut message_cells = 0;
    for index in 0..GRID_COLS * GRID_ROWS {
        let (r, c) = (index / GRID_COLS, index % GRID_COLS);
        let guard = c == 0 || c == GRID_COLS - 1;
        let mut y = clean.clone();
        let was_white = y[(r * 8 + 4) * w + c * 8 + 4] == WHITE;
        paint_cell(&mut y, w, h, index, if was_white { BLACK } else { WHITE });
        let got = read_marker(&y, w, h, w);
        if guard || r * DATA_COLS + c - 1 < SYNC.len() {
            assert_eq!(got, Err(MarkerError::NotFound), "cell {index}");
        } else {
            message_cells += 1;
            assert!(
                matches!(got, Err(MarkerError::ChecksumMismatch { .. })),
                "cell {index}: {got:?}"
            );
        }
    }
    assert_eq!(message_cells, 96);
}

#[test]
fn a_smudged_marker_region_is_never_read_as_another_number() {
    // Grey blotches over runs of message cells (as a decoder conceals a lost slice): every
    // outcome is an error or the true marker, never another one.
    let (w, h) = (640, 480);
    let marker = Marker {
        frame: 77,
        capture_us: 123_456_789,
    };
    let clean = written(w, h, w, marker);
    let mut errors = 0;
    for start in 1..GRID_COLS * GRID_ROWS {
        for len in [2, 3, 5, 8] {
            let mut y = clean.clone();
            for index in start..(start + len).min(GRID_COLS * GRID_ROWS) {
                paint_cell(&mut y, w, h, index, 200);
            }
            match read_marker(&y, w, h, w) {
                Ok(m) => assert_eq!(m, marker, "cells {start}+{len}"),
                Err(MarkerError::NotFound | MarkerError::ChecksumMismatch { .. }) => errors += 1,
                Err(e) => panic!("unexpected {e}"),
            }
        }
    }
    assert!(errors > 300, "{errors}");
}

#[test]
fn coding_noise_below_half_the_contrast_does_not_flip_bits() {
    let (w, h) = (320, 240);
    let marker = Marker {
        frame: 0x5555_aaaa,
        capture_us: CAPTURE_MASK,
    };
    let mut y = written(w, h, w, marker);
    // +-80 of deterministic noise everywhere, and cell edges smeared to grey as deblocking does.
    for (i, p) in y.iter_mut().enumerate() {
        let noise = (i * 7919 % 161) as i32 - 80;
        *p = (i32::from(*p) + noise).clamp(0, 255) as u8;
        let (x, row) = (i % w, i / w);
        if row < 40 && (x % 8 == 0 || row % 8 == 0) {
            *p = 128;
        }
    }
    assert_eq!(read_marker(&y, w, h, w), Ok(marker));
}

#[test]
fn capture_time_keeps_48_bits_and_ages_across_the_wrap() {
    let m = Marker {
        frame: 1,
        capture_us: (7 << 48) | 42,
    };
    assert_eq!(m.on_the_wire().capture_us, 42);
    let y = written(176, 144, 176, m);
    assert_eq!(read_marker(&y, 176, 144, 176), Ok(m.on_the_wire()));
    let late = Marker {
        frame: 1,
        capture_us: CAPTURE_MASK - 10,
    };
    assert_eq!(late.age_us(5), 16);
    assert_eq!(late.age_us(CAPTURE_MASK), 10);
    assert_eq!(m.on_the_wire().age_us(1_042), 1_000);
}

/// The frame and time of the test vector in `docs/protocol.md`.
const VECTOR: Marker = Marker {
    frame: 1234,
    capture_us: 1_764_000_000_123_456,
};

fn bits_text(bits: &[bool]) -> String {
    bits.iter().map(|&b| if b { '1' } else { '0' }).collect()
}

/// The grid of [`VECTOR`] as `docs/protocol.md` prints it: one line per cell row, `1` white.
fn grid_text(marker: Marker) -> String {
    grid(marker)
        .iter()
        .map(|row| bits_text(row) + "\n")
        .collect()
}

#[test]
fn protocol_doc_test_vector() {
    let doc = include_str!("../../../../docs/protocol.md");
    let section = doc
        .split("## 20. Video test pattern marker")
        .nth(1)
        .expect("docs/protocol.md has the marker section");
    let hex: String = VECTOR
        .message()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    // Also computed independently with Python (CRC-16/CCITT-FALSE, check value 0x29b1).
    assert_eq!(hex, "000004d244594164224069e5");
    assert_eq!(CRC16.checksum(b"123456789"), 0x29b1);
    assert!(
        section.contains(&format!("`{hex}`")),
        "doc lacks message {hex}"
    );
    let grid = grid_text(VECTOR);
    assert!(section.contains(&grid), "doc lacks the grid:\n{grid}");
    let bits = bits_text(&VECTOR.cell_bits());
    assert!(bits.starts_with("1010"));
    // The grid written into a picture reads back as the vector.
    let y = written(320, 240, 320, VECTOR);
    assert_eq!(read_marker(&y, 320, 240, 320), Ok(VECTOR.on_the_wire()));
}

proptest! {
    #[test]
    fn round_trip_any_frame_time_size_and_stride(
        frame in any::<u32>(),
        capture_us in any::<u64>(),
        width in 176usize..1400,
        height in 144usize..800,
        pad in 0usize..64,
    ) {
        let marker = Marker { frame, capture_us };
        let stride = width + pad;
        let y = written(width, height, stride, marker);
        prop_assert_eq!(read_marker(&y, width, height, stride), Ok(marker.on_the_wire()));
    }

    #[test]
    fn reading_arbitrary_bytes_never_panics(
        bytes in proptest::collection::vec(any::<u8>(), 0..60_000),
        width in 0usize..400,
        height in 0usize..300,
        stride in 0usize..500,
    ) {
        let _ = read_marker(&bytes, width, height, stride);
    }
}
