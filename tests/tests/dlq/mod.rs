//! Dead letters end to end, against real NATS and Postgres: a poison message parked, the handler
//! fixed, the letter replayed to that consumer only and handled once, and the replay in the audit
//! chain with its operator and reason; a replay that fails again parks again with its whole
//! history (`replay`); bulk replay at a rate; operators only, and each tenant its own letters
//! (`bulk`).

mod bulk;
mod replay;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use quorum_auth::Role;
use quorum_domain::TenantId;
use quorum_e2e::RecordingHandler;
use quorum_runtime::consumer::{self, ConsumerConfig, Delivery, Handler, Outcome};
use quorum_runtime::{Readiness, Shutdown};
use serde_json::Value;
use sqlx::PgPool;

/// A handler that refuses every message while `broken`, then records them as [`RecordingHandler`].
struct Switchable {
    broken: Arc<AtomicBool>,
    inner: RecordingHandler,
}

impl Handler for Switchable {
    async fn handle(&self, delivery: &Delivery) -> Outcome {
        if self.broken.load(Ordering::SeqCst) {
            return Outcome::dead("handler cannot take this message yet");
        }
        self.inner.handle(delivery).await
    }
}

/// A consumer with a switchable handler beside a dlq-replayer, on one test environment.
pub(super) struct Stack {
    pub(super) env: quorum_e2e::Env,
    pub(super) shutdown: Shutdown,
    pub(super) dlq: String,
    pub(super) http: reqwest::Client,
}

/// A consumer `name` with a switchable handler, and the dlq-replayer.
pub(super) async fn stack(name: &str, broken: Arc<AtomicBool>) -> anyhow::Result<Stack> {
    let env = quorum_e2e::env().await?;
    let shutdown = Shutdown::new();
    let handler = Arc::new(Switchable {
        broken,
        inner: RecordingHandler::new(env.db.pool.clone(), name),
    });
    let config = ConsumerConfig::new(
        name,
        vec![quorum_bus::subjects::event_type_filter(
            quorum_e2e::SOURCE_TYPE,
        )],
    );
    let (js, pool, token) = (env.js.clone(), env.db.pool.clone(), shutdown.token());
    shutdown.spawn(async move { consumer::run(js, pool, config, handler, token, || {}).await });
    let dlq_config = quorum_dlq_replayer::config::DlqConfig {
        http_addr: "127.0.0.1:0".parse()?,
        pump_poll: Duration::from_millis(50),
        ..Default::default()
    };
    let running = quorum_dlq_replayer::start(
        &dlq_config,
        env.db.pool.clone(),
        env.js.clone(),
        &shutdown,
        &Readiness::new(),
    )
    .await?;
    Ok(Stack {
        env,
        shutdown,
        dlq: format!("http://{}", running.http_addr),
        http: quorum_http_client::client(),
    })
}

impl Stack {
    pub(super) async fn key(&self, tenant: &str, role: Role) -> anyhow::Result<String> {
        let tenant = TenantId::new(tenant)?;
        Ok(
            quorum_auth::create(&self.env.db.pool, &tenant, &[role], None)
                .await?
                .key,
        )
    }

    pub(super) async fn post(
        &self,
        key: &str,
        path: &str,
        body: Value,
    ) -> anyhow::Result<(u16, Value)> {
        let r = self
            .http
            .post(format!("{}{path}", self.dlq))
            .bearer_auth(key)
            .json(&body)
            .send()
            .await?;
        Ok((r.status().as_u16(), r.json().await.unwrap_or_default()))
    }

    pub(super) async fn get(&self, key: &str, path: &str) -> anyhow::Result<(u16, Value)> {
        let r = self
            .http
            .get(format!("{}{path}", self.dlq))
            .bearer_auth(key)
            .send()
            .await?;
        Ok((r.status().as_u16(), r.json().await.unwrap_or_default()))
    }
}

/// The consumer's dead letters, oldest first: id, status, the letter it replays, errors.
pub(super) async fn parked(
    pool: &PgPool,
    consumer: &str,
) -> Vec<(uuid::Uuid, String, Option<uuid::Uuid>, Value)> {
    sqlx::query_as(
        "SELECT id, status, replayed_from, errors FROM dead_letters WHERE consumer = $1 ORDER BY created_at",
    )
    .bind(consumer)
    .fetch_all(pool)
    .await
    .unwrap_or_default()
}
