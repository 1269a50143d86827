//! The `Origin` check of `GET /ws` (sans-IO): browsers send an `Origin` header with every
//! WebSocket request, other clients do not. A request that carries one is refused unless the
//! origin is in the configured allow-list, so that a web page cannot use a server (and its TURN
//! relay) that happens to be reachable from the browser, such as a developer's local one.

/// Why an allow-list entry is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OriginError {
    /// Not of the form `scheme://host[:port]`.
    #[error(
        "allowed origin {0:?} is not of the form scheme://host[:port] (no path), e.g. https://app.example.com"
    )]
    Malformed(String),
}

/// The origins allowed to open a WebSocket, normalised (lowercase, no trailing `/`, no default
/// port).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OriginPolicy {
    allowed: Vec<String>,
}

impl OriginPolicy {
    /// A policy allowing exactly `origins` (each `scheme://host[:port]`, or `null`).
    pub fn new<S: AsRef<str>>(origins: &[S]) -> Result<Self, OriginError> {
        let allowed = origins
            .iter()
            .map(|o| normalize(o.as_ref()).ok_or_else(|| OriginError::Malformed(o.as_ref().into())))
            .collect::<Result<_, _>>()?;
        Ok(Self { allowed })
    }

    /// `true` when a request with this `Origin` header value (`None`: no header) may connect.
    /// Non-UTF-8 or malformed values are refused.
    pub fn allows(&self, origin: Option<&[u8]>) -> bool {
        let Some(raw) = origin else {
            return true;
        };
        let Some(origin) = std::str::from_utf8(raw).ok().and_then(normalize) else {
            return false;
        };
        self.allowed.contains(&origin)
    }
}

/// `scheme://host[:port]` in lowercase without a trailing `/` or the scheme's default port;
/// `null` stays `null`. `None` when it has a path, query, user info or no host.
fn normalize(origin: &str) -> Option<String> {
    let origin = origin.trim().to_ascii_lowercase();
    if origin == "null" {
        return Some(origin);
    }
    let (scheme, rest) = origin.split_once("://")?;
    let host_port = rest.strip_suffix('/').unwrap_or(rest);
    let scheme_ok = !scheme.is_empty()
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
    if !scheme_ok || host_port.is_empty() || host_port.contains(['/', '?', '#', '@', ' ']) {
        return None;
    }
    let default_port = match scheme {
        "http" | "ws" => Some(":80"),
        "https" | "wss" => Some(":443"),
        _ => None,
    };
    let host_port = match default_port {
        Some(port) => host_port.strip_suffix(port).unwrap_or(host_port),
        None => host_port,
    };
    Some(format!("{scheme}://{host_port}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_origin_is_allowed_and_browser_origins_need_the_list() {
        let none = OriginPolicy::default();
        assert!(none.allows(None));
        assert!(!none.allows(Some(b"https://evil.example")));
        assert!(!none.allows(Some(b"null")));
        let some =
            OriginPolicy::new(&["https://App.example.com/", "http://localhost:8080"]).unwrap();
        assert!(some.allows(None));
        assert!(some.allows(Some(b"https://app.example.com")));
        assert!(some.allows(Some(b"https://app.example.com:443")));
        assert!(some.allows(Some(b"http://localhost:8080")));
        assert!(!some.allows(Some(b"http://localhost:8081")));
        assert!(!some.allows(Some(b"http://app.example.com")));
        assert!(!some.allows(Some(b"https://app.example.com.evil.example")));
        assert!(!some.allows(Some(b"\xff\xfe")));
    }

    #[test]
    fn malformed_allow_list_entries_are_refused() {
        for bad in [
            "app.example.com",
            "https://",
            "https://x/path",
            "://x",
            "https://u@x",
        ] {
            assert_eq!(
                OriginPolicy::new(&[bad]),
                Err(OriginError::Malformed(bad.into())),
                "{bad}"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_headers_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..80)) {
            let policy = OriginPolicy::new(&["https://a.example"]).unwrap();
            let _ = policy.allows(Some(&bytes));
        }
    }
}
