//! The webrtc-rs interceptor that notes when each outgoing RTP packet left: it sits below
//! webrtc-rs' TWCC sender in the interceptor chain, so every packet it sees already carries its
//! transport-wide sequence number, and records (sequence number, size, now) in the shared
//! [`SentPacketLog`]. It changes nothing in the packet.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_trait::async_trait;
use webrtc::interceptor::stream_info::StreamInfo;
use webrtc::interceptor::{
    Attributes, Interceptor, InterceptorBuilder, RTCPReader, RTCPWriter, RTPReader, RTPWriter,
};
use webrtc::rtp::packet::Packet;
use webrtc::sdp::extmap::TRANSPORT_CC_URI;
use webrtc::util::MarshalSize;

use super::feedback::SentPacketLog;

/// The shared log, written here and read by the RTCP readers.
pub(crate) type SharedLog = Arc<Mutex<SentPacketLog>>;

/// Builds one [`SendLog`] per peer connection, all writing to the same log.
pub(crate) struct SendLogBuilder {
    pub(crate) log: SharedLog,
}

impl InterceptorBuilder for SendLogBuilder {
    fn build(
        &self,
        _id: &str,
    ) -> Result<Arc<dyn Interceptor + Send + Sync>, webrtc::interceptor::Error> {
        Ok(Arc::new(SendLog {
            log: Arc::clone(&self.log),
        }))
    }
}

struct SendLog {
    log: SharedLog,
}

struct LoggingWriter {
    next: Arc<dyn RTPWriter + Send + Sync>,
    ext_id: u8,
    log: SharedLog,
}

#[async_trait]
impl RTPWriter for LoggingWriter {
    async fn write(
        &self,
        pkt: &Packet,
        a: &Attributes,
    ) -> Result<usize, webrtc::interceptor::Error> {
        if let Some(seq) = transport_seq(pkt, self.ext_id) {
            let size = pkt.marshal_size();
            if let Ok(mut log) = self.log.lock() {
                log.on_sent(seq, size, Instant::now());
            }
        }
        self.next.write(pkt, a).await
    }
}

/// The transport-wide sequence number in extension `id`, if the packet has a well-formed one.
fn transport_seq(pkt: &Packet, id: u8) -> Option<u16> {
    let ext = pkt.header.get_extension(id)?;
    (ext.len() >= 2).then(|| u16::from_be_bytes([ext[0], ext[1]]))
}

#[async_trait]
impl Interceptor for SendLog {
    async fn bind_rtcp_reader(
        &self,
        reader: Arc<dyn RTCPReader + Send + Sync>,
    ) -> Arc<dyn RTCPReader + Send + Sync> {
        reader
    }

    async fn bind_rtcp_writer(
        &self,
        writer: Arc<dyn RTCPWriter + Send + Sync>,
    ) -> Arc<dyn RTCPWriter + Send + Sync> {
        writer
    }

    async fn bind_local_stream(
        &self,
        info: &StreamInfo,
        writer: Arc<dyn RTPWriter + Send + Sync>,
    ) -> Arc<dyn RTPWriter + Send + Sync> {
        let Some(ext) = info
            .rtp_header_extensions
            .iter()
            .find(|e| e.uri == TRANSPORT_CC_URI)
        else {
            // The peer did not negotiate transport-cc: nothing will be numbered.
            return writer;
        };
        let Ok(ext_id) = u8::try_from(ext.id) else {
            return writer;
        };
        Arc::new(LoggingWriter {
            next: writer,
            ext_id,
            log: Arc::clone(&self.log),
        })
    }

    async fn unbind_local_stream(&self, _info: &StreamInfo) {}

    async fn bind_remote_stream(
        &self,
        _info: &StreamInfo,
        reader: Arc<dyn RTPReader + Send + Sync>,
    ) -> Arc<dyn RTPReader + Send + Sync> {
        reader
    }

    async fn unbind_remote_stream(&self, _info: &StreamInfo) {}

    async fn close(&self) -> Result<(), webrtc::interceptor::Error> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use webrtc::rtp::header::Header;

    #[test]
    fn reads_the_big_endian_sequence_number_of_the_extension() {
        let mut pkt = Packet {
            header: Header {
                version: 2,
                ..Default::default()
            },
            payload: bytes::Bytes::from_static(&[1, 2, 3]),
        };
        assert_eq!(transport_seq(&pkt, 5), None);
        pkt.header
            .set_extension(5, bytes::Bytes::from_static(&[0x12, 0x34]))
            .unwrap();
        assert_eq!(transport_seq(&pkt, 5), Some(0x1234));
        assert_eq!(transport_seq(&pkt, 6), None);
    }
}
