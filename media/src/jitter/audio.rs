//! Adaptive audio jitter buffer (NetEq-like).
