//! The one place where text reaches a person's terminal. Peer- and server-supplied strings
//! (chat, reject and hang-up reasons, verification errors that echo attacker JSON, server error
//! messages) could otherwise carry escape sequences that clear the screen, move the cursor or
//! reorder text with bidi controls, and so hide the real caller ID and safety number.
//!
//! [`escape`] turns every such character into a visible escape: C0 controls, DEL and C1 controls
//! (Unicode `Cc`) as `\x1b`, `\n`, `\t`, `\r`; Unicode format characters (`Cf`: bidi embeddings,
//! overrides and isolates U+202A–U+202E and U+2066–U+2069, marks U+200E/U+200F and U+061C,
//! zero-width characters, the BOM, tag characters...) and the line and paragraph separators
//! U+2028/U+2029 as `\u{202e}`. Everything else passes unchanged. [`EscapingWriter`] applies the
//! same rule to log lines.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::{self, Write};

/// Whether `c` must not reach a terminal raw.
pub fn is_unsafe(c: char) -> bool {
    c.is_control() || is_format(c) || matches!(c, '\u{2028}' | '\u{2029}')
}

/// Unicode general category `Cf` (Format), Unicode 15.1. The standard library has no category
/// lookup and the list is short and stable; a character added to `Cf` later would pass raw, so
/// the list errs on the wide side (whole reserved blocks of format characters).
fn is_format(c: char) -> bool {
    matches!(
        u32::from(c),
        0x00AD
            | 0x0600..=0x0605
            | 0x061C
            | 0x06DD
            | 0x070F
            | 0x0890..=0x0891
            | 0x08E2
            | 0x180E
            | 0x200B..=0x200F
            | 0x202A..=0x202E
            | 0x2060..=0x206F
            | 0xFEFF
            | 0xFFF9..=0xFFFB
            | 0x110BD
            | 0x110CD
            | 0x13430..=0x1343F
            | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A
            | 0xE0001
            | 0xE0020..=0xE007F
    )
}

/// `text` with every unsafe character replaced by a visible escape; borrowed when nothing
/// needed escaping.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        push_escaped(&mut out, c);
    }
    Cow::Owned(out)
}

fn push_escaped(out: &mut String, c: char) {
    if !is_unsafe(c) {
        out.push(c);
        return;
    }
    // Writing to a String cannot fail.
    let _ = match c {
        '\n' => write!(out, "\\n"),
        '\r' => write!(out, "\\r"),
        '\t' => write!(out, "\\t"),
        c if u32::from(c) < 0x100 => write!(out, "\\x{:02x}", u32::from(c)),
        c => write!(out, "\\u{{{:x}}}", u32::from(c)),
    };
}

/// A writer for log lines: escapes everything unsafe in what it is given except the line
/// breaks that end records. `tracing` formats a whole event before writing it, so a record is
/// never split inside a character; bytes that are not UTF-8 are written as `\xNN`.
pub struct EscapingWriter<W> {
    inner: W,
}

impl<W: Write> EscapingWriter<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        Self { inner }
    }
}

impl<W: Write> Write for EscapingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut out = String::with_capacity(buf.len());
        for chunk in buf.utf8_chunks() {
            for line in chunk.valid().split_inclusive('\n') {
                let (body, newline) = match line.strip_suffix('\n') {
                    Some(body) => (body, "\n"),
                    None => (line, ""),
                };
                out.push_str(&escape(body));
                out.push_str(newline);
            }
            for b in chunk.invalid() {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
        self.inner.write_all(out.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn escapes_terminal_controls_visibly() {
        assert_eq!(escape("\x1b[2J\x1b[Hhi"), "\\x1b[2J\\x1b[Hhi");
        assert_eq!(escape("a\nb\rc\td"), "a\\nb\\rc\\td");
        assert_eq!(escape("\u{7f}\u{9b}"), "\\x7f\\x9b");
        assert_eq!(
            escape("abc\u{202e}fed\u{2066}\u{200f}\u{61c}"),
            "abc\\u{202e}fed\\u{2066}\\u{200f}\\u{61c}"
        );
        assert_eq!(escape("x\u{2028}y\u{2029}"), "x\\u{2028}y\\u{2029}");
    }

    #[test]
    fn leaves_ordinary_text_alone() {
        for text in [
            "hello",
            "héllo wörld ✓",
            "日本語",
            "emoji 😀",
            "back\\slash",
        ] {
            assert!(matches!(escape(text), Cow::Borrowed(t) if t == text));
        }
    }

    #[test]
    fn the_writer_keeps_record_line_breaks_only() {
        let mut w = EscapingWriter::new(Vec::new());
        w.write_all(b"WARN evil=\x1b[31mred\r\n").unwrap();
        w.write_all(b"bad utf8 \xff\n").unwrap();
        let text = String::from_utf8(w.inner).unwrap();
        assert_eq!(text, "WARN evil=\\x1b[31mred\\r\nbad utf8 \\xff\n");
    }

    proptest! {
        #[test]
        fn escaped_text_never_holds_an_unsafe_character(text in any::<String>()) {
            let out = escape(&text);
            prop_assert!(!out.chars().any(is_unsafe), "{:?}", out);
        }

        #[test]
        fn escaped_text_has_no_bidi_or_control_char(
            parts in proptest::collection::vec(
                prop_oneof![
                    Just('\u{1b}'), Just('\u{7}'), Just('\u{7f}'), Just('\u{85}'), Just('\u{9b}'),
                    Just('\u{200e}'), Just('\u{200f}'), Just('\u{61c}'), Just('\u{2028}'),
                    Just('\u{2029}'), (0x202Au32..=0x202E).prop_map(|c| char::from_u32(c).unwrap()),
                    (0x2066u32..=0x2069).prop_map(|c| char::from_u32(c).unwrap()),
                    any::<char>(),
                ],
                0..64,
            )
        ) {
            let text: String = parts.into_iter().collect();
            let out = escape(&text);
            for c in out.chars() {
                prop_assert!(!c.is_control(), "control {:?} in {:?}", c, out);
                prop_assert!(
                    !matches!(u32::from(c), 0x202A..=0x202E | 0x2066..=0x2069 | 0x200E | 0x200F | 0x061C | 0x2028 | 0x2029),
                    "bidi {:?} in {:?}", c, out
                );
            }
        }

        #[test]
        fn the_writer_output_holds_no_control_but_record_breaks(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let mut w = EscapingWriter::new(Vec::new());
            w.write_all(&bytes).unwrap();
            let text = String::from_utf8(w.inner).unwrap();
            prop_assert!(!text.chars().any(|c| c != '\n' && is_unsafe(c)), "{:?}", text);
        }
    }
}
