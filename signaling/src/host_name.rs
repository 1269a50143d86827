//! The syntax of a DNS host name (RFC 1123 labels), checked wherever a name from a flag or a
//! peer becomes part of an origin or a URL.

/// Letters, digits and `-` in dot-separated labels of 1 to 63 bytes, none starting or ending
/// with `-` (an IPv4 literal passes too).
pub fn is_dns_name(name: &str) -> bool {
    name.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_of_letters_digits_and_inner_dashes() {
        for ok in [
            "example.org",
            "call-1.example.org",
            "localhost",
            "10.0.0.5",
            "a",
        ] {
            assert!(is_dns_name(ok), "{ok}");
        }
        for bad in [
            "", "a..b", "-a.org", "a-.org", "a_b.org", "a b", "é.org", ".org", "org.",
        ] {
            assert!(!is_dns_name(bad), "{bad}");
        }
        assert!(is_dns_name(&"a".repeat(63)));
        assert!(!is_dns_name(&"a".repeat(64)));
    }
}
