//! H.264 encoder/decoder on openh264.
