//! The pipeline the end-to-end consensus tests drive: the relay, the fan-out and the consensus in
//! this process, as `quorum up` runs them, against real NATS and Postgres.

#![allow(dead_code)]

use bytes::Bytes;
use quorum_domain::{Event, StreamId, TenantId, types};
use quorum_event_store::{ExpectedVersion, RecordedEvent};
use quorum_experts::scripted::{Rule, ScriptedConfig};
use quorum_experts::{ExpertConfig, ProviderConfig};
use quorum_runtime::{Readiness, Shutdown};
use quorum_testkit::{DEADLINE, wait_until};
use serde_json::Value;

pub fn scripted(name: &str, answer: &str, failure_rate: f64, latency_ms: u64) -> ExpertConfig {
    ExpertConfig {
        name: name.into(),
        provider: ProviderConfig::Scripted(ScriptedConfig {
            rules: vec![Rule {
                contains: "capital".into(),
                answer: answer.into(),
            }],
            default_answer: "42".into(),
            latency_ms,
            failure_rate,
        }),
        weight: 1.0,
        timeout: std::time::Duration::from_secs(600),
        breaker: Default::default(),
        retry: Default::default(),
        rate_per_second: None,
        concurrency: 8,
    }
}

pub struct Pipeline {
    pub env: quorum_e2e::Env,
    pub shutdown: Shutdown,
}

/// The relay, the fan-out with `experts`, and `consensus_replicas` consensus services.
pub async fn pipeline(
    experts: Vec<ExpertConfig>,
    consensus_replicas: usize,
) -> anyhow::Result<Pipeline> {
    pipeline_with_judge(experts, consensus_replicas, None).await
}

pub async fn pipeline_with_judge(
    experts: Vec<ExpertConfig>,
    consensus_replicas: usize,
    judge: Option<ExpertConfig>,
) -> anyhow::Result<Pipeline> {
    let methods = quorum_consensus::Methods {
        judge,
        embeddings: None,
    };
    build(experts, true, consensus_replicas, methods).await
}

/// The relay and consensus, and the fan-out only if `fanout`.
pub async fn build(
    experts: Vec<ExpertConfig>,
    fanout: bool,
    consensus_replicas: usize,
    methods: quorum_consensus::Methods,
) -> anyhow::Result<Pipeline> {
    let env = quorum_e2e::env().await?;
    let shutdown = Shutdown::new();
    let readiness = Readiness::new();
    shutdown.spawn(quorum_relay::run(
        env.db.pool.clone(),
        env.js.clone(),
        Default::default(),
        shutdown.token(),
    ));
    let names: Vec<String> = experts.iter().map(|e| e.name.clone()).collect();
    if fanout {
        quorum_expert_fanout::start(
            env.db.pool.clone(),
            env.js.clone(),
            experts,
            &shutdown,
            &readiness,
        );
    }
    for _ in 0..consensus_replicas {
        quorum_consensus::start(
            env.db.pool.clone(),
            env.js.clone(),
            names.clone(),
            methods.clone(),
            &shutdown,
            &readiness,
        );
    }
    Ok(Pipeline { env, shutdown })
}

impl Pipeline {
    /// Submits a query as ingest would, for tenant acme; returns its stream.
    pub async fn ask(&self, data: Value) -> anyhow::Result<StreamId> {
        self.ask_as("acme", data).await
    }

    pub async fn ask_as(&self, tenant: &str, data: Value) -> anyhow::Result<StreamId> {
        let id = uuid::Uuid::now_v7();
        let stream = StreamId::new("query", id.to_string())?;
        let mut event = Event::new(
            "/quorum/ingest",
            types::QUERY_SUBMITTED,
            stream.clone(),
            TenantId::new(tenant)?,
            Bytes::from(data.to_string()),
        );
        event.id = id.to_string();
        // As ingest does: the query id is the correlation id of everything that follows.
        event.correlationid = Some(id.to_string());
        self.env
            .store
            .append(&stream, ExpectedVersion::NoStream, &[event])
            .await?;
        Ok(stream)
    }

    /// Waits for the query's consensus and returns (type, data).
    pub async fn consensus(&self, stream: &StreamId) -> anyhow::Result<(String, Value)> {
        wait_until("the consensus", DEADLINE, || async {
            let events = self.env.store.read_stream(stream, 1, 1000).await.ok()?;
            let c = consensus_events(&events).into_iter().next()?;
            Some((
                c.event.ty.clone(),
                serde_json::from_slice(c.event.data.as_deref()?).ok()?,
            ))
        })
        .await
    }
}

pub fn consensus_events(events: &[RecordedEvent]) -> Vec<&RecordedEvent> {
    events
        .iter()
        .filter(|r| r.event.ty == types::CONSENSUS_REACHED || r.event.ty == types::CONSENSUS_FAILED)
        .collect()
}
