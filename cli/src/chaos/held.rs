//! What Postgres, JetStream and the recording service hold of the workload once the pipeline is
//! quiet: the checker's other side.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use futures::StreamExt as _;
use quorum_domain::TenantId;
use sqlx::PgPool;

use super::sagas;
use super::workload::EVENT_TYPE;

/// What the store and the bus hold of `tenant`'s workload.
pub struct Held {
    /// (source, id) → rows in Postgres.
    pub stored: BTreeMap<(String, String), u64>,
    /// (source, id) → messages on JetStream.
    pub published: BTreeMap<(String, String), u64>,
    /// Query id → consensus events.
    pub decisions: BTreeMap<String, u64>,
    /// Queries whose consensus was reached.
    pub reached: BTreeSet<String>,
    /// Query id → the sagas its consensus started.
    pub sagas: BTreeMap<String, Vec<sagas::Held>>,
    /// What the recording service applied, by saga (filled in by whoever runs the service).
    pub effects: BTreeMap<String, BTreeSet<(String, String)>>,
}

impl Held {
    pub async fn read(
        pool: &PgPool,
        js: &jetstream::Context,
        tenant: &TenantId,
    ) -> anyhow::Result<Self> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT source, event_id, count(*) FROM events WHERE tenant = $1 AND type = $2
             GROUP BY source, event_id",
        )
        .bind(tenant.as_str())
        .bind(EVENT_TYPE)
        .fetch_all(pool)
        .await?;
        let stored = rows
            .into_iter()
            .map(|(s, i, n)| ((s, i), n as u64))
            .collect();
        // Every query stream stored, with how many consensus events it holds.
        let rows: Vec<(String, i64, bool)> = sqlx::query_as(
            "SELECT stream_id,
                    count(*) FILTER (WHERE type IN ('quorum.consensus.reached', 'quorum.consensus.failed')),
                    bool_or(type = 'quorum.consensus.reached')
             FROM events WHERE tenant = $1 AND stream_id LIKE 'query/%' GROUP BY stream_id",
        )
        .bind(tenant.as_str())
        .fetch_all(pool)
        .await?;
        let mut decisions = BTreeMap::new();
        let mut reached = BTreeSet::new();
        for (stream, n, agreed) in rows {
            let id = stream.strip_prefix("query/").unwrap_or(&stream).to_owned();
            if agreed {
                reached.insert(id.clone());
            }
            decisions.insert(id, n as u64);
        }
        Ok(Self {
            stored,
            published: published(js, tenant).await?,
            decisions,
            reached,
            sagas: sagas::read(pool, tenant).await?,
            effects: BTreeMap::new(),
        })
    }
}

/// (source, id) → messages of the workload's type for `tenant` on the events stream, read from
/// the start with an ephemeral consumer.
async fn published(
    js: &jetstream::Context,
    tenant: &TenantId,
) -> anyhow::Result<BTreeMap<(String, String), u64>> {
    let stream = js.get_stream(quorum_bus::EVENTS_STREAM).await?;
    let consumer: consumer::PullConsumer = stream
        .create_consumer(consumer::pull::Config {
            deliver_policy: consumer::DeliverPolicy::All,
            ack_policy: consumer::AckPolicy::None,
            filter_subject: quorum_bus::subjects::event(tenant, EVENT_TYPE),
            inactive_threshold: Duration::from_secs(30),
            ..Default::default()
        })
        .await?;
    let mut counts = BTreeMap::new();
    let mut messages = consumer
        .stream()
        .expires(Duration::from_secs(2))
        .messages()
        .await?;
    // Until a fetch finds nothing more.
    while let Ok(Some(msg)) = tokio::time::timeout(Duration::from_secs(3), messages.next()).await {
        let msg = msg?;
        let event = quorum_bus::decode(msg.headers.as_ref(), &msg.payload)?;
        *counts.entry((event.source, event.id)).or_insert(0) += 1;
        if msg.info().is_ok_and(|i| i.pending == 0) {
            break;
        }
    }
    Ok(counts)
}
