//! A consensus whose append finds the stream moved on (the last expert's answer committed between
//! the fold and the append) folds again at once and decides with every answer: no redelivery, no
//! failed attempt counted against the message. Redelivered after a pause, the asker would wait
//! that pause, and a stream that kept moving could exhaust the message's deliveries.

use quorum_domain::consensus::ConsensusReached;
use quorum_domain::types;
use quorum_event_store::{EventStore, ExpectedVersion};
use quorum_testkit::{DEADLINE, wait_until};
use sqlx::Connection;

use crate::support::{Stack, responded, submission};

#[tokio::test]
async fn a_consensus_that_finds_its_stream_moved_on_folds_again_at_once() -> anyhow::Result<()> {
    let mut stack = Stack::start().await?;
    let store = stack.store.clone();
    let pool = stack.db.pool.clone();

    // A majority query (decided as soon as two of three agree) with two answers committed.
    let (stream, submitted) = submission(
        r#"{"question":"capital of France?","experts":["alpha","beta","gamma"]}"#.into(),
    )?;
    store
        .append(
            &stream,
            ExpectedVersion::Exact(0),
            std::slice::from_ref(&submitted),
        )
        .await?;
    for (n, expert) in ["alpha", "beta"].into_iter().enumerate() {
        let e = responded(&submitted, &stream, n as u32, expert, "Paris")?;
        store.append(&stream, ExpectedVersion::Any, &[e]).await?;
    }
    // The third answer written at version 4 and not committed yet: the consensus of the first
    // two, appended at version 4 as well, waits on it, then finds the version taken.
    let mut late = sqlx::PgConnection::connect(&stack.db.url).await?;
    let mut tx = late.begin().await?;
    let gamma = responded(&submitted, &stream, 2, "gamma", "Paris")?;
    EventStore::append_in(&mut tx, &stream, ExpectedVersion::Exact(3), &[gamma]).await?;

    stack.relay();
    let _consensus = stack.consensus()?;
    wait_until(
        "the consensus to wait on the uncommitted answer",
        DEADLINE,
        || async {
            sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE datname = current_database() AND wait_event_type = 'Lock'
                   AND query LIKE '%INSERT INTO events%'",
            )
            .fetch_one(&pool)
            .await
            .is_ok_and(|n| n >= 1)
        },
    )
    .await?;
    tx.commit().await?;

    let decided = || async {
        store
            .read_stream(&stream, 1, 100)
            .await
            .ok()
            .and_then(|events| {
                events
                    .into_iter()
                    .find(|r| r.event.ty == types::CONSENSUS_REACHED)
            })
    };
    wait_until("the query decided", DEADLINE, || async {
        decided().await.is_some()
    })
    .await?;
    let consensus = decided().await.expect("decided");
    assert_eq!(
        consensus.stream_version, 5,
        "decided after the third answer"
    );
    let reached: ConsensusReached =
        serde_json::from_slice(consensus.event.data.as_deref().unwrap_or_default())?;
    let mut majority = reached.majority.clone();
    majority.sort();
    assert_eq!(
        majority,
        ["alpha", "beta", "gamma"],
        "every answer counted, none late"
    );
    let attempts: i64 =
        sqlx::query_scalar("SELECT count(*) FROM failed_attempts WHERE consumer = 'consensus'")
            .fetch_one(&pool)
            .await?;
    assert_eq!(attempts, 0, "a conflict is not a failed attempt");
    let info = stack
        .js
        .get_stream(quorum_bus::EVENTS_STREAM)
        .await?
        .consumer_info("consensus")
        .await?;
    assert_eq!(
        info.num_redelivered, 0,
        "no message waited for a redelivery"
    );
    stack.stop().await
}
