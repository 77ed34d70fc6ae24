//! Upstream systems publishing to `QUORUM_INGEST`: stored exactly once; what can never be accepted
//! is parked as a dead letter with its reason, never dropped.

use async_nats::HeaderMap;
use quorum_testkit::{DEADLINE, wait_until};
use serde_json::json;

use crate::common;
use common::ingest;

#[tokio::test]
async fn binary_and_structured_messages_are_stored_once() -> anyhow::Result<()> {
    let ing = ingest(|_| {}).await?;
    let js = async_nats::jetstream::new(async_nats::connect(ing.nats.url()).await?);
    let mut binary = HeaderMap::new();
    for (k, v) in [
        ("ce-specversion", "1.0"),
        ("ce-id", "n-1"),
        ("ce-source", "nats://upstream"),
        ("ce-type", "com.example.sensor.read"),
        ("ce-subject", "sensor/7"),
        ("content-type", "application/json"),
    ] {
        binary.insert(k, v);
    }
    let structured = json!({"specversion": "1.0", "id": "n-2", "source": "nats://upstream",
        "type": "com.example.sensor.read", "data": {"t": 21}});
    // Published twice each, as an upstream retry would: stored once.
    for _ in 0..2 {
        js.publish_with_headers(
            "quorum.ingest.acme.com.example.sensor.read",
            binary.clone(),
            "{\"t\":20}".into(),
        )
        .await?
        .await?;
        js.publish(
            "quorum.ingest.acme.com.example.sensor.read",
            structured.to_string().into(),
        )
        .await?
        .await?;
    }
    wait_until("both events stored", DEADLINE, || async {
        ing.events_stored().await.is_ok_and(|n| n == 2)
    })
    .await?;
    let rows: Vec<(String, String, Vec<u8>)> =
        sqlx::query_as("SELECT event_id, tenant, data FROM events ORDER BY event_id")
            .fetch_all(&ing.db.pool)
            .await?;
    assert_eq!(
        rows[0],
        ("n-1".into(), "acme".into(), b"{\"t\":20}".to_vec())
    );
    assert_eq!(rows[1].0, "n-2");
    // Every message was consumed: the work queue is empty, so nothing waits for a redelivery.
    wait_until("the ingest queue to drain", DEADLINE, || async {
        let mut stream = js.get_stream(quorum_bus::INGEST_STREAM).await.ok()?;
        let info = stream.info().await.ok()?;
        (info.state.messages == 0).then_some(())
    })
    .await?;
    assert_eq!(ing.events_stored().await?, 2);
    Ok(())
}

#[tokio::test]
async fn an_invalid_message_is_parked_with_its_reason() -> anyhow::Result<()> {
    let ing = ingest(|_| {}).await?;
    let js = async_nats::jetstream::new(async_nats::connect(ing.nats.url()).await?);
    let bad_time = json!({"specversion": "1.0", "id": "bad-1", "source": "/s", "type": "t", "time": "lunchtime"});
    let wrong_tenant = json!({"specversion": "1.0", "id": "bad-2", "source": "/s", "type": "t", "tenant": "globex"});
    for body in [
        bad_time.to_string(),
        wrong_tenant.to_string(),
        "not json".to_owned(),
    ] {
        js.publish("quorum.ingest.acme.t", body.into())
            .await?
            .await?;
    }
    wait_until("three dead letters", DEADLINE, || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM dead_letters WHERE consumer = 'ingest'")
            .fetch_one(&ing.db.pool)
            .await
            .is_ok_and(|n| n == 3)
    })
    .await?;
    let errors: Vec<String> = sqlx::query_scalar(
        "SELECT errors::text FROM dead_letters WHERE consumer = 'ingest' ORDER BY created_at",
    )
    .fetch_all(&ing.db.pool)
    .await?;
    let all = errors.join("\n");
    assert!(
        all.contains("time"),
        "the reason names the attribute: {all}"
    );
    assert!(all.contains("tenant"), "{all}");
    assert_eq!(ing.events_stored().await?, 0);
    // Each park is on record as an event.
    let parks: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE type = 'quorum.dlq.parked'")
            .fetch_one(&ing.db.pool)
            .await?;
    assert_eq!(parks, 3);
    Ok(())
}

/// A burst far above the tenant's rate, every message acknowledged by JetStream: each waits its
/// turn on the stream and is stored, however many times it comes back; none is parked. (Parking
/// them, as five refused deliveries once did, lost what the publisher was told was kept; `quorum
/// soak` found it.)
#[tokio::test]
async fn a_burst_over_the_tenants_rate_waits_and_is_stored_in_full() -> anyhow::Result<()> {
    let ing = ingest(|c| {
        c.limits.max_batch_events = 10;
        c.rate.events_per_second = 20;
        c.rate.burst = 10;
    })
    .await?;
    let js = async_nats::jetstream::new(async_nats::connect(ing.nats.url()).await?);
    for i in 0..120 {
        let event = json!({"specversion": "1.0", "id": format!("burst-{i}"), "source": "/burst",
            "type": "com.example.burst", "data": {"i": i}});
        js.publish(
            "quorum.ingest.acme.com.example.burst",
            event.to_string().into(),
        )
        .await?
        .await?;
    }
    // 120 events at 20 a second after a burst of 10: six seconds and more of waiting, with
    // most messages delivered again and again.
    wait_until("every event stored", DEADLINE * 2, || async {
        ing.events_stored().await.is_ok_and(|n| n == 120)
    })
    .await?;
    let parked: i64 = sqlx::query_scalar("SELECT count(*) FROM dead_letters")
        .fetch_one(&ing.db.pool)
        .await?;
    assert_eq!(parked, 0, "nothing acknowledged is parked for waiting");
    let attempts: i64 = sqlx::query_scalar("SELECT count(*) FROM failed_attempts")
        .fetch_one(&ing.db.pool)
        .await?;
    assert_eq!(
        attempts, 0,
        "waiting is not failing: no failed attempt is written"
    );
    Ok(())
}
