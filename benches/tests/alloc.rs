//! Heap allocations per frame through our codec API, counted by a global allocator.
//!
//! Opus encode, decode, FEC recovery and concealment must not allocate in steady state (asserted).
//! H.264 allocations are reported, not asserted: openh264 manages its own buffers.
//!
//! Run: `cargo test -p benches --test alloc -- --nocapture`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

use media::codec::h264::{H264Config, H264Decoder, H264Encoder, I420Frame};
use media::codec::opus::{
    EncoderConfig, OpusDecoder, OpusEncoder, FRAME_SAMPLES, MAX_PACKET_BYTES,
};
use media::codec::pattern::TestPattern;

/// Counts allocations made by threads that opted in, passing everything to the system allocator.
struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static COUNT_THIS_THREAD: Cell<bool> = const { Cell::new(false) };
}

fn note_allocation() {
    if COUNT_THIS_THREAD.try_with(Cell::get).unwrap_or(false) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: every call is forwarded unchanged to `System`; counting touches only an atomic and a
// const-initialised thread-local `Cell`, neither of which allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation();
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made by this thread while running `f`.
fn count<R>(f: impl FnOnce() -> R) -> (usize, R) {
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    COUNT_THIS_THREAD.with(|c| c.set(true));
    let r = f();
    COUNT_THIS_THREAD.with(|c| c.set(false));
    (ALLOCATIONS.load(Ordering::Relaxed) - before, r)
}

fn tone(n: usize) -> [i16; FRAME_SAMPLES] {
    let mut pcm = [0i16; FRAME_SAMPLES];
    for (i, s) in pcm.iter_mut().enumerate() {
        let t = (n * FRAME_SAMPLES + i) as f32 / 48_000.0;
        *s = ((t * 2.0 * std::f32::consts::PI * (300.0 + 20.0 * (n % 9) as f32)).sin() * 8000.0)
            as i16;
    }
    pcm
}

#[test]
fn opus_steady_state_does_not_allocate() {
    let mut enc = OpusEncoder::new(&EncoderConfig::default()).expect("encoder");
    let mut dec = OpusDecoder::new().expect("decoder");
    let frames: Vec<[i16; FRAME_SAMPLES]> = (0..100).map(tone).collect();
    let mut packet = [0u8; MAX_PACKET_BYTES];
    let mut next = [0u8; MAX_PACKET_BYTES];
    let mut out = [0i16; FRAME_SAMPLES];
    // Warm up.
    for pcm in &frames[..10] {
        let n = enc.encode(pcm, &mut packet).expect("encode");
        dec.decode(&packet[..n], &mut out).expect("decode");
    }
    let (allocations, frames_done) = count(|| {
        let mut done = 0;
        for pair in frames[10..].chunks_exact(2) {
            let n = enc.encode(&pair[0], &mut packet).expect("encode");
            dec.decode(&packet[..n], &mut out).expect("decode");
            // Second frame "lost": recover it from the next packet's FEC, then conceal one.
            let m = enc.encode(&pair[1], &mut next).expect("encode");
            dec.decode_fec(&next[..m], &mut out).expect("fec");
            dec.decode(&next[..m], &mut out).expect("decode");
            dec.conceal(&mut out).expect("conceal");
            let level = media::codec::opus::rms_dbfs(&out);
            assert!(level.is_finite());
            done += 2;
        }
        done
    });
    println!(
        "opus: {allocations} allocations over {frames_done} frames (encode + decode + FEC + PLC)"
    );
    assert_eq!(
        allocations, 0,
        "Opus path allocated {allocations} times in steady state"
    );
}

#[test]
fn h264_allocations_are_reported() {
    let (w, h) = (640, 480);
    let mut enc = H264Encoder::new(H264Config {
        width: w,
        height: h,
        ..H264Config::default()
    })
    .expect("encoder");
    let mut dec = H264Decoder::new().expect("decoder");
    let mut pattern = TestPattern::new(w, h);
    let mut frame = I420Frame::black(w, h);
    let mut au = Vec::with_capacity(1 << 20);
    let mut picture = I420Frame::black(w, h);
    for _ in 0..5 {
        pattern.next_into(&mut frame);
        enc.encode_into(&frame, false, &mut au).expect("encode");
        dec.decode_into(&au, &mut picture).expect("decode");
    }
    let frames = 30;
    let (mut enc_allocs, mut dec_allocs) = (0, 0);
    for _ in 0..frames {
        pattern.next_into(&mut frame);
        enc_allocs += count(|| enc.encode_into(&frame, false, &mut au).expect("encode")).0;
        dec_allocs += count(|| dec.decode_into(&au, &mut picture).expect("decode")).0;
    }
    println!(
        "h264 {w}x{h}: {:.2} allocations per encoded frame, {:.2} per decoded frame (not asserted)",
        enc_allocs as f64 / f64::from(frames),
        dec_allocs as f64 / f64::from(frames)
    );
}
