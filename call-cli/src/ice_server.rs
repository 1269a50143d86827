//! `--ice-server URL`: a STUN or TURN server the user adds to those the signaling server hands
//! out (for networks where the server's own TURN is not enough, or a server that offers none).
//!
//! The form is one URL per flag, credentials inside it:
//!
//! ```text
//! stun:HOST[:PORT]
//! turn:USERNAME:PASSWORD@HOST[:PORT][?transport=udp]
//! turns:USERNAME:PASSWORD@HOST[:PORT][?transport=tcp]
//! ```
//!
//! `HOST` is a DNS name, an IPv4 address or a bracketed IPv6 address; the port defaults to 3478
//! (5349 for `turns:`). Everything before the *last* `:` of the part before the last `@` is the
//! username, so TURN REST usernames (`expiry:name`) go in as they are; the password cannot hold
//! a raw `:`, `@`, `?` or `,` (the flag splits on commas), and either part may be
//! percent-encoded (`%3A`, `%40`, `%3F`, `%2C`, `%25`).
//! The credential never appears in an error message, a log line or `Debug` output.
//!
//! The media stack (webrtc-rs 0.17) relays over UDP only: `turns:` and `?transport=tcp` parse,
//! but are refused with a message saying so rather than silently gathering nothing.

use std::fmt;

use media::session::IceServer;

/// Longest accepted `--ice-server` value, in bytes.
pub const MAX_ICE_SERVER_LEN: usize = 1024;
/// Longest host name (RFC 1035).
const MAX_HOST_LEN: usize = 253;

/// The URL scheme of an ICE server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IceScheme {
    /// STUN: learn our public address (server-reflexive candidates).
    Stun,
    /// TURN over UDP or TCP.
    Turn,
    /// TURN over TLS.
    Turns,
}

impl IceScheme {
    fn as_str(self) -> &'static str {
        match self {
            IceScheme::Stun => "stun",
            IceScheme::Turn => "turn",
            IceScheme::Turns => "turns",
        }
    }

    fn default_port(self) -> u16 {
        match self {
            IceScheme::Turns => 5349,
            IceScheme::Stun | IceScheme::Turn => 3478,
        }
    }
}

/// The transport a TURN URL asks for (`?transport=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IceTransport {
    /// `?transport=udp` (the default for `turn:`).
    Udp,
    /// `?transport=tcp` (the default for `turns:`).
    Tcp,
}

/// One parsed `--ice-server`. `Debug` and `Display` never show the credential.
#[derive(Clone, PartialEq, Eq)]
pub struct IceServerSpec {
    scheme: IceScheme,
    host: String,
    port: u16,
    transport: Option<IceTransport>,
    credentials: Option<(String, String)>,
}

