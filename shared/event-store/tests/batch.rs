//! The batcher against a real Postgres: concurrent reads and appends gathered into one statement
//! each, answering every caller as a statement of its own would.

use std::collections::HashSet;

use futures::future::join_all;
use quorum_domain::StreamId;
use quorum_event_store::{Batcher, EventStore, ExpectedVersion, StoreError};
use tokio_util::task::TaskTracker;

use crate::common;
use common::event;

fn streams(n: usize, tag: &str) -> Vec<StreamId> {
    (0..n)
        .map(|i| StreamId::parse(format!("query/{tag}-{i}")).unwrap())
        .collect()
}

fn start(store: &EventStore) -> (Batcher, TaskTracker) {
    let tracker = TaskTracker::new();
    (Batcher::start(store.clone(), &tracker), tracker)
}

/// Drops the handle and waits for the batcher's tasks to answer what they hold and end.
async fn stop(batcher: Batcher, tracker: TaskTracker) {
    drop(batcher);
    tracker.close();
    tracker.wait().await;
}

// The tests run on tokio's current-thread runtime: `join_all` polls every call once, so all of
// them queue before the batcher's task runs, and they go in one group.

#[tokio::test]
async fn concurrent_reads_each_get_their_own_stream() -> anyhow::Result<()> {
    let db = quorum_testkit::postgres().await.fresh_db().await?;
    let store = EventStore::new(db.pool.clone());
    let streams = streams(40, "r");
    for (i, s) in streams.iter().enumerate() {
        // Stream i holds i + 1 events; the last stream is left empty.
        if i + 1 < streams.len() {
            let events: Vec<_> = (0..=i).map(|k| event(s, &format!("{i}.{k}"))).collect();
            store.append(s, ExpectedVersion::NoStream, &events).await?;
        }
    }
    let (batcher, tracker) = start(&store);
    // Every stream read twice at once: both callers get it.
    let reads = join_all(
        streams
            .iter()
            .chain(&streams)
            .map(|s| batcher.read_stream(s)),
    )
    .await;
    for (n, read) in reads.into_iter().enumerate() {
        let i = n % streams.len();
        let read = read?;
        let expected = if i + 1 < streams.len() { i + 1 } else { 0 };
        assert_eq!(read.len(), expected, "stream {i}");
        for (k, r) in read.iter().enumerate() {
            assert_eq!(r.stream_id, streams[i]);
            assert_eq!(r.stream_version, k as u64 + 1);
            assert_eq!(r.event.data.as_deref(), Some(format!("{i}.{k}").as_bytes()));
        }
        assert_eq!(read, store.read_stream(&streams[i], 1, 100).await?);
    }
    stop(batcher, tracker).await;
    Ok(())
}

#[tokio::test]
async fn concurrent_appends_commit_together_and_keep_their_versions() -> anyhow::Result<()> {
    let db = quorum_testkit::postgres().await.fresh_db().await?;
    let store = EventStore::new(db.pool.clone());
    let streams = streams(30, "a");
    let submitted: Vec<_> = streams.iter().map(|s| event(s, "submitted")).collect();
    for (s, e) in streams.iter().zip(&submitted) {
        store
            .append(s, ExpectedVersion::NoStream, std::slice::from_ref(e))
            .await?;
    }
    let (batcher, tracker) = start(&store);
    // Stream 0 is appended at a stale version; stream 1 gets back an event it holds already (a
    // redelivery), at the version it was appended at; every other stream two results at version 1.
    let stale = event(&streams[0], "late");
    let parts: Vec<(ExpectedVersion, Vec<_>)> = streams
        .iter()
        .enumerate()
        .map(|(i, s)| match i {
            0 => (ExpectedVersion::NoStream, vec![stale.clone()]),
            1 => (ExpectedVersion::NoStream, vec![submitted[1].clone()]),
            _ => (
                ExpectedVersion::Exact(1),
                vec![event(s, "x"), event(s, "y")],
            ),
        })
        .collect();
    let results = join_all(
        streams
            .iter()
            .zip(&parts)
            .map(|(s, (expected, events))| batcher.append(s, *expected, events)),
    )
    .await;
    let mut results = results.into_iter();
    match results.next().unwrap() {
        Err(StoreError::Conflict { actual, .. }) => assert_eq!(actual, 1),
        other => panic!("a stale version must conflict, got {other:?}"),
    }
    let redelivered = results.next().unwrap()?;
    assert!(redelivered.all_duplicates());
    assert_eq!(redelivered.events[0].stream_version, 1);
    for (i, result) in results.enumerate() {
        let result = result?;
        let versions: Vec<u64> = result.events.iter().map(|a| a.stream_version).collect();
        assert_eq!(versions, [2, 3], "stream {}", i + 2);
        assert!(!result.all_duplicates());
    }
    // Nothing of the stale append was written; the rest is in the streams in order.
    assert_eq!(store.read_stream(&streams[0], 1, 10).await?.len(), 1);
    let mut transactions = HashSet::new();
    for s in &streams[2..] {
        let read = store.read_stream(s, 1, 10).await?;
        let data: Vec<&[u8]> = read
            .iter()
            .filter_map(|r| r.event.data.as_deref())
            .collect();
        assert_eq!(data, [&b"submitted"[..], b"x", b"y"]);
        transactions.insert(read[1].tx_id);
        transactions.insert(read[2].tx_id);
    }
    // The 28 appends that applied were one statement, one commit.
    assert_eq!(transactions.len(), 1);
    stop(batcher, tracker).await;
    Ok(())
}

