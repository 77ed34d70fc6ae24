//! Tool execution: a `quorum.tool.plan.requested` starts a saga in `saga/<id>`; its steps run in
//! order through the configured tools (`http`, sandboxed `exec`), each start and outcome an event;
//! when a step fails for good the steps that succeeded are compensated in reverse order. The pure
//! rules are in `quorum_saga`; this crate loads, calls and appends (`driver`).

pub mod config;
pub mod driver;
pub mod show;
pub mod tools;

use std::sync::Arc;

use quorum_domain::{StreamId, types};
use quorum_event_store::EventStore;
use quorum_runtime::consumer::{self, ConsumerConfig, Delivery, Handler, Outcome};
use quorum_runtime::{Readiness, Shutdown};
use quorum_saga::{PlanRequested, SagaEvent, ToolPolicy};
use sqlx::PgPool;
use tracing::warn;

use config::ToolExecConfig;
use driver::{DriveError, Ended};
use tools::Tools;

/// The durable consumer's name, shared by replicas.
pub const CONSUMER: &str = "tool-exec";

struct SagaHandler {
    store: EventStore,
    tools: Tools,
    config: ToolExecConfig,
}

impl Handler for SagaHandler {
    async fn handle(&self, delivery: &Delivery) -> Outcome {
        let event = &delivery.event;
        let Some(stream) = event
            .subject
            .as_deref()
            .and_then(|s| StreamId::parse(s).ok())
        else {
            return Outcome::dead("a plan request without its saga stream as subject");
        };
        if stream.category() != "saga" {
            return Outcome::dead(format!(
                "a plan request in {stream}, not in a saga/<id> stream"
            ));
        }
        let tenant = event.tenant.as_ref().map_or("", |t| t.as_str());
        let refusal = policy_check(&self.config, tenant, event.data.as_deref()).err();
        let saga_id = stream.as_str().trim_start_matches("saga/");
        let workdir = match quorum_sandbox::saga_workdir_for(
            &self.config.exec,
            &self.config.workdir_root,
            saga_id,
        ) {
            Ok(dir) => dir,
            Err(e) => {
                return Outcome::retry(
                    std::time::Duration::from_secs(5),
                    format!("saga directory: {e}"),
                );
            }
        };
        match driver::drive(&self.store, &self.tools, &stream, &workdir, refusal).await {
            Ok(Ended::Done) => Outcome::Done,
            // Parked as a dead letter (with its event), so an operator sees it and can replay it.
            Ok(Ended::NeedsAttention(reason)) => {
                Outcome::dead(format!("saga {saga_id} needs attention: {reason}"))
            }
            Err(DriveError::Corrupt(reason)) => Outcome::dead(reason),
            Err(DriveError::Store(e)) => {
                warn!(saga = %saga_id, error = %quorum_runtime::error_chain(&e), "saga interrupted");
                Outcome::store_failed(std::time::Duration::from_secs(1), &e)
            }
        }
    }
}

/// Whether the tenant's policy, narrowed by the asking query's, admits the plan (checked before
/// its first step).
fn policy_check(config: &ToolExecConfig, tenant: &str, data: Option<&[u8]>) -> Result<(), String> {
    let data: serde_json::Value = data
        .map(serde_json::from_slice)
        .transpose()
        .map_err(|e| format!("plan: {e}"))?
        .unwrap_or_default();
    let request = match SagaEvent::from_parts(types::TOOL_PLAN_REQUESTED, data) {
        Ok(SagaEvent::PlanRequested(r)) => r,
        Ok(_) => return Err("not a plan request".into()),
        Err(e) => return Err(format!("plan: {e}")),
    };
    let PlanRequested {
        plan,
        origin,
        policy,
    } = &request;
    let policy = ToolPolicy::merge(config.policy(tenant), policy.as_ref());
    plan.validate_request(&policy, origin)
        .map_err(|e| e.to_string())
}

/// Starts the consumer as a task of `shutdown`.
pub fn start(
    config: &ToolExecConfig,
    pool: PgPool,
    js: async_nats::jetstream::Context,
    shutdown: &Shutdown,
    readiness: &Readiness,
) {
    let handler = Arc::new(SagaHandler {
        store: EventStore::new(pool.clone()),
        tools: Tools::new(config),
        config: config.clone(),
    });
    let mut consumer_config = ConsumerConfig::new(
        CONSUMER,
        vec![quorum_bus::subjects::event_type_filter(
            types::TOOL_PLAN_REQUESTED,
        )],
    );
    consumer_config.concurrency = config.concurrency;
    consumer_config.ack_wait = config.ack_wait;
    let tools = handler.clone();
    shutdown.spawn(async move {
        let contained = tools.tools.exec_containment().await;
        match &contained.refused {
            // Every exec step will fail until the machine or the mode changes.
            Some(reason) => tracing::error!(%reason, "exec tool cannot run anything"),
            None => tracing::info!(
                mode = contained.mode.as_str(),
                landlock = contained.filesystem,
                network_namespace = contained.network_namespace,
                "exec sandbox"
            ),
        }
    });
    consumer::spawn(shutdown, readiness, js, pool, consumer_config, handler);
}
