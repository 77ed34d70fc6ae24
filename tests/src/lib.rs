//! What the end-to-end tests share with the worker process they start: a handler that records what
//! it handled as derived events, and helpers to publish and count.

use std::time::Duration;

use bytes::Bytes;
use quorum_domain::{Event, StreamId, TenantId};
use quorum_event_store::{EventStore, ExpectedVersion};
use quorum_runtime::consumer::{Delivery, Handler, Outcome};
use sqlx::PgPool;

/// The type of the test events the tests publish.
pub const SOURCE_TYPE: &str = "quorum.test.happened";

/// The type of the event [`RecordingHandler`] appends each time it runs, with a fresh id: how many
/// times a message was handled, as opposed to how many effects were stored.
pub const ATTEMPT: &str = "quorum.test.attempt";

/// The type of the events [`RecordingHandler`] appends.
pub const HANDLED: &str = "quorum.test.handled";

/// Records each message it handles by appending one derived event (deterministic id) to the stream
/// `handled/<stream of the message>`, carrying the message's data. A redelivery appends nothing new.
pub struct RecordingHandler {
    pub store: EventStore,
    pub name: String,
    /// Sleep before handling (to keep messages in flight).
    pub delay: Duration,
    /// Abort the process right after the first commit, before the ack.
    pub crash_after_commit: bool,
}

impl RecordingHandler {
    pub fn new(pool: PgPool, name: &str) -> Self {
        Self {
            store: EventStore::new(pool),
            name: name.to_owned(),
            delay: Duration::ZERO,
            crash_after_commit: false,
        }
    }
}

/// The stream where the handling of events of `stream` is recorded.
pub fn handled_stream(stream: &StreamId) -> StreamId {
    StreamId::new("handled", stream.as_str().replace('/', "-")).expect("valid")
}

impl Handler for RecordingHandler {
    async fn handle(&self, delivery: &Delivery) -> Outcome {
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        let cause = &delivery.event;
        let Some(stream) = cause
            .subject
            .as_deref()
            .and_then(|s| StreamId::parse(s).ok())
        else {
            return Outcome::dead("event has no stream subject");
        };
        let attempts = StreamId::new("attempts", stream.as_str().replace('/', "-")).expect("valid");
        let attempt = Event::new(
            "/quorum/e2e",
            ATTEMPT,
            attempts.clone(),
            cause.tenant.clone().expect("tenant"),
            Bytes::new(),
        );
        if let Err(e) = self
            .store
            .append(&attempts, ExpectedVersion::Any, &[attempt])
            .await
        {
            return Outcome::store_failed(Duration::from_millis(200), &e);
        }
        let target = handled_stream(&stream);
        let data = cause.data.clone().unwrap_or_default();
        let derived = Event::derived(
            cause,
            &self.name,
            0,
            "/quorum/e2e",
            HANDLED,
            target.clone(),
            data,
        );
        match self
            .store
            .append(&target, ExpectedVersion::Any, &[derived])
            .await
        {
            Ok(_) => {
                if self.crash_after_commit {
                    // Killed between the commit and the ack: the message must come back, and its
                    // second handling must append nothing.
                    std::process::abort();
                }
                Outcome::Done
            }
            Err(e) if e.is_transient() => Outcome::store_failed(Duration::from_millis(200), &e),
            Err(e) => Outcome::dead(e),
        }
    }
}

/// A test event of `stream` with `data`.
pub fn test_event(tenant: &str, stream: &StreamId, data: &str) -> Event {
    Event::new(
        "/quorum/e2e",
        SOURCE_TYPE,
        stream.clone(),
        TenantId::new(tenant).expect("valid tenant"),
        Bytes::from(data.to_owned()),
    )
}

