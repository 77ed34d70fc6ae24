//! The audit chain against a real Postgres: it covers every event once, in commit order, after
//! downtime; a changed event breaks verification at its position; checkpoints record the head; the
//! auditors' export is tenant-scoped and in chain order.

use bytes::Bytes;
use quorum_audit::chainer;
use quorum_audit::config::ChainConfig;
use quorum_audit::verify::{self, Range};
use quorum_domain::{Event, StreamId, TenantId, types};
use quorum_event_store::{EventStore, ExpectedVersion};
use quorum_testkit::{DEADLINE, wait_until};
use sqlx::PgPool;

fn event(tenant: &str, stream: &StreamId, n: usize) -> Event {
    Event::new(
        "/test",
        "com.example.thing.happened",
        stream.clone(),
        TenantId::new(tenant).unwrap(),
        Bytes::from(format!("{{\"n\":{n}}}")),
    )
}

/// Appends `n` events in batches of 100 over `streams` streams of `tenant`.
async fn append(store: &EventStore, tenant: &str, streams: usize, n: usize) -> anyhow::Result<()> {
    let mut writers = Vec::new();
    for s in 0..streams {
        let store = store.clone();
        let tenant = tenant.to_owned();
        writers.push(tokio::spawn(async move {
            let stream = StreamId::new("thing", format!("{tenant}-{s}")).unwrap();
            let per = n / streams;
            for chunk in (0..per).collect::<Vec<_>>().chunks(100) {
                let events: Vec<_> = chunk.iter().map(|i| event(&tenant, &stream, *i)).collect();
                store.append(&stream, ExpectedVersion::Any, &events).await?;
            }
            anyhow::Ok(())
        }));
    }
    for w in writers {
        w.await??;
    }
    Ok(())
}

async fn chain_until_caught_up(pool: &PgPool) -> anyhow::Result<()> {
    while chainer::step(pool, 2000, types::AUDIT_CHECKPOINT)
        .await?
        .links
        > 0
    {}
    Ok(())
}

#[tokio::test]
async fn after_downtime_the_chain_covers_every_event_once_in_commit_order() -> anyhow::Result<()> {
    let db = quorum_testkit::postgres().await.fresh_db().await?;
    let store = EventStore::new(db.pool.clone());
    // 10,000 events from 8 concurrent writers while no chainer runs.
    append(&store, "acme", 8, 10_000).await?;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let config = ChainConfig {
        checkpoint_every: 4000,
        ..ChainConfig::default()
    };
    let task = tokio::spawn(quorum_audit::run(db.pool.clone(), config, shutdown.clone()));
    // It also follows what comes after it started.
    append(&store, "acme", 2, 200).await?;
    wait_until("the chain to cover every event", DEADLINE, || async {
        let (events, links): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM events WHERE type <> 'quorum.audit.checkpoint'),
                    (SELECT count(*) FROM audit_chain c JOIN events e USING (position)
                     WHERE e.type <> 'quorum.audit.checkpoint')",
        )
        .fetch_one(&db.pool)
        .await
        .unwrap_or_default();
        events == 10_200 && links == 10_200
    })
    .await?;
    shutdown.cancel();
    task.await?;
    chain_until_caught_up(&db.pool).await?;

    // Chain order is commit order, every event once, with gapless link numbers.
    let chained: Vec<i64> = sqlx::query_scalar("SELECT position FROM audit_chain ORDER BY seq")
        .fetch_all(&db.pool)
        .await?;
    let committed: Vec<i64> =
        sqlx::query_scalar("SELECT position FROM events ORDER BY tx_id, position")
            .fetch_all(&db.pool)
            .await?;
    assert_eq!(chained, committed);
    let (max_seq, count): (i64, i64) = sqlx::query_as("SELECT max(seq), count(*) FROM audit_chain")
        .fetch_one(&db.pool)
        .await?;
    assert_eq!(max_seq, count);

    // Checkpoints name a real head of the chain.
    let checkpoints = store
        .read_stream(&StreamId::parse(quorum_audit::CHECKPOINT_STREAM)?, 1, 100)
        .await?;
    assert!(checkpoints.len() >= 2, "one per 4000 links at least");
    for c in &checkpoints {
        let data: serde_json::Value = serde_json::from_slice(c.event.data.as_deref().unwrap())?;
        let hash: Vec<u8> = sqlx::query_scalar("SELECT hash FROM audit_chain WHERE seq = $1")
            .bind(data["seq"].as_i64().unwrap())
            .fetch_one(&db.pool)
            .await?;
        assert_eq!(hex::encode(hash), data["hash"].as_str().unwrap());
        assert_eq!(c.tenant.as_str(), quorum_domain::SYSTEM_TENANT);
    }
    let report = verify::verify(&db.pool, Range::default(), |_| {}).await?;
    assert!(report.ok(), "{report:?}");
    assert_eq!(report.checked as i64, count);
    Ok(())
}