/// Why an `--ice-server` value was refused. No variant carries the credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IceServerError {
    /// The value is longer than [`MAX_ICE_SERVER_LEN`].
    #[error("the ICE server URL is {0} bytes long; at most {MAX_ICE_SERVER_LEN} are accepted")]
    TooLong(usize),
    /// The scheme is not `stun`, `turn` or `turns`.
    #[error("unknown ICE server scheme {0:?}: use stun:HOST:PORT, turn:USER:PASSWORD@HOST:PORT or turns:USER:PASSWORD@HOST:PORT")]
    UnknownScheme(String),
    /// `scheme://` was written (not part of RFC 7064/7065 URLs).
    #[error("ICE server URLs have no `//` after the scheme: write {0}:HOST:PORT")]
    SlashesAfterScheme(&'static str),
    /// No host before the port or query.
    #[error("the ICE server URL names no host: write {0}:HOST[:PORT]")]
    MissingHost(&'static str),
    /// The host is neither a DNS name, an IPv4 address nor a bracketed IPv6 address.
    #[error("{0:?} is not a host name or IP address (IPv6 goes in brackets: [2001:db8::1])")]
    BadHost(String),
    /// The port is not a number from 1 to 65535.
    #[error("{0:?} is not a port number (1 to 65535)")]
    BadPort(String),
    /// A query other than `transport=udp|tcp`.
    #[error("unsupported ICE server URL query {0:?}: only ?transport=udp or ?transport=tcp")]
    BadQuery(String),
    /// `stun:` with credentials or a transport.
    #[error("stun: URLs take no credentials and no ?transport (write stun:HOST:PORT)")]
    StunExtras,
    /// `turn:`/`turns:` without `USER:PASSWORD@`.
    #[error("{0}: URLs need credentials: write {0}:USERNAME:PASSWORD@HOST:PORT")]
    MissingCredentials(&'static str),
    /// The credentials part has no `:` or an empty username or password.
    #[error("the credentials of a {0}: URL must be USERNAME:PASSWORD, both non-empty (percent-encode a `:` in the password as %3A)")]
    MalformedCredentials(&'static str),
    /// A `%` not followed by two hex digits, or bytes that are not UTF-8 after decoding.
    #[error("bad percent-encoding in the credentials of a {0}: URL (write `%` itself as %25)")]
    BadPercentEncoding(&'static str),
    /// A form the media stack cannot use.
    #[error("{url} is not supported: the media stack (webrtc-rs 0.17) relays over UDP only; use turn:USER:PASSWORD@HOST:PORT?transport=udp")]
    Unsupported {
        /// The URL without credentials.
        url: String,
    },
}

impl IceServerSpec {
    /// Parses one `--ice-server` value (see the module docs for the form).
    pub fn parse(text: &str) -> Result<Self, IceServerError> {
        if text.len() > MAX_ICE_SERVER_LEN {
            return Err(IceServerError::TooLong(text.len()));
        }
        let text = text.trim();
        let (scheme_text, rest) = text
            .split_once(':')
            .ok_or_else(|| IceServerError::UnknownScheme(String::new()))?;
        let scheme = match scheme_text.to_ascii_lowercase().as_str() {
            "stun" => IceScheme::Stun,
            "turn" => IceScheme::Turn,
            "turns" => IceScheme::Turns,
            _ => {
                // Only the part before the first `:` is echoed: it cannot hold the password.
                let shown: String = scheme_text.chars().take(16).collect();
                return Err(IceServerError::UnknownScheme(shown));
            }
        };
        let name = scheme.as_str();
        if rest.starts_with("//") {
            return Err(IceServerError::SlashesAfterScheme(name));
        }
        // The credentials may hold `?` only percent-encoded, so the first `?` starts the query.
        let (before_query, query) = match rest.split_once('?') {
            Some((b, q)) => (b, Some(q)),
            None => (rest, None),
        };
        let (userinfo, host_port) = match before_query.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, before_query),
        };
        let (host, port) = split_host_port(host_port, scheme)?;
        let transport = query.map(parse_query).transpose()?;
        let credentials = userinfo.map(|u| parse_credentials(u, name)).transpose()?;
        match (scheme, &credentials, transport) {
            (IceScheme::Stun, None, None) => {}
            (IceScheme::Stun, _, _) => return Err(IceServerError::StunExtras),
            (IceScheme::Turn | IceScheme::Turns, None, _) => {
                return Err(IceServerError::MissingCredentials(name))
            }
            _ => {}
        }
        let spec = IceServerSpec {
            scheme,
            host,
            port,
            transport,
            credentials,
        };
        let relays_over_udp = match scheme {
            IceScheme::Stun => true,
            IceScheme::Turn => transport != Some(IceTransport::Tcp),
            IceScheme::Turns => false,
        };
        if !relays_over_udp {
            return Err(IceServerError::Unsupported { url: spec.url() });
        }
        Ok(spec)
    }

    /// The URL as handed to ICE, without credentials (safe to log).
    pub fn url(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let mut url = format!("{}:{host}:{}", self.scheme.as_str(), self.port);
        match (self.scheme, self.transport) {
            (IceScheme::Stun, _) => {}
            (_, Some(IceTransport::Tcp)) => url.push_str("?transport=tcp"),
            (IceScheme::Turns, None) => url.push_str("?transport=tcp"),
            (IceScheme::Turn, _) => url.push_str("?transport=udp"),
            (IceScheme::Turns, Some(IceTransport::Udp)) => url.push_str("?transport=udp"),
        }
        url
    }

    /// The scheme.
    pub fn scheme(&self) -> IceScheme {
        self.scheme
    }

    /// The username, if the URL carries credentials.
    pub fn username(&self) -> Option<&str> {
        self.credentials.as_ref().map(|(u, _)| u.as_str())
    }

    /// The ICE server for the session (the one place the credential leaves this type).
    pub fn to_ice_server(&self) -> IceServer {
        let (username, credential) = self.credentials.clone().unwrap_or_default();
        IceServer {
            urls: vec![self.url()],
            username,
            credential,
        }
    }
}

impl fmt::Display for IceServerSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url())
    }
}

