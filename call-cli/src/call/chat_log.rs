//! Received chat kept for the [`super::CallReport`]: bounded in count and bytes, so a peer that
//! sends chat all call long cannot grow our memory without limit (every message is still shown).

/// Received chat messages kept, at most.
pub const MAX_CHAT_KEPT: usize = 1000;
/// Bytes of received chat kept, at most.
pub const MAX_CHAT_KEPT_BYTES: usize = 256 * 1024;

/// The kept messages, oldest first.
#[derive(Debug, Default)]
pub(crate) struct ChatLog {
    texts: Vec<String>,
    bytes: usize,
    dropped: u64,
}

impl ChatLog {
    /// Keeps `text` if it fits both limits; returns whether it was kept.
    pub(crate) fn push(&mut self, text: String) -> bool {
        if self.texts.len() >= MAX_CHAT_KEPT || self.bytes + text.len() > MAX_CHAT_KEPT_BYTES {
            self.dropped += 1;
            return false;
        }
        self.bytes += text.len();
        self.texts.push(text);
        true
    }

    /// How many messages were not kept.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The kept messages.
    pub(crate) fn into_texts(self) -> Vec<String> {
        self.texts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_at_most_the_count_limit() {
        let mut log = ChatLog::default();
        for i in 0..MAX_CHAT_KEPT + 5 {
            log.push(format!("m{i}"));
        }
        assert_eq!(log.dropped(), 5);
        let texts = log.into_texts();
        assert_eq!(texts.len(), MAX_CHAT_KEPT);
        assert_eq!(texts[0], "m0");
    }

    #[test]
    fn keeps_at_most_the_byte_limit() {
        let mut log = ChatLog::default();
        let big = "x".repeat(MAX_CHAT_KEPT_BYTES / 4 + 1);
        let kept = (0..8).filter(|_| log.push(big.clone())).count();
        assert_eq!(kept, 3);
        assert!(log.push("small".into()), "what still fits is kept");
        let total: usize = log.into_texts().iter().map(String::len).sum();
        assert!(total <= MAX_CHAT_KEPT_BYTES);
    }
}