#[tokio::test]
async fn a_changed_event_breaks_the_chain_at_its_position_until_restored() -> anyhow::Result<()> {
    let db = quorum_testkit::postgres().await.fresh_db().await?;
    let store = EventStore::new(db.pool.clone());
    append(&store, "acme", 2, 400).await?;
    chain_until_caught_up(&db.pool).await?;
    assert!(
        verify::verify(&db.pool, Range::default(), |_| {})
            .await?
            .ok()
    );

    let (position, original): (i64, Vec<u8>) =
        sqlx::query_as("SELECT position, data FROM events ORDER BY position OFFSET 250 LIMIT 1")
            .fetch_one(&db.pool)
            .await?;
    let set_data = |data: Vec<u8>| {
        let pool = db.pool.clone();
        async move {
            // Only a superuser who disables the append-only trigger can do this: the tamperer.
            let mut tx = pool.begin().await?;
            sqlx::query("ALTER TABLE events DISABLE TRIGGER events_append_only")
                .execute(&mut *tx)
                .await?;
            sqlx::query("UPDATE events SET data = $2 WHERE position = $1")
                .bind(position)
                .bind(data)
                .execute(&mut *tx)
                .await?;
            sqlx::query("ALTER TABLE events ENABLE TRIGGER events_append_only")
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            anyhow::Ok(())
        }
    };
    set_data(b"{\"n\":-1}".to_vec()).await?;
    let report = verify::verify(&db.pool, Range::default(), |_| {}).await?;
    let broken = report.broken.clone().expect("the chain is broken");
    assert_eq!(broken.position, position);
    assert_ne!(broken.expected, broken.found);
    assert!(!report.ok());
    // A range that ends before the change still verifies; one that covers it does not.
    let before = verify::verify(
        &db.pool,
        Range {
            from_position: None,
            to_position: Some(position - 1),
        },
        |_| {},
    )
    .await?;
    assert!(before.ok(), "{before:?}");

    set_data(original).await?;
    assert!(
        verify::verify(&db.pool, Range::default(), |_| {})
            .await?
            .ok()
    );
    Ok(())
}

#[tokio::test]
async fn two_chainers_at_once_link_each_event_once() -> anyhow::Result<()> {
    let db = quorum_testkit::postgres().await.fresh_db().await?;
    let store = EventStore::new(db.pool.clone());
    append(&store, "acme", 4, 2000).await?;
    let a = tokio::spawn({
        let pool = db.pool.clone();
        async move { chain_until_caught_up(&pool).await }
    });
    let b = tokio::spawn({
        let pool = db.pool.clone();
        async move { chain_until_caught_up(&pool).await }
    });
    a.await??;
    b.await??;
    chain_until_caught_up(&db.pool).await?;
    let (links, distinct): (i64, i64) =
        sqlx::query_as("SELECT count(*), count(DISTINCT position) FROM audit_chain")
            .fetch_one(&db.pool)
            .await?;
    assert_eq!((links, distinct), (2000, 2000));
    assert!(
        verify::verify(&db.pool, Range::default(), |_| {})
            .await?
            .ok()
    );
    Ok(())
}

/// Transaction ids are compared as numbers: an event whose id has more digits comes later in the
/// chain (and is the store's head), as commit order says, not earlier as its text would sort.
#[tokio::test]
async fn commit_order_holds_across_a_change_in_transaction_id_length() -> anyhow::Result<()> {
    let db = quorum_testkit::postgres().await.fresh_db().await?;
    let store = EventStore::new(db.pool.clone());
    let current = || async {
        let id: String = sqlx::query_scalar("SELECT pg_current_xact_id()::text")
            .fetch_one(&db.pool)
            .await?;
        anyhow::Ok(id.parse::<u64>()?)
    };
    let now = current().await?;
    let boundary = 10u64.pow(now.to_string().len() as u32);
    anyhow::ensure!(
        boundary - now < 200_000,
        "transaction ids too far from a power of ten ({now})"
    );
    // Each autocommitted call uses up one transaction id.
    while current().await? < boundary - 3 {}
    let before = StreamId::new("thing", "before")?;
    store
        .append(&before, ExpectedVersion::Any, &[event("acme", &before, 1)])
        .await?;
    while current().await? < boundary {}
    let after = StreamId::new("thing", "after")?;
    store
        .append(&after, ExpectedVersion::Any, &[event("acme", &after, 2)])
        .await?;

    chain_until_caught_up(&db.pool).await?;
    let chained: Vec<String> = sqlx::query_scalar(
        "SELECT e.stream_id FROM audit_chain c JOIN events e USING (position) ORDER BY c.seq",
    )
    .fetch_all(&db.pool)
    .await?;
    assert_eq!(chained, ["thing/before", "thing/after"]);
    let (head, _) = store.head().await?.expect("a head");
    let last: i64 =
        sqlx::query_scalar("SELECT position FROM events WHERE stream_id = 'thing/after'")
            .fetch_one(&db.pool)
            .await?;
    assert_eq!(head.position, last, "the head is the event committed last");
    Ok(())
}
