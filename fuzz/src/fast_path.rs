//! The server's per-envelope fast path (`signaling::server::send_frame`), fuzzed against the
//! general parser it stands in for: whatever the fast path takes, the general path must take
//! too and turn into the same envelope and the same `deliver` frame, byte for byte (a
//! differential target: the fast path must never accept what the general parser refuses).

use signaling::envelope;
use signaling::protocol::{ClientFrame, ServerFrame, MAX_FRAME_BYTES};
use signaling::server::send_frame::{self, Recipients};

use crate::fixtures::alice_id;

/// A text frame from the connection logged in as Alice.
pub fn send_fast_path(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The session refuses longer frames before either parser sees them.
    if text.len() > MAX_FRAME_BYTES {
        return;
    }
    let me = alice_id();
    let mut recipients = Recipients::default();
    let Some(fast) = send_frame::parse(text, &me, &me.to_string(), &mut recipients) else {
        return;
    };
    let frame = ClientFrame::parse(text)
        .unwrap_or_else(|e| panic!("the fast path took a frame the general parser refuses: {e}"));
    let ClientFrame::Send { envelope } = frame else {
        panic!("the fast path took a frame that is not `send`: {frame:?}");
    };
    let general = envelope::parse_value(&envelope).unwrap_or_else(|e| {
        panic!("the fast path took an envelope the general parser refuses: {e}")
    });
    assert_eq!(
        general, fast.envelope,
        "the two paths read different envelopes"
    );
    assert_eq!(
        ServerFrame::Deliver { envelope: general }.to_json(),
        fast.deliver,
        "the two paths write different deliver frames"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sealed_for_bob;
    use signaling::envelope::EnvelopeKind;

    /// The target checks something only for frames the fast path takes: the seeds must be such.
    #[test]
    fn frames_as_clients_write_them_take_the_fast_path_and_pass() {
        let me = alice_id();
        for kind in EnvelopeKind::ALL {
            let env = sealed_for_bob(kind, b"hello", 3).to_json();
            let text = format!(r#"{{"type":"send","envelope":{env}}}"#);
            let mut recipients = Recipients::default();
            assert!(
                send_frame::parse(&text, &me, &me.to_string(), &mut recipients).is_some(),
                "{text}"
            );
            send_fast_path(text.as_bytes());
        }
    }
}
