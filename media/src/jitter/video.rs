//! H.264 RTP frame assembly with NACK/PLI.
