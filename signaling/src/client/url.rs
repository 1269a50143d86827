//! The signaling URL as the client dials it: scheme check, default path, and the host the
//! server's challenge must name (docs/protocol.md §11).

use crate::protocol::{MAX_SERVER_NAME_BYTES, WS_PATH};

use super::ClientError;

/// A checked `ws://` / `wss://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SignalingUrl {
    /// What to dial: the URL, with the path defaulted to `/ws` when it had none.
    pub(crate) dial: String,
    /// `true` for `wss://`.
    pub(crate) tls: bool,
    /// The host as the server's challenge must name it: lowercase, no port, IPv6 literals
    /// without brackets, IP literals in their canonical text form.
    pub(crate) host: String,
}

impl SignalingUrl {
    /// Parses `url`. A URL without a path (`ws://host:port`) gets [`WS_PATH`].
    pub(crate) fn parse(url: &str) -> Result<SignalingUrl, ClientError> {
        let invalid = || ClientError::InvalidUrl(url.to_owned());
        let (scheme, rest) = url.split_once("://").ok_or_else(invalid)?;
        let tls = if scheme.eq_ignore_ascii_case("wss") {
            true
        } else if scheme.eq_ignore_ascii_case("ws") {
            false
        } else {
            return Err(invalid());
        };
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(authority_end);
        // Userinfo is not part of the host (and has no use here).
        let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let host = if let Some(v6) = host_port.strip_prefix('[') {
            let (inside, after) = v6.split_once(']').ok_or_else(invalid)?;
            if !(after.is_empty() || after.starts_with(':')) {
                return Err(invalid());
            }
            inside
        } else {
            host_port.split(':').next().unwrap_or("")
        };
        if host.is_empty() {
            return Err(invalid());
        }
        let host = match host.parse::<std::net::IpAddr>() {
            Ok(ip) => ip.to_string(),
            Err(_) => host.to_ascii_lowercase(),
        };
        let dial = if tail.is_empty() || tail.starts_with(['?', '#']) {
            format!("{scheme}://{authority}{WS_PATH}{tail}")
        } else {
            url.to_owned()
        };
        Ok(SignalingUrl { dial, tls, host })
    }
}

