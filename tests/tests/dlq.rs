//! Dead letters end to end, against real NATS and Postgres: a poison message parked, the handler
//! fixed, the letter replayed to that consumer only and handled once, and the replay in the audit
//! chain with its operator and reason; a replay that fails again parks again with its whole
//! history; bulk replay at a rate; operators only, and each tenant its own letters.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use quorum_auth::Role;
use quorum_domain::{StreamId, TenantId, types};
use quorum_e2e::{RecordingHandler, handled_count, publish, test_event};
use quorum_event_store::{DeadLetter, FailedAttempt, park_dead_letter};
use quorum_runtime::consumer::{self, ConsumerConfig, Delivery, Handler, Outcome};
use quorum_runtime::{Readiness, Shutdown};
use quorum_testkit::{DEADLINE, wait_until};
use serde_json::{Value, json};
use sqlx::PgPool;

/// A handler that refuses every message while `broken`, then records them as [`RecordingHandler`].
struct Switchable {
    broken: Arc<AtomicBool>,
    inner: RecordingHandler,
}

impl Handler for Switchable {
    async fn handle(&self, delivery: &Delivery) -> Outcome {
        if self.broken.load(Ordering::SeqCst) {
            return Outcome::dead("handler cannot take this message yet");
        }
        self.inner.handle(delivery).await
    }
}

struct Stack {
    env: quorum_e2e::Env,
    shutdown: Shutdown,
    dlq: String,
    http: reqwest::Client,
}

/// A consumer `name` with a switchable handler, and the dlq-replayer.
async fn stack(name: &str, broken: Arc<AtomicBool>) -> anyhow::Result<Stack> {
    let env = quorum_e2e::env().await?;
    let shutdown = Shutdown::new();
    let handler = Arc::new(Switchable {
        broken,
        inner: RecordingHandler::new(env.db.pool.clone(), name),
    });
    let config = ConsumerConfig::new(
        name,
        vec![quorum_bus::subjects::event_type_filter(
            quorum_e2e::SOURCE_TYPE,
        )],
    );
    let (js, pool, token) = (env.js.clone(), env.db.pool.clone(), shutdown.token());
    shutdown.spawn(async move { consumer::run(js, pool, config, handler, token, || {}).await });
    let dlq_config = quorum_dlq_replayer::config::DlqConfig {
        http_addr: "127.0.0.1:0".parse()?,
        pump_poll: Duration::from_millis(50),
        ..Default::default()
    };
    let running = quorum_dlq_replayer::start(
        &dlq_config,
        env.db.pool.clone(),
        env.js.clone(),
        &shutdown,
        &Readiness::new(),
    )
    .await?;
    Ok(Stack {
        env,
        shutdown,
        dlq: format!("http://{}", running.http_addr),
        http: quorum_http_client::client(),
    })
}

impl Stack {
    async fn key(&self, tenant: &str, role: Role) -> anyhow::Result<String> {
        let tenant = TenantId::new(tenant)?;
        Ok(
            quorum_auth::create(&self.env.db.pool, &tenant, &[role], None)
                .await?
                .key,
        )
    }

    async fn post(&self, key: &str, path: &str, body: Value) -> anyhow::Result<(u16, Value)> {
        let r = self
            .http
            .post(format!("{}{path}", self.dlq))
            .bearer_auth(key)
            .json(&body)
            .send()
            .await?;
        Ok((r.status().as_u16(), r.json().await.unwrap_or_default()))
    }

    async fn get(&self, key: &str, path: &str) -> anyhow::Result<(u16, Value)> {
        let r = self
            .http
            .get(format!("{}{path}", self.dlq))
            .bearer_auth(key)
            .send()
            .await?;
        Ok((r.status().as_u16(), r.json().await.unwrap_or_default()))
    }
}

async fn parked(
    pool: &PgPool,
    consumer: &str,
) -> Vec<(uuid::Uuid, String, Option<uuid::Uuid>, Value)> {
    sqlx::query_as(
        "SELECT id, status, replayed_from, errors FROM dead_letters WHERE consumer = $1 ORDER BY created_at",
    )
    .bind(consumer)
    .fetch_all(pool)
    .await
    .unwrap_or_default()
}

