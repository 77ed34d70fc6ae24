//! The catch-up reader against real concurrent transactions: it never skips an event whose
//! transaction commits late, and a rolled-back append stalls nothing.

use std::time::Duration;

use bytes::Bytes;
use quorum_domain::StreamId;
use quorum_event_store::{CommitCursor, EventStore, ExpectedVersion, RecordedEvent};
use tokio::sync::mpsc;

use crate::common;
use common::event;

/// A reader that runs throughout, as the relay does: reads after its cursor, reports what it got and
/// each cursor it would checkpoint.
fn spawn_reader(
    store: EventStore,
) -> (
    mpsc::UnboundedReceiver<(RecordedEvent, CommitCursor)>,
    tokio::task::JoinHandle<()>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        let mut cursor = CommitCursor::START;
        loop {
            let batch = store.read_committed(cursor, 100).await.expect("read");
            for e in batch.events {
                cursor = e.cursor();
                if tx.send((e, cursor)).is_err() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    (rx, task)
}

#[tokio::test]
async fn a_late_commit_with_a_lower_position_is_not_skipped() -> anyhow::Result<()> {
    let db = quorum_testkit::postgres().await.fresh_db().await?;
    let store = EventStore::new(db.pool.clone());
    let (sa, sb) = (StreamId::parse("test/a")?, StreamId::parse("test/b")?);
    let (mut seen, reader) = spawn_reader(store.clone());

    // A takes the lower position and stays open; B appends after it and commits first.
    let mut a = db.pool.begin().await?;
    let pa = EventStore::append_in(&mut a, &sa, ExpectedVersion::NoStream, &[event(&sa, "A")])
        .await?
        .events[0]
        .position;
    let mut b = db.pool.begin().await?;
    let pb = EventStore::append_in(&mut b, &sb, ExpectedVersion::NoStream, &[event(&sb, "B")])
        .await?
        .events[0]
        .position;
    assert!(pa < pb);
    b.commit().await?;

    // B is committed and visible, yet the reader must neither deliver it nor checkpoint past A.
    let visible: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&db.pool)
        .await?;
    assert_eq!(visible, 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        seen.try_recv().is_err(),
        "the reader went past an open transaction"
    );
    // And the read says so, so a reader looks again without waiting for a notification.
    let read = store.read_committed(CommitCursor::START, 100).await?;
    assert!(read.events.is_empty());
    assert!(read.held, "B waits behind A: the read must say it is held");

    // A rolled-back append leaves a position gap that stalls nothing.
    let mut c = db.pool.begin().await?;
    EventStore::append_in(
        &mut c,
        &StreamId::parse("test/c")?,
        ExpectedVersion::NoStream,
        &[event(&StreamId::parse("test/c")?, "C")],
    )
    .await?;
    c.rollback().await?;

    a.commit().await?;
    let sd = StreamId::parse("test/d")?;
    store
        .append(&sd, ExpectedVersion::NoStream, &[event(&sd, "D")])
        .await?;

    let mut got = Vec::new();
    while got.len() < 3 {
        let (e, cursor) = tokio::time::timeout(quorum_testkit::DEADLINE, seen.recv())
            .await?
            .expect("reader alive");
        got.push((e.event.data.clone().unwrap(), e.cursor(), cursor));
    }
    reader.abort();
    // Everything committed is read: nothing is held any more. (Transactions of other tests share
    // the server's watermark, so it may take a moment to pass.)
    let deadline = tokio::time::Instant::now() + quorum_testkit::DEADLINE;
    loop {
        let read = store.read_committed(got[2].2, 100).await?;
        assert!(read.events.is_empty());
        if !read.held {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still held with nothing left to read"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let data: Vec<_> = got.iter().map(|g| g.0.clone()).collect();
    assert_eq!(data, ["A", "B", "D"].map(|d| Bytes::from(d.to_owned())));
    // Delivered in (tx_id, position) order, each checkpoint strictly after the last.
    assert!(got.windows(2).all(|w| w[0].1 < w[1].1));
    Ok(())
}
