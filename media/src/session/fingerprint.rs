//! DTLS certificate fingerprints in the SDP form `sha-256 AB:CD:...` (RFC 8122).

use sha2::{Digest, Sha256};

/// The `sha-256` fingerprint of a DER certificate, formatted as in an SDP `a=fingerprint` line.
pub fn certificate_fingerprint(der: &[u8]) -> String {
    let digest = Sha256::digest(der);
    let hex: Vec<String> = digest.iter().map(|b| format!("{b:02X}")).collect();
    format!("sha-256 {}", hex.join(":"))
}

/// Compares two SDP fingerprints: the hash name and hex digits case-insensitively, spacing ignored.
pub fn fingerprints_equal(a: &str, b: &str) -> bool {
    fn norm(s: &str) -> String {
        s.split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_ascii_lowercase()
    }
    norm(a) == norm(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_sha256_as_sdp() {
        let fp = certificate_fingerprint(b"abc");
        assert!(fp.starts_with("sha-256 BA:78:16:BF:"));
        assert_eq!(fp.len(), "sha-256 ".len() + 32 * 3 - 1);
    }

    #[test]
    fn comparison_ignores_case_and_spacing_but_not_digits() {
        let fp = certificate_fingerprint(b"abc");
        assert!(fingerprints_equal(&fp, &fp.to_lowercase()));
        assert!(fingerprints_equal(&fp, &fp.replace(' ', "  ")));
        let other = certificate_fingerprint(b"abd");
        assert!(!fingerprints_equal(&fp, &other));
    }
}
