//! Bulk replay of ten thousand letters at a rate, and who may act on whose letters.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use futures::StreamExt;
use quorum_auth::Role;
use quorum_domain::{StreamId, types};
use quorum_e2e::test_event;
use quorum_event_store::{DeadLetter, FailedAttempt, park_dead_letter};
use quorum_runtime::consumer::{self};
use quorum_testkit::wait_until;
use serde_json::{Value, json};
use sqlx::PgPool;

use super::stack;

fn letter(consumer: &str, tenant: &str, seq: u64) -> DeadLetter {
    let event = test_event(
        tenant,
        &StreamId::new("bulk", seq.to_string()).unwrap(),
        "{}",
    );
    let (headers, payload) = quorum_bus::encode(&event);
    DeadLetter {
        id: uuid::Uuid::now_v7(),
        consumer: consumer.into(),
        tenant: Some(tenant.into()),
        subject: quorum_bus::subjects::event(event.tenant.as_ref().unwrap(), &event.ty),
        stream_seq: Some(seq),
        event_id: Some(event.id.clone()),
        event_type: Some(event.ty.clone()),
        headers: quorum_bus::headers_json(Some(&headers)),
        payload: payload.to_vec(),
        attempts: vec![FailedAttempt {
            at: chrono::Utc::now(),
            error: "boom".into(),
        }],
        deliveries: 1,
        replayed_from: None,
    }
}