#[tokio::test]
async fn a_poison_message_parked_then_replayed_after_the_fix_is_handled_once_and_audited()
-> anyhow::Result<()> {
    let broken = Arc::new(AtomicBool::new(true));
    let s = stack("poisoned", broken.clone()).await?;
    let pool = s.env.db.pool.clone();
    let stream = StreamId::new("test", "poison-1")?;
    publish(&s.env.js, &test_event("acme", &stream, "{\"n\":1}")).await?;
    wait_until("the message to be parked", DEADLINE, || async {
        parked(&pool, "poisoned").await.len() == 1
    })
    .await?;
    let letter = parked(&pool, "poisoned").await[0].0;
    // The park is an event too.
    let parked_events: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE type = $1 AND stream_id = $2")
            .bind(types::DLQ_PARKED)
            .bind(format!("dlq/{letter}"))
            .fetch_one(&pool)
            .await?;
    assert_eq!(parked_events, 1);

    broken.store(false, Ordering::SeqCst);
    let operator = s.key("acme", Role::Operator).await?;
    let (status, plan) = s
        .post(
            &operator,
            "/v1/dead-letters/replay",
            json!({ "ids": [letter], "reason": "handler fixed" }),
        )
        .await?;
    assert_eq!(status, 202, "{plan}");
    assert_eq!(plan["count"], 1);
    wait_until("the replayed message to be handled", DEADLINE, || async {
        handled_count(&pool).await.is_ok_and(|c| c == (1, 1))
    })
    .await?;
    wait_until("the letter to be marked replayed", DEADLINE, || async {
        parked(&pool, "poisoned").await[0].1 == "replayed"
    })
    .await?;
    // Handled exactly once: no second handling shows up while the consumer goes idle.
    wait_until("the consumer to be idle", DEADLINE, || {
        quorum_e2e::consumer_idle(&s.env.js, "poisoned")
    })
    .await?;
    assert_eq!(handled_count(&pool).await?, (1, 1));
    assert_eq!(quorum_e2e::attempt_count(&pool).await?, 1);

    // The replay is in the audit chain, with the operator and the reason.
    while quorum_audit::chainer::step(&pool, 1000, types::AUDIT_CHECKPOINT)
        .await?
        .links
        > 0
    {}
    let data: Vec<u8> = sqlx::query_scalar(
        "SELECT e.data FROM audit_chain c JOIN events e USING (position) WHERE e.type = $1",
    )
    .bind(types::DLQ_REPLAYED)
    .fetch_one(&pool)
    .await?;
    let data: Value = serde_json::from_slice(&data)?;
    assert_eq!(data["reason"], "handler fixed");
    let key_id: uuid::Uuid =
        sqlx::query_scalar("SELECT id FROM api_keys WHERE 'operator' = ANY(roles)")
            .fetch_one(&pool)
            .await?;
    assert_eq!(data["operator"], key_id.to_string());
    assert_eq!(data["dead_letter_id"], letter.to_string());
    s.shutdown.cancel();
    Ok(())
}

#[tokio::test]
async fn a_replay_that_fails_again_is_parked_again_with_its_whole_history() -> anyhow::Result<()> {
    let s = stack("still-broken", Arc::new(AtomicBool::new(true))).await?;
    let pool = s.env.db.pool.clone();
    publish(
        &s.env.js,
        &test_event("acme", &StreamId::new("test", "p2")?, "{}"),
    )
    .await?;
    wait_until("parked", DEADLINE, || async {
        parked(&pool, "still-broken").await.len() == 1
    })
    .await?;
    let first = parked(&pool, "still-broken").await[0].0;
    let operator = s.key("acme", Role::Operator).await?;
    let (status, _) = s
        .post(
            &operator,
            "/v1/dead-letters/replay",
            json!({ "ids": [first], "reason": "try again" }),
        )
        .await?;
    assert_eq!(status, 202);
    wait_until("parked again", DEADLINE, || async {
        parked(&pool, "still-broken").await.len() == 2
    })
    .await?;
    let letters = parked(&pool, "still-broken").await;
    assert_eq!(letters[0].1, "replayed");
    let (_, status, from, errors) = &letters[1];
    assert_eq!(status, "parked");
    assert_eq!(*from, Some(first));
    assert_eq!(
        errors.as_array().map(Vec::len),
        Some(2),
        "the first failure, then the replay's: {errors}"
    );
    let (code, shown) = s
        .get(&operator, &format!("/v1/dead-letters/{}", letters[1].0))
        .await?;
    assert_eq!(code, 200);
    assert_eq!(shown["replayed_from"], first.to_string());
    assert_eq!(shown["errors"].as_array().map(Vec::len), Some(2));
    s.shutdown.cancel();
    Ok(())
}

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
