//! A poison message parked, replayed after the fix and handled once, audited; a replay that
//! fails again parked again with its whole history.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use quorum_auth::Role;
use quorum_domain::{StreamId, types};
use quorum_e2e::{handled_count, publish, test_event};
use quorum_testkit::{DEADLINE, wait_until};
use serde_json::{Value, json};

use super::{parked, stack};

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
