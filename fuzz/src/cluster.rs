//! The message one `call-signaling` instance publishes on another's Redis channel
//! (`signaling::server::cluster::message`): Redis is shared infrastructure, so whatever appears
//! on the channel is parsed with a size limit and typed errors.

use signaling::server::cluster::message::{ClusterMessage, MAX_MESSAGE_BYTES};

/// A channel message: parsed messages re-encode to text that parses to the same message;
/// nothing over the size limit is accepted.
pub fn cluster_message(data: &[u8]) {
    let Ok(message) = ClusterMessage::parse(data) else {
        return;
    };
    assert!(
        data.len() <= MAX_MESSAGE_BYTES,
        "{} bytes accepted",
        data.len()
    );
    let text = message.encode();
    let again = ClusterMessage::parse(text.as_bytes()).expect("an encoded message parses");
    assert_eq!(again, message, "round trip through {text:?}");
}
