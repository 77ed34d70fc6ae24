//! Group commit against a real Postgres: many streams in one statement, all or nothing.

use quorum_domain::StreamId;
use quorum_event_store::{EventStore, ExpectedVersion};

use crate::common;
use common::event;

async fn count(db: &quorum_testkit::TestDb) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&db.pool)
        .await?)
}

#[tokio::test]
async fn a_group_numbers_each_stream_on_from_its_version() -> anyhow::Result<()> {
    let db = quorum_testkit::postgres().await.fresh_db().await?;
    let store = EventStore::new(db.pool.clone());
    let (a, b) = (StreamId::parse("test/a")?, StreamId::parse("test/b")?);
    store
        .append(&a, ExpectedVersion::NoStream, &[event(&a, "a1")])
        .await?;
    let (a2, b1, a3) = (event(&a, "a2"), event(&b, "b1"), event(&a, "a3"));
    let appended = store
        .append_group(&[(&a, &a2), (&b, &b1), (&a, &a3)])
        .await?
        .expect("applies");
    let versions: Vec<u64> = appended.iter().map(|x| x.stream_version).collect();
    assert_eq!(versions, [2, 1, 3]);
    assert!(appended.iter().all(|x| !x.duplicate));
    let read = store.read_stream(&a, 1, 10).await?;
    let ids: Vec<&str> = read.iter().map(|r| r.event.id.as_str()).collect();
    assert_eq!(ids[1..], [a2.id.as_str(), a3.id.as_str()]);
    assert_eq!(read[2].position, appended[2].position);
    Ok(())
}

#[tokio::test]
async fn a_group_with_a_stored_event_writes_nothing() -> anyhow::Result<()> {
    let db = quorum_testkit::postgres().await.fresh_db().await?;
    let store = EventStore::new(db.pool.clone());
    let s = StreamId::parse("test/dup")?;
    let first = event(&s, "1");
    store
        .append(&s, ExpectedVersion::Any, std::slice::from_ref(&first))
        .await?;
    let other = StreamId::parse("test/other")?;
    let fresh = event(&other, "2");
    assert_eq!(
        store
            .append_group(&[(&other, &fresh), (&s, &first)])
            .await?,
        None
    );
    // The same event twice within one group does not apply either.
    assert_eq!(
        store
            .append_group(&[(&other, &fresh), (&other, &fresh)])
            .await?,
        None
    );
    assert_eq!(count(&db).await?, 1);
    Ok(())
}

#[tokio::test]
async fn a_multi_stream_append_is_all_or_nothing() -> anyhow::Result<()> {
    let db = quorum_testkit::postgres().await.fresh_db().await?;
    let store = EventStore::new(db.pool.clone());
    let (a, b) = (StreamId::parse("test/a")?, StreamId::parse("test/b")?);
    let a1 = event(&a, "a1");
    let r = store
        .append_streams(&[
            (a.clone(), vec![a1.clone()]),
            (b.clone(), vec![event(&b, "b1")]),
        ])
        .await?;
    assert_eq!(r.len(), 2);
    // Again, with one part now a duplicate: reported as such, the new part stored.
    let r = store
        .append_streams(&[
            (a.clone(), vec![a1.clone()]),
            (b.clone(), vec![event(&b, "b2")]),
        ])
        .await?;
    assert!(r[0].all_duplicates());
    assert_eq!(r[1].events[0].stream_version, 2);
    // An id stored with other content fails the whole append: b3 is not stored.
    let mut clash = a1.clone();
    clash.data = Some(bytes::Bytes::from_static(b"other"));
    assert!(
        store
            .append_streams(&[(b.clone(), vec![event(&b, "b3")]), (a.clone(), vec![clash])])
            .await
            .is_err()
    );
    assert_eq!(count(&db).await?, 3);
    Ok(())
}