#[tokio::test]
async fn two_appends_at_one_version_of_one_stream_let_exactly_one_win() -> anyhow::Result<()> {
    let db = quorum_testkit::postgres().await.fresh_db().await?;
    let store = EventStore::new(db.pool.clone());
    let s = StreamId::parse("query/race")?;
    store
        .append(&s, ExpectedVersion::NoStream, &[event(&s, "submitted")])
        .await?;
    let (batcher, tracker) = start(&store);
    let (a, b) = (event(&s, "decided by a"), event(&s, "decided by b"));
    let (ra, rb) = tokio::join!(
        batcher.append(&s, ExpectedVersion::Exact(1), std::slice::from_ref(&a)),
        batcher.append(&s, ExpectedVersion::Exact(1), std::slice::from_ref(&b)),
    );
    assert!(ra.is_ok(), "the first in line wins: {ra:?}");
    assert!(
        matches!(rb, Err(StoreError::Conflict { actual: 2, .. })),
        "the second finds the stream moved on: {rb:?}"
    );
    let read = store.read_stream(&s, 1, 10).await?;
    assert_eq!(read.len(), 2);
    assert_eq!(read[1].event.id, a.id);
    // What an append of its own refuses, the batcher refuses too, and writes nothing.
    let mut other_tenant = event(&s, "elsewhere");
    other_tenant.tenant = Some(quorum_domain::TenantId::new("globex")?);
    for bad in [vec![], vec![event(&s, "mine"), other_tenant]] {
        let refused = batcher.append(&s, ExpectedVersion::Exact(2), &bad).await;
        assert!(
            matches!(refused, Err(StoreError::Invalid { .. })),
            "{refused:?}"
        );
    }
    assert_eq!(store.read_stream(&s, 1, 10).await?.len(), 2);
    stop(batcher, tracker).await;
    Ok(())
}

#[tokio::test]
async fn a_lost_connection_costs_one_group_and_loses_nothing() -> anyhow::Result<()> {
    let db = quorum_testkit::postgres().await.fresh_db().await?;
    let store = EventStore::new(db.pool.clone());
    let s = StreamId::parse("query/lost")?;
    store
        .append(&s, ExpectedVersion::NoStream, &[event(&s, "submitted")])
        .await?;
    let (batcher, tracker) = start(&store);
    // The batcher's two tasks take their connections.
    assert_eq!(batcher.read_stream(&s).await?.len(), 1);
    batcher
        .append(&s, ExpectedVersion::Exact(1), &[event(&s, "first")])
        .await?;
    // Postgres drops them (a restart, a network cut, an administrator).
    let killed: i64 = sqlx::query_scalar(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid() AND state = 'idle'",
    )
    .fetch_one(&mut *db.pool.acquire().await?)
    .await?;
    assert!(killed >= 2, "the batcher's connections were idle: {killed}");
    // Each caller whose group failed does its work on its own, once; later groups take fresh
    // connections.
    for round in 0..3u64 {
        let read = loop {
            // A pooled connection killed above fails once; the caller retries, as a consumer's
            // redelivery would.
            match batcher.read_stream(&s).await {
                Ok(read) => break read,
                Err(e) => assert!(e.is_transient(), "{e}"),
            }
        };
        assert_eq!(read.len() as u64, 2 + round);
        let next = event(&s, &format!("after {round}"));
        let appended = loop {
            match batcher
                .append(
                    &s,
                    ExpectedVersion::Exact(2 + round),
                    std::slice::from_ref(&next),
                )
                .await
            {
                Ok(appended) => break appended,
                Err(e) => assert!(e.is_transient(), "{e}"),
            }
        };
        assert_eq!(appended.events[0].stream_version, 3 + round);
    }
    let ids: Vec<String> = store
        .read_stream(&s, 1, 100)
        .await?
        .into_iter()
        .map(|r| r.event.id)
        .collect();
    assert_eq!(ids.len(), 5, "nothing lost, nothing twice: {ids:?}");
    // And the batcher groups again, on a fresh connection.
    let fresh = streams(3, "fresh");
    let firsts: Vec<_> = fresh.iter().map(|f| event(f, "one")).collect();
    let appended = join_all(
        fresh
            .iter()
            .zip(&firsts)
            .map(|(f, e)| batcher.append(f, ExpectedVersion::NoStream, std::slice::from_ref(e))),
    )
    .await;
    let mut transactions = HashSet::new();
    for (f, a) in fresh.iter().zip(appended) {
        assert_eq!(a?.events[0].stream_version, 1);
        transactions.insert(store.read_stream(f, 1, 1).await?[0].tx_id);
    }
    assert_eq!(transactions.len(), 1, "one statement for the three");
    stop(batcher, tracker).await;
    Ok(())
}