impl fmt::Debug for IceServerSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IceServerSpec")
            .field("url", &self.url())
            .field("username", &self.username())
            .field(
                "credential",
                &self.credentials.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl std::str::FromStr for IceServerSpec {
    type Err = IceServerError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// `HOST[:PORT]` or `[V6][:PORT]`.
fn split_host_port(text: &str, scheme: IceScheme) -> Result<(String, u16), IceServerError> {
    let name = scheme.as_str();
    let (host, port) = if let Some(v6) = text.strip_prefix('[') {
        let (addr, after) = v6
            .split_once(']')
            .ok_or_else(|| IceServerError::BadHost(text.to_owned()))?;
        if addr.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(IceServerError::BadHost(addr.to_owned()));
        }
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| IceServerError::BadHost(text.to_owned()))?,
            ),
        };
        (addr.to_ascii_lowercase(), port)
    } else {
        let (host, port) = match text.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (text, None),
        };
        if host.is_empty() {
            return Err(IceServerError::MissingHost(name));
        }
        if !is_host_name(host) {
            return Err(IceServerError::BadHost(host.chars().take(64).collect()));
        }
        (host.to_ascii_lowercase(), port)
    };
    let port = match port {
        None => scheme.default_port(),
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|&p| p != 0)
            .ok_or_else(|| IceServerError::BadPort(p.chars().take(16).collect()))?,
    };
    Ok((host, port))
}

/// A DNS name or IPv4 literal: labels of letters, digits and `-`, not starting or ending with `-`.
fn is_host_name(host: &str) -> bool {
    host.len() <= MAX_HOST_LEN && signaling::host_name::is_dns_name(host)
}

fn parse_query(query: &str) -> Result<IceTransport, IceServerError> {
    match query.to_ascii_lowercase().as_str() {
        "transport=udp" => Ok(IceTransport::Udp),
        "transport=tcp" => Ok(IceTransport::Tcp),
        _ => Err(IceServerError::BadQuery(query.chars().take(32).collect())),
    }
}

/// `USERNAME:PASSWORD`, split at the last `:`, each percent-decoded.
fn parse_credentials(
    userinfo: &str,
    scheme: &'static str,
) -> Result<(String, String), IceServerError> {
    let (user, pass) = userinfo
        .rsplit_once(':')
        .ok_or(IceServerError::MalformedCredentials(scheme))?;
    let user = percent_decode(user).ok_or(IceServerError::BadPercentEncoding(scheme))?;
    let pass = percent_decode(pass).ok_or(IceServerError::BadPercentEncoding(scheme))?;
    if user.is_empty() || pass.is_empty() {
        return Err(IceServerError::MalformedCredentials(scheme));
    }
    Ok((user, pass))
}

