//! The `Origin` check of `GET /ws` (sans-IO): browsers send an `Origin` header with every
//! WebSocket request, other clients do not. A request that carries one is refused unless the
//! origin is allowed, so that a web page cannot use a server (and its TURN relay) that happens
//! to be reachable from the browser, such as a developer's local one.
//!
//! Allowed are the operator's list (`--allow-origin`) and the origins of the server's own page
//! ([`own_origins`]), derived only from what the operator configured: the bound address as an
//! IP literal (plus `localhost` on loopback), the server name, and `--public-url`. Never from
//! the request: under DNS rebinding an attacker's page (`http://evil.example:8443`, its name
//! now resolving to `127.0.0.1`) sends a `Host` header equal to its `Origin`, so "Origin equals
//! Host" would let it in.

use crate::host_name::is_dns_name;
use std::net::{IpAddr, SocketAddr};

/// Why an allow-list entry is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OriginError {
    /// Not of the form `scheme://host[:port]`.
    #[error(
        "allowed origin {0:?} is not of the form scheme://host[:port] (no path), e.g. https://app.example.com"
    )]
    Malformed(String),
    /// `--public-url` is not an `http://` or `https://` URL with a host.
    #[error(
        "public URL {0:?} is not of the form http(s)://host[:port][/path], e.g. https://call.example.org/"
    )]
    BadPublicUrl(String),
}

/// The URL people open to reach this server's page (`--public-url`), for example behind a
/// reverse proxy: only its origin (`scheme://host[:port]`) is used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl {
    origin: String,
    host: String,
}

impl PublicUrl {
    /// Parses `http(s)://host[:port][/path]` (no user info; query and fragment ignored).
    pub fn parse(url: &str) -> Result<Self, OriginError> {
        let bad = || OriginError::BadPublicUrl(url.to_owned());
        let lower = url.trim().to_ascii_lowercase();
        let (scheme, rest) = lower.split_once("://").ok_or_else(bad)?;
        if scheme != "http" && scheme != "https" {
            return Err(bad());
        }
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let origin = normalize(&format!("{scheme}://{}", &rest[..end])).ok_or_else(bad)?;
        let authority = &origin[scheme.len() + 3..];
        let host = match authority.strip_prefix('[') {
            Some(v6) => v6.split_once(']').ok_or_else(bad)?.0.to_owned(),
            None => authority.split(':').next().unwrap_or_default().to_owned(),
        };
        if host.is_empty() || (authority.contains(['[', ']']) && !authority.starts_with('[')) {
            return Err(bad());
        }
        Ok(Self { origin, host })
    }

    /// `scheme://host[:port]`, normalised as the policy compares it.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The host, lowercase, an IPv6 literal without brackets.
    pub fn host(&self) -> &str {
        &self.host
    }
}

/// The origins of the page this server serves at `/` (`http` or, with TLS, `https`), from its
/// configuration only: the bound address as an IP literal with its port unless it is a
/// wildcard, `localhost` with that port when it is loopback, the server name with that port
/// when it can be a URL host, and the public URL's origin.
pub fn own_origins(
    bound: SocketAddr,
    server_name: &str,
    tls: bool,
    public_url: Option<&PublicUrl>,
) -> Vec<String> {
    let scheme = if tls { "https" } else { "http" };
    let port = bound.port();
    let mut authorities = Vec::new();
    if !bound.ip().is_unspecified() {
        authorities.push(SocketAddr::new(bound.ip(), port).to_string());
    }
    if bound.ip().is_loopback() {
        authorities.push(format!("localhost:{port}"));
    }
    match server_name.parse::<IpAddr>() {
        Ok(ip) if !ip.is_unspecified() => authorities.push(SocketAddr::new(ip, port).to_string()),
        Ok(_) => {}
        Err(_) if is_dns_name(server_name) => authorities.push(format!("{server_name}:{port}")),
        Err(_) => {}
    }
    let mut origins: Vec<String> = authorities
        .iter()
        .filter_map(|a| normalize(&format!("{scheme}://{a}")))
        .collect();
    origins.extend(public_url.map(|u| u.origin.clone()));
    origins.sort();
    origins.dedup();
    origins
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

    /// This policy with `origins` (already normalised, e.g. from [`own_origins`]) allowed too.
    pub fn with_origins(mut self, origins: impl IntoIterator<Item = String>) -> Self {
        for origin in origins {
            if !self.allowed.contains(&origin) {
                self.allowed.push(origin);
            }
        }
        self
    }

    /// The allowed origins, normalised.
    pub fn allowed(&self) -> &[String] {
        &self.allowed
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

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn own_origins_come_from_the_configuration() {
        assert_eq!(
            own_origins(addr("127.0.0.1:8443"), "127.0.0.1", false, None),
            ["http://127.0.0.1:8443", "http://localhost:8443"]
        );
        assert_eq!(
            own_origins(addr("[::1]:8443"), "::1", true, None),
            ["https://[::1]:8443", "https://localhost:8443"]
        );
        // A wildcard listener names itself: its server name is the only host it knows.
        assert_eq!(
            own_origins(addr("0.0.0.0:8443"), "Call.example.org", true, None),
            ["https://call.example.org:8443"]
        );
        assert_eq!(
            own_origins(addr("10.0.0.5:443"), "10.0.0.5", true, None),
            ["https://10.0.0.5"]
        );
        assert_eq!(
            own_origins(addr("0.0.0.0:8443"), "not a host", false, None),
            Vec::<String>::new()
        );
        let public = PublicUrl::parse("https://Call.Example.org/app/?x#y").unwrap();
        assert_eq!(public.origin(), "https://call.example.org");
        assert_eq!(public.host(), "call.example.org");
        assert_eq!(
            own_origins(addr("127.0.0.1:8443"), "127.0.0.1", false, Some(&public)),
            [
                "http://127.0.0.1:8443",
                "http://localhost:8443",
                "https://call.example.org"
            ]
        );
    }

    #[test]
    fn a_rebinding_origin_is_not_the_servers_own() {
        // evil.example resolving to 127.0.0.1: its page sends Origin and Host
        // `evil.example:8443`; neither is anything the operator configured.
        let policy = OriginPolicy::default().with_origins(own_origins(
            addr("127.0.0.1:8443"),
            "127.0.0.1",
            false,
            None,
        ));
        assert!(policy.allows(Some(b"http://127.0.0.1:8443")));
        assert!(policy.allows(Some(b"http://localhost:8443")));
        for refused in [
            "http://evil.example:8443",
            "http://127.0.0.1:8444",
            "https://127.0.0.1:8443",
            "http://localhost.evil.example:8443",
            "http://127.0.0.1.nip.io:8443",
            "null",
        ] {
            assert!(!policy.allows(Some(refused.as_bytes())), "{refused}");
        }
    }

    #[test]
    fn public_urls_must_be_http_or_https_with_a_host() {
        assert_eq!(
            PublicUrl::parse("http://[::1]:8080/").unwrap().host(),
            "::1"
        );
        assert_eq!(
            PublicUrl::parse("https://call.example.org:443")
                .unwrap()
                .origin(),
            "https://call.example.org"
        );
        for bad in [
            "call.example.org",
            "ftp://call.example.org",
            "https://",
            "https:///path",
            "https://user@call.example.org/",
            "ws://call.example.org/ws",
        ] {
            assert_eq!(
                PublicUrl::parse(bad),
                Err(OriginError::BadPublicUrl(bad.into())),
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

        #[test]
        fn arbitrary_public_urls_never_panic(text in "\\PC{0,60}") {
            let _ = PublicUrl::parse(&text);
        }
    }
}
