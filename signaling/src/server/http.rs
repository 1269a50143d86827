//! The TCP accept loop and HTTP/1.1 layer (hyper), with TLS and timeouts.
//!
//! Plain HTTP/1.1 only (no HTTP/2 sniffing, which would wait for a preface without any
//! timeout). Every stage is bounded: the TLS handshake and the request head must arrive within
//! `header_read_timeout`, so half-open and slowloris connections are reaped; the number of
//! open connections is capped, in total and per IPv4 address or IPv6 /64 (`ip_limits`); after
//! the WebSocket upgrade the connection loop's own auth and idle timeouts take over.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper::Request;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::task::TaskTracker;
use tower_service::Service as _;

use super::ip_limits::{Kind, SourceSlot};
use super::Shared;

/// Decrements the count of connections in the TCP/TLS/HTTP stage when dropped.
struct ConnSlot(Arc<Shared>);

/// The global and the per-address slot of a connection in the TCP/TLS/HTTP stage.
type Slots = (ConnSlot, SourceSlot);

impl Drop for ConnSlot {
    fn drop(&mut self) {
        self.0.open_connections.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Accepts connections until shutdown.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    router: Router,
    tls: Option<TlsAcceptor>,
    shared: Arc<Shared>,
    tracker: TaskTracker,
) {
    loop {
        let (stream, peer) = tokio::select! {
            _ = shared.shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(err) => {
                    // EMFILE and friends: back off briefly instead of spinning.
                    tracing::warn!(%err, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let open = shared.open_connections.fetch_add(1, Ordering::AcqRel);
        let slot = ConnSlot(shared.clone());
        if open >= shared.limits.max_connections {
            tracing::warn!(%peer, open, "connection limit reached; refusing");
            shared.metrics.refused.limit.inc();
            drop(stream);
            drop(slot);
            continue;
        }
        let Some(ip_slot) = shared.per_ip.try_acquire(peer.ip(), Kind::Handshake) else {
            tracing::info!(%peer, "per-address handshake limit reached; refusing");
            shared.metrics.refused.per_address.inc();
            drop(stream);
            continue;
        };
        tracker.spawn(serve_tcp(
            stream,
            peer,
            router.clone(),
            tls.clone(),
            shared.clone(),
            (slot, ip_slot),
        ));
    }
    tracing::debug!("accept loop stopped");
}

async fn serve_tcp(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    tls: Option<TlsAcceptor>,
    shared: Arc<Shared>,
    slot: Slots,
) {
    let _ = stream.set_nodelay(true);
    if let Some(size) = shared.limits.tcp_send_buffer {
        if let Err(err) = socket2::SockRef::from(&stream).set_send_buffer_size(size) {
            tracing::debug!(%peer, %err, "cannot set SO_SNDBUF");
        }
    }
    match tls {
        None => serve_http(stream, peer, router, shared, slot).await,
        Some(acceptor) => {
            let handshake =
                tokio::time::timeout(shared.limits.header_read_timeout, acceptor.accept(stream));
            let stream = tokio::select! {
                _ = shared.shutdown.cancelled() => return,
                res = handshake => match res {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(err)) => {
                        tracing::info!(%peer, %err, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::info!(%peer, "TLS handshake timed out");
                        return;
                    }
                },
            };
            serve_http(stream, peer, router, shared, slot).await
        }
    }
}

async fn serve_http<I>(io: I, peer: SocketAddr, router: Router, shared: Arc<Shared>, slot: Slots)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        let mut router = router.clone();
        router.call(req)
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(shared.limits.header_read_timeout)
        // hyper panics below 8192.
        .max_buf_size(shared.limits.http_max_request_head.max(8192))
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    tokio::pin!(conn);
    // The whole HTTP stage (request head, response, hand-over of an upgrade) gets one
    // header_read_timeout; a kept-alive connection that idles after a plain response is closed.
    let deadline = tokio::time::sleep(shared.limits.header_read_timeout);
    tokio::select! {
        res = conn.as_mut() => {
            if let Err(err) = res {
                tracing::debug!(%peer, %err, "HTTP connection ended with an error");
            }
        }
        _ = deadline => {
            tracing::debug!(%peer, "HTTP stage timed out; closing");
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(std::time::Duration::from_secs(1), conn).await;
        }
        _ = shared.shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(std::time::Duration::from_secs(1), conn).await;
        }
    }
    // Upgraded WebSockets are counted separately (`Shared::open_websockets`).
    drop(slot);
}