async fn park_many(pool: &PgPool, consumer: &str, tenant: &str, n: u64) -> anyhow::Result<()> {
    let mut tasks = Vec::new();
    for w in 0..8 {
        let (pool, consumer, tenant) = (pool.clone(), consumer.to_owned(), tenant.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut conn = pool.acquire().await?;
            for seq in (w..n).step_by(8) {
                park_dead_letter(&mut conn, &letter(&consumer, &tenant, seq + 1)).await?;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

#[tokio::test]
async fn ten_thousand_letters_replay_at_the_rate_set_each_once_with_progress() -> anyhow::Result<()>
{
    const N: u64 = 10_000;
    const RATE: f64 = 2_000.0;
    let s = stack("unused", Arc::new(AtomicBool::new(false))).await?;
    let pool = s.env.db.pool.clone();
    park_many(&pool, "bulk", "acme", N).await?;
    let operator = s.key("acme", Role::Operator).await?;
    let (status, dry) = s
        .post(
            &operator,
            "/v1/dead-letters/replay",
            json!({ "filter": { "consumer": "bulk" }, "dry_run": true }),
        )
        .await?;
    assert_eq!((status, dry["count"].as_u64()), (200, Some(N)));
    assert!(dry["job"].is_null());

    let started = Instant::now();
    let (status, plan) = s
        .post(
            &operator,
            "/v1/dead-letters/replay",
            json!({ "filter": { "consumer": "bulk" }, "reason": "bulk", "rate": RATE }),
        )
        .await?;
    assert_eq!(status, 202, "{plan}");
    let job = plan["job"].as_str().unwrap().to_owned();
    let seen = std::sync::Mutex::new(Vec::new());
    wait_until(
        "the replay to complete",
        Duration::from_secs(300),
        || async {
            let (_, p) = s
                .get(&operator, &format!("/v1/replays/{job}"))
                .await
                .unwrap_or_default();
            seen.lock().unwrap().push(p["done"].as_u64().unwrap_or(0));
            p["status"] == "completed"
        },
    )
    .await?;
    let seen = seen.into_inner().unwrap();
    let elapsed = started.elapsed();
    // The limiter lets no more than RATE a second through (a lower bound on time: never flaky).
    assert!(
        elapsed.as_secs_f64() >= (N as f64 - 1.0) / RATE,
        "{N} letters at {RATE}/s took only {elapsed:?}"
    );
    assert!(
        seen.iter().any(|d| *d > 0 && *d < N),
        "progress was visible: {seen:?}"
    );
    assert!(seen.windows(2).all(|w| w[0] <= w[1]));

    // Each letter once on the consumer's redeliver subject.
    let stream = s.env.js.get_stream(quorum_bus::EVENTS_STREAM).await?;
    let consumer = stream
        .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig {
            filter_subject: "quorum.redeliver.bulk.>".into(),
            ..Default::default()
        })
        .await?;
    let mut messages = consumer.messages().await?;
    let mut ids = HashSet::new();
    let mut total = 0;
    // Read until the subject has nothing more for a while: a letter published twice would show.
    loop {
        let wait = if total < N {
            Duration::from_secs(10)
        } else {
            Duration::from_secs(2)
        };
        let Ok(Some(m)) = tokio::time::timeout(wait, messages.next()).await else {
            break;
        };
        let m = m?;
        total += 1;
        let h = m
            .headers
            .as_ref()
            .and_then(|h| h.get(consumer::REPLAY_OF_HEADER))
            .map(|v| v.to_string());
        ids.insert(h.expect("a replay names its letter"));
        assert!(
            m.headers
                .as_ref()
                .and_then(|h| h.get("ce-replayof"))
                .is_some()
        );
    }
    assert_eq!((total, ids.len() as u64), (N, N));
    let replayed: i64 =
        sqlx::query_scalar("SELECT count(*) FROM dead_letters WHERE status = 'replayed'")
            .fetch_one(&pool)
            .await?;
    assert_eq!(replayed as u64, N);
    s.shutdown.cancel();
    Ok(())
}

#[tokio::test]
async fn only_operators_act_and_each_tenant_sees_its_own_letters() -> anyhow::Result<()> {
    let s = stack("unused", Arc::new(AtomicBool::new(false))).await?;
    let pool = s.env.db.pool.clone();
    park_many(&pool, "c1", "acme", 3).await?;
    let ids: Vec<uuid::Uuid> = sqlx::query_scalar("SELECT id FROM dead_letters ORDER BY id")
        .fetch_all(&pool)
        .await?;
    let operator = s.key("acme", Role::Operator).await?;
    let other = s.key("other", Role::Operator).await?;
    for role in [Role::Publisher, Role::Auditor] {
        let key = s.key("acme", role).await?;
        let (code, _) = s
            .post(
                &key,
                "/v1/dead-letters/replay",
                json!({ "ids": [ids[0]], "reason": "x" }),
            )
            .await?;
        assert_eq!(code, 403, "{role:?} may not replay");
        let (code, _) = s
            .post(
                &key,
                &format!("/v1/dead-letters/{}/discard", ids[0]),
                json!({ "reason": "x" }),
            )
            .await?;
        assert_eq!(code, 403, "{role:?} may not discard");
    }
    assert_eq!(s.get("qk_bogus_key", "/v1/dead-letters").await?.0, 401);

    let (code, list) = s.get(&operator, "/v1/dead-letters?consumer=c1").await?;
    assert_eq!(code, 200);
    assert_eq!(list["letters"].as_array().map(Vec::len), Some(3));
    assert_eq!(list["counts"]["c1"], 3);
    let (_, theirs) = s.get(&other, "/v1/dead-letters").await?;
    assert_eq!(theirs["letters"].as_array().map(Vec::len), Some(0));
    assert_eq!(
        s.get(&other, &format!("/v1/dead-letters/{}", ids[0]))
            .await?
            .0,
        404
    );
    let (code, _) = s
        .post(
            &other,
            "/v1/dead-letters/replay",
            json!({ "ids": [ids[0]], "reason": "x" }),
        )
        .await?;
    assert_eq!(code, 404);

    // Bad input changes nothing.
    let (code, _) = s
        .post(
            &operator,
            &format!("/v1/dead-letters/{}/discard", ids[0]),
            json!({ "reason": " " }),
        )
        .await?;
    assert_eq!(code, 400);
    let (code, _) = s
        .post(
            &operator,
            "/v1/dead-letters/replay",
            json!({ "ids": [ids[0]] }),
        )
        .await?;
    assert_eq!(code, 400, "a replay needs a reason");
    let (code, _) = s
        .post(
            &operator,
            "/v1/dead-letters/replay",
            json!({ "ids": [ids[0]], "reason": "x", "rate": 0 }),
        )
        .await?;
    assert_eq!(code, 400);
    assert_eq!(
        s.get(&operator, "/v1/dead-letters?status=weird").await?.0,
        400
    );
    let untouched: i64 =
        sqlx::query_scalar("SELECT count(*) FROM dead_letters WHERE status = 'parked'")
            .fetch_one(&pool)
            .await?;
    assert_eq!(untouched, 3);

    let (code, _) = s
        .post(
            &operator,
            &format!("/v1/dead-letters/{}/discard", ids[0]),
            json!({ "reason": "known bad data" }),
        )
        .await?;
    assert_eq!(code, 200);
    let (code, _) = s
        .post(
            &operator,
            &format!("/v1/dead-letters/{}/discard", ids[0]),
            json!({ "reason": "again" }),
        )
        .await?;
    assert_eq!(code, 404, "only a parked letter can be discarded");
    let data: Vec<u8> = sqlx::query_scalar("SELECT data FROM events WHERE type = $1")
        .bind(types::DLQ_DISCARDED)
        .fetch_one(&pool)
        .await?;
    let data: Value = serde_json::from_slice(&data)?;
    assert_eq!(data["reason"], "known bad data");
    let (_, list) = s
        .get(&operator, "/v1/dead-letters?status=discarded")
        .await?;
    assert_eq!(list["letters"].as_array().map(Vec::len), Some(1));
    s.shutdown.cancel();
    Ok(())
}
