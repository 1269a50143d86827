//! The `--metrics-listen` endpoint: `GET /metrics` in the Prometheus text format, on a listener
//! of its own (never the public WebSocket port), plain HTTP/1.1.
//!
//! Distance from the wire: a TCP accept loop and hyper, like [`http`](super::http) but
//! smaller: a few connections at a time, the request head within the header timeout, one
//! request per connection. A scrape first reads what the server holds (connections, mailbox,
//! TURN allocations, RSS) into the [`Snapshot`], then encodes everything.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use hyper::body::Incoming;
use hyper::Request;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower_service::Service as _;

use super::metrics::{process_rss_bytes, Snapshot};
use super::turn::EmbeddedTurn;
use super::Shared;

/// Path of the scrape endpoint.
pub const METRICS_PATH: &str = "/metrics";

/// Scrapes served at once; more connections are closed at once (a scraper needs one).
const MAX_SCRAPE_CONNECTIONS: usize = 8;

/// The OpenMetrics text content type (Prometheus reads it).
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone)]
struct Scrape {
    shared: Arc<Shared>,
    turn: Option<Arc<EmbeddedTurn>>,
}

/// Serves `/metrics` on `listener` until the server shuts down.
pub(crate) async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    turn: Option<Arc<EmbeddedTurn>>,
) {
    let router = Router::new()
        .route(METRICS_PATH, get(scrape))
        .with_state(Scrape {
            shared: shared.clone(),
            turn,
        });
    let slots = Arc::new(Semaphore::new(MAX_SCRAPE_CONNECTIONS));
    loop {
        let (stream, peer) = tokio::select! {
            _ = shared.shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(err) => {
                    tracing::warn!(%err, "metrics listener: accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::debug!(%peer, "metrics listener busy; closing a connection");
            continue;
        };
        let router = router.clone();
        let shared = shared.clone();
        shared.tracker.clone().spawn(async move {
            let _slot = slot;
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let mut router = router.clone();
                router.call(req)
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(shared.limits.header_read_timeout)
                .keep_alive(false)
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                res = conn.as_mut() => {
                    if let Err(err) = res {
                        tracing::debug!(%peer, %err, "metrics connection ended with an error");
                    }
                }
                _ = tokio::time::sleep(shared.limits.header_read_timeout * 2) => {
                    tracing::debug!(%peer, "metrics connection timed out");
                }
                _ = shared.shutdown.cancelled() => {}
            }
        });
    }
    tracing::debug!("metrics listener stopped");
}

async fn scrape(State(s): State<Scrape>) -> impl IntoResponse {
    let turn_allocations = match &s.turn {
        Some(turn) => Some(turn.stats().await.allocations),
        None => None,
    };
    let metrics = &s.shared.metrics;
    metrics.set_snapshot(Snapshot {
        http_connections: s.shared.open_connections.load(Ordering::Acquire),
        websockets: s.shared.open_websockets.load(Ordering::Acquire),
        authenticated: s.shared.registry.len(),
        queued_bytes: s.shared.queue_budget.used(),
        mailbox: s.shared.mailbox_stats(),
        turn_allocations,
        rss_bytes: process_rss_bytes(),
    });
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        metrics.encode(),
    )
}

/// Binds the metrics listener.
pub(crate) async fn bind(addr: SocketAddr) -> std::io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    Ok((listener, bound))
}
