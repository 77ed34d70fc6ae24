//! Appends against a real Postgres: optimistic concurrency, idempotency, append-only.

use std::sync::Arc;

use bytes::Bytes;
use quorum_domain::StreamId;
use quorum_event_store::{EventStore, ExpectedVersion, StoreError};

use crate::common;
use common::event;

async fn store() -> anyhow::Result<(EventStore, quorum_testkit::TestDb)> {
    let db = quorum_testkit::postgres().await.fresh_db().await?;
    Ok((EventStore::new(db.pool.clone()), db))
}

#[tokio::test]
async fn versions_are_checked_and_numbered_without_gaps() -> anyhow::Result<()> {
    let (store, _db) = store().await?;
    let s = StreamId::parse("query/1")?;
    let r = store
        .append(
            &s,
            ExpectedVersion::NoStream,
            &[event(&s, "1"), event(&s, "2")],
        )
        .await?;
    assert_eq!(
        r.events
            .iter()
            .map(|e| e.stream_version)
            .collect::<Vec<_>>(),
        [1, 2]
    );
    assert!(!r.all_duplicates());
    store
        .append(&s, ExpectedVersion::Exact(2), &[event(&s, "3")])
        .await?;
    // Both too low and too high are conflicts: a too-high version must not leave a gap.
    for wrong in [
        ExpectedVersion::NoStream,
        ExpectedVersion::Exact(1),
        ExpectedVersion::Exact(7),
    ] {
        match store.append(&s, wrong, &[event(&s, "x")]).await {
            Err(StoreError::Conflict { actual: 3, .. }) => {}
            other => panic!("{wrong:?}: expected a conflict at version 3, got {other:?}"),
        }
    }
    store
        .append(&s, ExpectedVersion::Any, &[event(&s, "4")])
        .await?;
    let read = store.read_stream(&s, 1, 100).await?;
    let data: Vec<_> = read.iter().map(|e| e.event.data.clone().unwrap()).collect();
    assert_eq!(
        data,
        ["1", "2", "3", "4"].map(|d| Bytes::from(d.to_owned()))
    );
    assert_eq!(
        read.iter().map(|e| e.stream_version).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    Ok(())
}

#[tokio::test]
async fn concurrent_appends_at_one_version_have_one_winner() -> anyhow::Result<()> {
    let (store, _db) = store().await?;
    let s = StreamId::parse("query/race")?;
    store
        .append(&s, ExpectedVersion::NoStream, &[event(&s, "0")])
        .await?;
    let barrier = Arc::new(tokio::sync::Barrier::new(8));
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (store, s, barrier) = (store.clone(), s.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            store
                .append(
                    &s,
                    ExpectedVersion::Exact(1),
                    &[event(&s, &format!("w{i}"))],
                )
                .await
        }));
    }
    let mut won = 0;
    for t in tasks {
        match t.await? {
            Ok(_) => won += 1,
            Err(StoreError::Conflict { .. }) => {}
            Err(e) => panic!("unexpected error {e:?}"),
        }
    }
    assert_eq!(won, 1);
    assert_eq!(store.stream_version(&s).await?, 2);
    Ok(())
}

#[tokio::test]
async fn any_appends_under_contention_are_gapless() -> anyhow::Result<()> {
    let (store, _db) = store().await?;
    let s = StreamId::parse("query/any")?;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (store, s) = (store.clone(), s.clone());
        tasks.push(tokio::spawn(async move {
            for j in 0..5 {
                store
                    .append(&s, ExpectedVersion::Any, &[event(&s, &format!("{i}-{j}"))])
                    .await?;
            }
            Ok::<_, StoreError>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let versions: Vec<_> = store
        .read_stream(&s, 1, 100)
        .await?
        .iter()
        .map(|e| e.stream_version)
        .collect();
    assert_eq!(versions, (1..=40).collect::<Vec<_>>());
    Ok(())
}

#[tokio::test]
async fn the_same_event_twice_is_stored_once() -> anyhow::Result<()> {
    let (store, db) = store().await?;
    let s = StreamId::parse("query/dup")?;
    let e = event(&s, "hello");
    let first = store
        .append(&s, ExpectedVersion::NoStream, std::slice::from_ref(&e))
        .await?;
    // Sequentially, even with a stale expected version: the caller gets the first result back.
    let second = store
        .append(&s, ExpectedVersion::NoStream, std::slice::from_ref(&e))
        .await?;
    assert!(!first.events[0].duplicate);
    assert!(second.events[0].duplicate);
    assert_eq!(first.events[0].position, second.events[0].position);

    // Concurrently: exactly one writes, every caller succeeds.
    let c = event(&s, "concurrent");
    let barrier = Arc::new(tokio::sync::Barrier::new(8));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (store, s, c, barrier) = (store.clone(), s.clone(), c.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            store.append(&s, ExpectedVersion::Exact(1), &[c]).await
        }));
    }
    let mut fresh = 0;
    let mut positions = std::collections::HashSet::new();
    for t in tasks {
        let r = t.await??;
        fresh += usize::from(!r.events[0].duplicate);
        positions.insert(r.events[0].position);
    }
    assert_eq!(fresh, 1);
    assert_eq!(positions.len(), 1);
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&db.pool)
        .await?;
    assert_eq!(stored, 2);

    // Same (source, id), other content: refused.
    let mut other = e.clone();
    other.data = Some(Bytes::from_static(b"changed"));
    assert!(matches!(
        store.append(&s, ExpectedVersion::Any, &[other]).await,
        Err(StoreError::IdConflict { .. })
    ));
    Ok(())
}

#[tokio::test]
async fn a_batch_with_some_stored_events_appends_the_rest() -> anyhow::Result<()> {
    let (store, _db) = store().await?;
    let s = StreamId::parse("query/mix")?;
    let (a, b) = (event(&s, "a"), event(&s, "b"));
    store
        .append(&s, ExpectedVersion::NoStream, std::slice::from_ref(&a))
        .await?;
    let r = store.append(&s, ExpectedVersion::Exact(1), &[a, b]).await?;
    assert!(r.events[0].duplicate);
    assert_eq!(
        (r.events[1].duplicate, r.events[1].stream_version),
        (false, 2)
    );
    Ok(())
}

#[tokio::test]
async fn events_are_append_only_and_bad_input_changes_nothing() -> anyhow::Result<()> {
    let (store, db) = store().await?;
    let s = StreamId::parse("query/ro")?;
    store
        .append(&s, ExpectedVersion::NoStream, &[event(&s, "x")])
        .await?;
    assert!(
        sqlx::query("UPDATE events SET type = 'y'")
            .execute(&db.pool)
            .await
            .is_err()
    );
    assert!(
        sqlx::query("DELETE FROM events")
            .execute(&db.pool)
            .await
            .is_err()
    );

    let mut no_tenant = event(&s, "y");
    no_tenant.tenant = None;
    let mut no_id = event(&s, "z");
    no_id.id = String::new();
    for bad in [no_tenant, no_id] {
        assert!(matches!(
            store.append(&s, ExpectedVersion::Any, &[bad]).await,
            Err(StoreError::Invalid { .. })
        ));
    }
    assert!(store.append(&s, ExpectedVersion::Any, &[]).await.is_err());
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&db.pool)
        .await?;
    assert_eq!(stored, 1);
    Ok(())
}
