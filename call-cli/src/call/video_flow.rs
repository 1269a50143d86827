//! Which way video flows in a call: what each side asks for, read from the signed offer and
//! answer. The rule (README, "Video"): a side sends video only if it asked for a source and the
//! other side receives; a listener that did not ask for video still receives the caller's video
//! (counted in the stats, shown nowhere unless `--video-out` says where), so only the caller's
//! choice decides whether a call carries video at all.

use media::session::{VideoConfig, VideoDirection};

use native::VideoInSpec;

use super::VideoOptions;

/// Which way video flows for one side of a call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VideoFlow {
    /// This side sends video.
    pub sends: bool,
    /// This side receives video.
    pub receives: bool,
}

impl VideoFlow {
    /// No video either way.
    pub const NONE: VideoFlow = VideoFlow {
        sends: false,
        receives: false,
    };

    /// What a side with these options asks for (nothing without options).
    pub fn asked(opts: Option<&VideoOptions>) -> VideoFlow {
        opts.map_or(Self::NONE, |v| VideoFlow {
            sends: sends(v),
            receives: v.output.is_some(),
        })
    }

    /// Whether video flows at all.
    pub fn any(self) -> bool {
        self.sends || self.receives
    }

    /// The session's video m-section for this flow; `None` for no video.
    pub fn session_config(self) -> Option<VideoConfig> {
        let direction = match (self.sends, self.receives) {
            (true, true) => VideoDirection::SendRecv,
            (true, false) => VideoDirection::SendOnly,
            (false, true) => VideoDirection::RecvOnly,
            (false, false) => return None,
        };
        Some(VideoConfig {
            direction,
            ..VideoConfig::default()
        })
    }

    /// The flow as the other side's SDP allows it: we send only what it receives and receive
    /// only what it sends.
    pub fn agreed_with(self, remote_sdp: &str) -> VideoFlow {
        let remote = sdp_video_flow(remote_sdp);
        VideoFlow {
            sends: self.sends && remote.receives,
            receives: self.receives && remote.sends,
        }
    }

    /// The listener's flow for an offer: it sends if it asked for a source and the caller
    /// receives; it receives whatever the caller sends unless it asked for send-only video.
    pub fn answering(opts: Option<&VideoOptions>, offer_sdp: &str) -> VideoFlow {
        let offer = sdp_video_flow(offer_sdp);
        VideoFlow {
            sends: opts.is_some_and(sends) && offer.receives,
            receives: offer.sends && opts.is_none_or(|v| v.output.is_some()),
        }
    }
}

/// Whether `v` names a video source (`none` is receive only).
fn sends(v: &VideoOptions) -> bool {
    v.input.as_ref().is_some_and(|i| *i != VideoInSpec::None)
}

/// What the first video m-section of an SDP says its author does (RFC 3264 §5.1: no
/// direction attribute means sendrecv; port 0 means rejected).
pub fn sdp_video_flow(sdp: &str) -> VideoFlow {
    let mut in_video = false;
    let mut flow = None;
    for line in sdp.lines().map(str::trim) {
        if let Some(m) = line.strip_prefix("m=") {
            if in_video {
                break;
            }
            in_video = m.starts_with("video ");
            if in_video {
                if m.split_whitespace().nth(1) == Some("0") {
                    return VideoFlow::NONE;
                }
                flow = Some(VideoFlow {
                    sends: true,
                    receives: true,
                });
            }
            continue;
        }
        if !in_video {
            continue;
        }
        let direction = match line {
            "a=sendrecv" => (true, true),
            "a=sendonly" => (true, false),
            "a=recvonly" => (false, true),
            "a=inactive" => (false, false),
            _ => continue,
        };
        flow = Some(VideoFlow {
            sends: direction.0,
            receives: direction.1,
        });
    }
    flow.unwrap_or(VideoFlow::NONE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sdp(video: &str) -> String {
        format!("v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=sendrecv\r\n{video}m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n")
    }

    fn flow(sends: bool, receives: bool) -> VideoFlow {
        VideoFlow { sends, receives }
    }

    #[test]
    fn the_video_direction_is_read_from_the_video_section_only() {
        assert_eq!(sdp_video_flow(&sdp("")), VideoFlow::NONE);
        let v = |dir: &str| sdp(&format!("m=video 9 UDP/TLS/RTP/SAVPF 102\r\n{dir}"));
        assert_eq!(sdp_video_flow(&v("a=sendrecv\r\n")), flow(true, true));
        assert_eq!(sdp_video_flow(&v("a=sendonly\r\n")), flow(true, false));
        assert_eq!(sdp_video_flow(&v("a=recvonly\r\n")), flow(false, true));
        assert_eq!(sdp_video_flow(&v("a=inactive\r\n")), VideoFlow::NONE);
        assert_eq!(sdp_video_flow(&v("")), flow(true, true));
        let rejected = sdp("m=video 0 UDP/TLS/RTP/SAVPF 102\r\na=sendrecv\r\n");
        assert_eq!(sdp_video_flow(&rejected), VideoFlow::NONE);
    }

    #[test]
    fn a_listener_without_video_options_receives_only() {
        let offer = sdp("m=video 9 UDP/TLS/RTP/SAVPF 102\r\na=sendrecv\r\n");
        assert_eq!(VideoFlow::answering(None, &offer), flow(false, true));
        let send_only = VideoOptions {
            output: None,
            ..VideoOptions::default()
        };
        assert_eq!(
            VideoFlow::answering(Some(&send_only), &offer),
            flow(true, false)
        );
        let recv_only_offer = sdp("m=video 9 UDP/TLS/RTP/SAVPF 102\r\na=recvonly\r\n");
        assert_eq!(
            VideoFlow::answering(Some(&VideoOptions::default()), &recv_only_offer),
            flow(true, false)
        );
        assert_eq!(VideoFlow::answering(None, &sdp("")), VideoFlow::NONE);
    }

    #[test]
    fn the_caller_keeps_what_the_answer_allows() {
        let both = flow(true, true);
        let answer = sdp("m=video 9 UDP/TLS/RTP/SAVPF 102\r\na=recvonly\r\n");
        assert_eq!(both.agreed_with(&answer), flow(true, false));
        assert_eq!(both.agreed_with(&sdp("")), VideoFlow::NONE);
        assert_eq!(
            both.session_config().map(|c| c.direction),
            Some(VideoDirection::SendRecv)
        );
        assert_eq!(VideoFlow::NONE.session_config(), None);
    }
}
