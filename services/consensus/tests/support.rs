//! What the process tests share: the consensus binary started against a stack, and the events
//! expert-fanout would have written, which the tests write themselves.

use std::process::Stdio;

use bytes::Bytes;
use quorum_domain::expert::ExpertResponded;
use quorum_domain::{Event, StreamId, TenantId, types};
use quorum_event_store::EventStore;
use quorum_testkit::TestDb;
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

/// A NATS server with Quorum's streams, a fresh database, and a relay once asked for.
pub struct Stack {
    pub nats: quorum_devstack::NatsServer,
    pub db: TestDb,
    pub store: EventStore,
    pub js: async_nats::jetstream::Context,
    relay: Option<(CancellationToken, tokio::task::JoinHandle<()>)>,
}

impl Stack {
    pub async fn start() -> anyhow::Result<Self> {
        quorum_testkit::init_tracing();
        let nats = quorum_testkit::nats().await?;
        let db = quorum_testkit::postgres().await.fresh_db().await?;
        let store = EventStore::new(db.pool.clone());
        let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await?);
        quorum_bus::ensure_streams(&js).await?;
        Ok(Self {
            nats,
            db,
            store,
            js,
            relay: None,
        })
    }

    /// Starts relaying the store's events to JetStream, as the deployed relay does.
    pub fn relay(&mut self) {
        let stop = CancellationToken::new();
        let relay = tokio::spawn(quorum_relay::run(
            self.db.pool.clone(),
            self.js.clone(),
            Default::default(),
            stop.clone(),
        ));
        self.relay = Some((stop, relay));
    }

    /// The consensus service as its own process, configured by its environment as deployed.
    pub fn consensus(&self) -> anyhow::Result<Child> {
        Ok(Command::new(env!("CARGO_BIN_EXE_quorum-consensus"))
            .env("QUORUM__COMMON__NATS_URL", self.nats.url())
            .env("QUORUM__COMMON__DATABASE_URL", &self.db.url)
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()?)
    }

    /// Stops the relay, and fails if it ended badly.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some((stop, relay)) = self.relay.take() {
            stop.cancel();
            relay.await?;
        }
        Ok(())
    }
}

/// A submission of `data` (the query's JSON) to a fresh query stream of tenant `acme`.
pub fn submission(data: String) -> anyhow::Result<(StreamId, Event)> {
    let id = uuid::Uuid::now_v7().to_string();
    let stream = StreamId::new("query", id.clone())?;
    let mut submitted = Event::new(
        "/quorum/ingest",
        types::QUERY_SUBMITTED,
        stream.clone(),
        TenantId::new("acme")?,
        Bytes::from(data),
    );
    submitted.id = id;
    Ok((stream, submitted))
}

/// Expert number `n`'s answer to `submitted`, as fan-out records it in `stream`.
pub fn responded(
    submitted: &Event,
    stream: &StreamId,
    n: u32,
    expert: &str,
    answer: &str,
) -> anyhow::Result<Event> {
    let data = ExpertResponded {
        expert: expert.into(),
        provider: "scripted".into(),
        model: "scripted".into(),
        answer: answer.into(),
        final_answer: None,
        extraction: None,
        reasoning: None,
        confidence: None,
        weight: 1.0,
        latency_ms: 0,
        attempts: 1,
        usage: None,
    };
    Ok(Event::derived(
        submitted,
        "expert-fanout",
        n,
        "/quorum/expert-fanout",
        types::EXPERT_RESPONDED,
        stream.clone(),
        Bytes::from(serde_json::to_vec(&data)?),
    ))
}
