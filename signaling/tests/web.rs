//! The browser client served by `call-signaling` at `/`: status, content types, the
//! Content-Security-Policy and `nosniff` on every file, and a page that loads nothing from
//! elsewhere and has no inline code (which the CSP would block anyway).

mod common;

use common::*;
use signaling::identity::Identity;
use signaling::protocol::{answer_challenge, decode_nonce, ServerFrame};
use signaling::server::web::{ASSETS, CONTENT_SECURITY_POLICY};
use signaling::server::ServerConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct HttpResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl HttpResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request on its own connection (`Connection: close`), read to the end.
async fn http(addr: std::net::SocketAddr, method: &str, path: &str) -> HttpResponse {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(SOON, stream.read_to_end(&mut raw))
        .await
        .expect("the server answers")
        .unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header block");
    let head = String::from_utf8(raw[..split].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap();
            (k.trim().to_owned(), v.trim().to_owned())
        })
        .collect();
    HttpResponse {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

#[tokio::test]
async fn serves_the_client_with_types_csp_and_nosniff() {
    init_tracing();
    let server = start(test_config()).await;
    for (path, content_type) in [
        ("/", "text/html; charset=utf-8"),
        ("/app.js", "text/javascript; charset=utf-8"),
        ("/style.css", "text/css; charset=utf-8"),
    ] {
        let res = http(server.local_addr(), "GET", path).await;
        assert_eq!(res.status, 200, "{path}");
        assert_eq!(res.header("content-type"), Some(content_type), "{path}");
        assert_eq!(
            res.header("content-security-policy"),
            Some(CONTENT_SECURITY_POLICY),
            "{path}"
        );
        assert_eq!(
            res.header("x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
        let asset = ASSETS.iter().find(|a| a.path == path).unwrap();
        assert_eq!(res.body, asset.bytes, "{path} is served byte for byte");
        assert!(!res.body.is_empty(), "{path} is not empty");
    }
    let head = http(server.local_addr(), "HEAD", "/app.js").await;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(
        http(server.local_addr(), "GET", "/nope.js").await.status,
        404
    );
    assert_eq!(
        http(server.local_addr(), "GET", "/../Cargo.toml")
            .await
            .status,
        404
    );
    server.shutdown().await;
}

#[test]
fn the_policy_is_strict() {
    let directives: Vec<&str> = CONTENT_SECURITY_POLICY.split("; ").collect();
    for required in [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        "img-src 'self' data:",
        "connect-src 'self' ws: wss:",
    ] {
        assert!(directives.contains(&required), "missing {required}");
    }
    for loose in [
        "unsafe-inline",
        "unsafe-eval",
        "wasm-unsafe-eval",
        "*",
        "http:",
        "https:",
    ] {
        assert!(
            !directives.iter().any(|d| d
                .split(' ')
                .any(|t| t.trim_matches('\'') == loose.trim_matches('\''))),
            "the policy allows {loose}"
        );
    }
}

#[test]
fn the_page_loads_only_its_own_files_and_has_no_inline_code() {
    let page = std::str::from_utf8(ASSETS[0].bytes).unwrap();
    // Every src/href names one of the served files (or the empty data: icon).
    let mut refs = Vec::new();
    for attr in ["src=\"", "href=\""] {
        let mut rest = page;
        while let Some(at) = rest.find(attr) {
            rest = &rest[at + attr.len()..];
            refs.push(&rest[..rest.find('"').unwrap()]);
        }
    }
    assert!(
        refs.contains(&"app.js") && refs.contains(&"style.css"),
        "{refs:?}"
    );
    for r in &refs {
        let served = ASSETS.iter().any(|a| a.path.trim_start_matches('/') == *r);
        assert!(
            served || *r == "data:,",
            "the page refers to {r}, which is not served"
        );
    }
    // No inline script, inline style or event-handler attribute.
    assert_eq!(
        page.matches("<script").count(),
        page.matches("<script type=\"module\" src=").count()
    );
    assert!(!page.contains("<style") && !page.contains(" style=") && !page.contains(" onclick="));
    // The bundle names no other host.
    let js = std::str::from_utf8(ASSETS[1].bytes).unwrap();
    assert!(!js.contains("http://") && !js.contains("https://") && !js.contains("//cdn"));
    assert!(!js.contains("eval(") && !js.contains("new Function"));
}

/// A WebSocket upgrade to `addr` with these `Origin` and `Host` headers: `Ok` when upgraded,
/// else the HTTP status.
async fn upgrade(addr: std::net::SocketAddr, origin: &str, host: &str) -> Result<(), u16> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = format!("ws://{addr}/ws").into_client_request().unwrap();
    req.headers_mut().insert("origin", origin.parse().unwrap());
    req.headers_mut().insert("host", host.parse().unwrap());
    match tokio_tungstenite::connect_async(req).await {
        Ok(_) => Ok(()),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => Err(resp.status().as_u16()),
        Err(other) => panic!("unexpected error: {other}"),
    }
}

#[tokio::test]
async fn the_servers_own_page_may_log_in_without_flags() {
    init_tracing();
    let server = start(test_config()).await;
    let addr = server.local_addr();
    let port = addr.port();
    for own in [format!("http://{addr}"), format!("http://localhost:{port}")] {
        assert_eq!(
            upgrade(addr, &own, &addr.to_string()).await,
            Ok(()),
            "{own}"
        );
        // The Host header plays no part: a proxy may rewrite it.
        assert_eq!(
            upgrade(addr, &own, "elsewhere.example").await,
            Ok(()),
            "{own}"
        );
    }
    // The page really logs in from its origin (a full challenge-response).
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = server.url().into_client_request().unwrap();
    req.headers_mut().insert(
        "origin",
        format!("http://localhost:{port}").parse().unwrap(),
    );
    let (ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let mut raw = Raw { ws };
    let Some(ServerFrame::Challenge {
        server: name,
        nonce,
        ts,
    }) = raw.next_frame().await
    else {
        panic!("expected a challenge");
    };
    let identity = Identity::generate();
    let nonce = decode_nonce(&nonce).unwrap();
    raw.send_text(answer_challenge(&identity, &name, &nonce, ts).to_json())
        .await;
    match raw.next_frame().await {
        Some(ServerFrame::Welcome { id, .. }) => assert_eq!(id, identity.call_id()),
        other => panic!("expected welcome, got {other:?}"),
    }
    server.shutdown().await;
}

#[tokio::test]
async fn a_dns_rebinding_origin_is_refused() {
    init_tracing();
    let server = start(test_config()).await;
    let addr = server.local_addr();
    let port = addr.port();
    // evil.example now resolves to 127.0.0.1: its page's Origin and Host agree, and neither
    // is anything the operator configured.
    let evil = format!("evil.example:{port}");
    assert_eq!(
        upgrade(addr, &format!("http://{evil}"), &evil).await,
        Err(403)
    );
    for other in [
        format!("https://{addr}"),
        format!("http://127.0.0.1:{}", port.wrapping_add(1)),
        format!("http://localhost.evil.example:{port}"),
        "null".to_owned(),
    ] {
        assert_eq!(
            upgrade(addr, &other, &addr.to_string()).await,
            Err(403),
            "{other}"
        );
    }
    server.shutdown().await;
}

#[tokio::test]
async fn listed_origins_and_the_public_url_are_allowed_too() {
    init_tracing();
    let server = start(ServerConfig {
        allowed_origins: vec!["https://app.example.com".into()],
        public_url: Some("https://Call.Example.org/web/".into()),
        ..test_config()
    })
    .await;
    let addr = server.local_addr();
    let host = addr.to_string();
    for allowed in [
        "https://app.example.com".to_owned(),
        "https://call.example.org".to_owned(),
        format!("http://{addr}"),
    ] {
        assert_eq!(upgrade(addr, &allowed, &host).await, Ok(()), "{allowed}");
    }
    for refused in ["http://call.example.org", "https://call.example.org:8443"] {
        assert_eq!(upgrade(addr, refused, &host).await, Err(403), "{refused}");
    }
    server.shutdown().await;

    let err = signaling::server::Server::start(ServerConfig {
        public_url: Some("call.example.org".into()),
        ..test_config()
    })
    .await
    .unwrap_err();
    assert!(err.to_string().contains("http(s)://host"), "{err}");
}