/// Decodes `%XX` escapes; `None` for a broken escape or a result that is not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(s: &str) -> Result<IceServerSpec, IceServerError> {
        IceServerSpec::parse(s)
    }

    #[test]
    fn stun_with_and_without_port() {
        let s = parse("stun:stun.example.org").unwrap();
        assert_eq!(s.url(), "stun:stun.example.org:3478");
        assert_eq!(s.scheme(), IceScheme::Stun);
        let server = s.to_ice_server();
        assert!(server.username.is_empty() && server.credential.is_empty());
        assert_eq!(
            parse("STUN:1.2.3.4:19302").unwrap().url(),
            "stun:1.2.3.4:19302"
        );
        assert_eq!(
            parse("stun:[2001:DB8::1]:3479").unwrap().url(),
            "stun:[2001:db8::1]:3479"
        );
    }

    #[test]
    fn turn_credentials_split_at_the_last_colon() {
        let s = parse("turn:1700000000:alice:s3cret@turn.example.org:3478?transport=udp").unwrap();
        let server = s.to_ice_server();
        assert_eq!(server.urls, ["turn:turn.example.org:3478?transport=udp"]);
        assert_eq!(server.username, "1700000000:alice");
        assert_eq!(server.credential, "s3cret");
        // The default transport is UDP, written out for the ICE agent.
        assert_eq!(
            parse("turn:u:p@127.0.0.1").unwrap().url(),
            "turn:127.0.0.1:3478?transport=udp"
        );
    }

    #[test]
    fn percent_encoded_credentials_are_decoded() {
        let s = parse("turn:a%40b:p%3Aq%40r%3F%25@[::1]:3478").unwrap();
        let server = s.to_ice_server();
        assert_eq!(server.username, "a@b");
        assert_eq!(server.credential, "p:q@r?%");
        assert_eq!(server.urls, ["turn:[::1]:3478?transport=udp"]);
        // A base64 password (the TURN REST form) goes in as it is.
        let s = parse("turn:1:id:ab+/cd==@h:1").unwrap();
        assert_eq!(s.to_ice_server().credential, "ab+/cd==");
    }

    #[test]
    fn errors_name_what_is_wrong() {
        use IceServerError as E;
        assert_eq!(parse("http://x"), Err(E::UnknownScheme("http".into())));
        assert_eq!(parse("nothing"), Err(E::UnknownScheme(String::new())));
        assert_eq!(parse("turn://u:p@h"), Err(E::SlashesAfterScheme("turn")));
        assert_eq!(parse("turn:u:p@:3478"), Err(E::MissingHost("turn")));
        assert_eq!(parse("stun:h:0"), Err(E::BadPort("0".into())));
        assert_eq!(parse("stun:h:65536"), Err(E::BadPort("65536".into())));
        assert_eq!(parse("stun:h:x"), Err(E::BadPort("x".into())));
        assert_eq!(parse("stun:h_h"), Err(E::BadHost("h_h".into())));
        assert_eq!(parse("stun:[::g]"), Err(E::BadHost("::g".into())));
        assert_eq!(parse("stun:u:p@h"), Err(E::StunExtras));
        assert_eq!(parse("stun:h?transport=udp"), Err(E::StunExtras));
        assert_eq!(parse("turn:h:3478"), Err(E::MissingCredentials("turn")));
        assert_eq!(parse("turn:nopass@h"), Err(E::MalformedCredentials("turn")));
        assert_eq!(parse("turn:u:@h"), Err(E::MalformedCredentials("turn")));
        assert_eq!(parse("turn:u:%zz@h"), Err(E::BadPercentEncoding("turn")));
        assert_eq!(
            parse("turn:u:p@h?foo=bar"),
            Err(E::BadQuery("foo=bar".into()))
        );
        assert_eq!(
            parse(&format!("stun:{}", "a".repeat(MAX_ICE_SERVER_LEN))),
            Err(E::TooLong(MAX_ICE_SERVER_LEN + 5))
        );
    }

    #[test]
    fn tcp_and_tls_relays_are_refused_as_unsupported() {
        let e = parse("turns:u:p@turn.example.org").unwrap_err();
        assert_eq!(
            e,
            IceServerError::Unsupported {
                url: "turns:turn.example.org:5349?transport=tcp".into()
            }
        );
        let e = parse("turn:u:p@h:3478?transport=tcp").unwrap_err();
        assert!(e.to_string().contains("relays over UDP only"), "{e}");
    }

    #[test]
    fn the_credential_is_never_shown() {
        let s = parse("turn:alice:hunter2secret@h:1").unwrap();
        assert!(!format!("{s:?}").contains("hunter2secret"));
        assert!(!s.to_string().contains("hunter2secret"));
        for bad in [
            "turn:alice:hunter2secret@h:99999",
            "turn:alice:hunter2secret@h?transport=sctp",
            "turns:alice:hunter2secret@h",
            "turn:alice:hunter2secret@bad_host",
            "turn:alice:hunter2secret%@h",
        ] {
            let e = parse(bad).unwrap_err();
            assert!(!format!("{e} {e:?}").contains("hunter2"), "{bad}: {e}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn arbitrary_input_never_panics(s in ".{0,200}") {
            let _ = IceServerSpec::parse(&s);
        }

        #[test]
        fn credentials_round_trip_through_percent_encoding(
            user in "[ -~]{1,20}",
            pass in "[ -~]{1,20}",
            port in 1u16..,
        ) {
            let enc = |s: &str| s.bytes().map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            }).collect::<String>();
            let spec = IceServerSpec::parse(&format!("turn:{}:{}@relay.test:{port}", enc(&user), enc(&pass))).unwrap();
            let server = spec.to_ice_server();
            prop_assert_eq!(server.username, user);
            prop_assert_eq!(&server.credential, &pass);
        }
    }
}
