//! The API server's bounds against slow and numerous clients, over real TCP: a client that
//! trickles its headers or its body is cut off, and connections beyond the limit wait until one
//! closes, while ordinary requests are served.

use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use quorum_http::{ServeLimits, serve};
use quorum_testkit::DEADLINE;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

async fn server(limits: ServeLimits) -> anyhow::Result<(std::net::SocketAddr, CancellationToken)> {
    let app = Router::new().route("/ok", get(|| async { "ok" })).route(
        "/echo",
        post(|body: axum::body::Bytes| async move { body.len().to_string() }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let shutdown = CancellationToken::new();
    tokio::spawn(serve(listener, app, limits, shutdown.clone(), "test"));
    Ok((addr, shutdown))
}

/// Sends `request` and reads until the server closes; what it answered.
async fn exchange(stream: &mut TcpStream, request: &[u8]) -> anyhow::Result<String> {
    stream.write_all(request).await?;
    let mut answer = Vec::new();
    tokio::time::timeout(DEADLINE, stream.read_to_end(&mut answer)).await??;
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

fn limits() -> ServeLimits {
    ServeLimits {
        header_read_timeout: Duration::from_millis(300),
        body_read_timeout: Duration::from_millis(300),
        max_connections: 2,
        ..ServeLimits::default()
    }
}

#[tokio::test]
async fn a_client_that_trickles_its_headers_is_cut_off() -> anyhow::Result<()> {
    let (addr, shutdown) = server(limits()).await?;
    let mut slow = TcpStream::connect(addr).await?;
    // Half a request line, and then nothing: the server closes the connection.
    let answer = exchange(&mut slow, b"GET /ok HT").await?;
    assert!(!answer.contains("200 OK"), "{answer}");
    // An ordinary request is served.
    let mut ok = TcpStream::connect(addr).await?;
    let answer = exchange(
        &mut ok,
        b"GET /ok HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    )
    .await?;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    shutdown.cancel();
    Ok(())
}

#[tokio::test]
async fn a_client_that_trickles_its_body_is_refused() -> anyhow::Result<()> {
    let (addr, shutdown) = server(limits()).await?;
    let mut slow = TcpStream::connect(addr).await?;
    let head = b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\nconnection: close\r\n\r\n0123456789";
    // The handler's body read fails at the deadline (axum's extractor answers 400; ingest's own
    // read answers 408) instead of waiting for the other 90 bytes.
    let answer = exchange(&mut slow, head).await?;
    assert!(answer.starts_with("HTTP/1.1 4"), "{answer}");
    assert!(!answer.contains("\r\n\r\n100"), "{answer}");
    shutdown.cancel();
    Ok(())
}

#[tokio::test]
async fn connections_beyond_the_limit_wait_for_one_to_close() -> anyhow::Result<()> {
    let (addr, shutdown) = server(ServeLimits {
        header_read_timeout: Duration::from_secs(600),
        ..limits()
    })
    .await?;
    // Two connections take both slots (each has begun a request and keeps it open).
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut c = TcpStream::connect(addr).await?;
        c.write_all(b"GET /ok HTTP/1.1\r\nhost: x\r\n").await?;
        held.push(c);
    }
    // A third is accepted by the kernel but not served while they are open.
    let third = tokio::spawn(async move {
        let mut c = TcpStream::connect(addr).await?;
        exchange(
            &mut c,
            b"GET /ok HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!third.is_finished(), "served beyond the connection limit");
    drop(held.pop());
    let answer = tokio::time::timeout(DEADLINE, third).await???;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    shutdown.cancel();
    Ok(())
}
