//! Serving an API until shutdown, bounded against slow and numerous clients: hyper with a small
//! buffer per connection, a deadline for a request's headers and one for its body, and at most so
//! many connections at once. Then stop accepting, let requests in flight finish, return.
//!
//! `axum::serve` keeps hyper's default connection buffer (about 400 KiB) and no read deadlines, so
//! a few hundred clients that trickle their headers or bodies could hold memory and connections
//! without end. Every API (ingest, audit, dead letters) serves through this one loop instead.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower_http::timeout::RequestBodyTimeoutLayer;
use tracing::{debug, warn};

/// What one API server allows its clients.
#[derive(Clone, Copy, Debug)]
pub struct ServeLimits {
    /// What one connection may buffer, its request head included (larger heads get 431).
    pub buffer_bytes: usize,
    /// How long a client has to send a request's headers once it starts one.
    pub header_read_timeout: Duration,
    /// How long a client has to send a request's body.
    pub body_read_timeout: Duration,
    /// Connections open at once; more wait in the listen backlog until one closes.
    pub max_connections: usize,
}

impl Default for ServeLimits {
    fn default() -> Self {
        Self {
            buffer_bytes: 64 * 1024,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            max_connections: 4096,
        }
    }
}

/// Serves `router` on `listener` within `limits` until `shutdown`; then stops accepting, lets
/// requests in flight finish, and returns once every connection closed (idle keep-alive
/// connections close at once). `name` labels the log lines.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServeLimits,
    shutdown: CancellationToken,
    name: &'static str,
) {
    let router = router
        .layer(axum::middleware::from_fn(move |request, next| {
            crate::observe::record(name, request, next)
        }))
        .layer(RequestBodyTimeoutLayer::new(limits.body_read_timeout));
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    loop {
        // A slot before accepting: over the limit, clients wait in the kernel's backlog rather
        // than in memory here.
        let slot = tokio::select! {
            _ = shutdown.cancelled() => break,
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) if is_per_connection(&e) => continue,
                Err(e) => {
                    // Out of file descriptors, say: wait for connections to close.
                    warn!(api = name, error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let connection = hyper::server::conn::http1::Builder::new()
            .max_buf_size(limits.buffer_bytes)
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .serve_connection(
                TokioIo::new(stream),
                TowerToHyperService::new(router.clone()),
            );
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                debug!(api = name, %peer, error = %e, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

fn is_per_connection(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    )
}
