//! The browser client (`web/`), served at `/` from files built into the binary: `web/dist` is
//! committed (built by `npm run build` in `web/`, checked for staleness by
//! `scripts/test.sh`), so building the server needs no Node. Every response carries a strict
//! Content-Security-Policy (own scripts and styles only, no inline code, no `eval`, no
//! frames, no plugins) and `nosniff`; the page loads nothing from anywhere else.

use axum::http::header::{self, HeaderName};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// The Content-Security-Policy of every page response. `connect-src` allows WebSockets to
/// any signaling server the user names; everything else is this origin only.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    connect-src 'self' ws: wss:; img-src 'self' data:; style-src 'self'; object-src 'none'; \
    base-uri 'none'; frame-ancestors 'none'; form-action 'none'";

/// One embedded file of the client.
#[derive(Debug)]
pub struct Asset {
    /// URL path it is served at.
    pub path: &'static str,
    /// `Content-Type` header value.
    pub content_type: &'static str,
    /// The file's bytes.
    pub bytes: &'static [u8],
}

/// The client's files, as built into `web/dist`.
pub const ASSETS: &[Asset] = &[
    Asset {
        path: "/",
        content_type: "text/html; charset=utf-8",
        bytes: include_bytes!("../../../web/dist/index.html"),
    },
    Asset {
        path: "/app.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../../web/dist/app.js"),
    },
    Asset {
        path: "/style.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../../../web/dist/style.css"),
    },
];

/// Routes `GET` (and `HEAD`) of every [`ASSETS`] path; merge into the server's router.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    ASSETS.iter().fold(Router::new(), |router, asset| {
        router.route(asset.path, get(move || async move { respond(asset) }))
    })
}

fn respond(asset: &'static Asset) -> Response {
    (
        [
            (header::CONTENT_TYPE, asset.content_type),
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::REFERRER_POLICY, "no-referrer"),
            (
                HeaderName::from_static("cross-origin-opener-policy"),
                "same-origin",
            ),
            // Small files from the binary: revalidate rather than keep a stale client.
            (header::CACHE_CONTROL, "no-cache"),
        ],
        asset.bytes,
    )
        .into_response()
}