/// Publishes `event` straight to JetStream as the relay would, and waits for the ack.
pub async fn publish(js: &async_nats::jetstream::Context, event: &Event) -> anyhow::Result<u64> {
    let (headers, payload) = quorum_bus::encode(event);
    let subject = quorum_bus::subjects::event(event.tenant.as_ref().expect("tenant"), &event.ty);
    let ack = js
        .publish_with_headers(subject, headers, payload)
        .await?
        .await?;
    Ok(ack.sequence)
}

/// How many times messages were handled (events of type [`ATTEMPT`]).
pub async fn attempt_count(pool: &PgPool) -> anyhow::Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT count(*) FROM events WHERE type = $1")
            .bind(ATTEMPT)
            .fetch_one(pool)
            .await?,
    )
}

/// How many events of type [`HANDLED`] are stored, and how many distinct ids they have.
pub async fn handled_count(pool: &PgPool) -> anyhow::Result<(i64, i64)> {
    let row: (i64, i64) =
        sqlx::query_as("SELECT count(*), count(DISTINCT event_id) FROM events WHERE type = $1")
            .bind(HANDLED)
            .fetch_one(pool)
            .await?;
    Ok(row)
}

/// One message of the events stream, as a test looks at it.
#[derive(Debug, Clone)]
pub struct Relayed {
    pub seq: u64,
    pub event: Event,
}

/// Every message currently in `QUORUM_EVENTS` on `quorum.evt.>`, in stream order.
pub async fn relayed(js: &async_nats::jetstream::Context) -> anyhow::Result<Vec<Relayed>> {
    use async_nats::jetstream::stream::RawMessageErrorKind;
    let stream = js.get_stream(quorum_bus::EVENTS_STREAM).await?;
    let state = stream.get_info().await?.state;
    let mut out = Vec::new();
    if state.messages == 0 {
        return Ok(out);
    }
    for seq in state.first_sequence..=state.last_sequence {
        match stream.get_raw_message(seq).await {
            Ok(m) if m.subject.starts_with("quorum.evt.") => {
                out.push(Relayed {
                    seq,
                    event: quorum_bus::decode(Some(&m.headers), &m.payload)?,
                });
            }
            Ok(_) => {}
            Err(e) if e.kind() == RawMessageErrorKind::NoMessageFound => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(out)
}

/// How many messages are in `QUORUM_EVENTS` (0 when the stream does not exist).
pub async fn stream_len(js: &async_nats::jetstream::Context) -> u64 {
    match js.get_stream(quorum_bus::EVENTS_STREAM).await {
        Ok(s) => s.get_info().await.map(|i| i.state.messages).unwrap_or(0),
        Err(_) => 0,
    }
}

/// True when the durable consumer `name` has nothing pending and nothing awaiting an ack.
pub async fn consumer_idle(js: &async_nats::jetstream::Context, name: &str) -> bool {
    let Ok(stream) = js.get_stream(quorum_bus::EVENTS_STREAM).await else {
        return false;
    };
    match stream.consumer_info(name).await {
        Ok(info) => info.num_pending == 0 && info.num_ack_pending == 0,
        Err(_) => false,
    }
}

/// Real servers for one test: a nats-server, a fresh database, a JetStream context with the streams.
pub struct Env {
    pub nats: quorum_devstack::NatsServer,
    pub db: quorum_testkit::TestDb,
    pub js: async_nats::jetstream::Context,
    pub store: EventStore,
    /// Cancels whatever the test started in-process (a relay, a consumer).
    pub shutdown: tokio_util::sync::CancellationToken,
}

/// Starts the servers a test needs.
pub async fn env() -> anyhow::Result<Env> {
    quorum_testkit::init_tracing();
    let nats = quorum_testkit::nats().await?;
    let db = quorum_testkit::postgres().await.fresh_db().await?;
    let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await?);
    quorum_bus::ensure_streams(&js).await?;
    let store = EventStore::new(db.pool.clone());
    Ok(Env {
        nats,
        db,
        js,
        store,
        shutdown: Default::default(),
    })
}
