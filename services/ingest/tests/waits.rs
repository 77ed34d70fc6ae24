//! Waits on a query against real Postgres and NATS: a wait whose wake-up was missed still gets
//! its answer, and a tenant over its cap of open waits gets 429 while another tenant is served.
//! The `queries` rows are written here as the projection writes them; the end-to-end test with
//! the projection itself is `tests/tests/waits.rs`.

use std::time::Duration;

use quorum_auth::Role;
use quorum_testkit::{DEADLINE, wait_until};
use serde_json::{Value, json};

use crate::common;
use common::{Ingest, ingest};

/// Long enough that nothing in these tests is answered by the safety re-check.
const RECHECK: Duration = Duration::from_secs(3600);

/// Submits a question as `key`; returns its query id.
async fn submit(s: &Ingest, key: &str) -> anyhow::Result<String> {
    let r = s
        .http
        .post(s.url("/v1/queries"))
        .bearer_auth(key)
        .header("content-type", "application/json")
        .body(json!({"question": "What is the capital of France?"}).to_string())
        .send()
        .await?;
    anyhow::ensure!(r.status().as_u16() == 202, "submit: {}", r.status());
    let v: Value = serde_json::from_slice(&r.bytes().await?)?;
    Ok(v["query_id"].as_str().expect("a query id").to_owned())
}

/// The query's read-model row, pending, as the projection inserts it (without notifying).
async fn pending_row(s: &Ingest, id: &str, tenant: &str) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO queries (query_id, stream_id, tenant, question, submitted_at, deadline_at)
         VALUES ($1, 'query/' || $1, $2, 'What is the capital of France?', now(), 'infinity')",
    )
    .bind(id)
    .bind(tenant)
    .execute(&s.db.pool)
    .await?;
    Ok(())
}

/// Decides the query in the read model without a notification: a wake-up that never comes.
async fn decide_silently(s: &Ingest, id: &str) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE queries SET status = 'reached', consensus = '{\"answer\": \"Paris\"}',
                decided_at = now()
         WHERE query_id = $1",
    )
    .bind(id)
    .execute(&s.db.pool)
    .await?;
    Ok(())
}

/// Tells the waits of `id` that it changed, as the projection does in the statement that
/// decides it.
async fn notify_decided(s: &Ingest, id: &str) -> anyhow::Result<()> {
    sqlx::query("SELECT pg_notify('quorum_queries', $1)")
        .bind(id)
        .execute(&s.db.pool)
        .await?;
    Ok(())
}

/// An open `/watch`, read event by event.
struct Watch {
    response: reqwest::Response,
    buffer: Vec<u8>,
}

impl Watch {
    async fn open(s: &Ingest, key: &str, id: &str) -> anyhow::Result<reqwest::Response> {
        Ok(s.http
            .get(s.url(&format!("/v1/queries/{id}/watch")))
            .bearer_auth(key)
            .send()
            .await?)
    }

    /// The next (event, data), or None when the stream ended.
    async fn next(&mut self) -> anyhow::Result<Option<(String, Value)>> {
        loop {
            if let Some(end) = self.buffer.windows(2).position(|w| w == b"\n\n") {
                let bytes: Vec<u8> = self.buffer.drain(..end + 2).collect();
                let block = String::from_utf8_lossy(&bytes);
                let (mut kind, mut data) = (String::new(), String::new());
                for line in block.lines() {
                    if let Some(k) = line.strip_prefix("event:") {
                        kind = k.trim().to_owned();
                    } else if let Some(d) = line.strip_prefix("data:") {
                        data.push_str(d.trim_start());
                    }
                }
                if kind.is_empty() {
                    continue; // a keep-alive comment
                }
                return Ok(Some((kind, serde_json::from_str(&data)?)));
            }
            match self.response.chunk().await? {
                Some(c) => self.buffer.extend_from_slice(&c),
                None => return Ok(None),
            }
        }
    }
}

