//! Sharing the estimate between audio and video, and what video should do with its share.
//! Audio takes its fixed rate first (it is small and a call without it is no call); video gets
//! the rest, and steps down in frame size, then frame rate, when the rest is too little.

use super::Bitrate;

/// Below this video rate no picture is worth sending: pause video, keep audio.
pub const VIDEO_PAUSE_BELOW: Bitrate = Bitrate::from_kbps(20);

/// The video rate left once audio has its share (zero when the estimate does not even cover
/// audio: audio is never starved by video).
pub fn split(target: Bitrate, audio: Bitrate) -> Bitrate {
    target.saturating_sub(audio)
}

/// A frame size and rate for the encoder: plain data the engine applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoRung {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Frames per second.
    pub fps: u32,
}

/// Standard sizes, largest first, with the rate each needs at 30 fps to look acceptable with
/// H.264 constrained baseline (rule of thumb: below ~150 kbit/s 640x480 turns to mush).
const LADDER: [(u32, u32, Bitrate); 4] = [
    (1920, 1080, Bitrate::from_kbps(1500)),
    (1280, 720, Bitrate::from_kbps(600)),
    (640, 480, Bitrate::from_kbps(150)),
    (320, 240, Bitrate::from_kbps(80)),
];

/// The rate a size needs at 30 fps: that of the smallest ladder size at least as large.
fn needed(width: u32, height: u32) -> Bitrate {
    let pixels = u64::from(width) * u64::from(height);
    LADDER
        .iter()
        .rev()
        .find(|(w, h, _)| u64::from(*w) * u64::from(*h) >= pixels)
        .map_or(LADDER[0].2, |&(_, _, r)| r)
}

/// What to send with `video` bit/s when the user asked for `wanted`: the wanted size if the
/// rate carries it, else the largest smaller ladder size that it carries; at the smallest size
/// the frame rate drops in proportion (at 320x240@30 asked, 7 fps just above
/// [`VIDEO_PAUSE_BELOW`]); `None` means pause video.
pub fn video_rung(video: Bitrate, wanted: VideoRung) -> Option<VideoRung> {
    if video < VIDEO_PAUSE_BELOW || wanted.fps == 0 || wanted.width == 0 || wanted.height == 0 {
        return None;
    }
    // Needed rates are for 30 fps; a lower requested rate needs proportionally less.
    let scale = |r: Bitrate| Bitrate::from_bps(r.bps() * u64::from(wanted.fps.min(30)) / 30);
    if video >= scale(needed(wanted.width, wanted.height)) {
        return Some(wanted);
    }
    let wanted_pixels = u64::from(wanted.width) * u64::from(wanted.height);
    let smaller = LADDER
        .iter()
        .filter(|(w, h, _)| u64::from(*w) * u64::from(*h) < wanted_pixels);
    let mut last = None;
    for &(width, height, rate) in smaller {
        if video >= scale(rate) {
            return Some(VideoRung {
                width,
                height,
                fps: wanted.fps,
            });
        }
        last = Some((width, height, rate));
    }
    // Nothing fits at full rate: smallest size (or the wanted one if it is smaller still),
    // fewer frames.
    let (width, height, rate) = last.unwrap_or((
        wanted.width,
        wanted.height,
        needed(wanted.width, wanted.height),
    ));
    let fps = (u64::from(wanted.fps) * video.bps() / scale(rate).bps().max(1)) as u32;
    Some(VideoRung {
        width,
        height,
        fps: fps.clamp(1, wanted.fps),
    })
}
