//! The public API as the `call` CLI and the media session use it: specs parsed from
//! command-line text, opened into boxed trait objects, moved to other threads.

use native::{
    open_sink, open_source, open_video_sink, open_video_source, AudioInSpec, AudioOutSpec,
    AudioSink, AudioSource, VideoInSpec, VideoOutSpec, VideoSink, FRAME_SAMPLES,
};

fn assert_send<T: Send>(_: &T) {}

#[test]
fn sine_to_wav_on_worker_threads() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("call.wav");
    let in_spec: AudioInSpec = "sine:440".parse().unwrap();
    let out_spec: AudioOutSpec = out.to_str().unwrap().parse().unwrap();
    let mut source: Box<dyn AudioSource> = open_source(&in_spec).unwrap();
    let mut sink: Box<dyn AudioSink> = open_sink(&out_spec).unwrap();
    assert_send(&source);
    assert_send(&sink);
    let worker = std::thread::spawn(move || {
        let mut frame = vec![0i16; FRAME_SAMPLES];
        for _ in 0..50 {
            assert!(source.read_frame(&mut frame).unwrap());
            sink.write_frame(&frame).unwrap();
        }
        sink.finish().unwrap();
    });
    worker.join().unwrap();

    let mut back = open_source(&format!("file:{}", out.display()).parse().unwrap()).unwrap();
    let mut frame = vec![0i16; FRAME_SAMPLES];
    let mut frames = 0;
    while back.read_frame(&mut frame).unwrap() {
        frames += 1;
    }
    assert_eq!(frames, 50);
}

#[test]
fn silence_and_null() {
    let mut source = open_source(&"silence".parse().unwrap()).unwrap();
    let mut sink = open_sink(&"null".parse().unwrap()).unwrap();
    let mut frame = vec![1i16; FRAME_SAMPLES];
    assert!(source.read_frame(&mut frame).unwrap());
    assert!(frame.iter().all(|&s| s == 0));
    sink.write_frame(&frame).unwrap();
    sink.finish().unwrap();
    assert_eq!(sink.describe(), "null (discarding audio)");
}

#[test]
fn pattern_video_on_a_worker_thread() {
    let spec: VideoInSpec = "pattern".parse().unwrap();
    let mut source = open_video_source(&spec, 320, 240, 30).unwrap();
    let worker = std::thread::spawn(move || {
        let a = source.next_frame().unwrap().unwrap();
        let b = source.next_frame().unwrap().unwrap();
        assert_eq!(
            (a.width, a.height, a.y.len(), a.u.len()),
            (320, 240, 320 * 240, 160 * 120)
        );
        assert_ne!(a, b);
    });
    worker.join().unwrap();
}

#[test]
fn pattern_into_a_y4m_sink_on_a_worker_thread() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("remote.y4m");
    let mut source = open_video_source(&"pattern".parse().unwrap(), 320, 240, 30).unwrap();
    let out_spec: VideoOutSpec = out.to_str().unwrap().parse().unwrap();
    let mut sink: Box<dyn VideoSink> = open_video_sink(&out_spec, 320, 240, 30).unwrap();
    assert_send(&sink);
    let worker = std::thread::spawn(move || {
        for _ in 0..3 {
            let frame = source.next_frame().unwrap().unwrap();
            sink.show(&frame, std::time::Instant::now()).unwrap();
        }
        sink.finish().unwrap();
        sink.counters()
    });
    assert_eq!(worker.join().unwrap().shown, 3);
    let mut back = open_video_source(&VideoInSpec::File(out), 320, 240, 30).unwrap();
    let mut frames = 0;
    while back.next_frame().unwrap().is_some() {
        frames += 1;
    }
    assert_eq!(frames, 3);
}