/// What the challenge's server name is checked against.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ExpectedName<'a> {
    /// Configured explicitly: must match exactly (ASCII case-insensitively).
    Configured(&'a str),
    /// The host of the URL dialed: must match, except that `localhost` and loopback IP
    /// literals name the same machine (`ws://localhost:8443/ws` reaches a server that calls
    /// itself `127.0.0.1`).
    Dialed(&'a str),
}

/// `localhost` or a loopback IP literal.
fn is_loopback_name(name: &str) -> bool {
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Checks the server name of a challenge against the expected one: refused when over
/// [`MAX_SERVER_NAME_BYTES`] or empty (never truncated), or when it differs (ASCII
/// case-insensitively, as DNS names compare; see [`ExpectedName`] for loopback).
pub(crate) fn check_server_name(got: &str, expected: ExpectedName<'_>) -> Result<(), ClientError> {
    if got.is_empty() || got.len() > MAX_SERVER_NAME_BYTES {
        return Err(ClientError::BadServerName { len: got.len() });
    }
    let matches = match expected {
        ExpectedName::Configured(name) => got.eq_ignore_ascii_case(name),
        ExpectedName::Dialed(host) => {
            got.eq_ignore_ascii_case(host) || (is_loopback_name(got) && is_loopback_name(host))
        }
    };
    let (ExpectedName::Configured(expected) | ExpectedName::Dialed(expected)) = expected;
    if !matches {
        return Err(ClientError::WrongServer {
            expected: expected.to_owned(),
            got: got.chars().take(MAX_SERVER_NAME_BYTES).collect(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parsed(url: &str) -> (String, bool, String) {
        let u = SignalingUrl::parse(url).unwrap();
        (u.dial, u.tls, u.host)
    }

    #[test]
    fn path_defaults_to_ws_and_the_host_is_normalized() {
        let cases = [
            (
                "ws://127.0.0.1:8443",
                "ws://127.0.0.1:8443/ws",
                false,
                "127.0.0.1",
            ),
            (
                "ws://127.0.0.1:8443/ws",
                "ws://127.0.0.1:8443/ws",
                false,
                "127.0.0.1",
            ),
            (
                "ws://127.0.0.1:8443/",
                "ws://127.0.0.1:8443/",
                false,
                "127.0.0.1",
            ),
            (
                "wss://Call.Example.ORG/sig",
                "wss://Call.Example.ORG/sig",
                true,
                "call.example.org",
            ),
            (
                "wss://call.example.org?x=1",
                "wss://call.example.org/ws?x=1",
                true,
                "call.example.org",
            ),
            ("ws://[::1]:9000", "ws://[::1]:9000/ws", false, "::1"),
            (
                "ws://[0:0::1]:9000/ws",
                "ws://[0:0::1]:9000/ws",
                false,
                "::1",
            ),
            ("ws://[FE80::1]/ws", "ws://[FE80::1]/ws", false, "fe80::1"),
            ("ws://user@host:1", "ws://user@host:1/ws", false, "host"),
            ("WS://localhost", "WS://localhost/ws", false, "localhost"),
        ];
        for (url, dial, tls, host) in cases {
            assert_eq!(
                parsed(url),
                (dial.to_owned(), tls, host.to_owned()),
                "{url}"
            );
        }
        for bad in [
            "http://h:1/ws",
            "127.0.0.1:8443",
            "ws://",
            "ws://:80/ws",
            "ws://[::1/ws",
            "ws://[::1]x/ws",
            "",
        ] {
            assert!(
                matches!(SignalingUrl::parse(bad), Err(ClientError::InvalidUrl(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn server_names_are_checked_not_truncated() {
        use ExpectedName::{Configured, Dialed};
        let ok = |got, expected| check_server_name(got, expected).is_ok();
        assert!(ok("127.0.0.1", Dialed("127.0.0.1")));
        assert!(ok("Call.Example.org", Dialed("call.example.org")));
        assert!(ok("call.example.org", Configured("CALL.example.org")));
        assert!(!ok("call-signaling", Dialed("127.0.0.1")));
        assert!(!ok("evil.example", Dialed("call.example.org")));
        // Loopback names one machine when dialed, not when configured.
        assert!(ok("127.0.0.1", Dialed("localhost")));
        assert!(ok("::1", Dialed("localhost")));
        assert!(ok("localhost", Dialed("127.0.0.2")));
        assert!(!ok("127.0.0.1", Configured("localhost")));
        assert!(!ok("10.0.0.1", Dialed("localhost")));
        assert!(!ok("call.example.org", Dialed("localhost")));
        assert!(matches!(
            check_server_name("call-signaling", Dialed("127.0.0.1")),
            Err(ClientError::WrongServer { expected, got })
                if expected == "127.0.0.1" && got == "call-signaling"
        ));
        let long = "a".repeat(MAX_SERVER_NAME_BYTES + 1);
        // Even when it is what was configured: a longer name would be truncated when signed.
        assert!(matches!(
            check_server_name(&long, Configured(&long)),
            Err(ClientError::BadServerName { len }) if len == MAX_SERVER_NAME_BYTES + 1
        ));
        let max = "a".repeat(MAX_SERVER_NAME_BYTES);
        assert!(ok(&max, Configured(&max)));
        assert!(matches!(
            check_server_name("", Dialed("")),
            Err(ClientError::BadServerName { len: 0 })
        ));
    }

    proptest! {
        #[test]
        fn url_parser_never_panics(s in ".{0,80}") {
            if let Ok(u) = SignalingUrl::parse(&s) {
                prop_assert!(!u.host.is_empty());
                prop_assert!(u.dial.len() >= s.len());
            }
        }
    }
}
