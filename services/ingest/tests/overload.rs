//! Overload against the real binary: a burst far above the tenant's rate and the request bound gets
//! 429/503 with `Retry-After` at once, every accepted event is stored exactly once, and the
//! process's peak memory stays far below what holding the burst would take.

use std::collections::HashSet;
use std::process::Stdio;

use bytes::Bytes;
use futures::StreamExt;
use quorum_auth::Role;
use quorum_domain::TenantId;
use quorum_testkit::{DEADLINE, wait_until};

const RATE_REQUESTS: usize = 150;
const REQUESTS: usize = 1200;
const CLIENTS: usize = 400;
const DATA_BYTES: usize = 256 * 1024;

#[tokio::test]
async fn a_burst_is_refused_with_retry_after_and_memory_stays_bounded() -> anyhow::Result<()> {
    quorum_testkit::init_tracing();
    let nats = quorum_testkit::nats().await?;
    let db = quorum_testkit::postgres().await.fresh_db().await?;
    quorum_event_store::migrate(&db.pool).await?;
    let key = quorum_auth::create(&db.pool, &TenantId::new("acme")?, &[Role::Publisher], None)
        .await?
        .key;
    let port = quorum_devstack::free_port()?;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_quorum-ingest"))
        .env("QUORUM__COMMON__NATS_URL", nats.url())
        .env("QUORUM__COMMON__DATABASE_URL", &db.url)
        .env("QUORUM__HTTP_ADDR", format!("127.0.0.1:{port}"))
        .env("QUORUM__RUN_RELAY", "false")
        .env("QUORUM__NATS__ENABLED", "false")
        .env("QUORUM__LIMITS__MAX_BATCH_EVENTS", "10")
        .env("QUORUM__RATE__EVENTS_PER_SECOND", "5")
        .env("QUORUM__RATE__BURST", "10")
        .env("QUORUM__FLOW__MAX_IN_FLIGHT_EVENTS", "10")
        // One tenant here: it may hold the whole budget, or a full batch could never pass.
        .env("QUORUM__FLOW__MAX_TENANT_SHARE", "1")
        .env("QUORUM__FLOW__MAX_CONCURRENT_REQUESTS", "16")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()?;
    let pid = child.id().expect("running");
    let http = quorum_http_client::client();
    let base = format!("http://127.0.0.1:{port}");
    wait_until("ingest to serve", DEADLINE, || async {
        http.get(format!("{base}/openapi.json"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    })
    .await?;
    let before = peak_rss_kb(pid)?;

    // Over the rate: a steady stream from a few clients, never enough to fill the request bound.
    let mut answers = burst(&http, &base, &key, 0..RATE_REQUESTS, 4, 1024).await;
    // Over every bound: many clients with large bodies at once.
    answers.extend(
        burst(
            &http,
            &base,
            &key,
            RATE_REQUESTS..RATE_REQUESTS + REQUESTS,
            CLIENTS,
            DATA_BYTES,
        )
        .await,
    );
    let mut accepted = HashSet::new();
    let (mut limited, mut saturated) = (0, 0);
    for (i, status, retry_after) in answers {
        match status {
            202 => {
                accepted.insert(format!("burst-{i}"));
            }
            429 | 503 => {
                assert!(retry_after, "a {status} without Retry-After");
                if status == 429 {
                    limited += 1
                } else {
                    saturated += 1
                }
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(!accepted.is_empty(), "some of the burst is accepted");
    assert!(
        limited > 0 && saturated > 0,
        "429: {limited}, 503: {saturated}"
    );
    let stored: Vec<String> =
        sqlx::query_scalar("SELECT event_id FROM events WHERE tenant <> '_system'")
            .fetch_all(&db.pool)
            .await?;
    assert_eq!(stored.len(), accepted.len(), "stored exactly once");
    assert_eq!(stored.into_iter().collect::<HashSet<_>>(), accepted);

    // Holding the burst would take CLIENTS × DATA_BYTES (100 MiB) on top of what the connections
    // themselves take; the bounds allow 16 request bodies, 10 events in flight, and a 32 KiB
    // buffer per connection. The 400 open connections (buffers, tasks, allocator caches) measured
    // 44–64 MiB on a busy 2-core machine, so the bound sits between that and holding the burst.
    let peak = peak_rss_kb(pid)?;
    let held_mib = (peak.saturating_sub(before)) / 1024;
    eprintln!(
        "peak memory grew by {held_mib} MiB under the burst ({} accepted, {limited} × 429, {saturated} × 503)",
        accepted.len()
    );
    assert!(
        held_mib < 96,
        "peak memory grew by {held_mib} MiB under the burst"
    );
    child.kill().await?;
    Ok(())
}

/// Sends single events `ids` from `clients` concurrent clients; (id, status, has Retry-After).
async fn burst(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    ids: std::ops::Range<usize>,
    clients: usize,
    data_bytes: usize,
) -> Vec<(usize, u16, bool)> {
    let data = "x".repeat(data_bytes);
    futures::stream::iter(ids)
        .map(|i| {
            let body = Bytes::from(
                serde_json::json!({"specversion": "1.0", "id": format!("burst-{i}"), "source": "/load",
                    "type": "com.example.load", "datacontenttype": "text/plain", "data": data})
                .to_string(),
            );
            let req = http
                .post(format!("{base}/v1/events"))
                .bearer_auth(key)
                .header("content-type", "application/cloudevents+json")
                .body(body);
            async move {
                let r = req.send().await.expect("an answer, not a broken connection");
                let retry_after = r.headers().contains_key("retry-after");
                (i, r.status().as_u16(), retry_after)
            }
        })
        .buffer_unordered(clients)
        .collect()
        .await
}

/// The process's peak resident set (VmHWM), in KiB.
fn peak_rss_kb(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no VmHWM for {pid}"))
}
