//! Every API server records each request's duration by route pattern and status, and the requests
//! in flight: what an on-call engineer's latency and error-rate panels read.

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn requests_are_timed_by_route_pattern_and_status() -> anyhow::Result<()> {
    let metrics = quorum_runtime::metrics::install_recorder();
    let router = Router::new().route("/items/{id}", get(|| async { "item" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(quorum_http::serve(
        listener,
        router,
        quorum_http::ServeLimits::default(),
        shutdown.clone(),
        "test",
    ));
    let client = quorum_http_client::client();
    for path in ["/items/1", "/items/2", "/missing/secret-path"] {
        client
            .get(format!("http://{addr}{path}"))
            .timeout(Duration::from_secs(30))
            .send()
            .await?;
    }
    let text = metrics.render();
    let line = |parts: &[&str]| {
        text.lines()
            .find(|l| parts.iter().all(|p| l.contains(p)))
            .map(str::to_owned)
    };
    let items = line(&[
        "quorum_http_request_duration_seconds_count{",
        r#"api="test""#,
        r#"route="/items/{id}""#,
        r#"method="GET""#,
        r#"status="200""#,
    ])
    .unwrap_or_else(|| panic!("no count for /items/{{id}}:\n{text}"));
    assert!(items.ends_with(" 2"), "{items}");
    let missing = line(&[
        "quorum_http_request_duration_seconds_count{",
        r#"route="unmatched""#,
        r#"status="404""#,
    ])
    .unwrap_or_else(|| panic!("no count for the unmatched path:\n{text}"));
    assert!(missing.ends_with(" 1"), "{missing}");
    assert!(
        !text.contains("secret-path"),
        "a path reached the labels:\n{text}"
    );
    assert!(
        line(&[
            "quorum_http_request_duration_seconds_bucket{",
            r#"le="0.005""#
        ])
        .is_some(),
        "a histogram with buckets:\n{text}"
    );
    let in_flight = line(&[r#"quorum_http_requests_in_flight{api="test"}"#])
        .unwrap_or_else(|| panic!("no in-flight gauge:\n{text}"));
    assert!(in_flight.ends_with(" 0"), "{in_flight}");
    shutdown.cancel();
    server.await?;
    Ok(())
}
