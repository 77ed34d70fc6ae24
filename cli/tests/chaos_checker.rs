//! The chaos checker fails when it should: against a real Postgres and JetStream, a planted relay
//! that skips one acknowledged event and publishes another twice is caught as one loss and one
//! duplicate; with the bug fixed, the same history passes.

use std::time::Duration;

use bytes::Bytes;
use quorum::chaos::check::{self, Held};
use quorum::chaos::workload::{EVENT_TYPE, Sent, Told, What};
use quorum_domain::{Event, StreamId, TenantId};
use quorum_event_store::{EventStore, ExpectedVersion};

fn event(tenant: &TenantId, n: u32) -> Event {
    let mut e = Event::new(
        "/chaos/publisher-1",
        EVENT_TYPE,
        stream(n),
        tenant.clone(),
        Bytes::from_static(b"{}"),
    );
    e.id = format!("chaos-{n}");
    e
}

fn stream(n: u32) -> StreamId {
    StreamId::new("chaos", n).unwrap()
}

fn acked(n: u32) -> Sent {
    Sent {
        at: Duration::from_secs(u64::from(n)),
        what: What::Event {
            source: "/chaos/publisher-1".into(),
            id: format!("chaos-{n}"),
        },
        told: Told::Acked,
        retry_after: false,
        answered_in: None,
    }
}

/// Publishes `e` as the relay does, with its own message id (`copy` makes a second one).
async fn publish(js: &async_nats::jetstream::Context, tenant: &TenantId, e: &Event, copy: u32) {
    let (headers, payload) = quorum_bus::encode(e);
    let subject = quorum_bus::subjects::event(tenant, &e.ty);
    let message = async_nats::jetstream::message::PublishMessage::build()
        .headers(headers)
        .payload(payload)
        .message_id(format!("{}-{copy}", e.id));
    js.send_publish(subject, message)
        .await
        .unwrap()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checker_catches_a_relay_that_skips_and_doubles() -> anyhow::Result<()> {
    let nats = quorum_testkit::nats().await?;
    let db = quorum_testkit::postgres().await.fresh_db().await?;
    quorum_event_store::migrate(&db.pool).await?;
    let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await?);
    quorum_bus::ensure_streams(&js).await?;
    let tenant = TenantId::new("chaos")?;
    let store = EventStore::new(db.pool.clone());
    let events: Vec<Event> = (1..=3).map(|n| event(&tenant, n)).collect();
    for (n, e) in (1..).zip(&events) {
        store
            .append(&stream(n), ExpectedVersion::Any, std::slice::from_ref(e))
            .await?;
    }
    let history: Vec<Sent> = (1..=3).map(acked).collect();
    let no_faults = [];

    // The planted bug: event 2 is never published, event 3 twice.
    publish(&js, &tenant, &events[0], 0).await;
    publish(&js, &tenant, &events[2], 0).await;
    publish(&js, &tenant, &events[2], 1).await;
    let held = Held::read(&db.pool, &js, &tenant).await?;
    let verdict = check::check(&history, &no_faults, &held, (0, true));
    let [found, ..] = verdict.totals();
    assert_eq!(
        (found.ok, found.lost, found.duplicated),
        (1, 1, 1),
        "{verdict}"
    );
    assert!(!verdict.passed(), "{verdict}");

    // An event nobody sent is unexpected, and fails the run as well.
    let stranger = event(&tenant, 9);
    store
        .append(&stream(9), ExpectedVersion::Any, &[stranger])
        .await?;
    let held = Held::read(&db.pool, &js, &tenant).await?;
    let verdict = check::check(&history[..1], &no_faults, &held, (0, true));
    assert!(verdict.unexpected >= 1, "{verdict}");
    assert!(!verdict.passed(), "{verdict}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checker_passes_what_was_kept() -> anyhow::Result<()> {
    let nats = quorum_testkit::nats().await?;
    let db = quorum_testkit::postgres().await.fresh_db().await?;
    quorum_event_store::migrate(&db.pool).await?;
    let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await?);
    quorum_bus::ensure_streams(&js).await?;
    let tenant = TenantId::new("chaos")?;
    let store = EventStore::new(db.pool.clone());
    let e = event(&tenant, 1);
    store
        .append(&stream(1), ExpectedVersion::Any, std::slice::from_ref(&e))
        .await?;
    publish(&js, &tenant, &e, 0).await;
    // Acked once, and sent again without an answer: one event, kept once.
    let mut history = vec![acked(1)];
    history.push(Sent {
        told: Told::Unknown("timed out".into()),
        ..acked(1)
    });
    // A send that failed and never arrived: unknown, not lost.
    history.push(Sent {
        told: Told::Unknown("connection reset".into()),
        ..acked(2)
    });
    let held = Held::read(&db.pool, &js, &tenant).await?;
    let verdict = check::check(&history, &[], &held, (0, true));
    let [found, ..] = verdict.totals();
    assert_eq!(
        (found.ok, found.unknown, found.lost),
        (1, 1, 0),
        "{verdict}"
    );
    assert!(verdict.passed(), "{verdict}");
    Ok(())
}