#[tokio::test]
async fn a_wait_whose_wake_up_was_missed_still_gets_its_answer() -> anyhow::Result<()> {
    let s = ingest(|c| c.waits.recheck = RECHECK).await?;
    let key = s.key("acme", &[Role::Publisher]).await?;

    // Decided before the wait began, and the notification went to nobody: the wait is on a
    // replica, which did not see the query submitted, and its first read answers (long before
    // the wait's 60 s are over).
    let replica = s.replica(|c| c.waits.recheck = RECHECK).await?;
    let early = submit(&s, &key).await?;
    pending_row(&s, &early, "acme").await?;
    decide_silently(&s, &early).await?;
    let answered = tokio::time::timeout(
        DEADLINE / 2,
        s.get_from(replica, &key, &format!("/v1/queries/{early}?wait=60s")),
    )
    .await??;
    assert_eq!(answered.json["status"], "reached", "{:?}", answered.json);

    // Decided while the watch waits, with no notification, and then Postgres drops the
    // listener's connection: the listener listens again, and every wait reads again.
    let id = submit(&s, &key).await?;
    pending_row(&s, &id, "acme").await?;
    let response = Watch::open(&s, &key, &id).await?;
    assert_eq!(response.status().as_u16(), 200);
    let mut watch = Watch {
        response,
        buffer: Vec::new(),
    };
    let (kind, first) = tokio::time::timeout(DEADLINE, watch.next())
        .await??
        .expect("a first event");
    assert_eq!(
        (kind.as_str(), &first["status"]),
        ("progress", &json!("pending"))
    );
    wait_until("ingest to listen", DEADLINE, || async {
        let pids: Vec<i32> = sqlx::query_scalar(
            "SELECT pid FROM pg_stat_activity
             WHERE query LIKE 'LISTEN%quorum_queries%' AND pid <> pg_backend_pid()",
        )
        .fetch_all(&s.db.pool)
        .await
        .ok()?;
        (!pids.is_empty()).then_some(())
    })
    .await?;
    decide_silently(&s, &id).await?;
    let terminated: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE query LIKE 'LISTEN%quorum_queries%' AND pid <> pg_backend_pid()",
    )
    .fetch_all(&s.db.pool)
    .await?;
    assert!(terminated.iter().all(|t| *t) && !terminated.is_empty());
    // Long before the re-check: the listener's return woke it.
    let (kind, decided) = tokio::time::timeout(DEADLINE, watch.next())
        .await??
        .expect("a decided event");
    assert_eq!(kind, "decided", "{decided}");
    assert_eq!(decided["consensus"]["answer"], "Paris");
    assert!(
        tokio::time::timeout(DEADLINE, watch.next())
            .await??
            .is_none(),
        "the stream ends with the decision"
    );
    s.shutdown.cancel();
    Ok(())
}

/// A query submitted here is not read before its decision's notification wakes its wait (ADR
/// 39). A decision whose notification never came (which Postgres does not do to a connection
/// that stays up) is found by the wait's re-check, long before the wait is over.
#[tokio::test]
async fn a_decision_never_notified_is_found_by_the_recheck() -> anyhow::Result<()> {
    let s = ingest(|c| c.waits.recheck = Duration::from_secs(1)).await?;
    let key = s.key("acme", &[Role::Publisher]).await?;
    wait_until("ingest to listen", DEADLINE, || async {
        let listening: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'LISTEN%quorum_queries%'",
        )
        .fetch_one(&s.db.pool)
        .await
        .ok()?;
        (listening > 0).then_some(())
    })
    .await?;
    let id = submit(&s, &key).await?;
    pending_row(&s, &id, "acme").await?;
    decide_silently(&s, &id).await?;
    let answered = tokio::time::timeout(
        DEADLINE / 2,
        s.get(&key, &format!("/v1/queries/{id}?wait=60s")),
    )
    .await??;
    assert_eq!(answered.json["status"], "reached", "{:?}", answered.json);
    s.shutdown.cancel();
    Ok(())
}

#[tokio::test]
async fn a_tenant_over_its_waits_gets_429_while_another_is_served() -> anyhow::Result<()> {
    let s = ingest(|c| {
        c.waits.max_per_tenant = 2;
        c.waits.recheck = RECHECK;
    })
    .await?;
    let acme = s.key("acme", &[Role::Publisher]).await?;
    let other = s.key("other", &[Role::Publisher]).await?;
    let id = submit(&s, &acme).await?;

    // Two watches open (the waits are taken before the answer's head is sent)...
    let first = Watch::open(&s, &acme, &id).await?;
    let second = Watch::open(&s, &acme, &id).await?;
    assert_eq!(
        (first.status().as_u16(), second.status().as_u16()),
        (200, 200)
    );
    // ...so a third, or a ?wait=, is refused with a reason and when to come back.
    let third = Watch::open(&s, &acme, &id).await?;
    assert_eq!(third.status().as_u16(), 429);
    assert_eq!(third.headers()["retry-after"], "1");
    assert_eq!(
        third.headers()["content-type"],
        "application/problem+json",
        "{:?}",
        third.headers()
    );
    let waited = s.get(&acme, &format!("/v1/queries/{id}?wait=10s")).await?;
    assert_eq!(waited.status, 429, "{:?}", waited.json);
    assert!(
        waited.json["detail"]
            .as_str()
            .is_some_and(|d| d.contains("waits")),
        "{:?}",
        waited.json
    );
    // Reading without waiting is still served.
    let read = s.get(&acme, &format!("/v1/queries/{id}")).await?;
    assert_eq!(
        read.status, 404,
        "not in the read model yet: {:?}",
        read.json
    );

    // Another tenant has its own share.
    let theirs = submit(&s, &other).await?;
    pending_row(&s, &theirs, "other").await?;
    decide_silently(&s, &theirs).await?;
    notify_decided(&s, &theirs).await?;
    let served = s
        .get(&other, &format!("/v1/queries/{theirs}?wait=10s"))
        .await?;
    assert_eq!(served.status, 200, "{:?}", served.json);
    assert_eq!(served.json["status"], "reached");
    let watched = Watch::open(&s, &other, &theirs).await?;
    assert_eq!(watched.status().as_u16(), 200);

    // A watch whose client went away frees its room.
    drop(first);
    wait_until("acme's room back", DEADLINE, || async {
        let r = Watch::open(&s, &acme, &id).await.ok()?;
        (r.status().as_u16() == 200).then_some(())
    })
    .await?;
    drop(second);
    s.shutdown.cancel();
    Ok(())
}
