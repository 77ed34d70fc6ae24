//! Upstream systems publishing to `QUORUM_INGEST` (`quorum.ingest.<tenant>.>`): the same checks, the
//! same per-tenant admission (rate and share of what is in flight) and the same group commit as
//! HTTP. The tenant is the subject's token, and that token is authenticated: the server lets a
//! connection made with an API key publish under its own tenant's name only (the auth callout,
//! docs/adr/0027), and no other user but Quorum's own replay may publish there. A message that can
//! never be accepted is parked as a dead letter with the reason, never dropped (the runtime parks
//! what does not even decode).

use std::sync::Arc;
use std::time::Duration;

use quorum_domain::TenantId;
use quorum_runtime::consumer::{Delivery, Handler, Outcome};
use quorum_schemas::Schemas;

use crate::accept::{self, Rejection};
use crate::admission::{Admission, Refusal};
use crate::commit::Committer;

/// The durable consumer's name, shared by ingest replicas.
pub const CONSUMER: &str = "ingest";
/// What it reads.
pub const FILTER: &str = "quorum.ingest.>";
/// Deliveries before a message that is still waiting (its tenant over its rate, ingest saturated,
/// the store down) is parked. A message here was acknowledged to its publisher and this stream
/// holds its only copy, so it waits its turn rather than failing: with waits growing to
/// [`MAX_WAIT`], a thousand deliveries are more than an hour.
pub const MAX_DELIVER: u32 = 1000;
/// The longest a waiting message stays away before it is tried again.
const MAX_WAIT: Duration = Duration::from_secs(5);

/// How long a message waits before it comes back: at least what admission asks, more the more
/// often it came back, so that a backlog is not redelivered all at once.
fn wait(delivered: u32, at_least: Duration) -> Duration {
    (Duration::from_millis(100) * delivered)
        .min(MAX_WAIT)
        .max(at_least)
}

pub struct IngestHandler {
    pub committer: Committer,
    /// Shared with the HTTP API: one budget per tenant whichever way it sends.
    pub admission: Admission,
    pub schemas: Arc<Schemas>,
    pub bounds: accept::Bounds,
}

/// The tenant token of `quorum.ingest.<tenant>.<type…>`, read by the same rule that files a refused
/// message's dead letter under that tenant (ADR 21).
fn tenant_of(subject: &str) -> Result<TenantId, String> {
    match quorum_bus::subjects::ingest_tenant(subject) {
        Some(Ok(tenant)) => Ok(tenant),
        Some(Err(token)) => Err(format!("subject {subject}: {token:?} is no valid tenant")),
        None => Err(format!(
            "subject {subject} is not quorum.ingest.<tenant>.<type>"
        )),
    }
}

impl Handler for IngestHandler {
    async fn handle(&self, delivery: &Delivery) -> Outcome {
        let tenant = match tenant_of(&delivery.subject) {
            Ok(t) => t,
            Err(e) => return Outcome::dead(e),
        };
        // Over its rate or its share, a tenant's message waits in JetStream (not in memory here)
        // and comes back when the rate allows, while other tenants' messages go on: the NATS side
        // of HTTP's 429. Waiting is not failing: JetStream acknowledged it to its publisher, so it
        // is parked only after `MAX_DELIVER` deliveries, never for a burst.
        let delivered = delivery.delivered;
        let _admitted = match self.admission.admit(&tenant, 1) {
            Ok(admitted) => admitted,
            Err(Refusal::RateLimited { retry_after }) => {
                return Outcome::wait(
                    wait(delivered, retry_after),
                    format!("tenant {tenant} is over its rate"),
                );
            }
            Err(Refusal::TenantBusy) => {
                return Outcome::wait(
                    wait(delivered, Duration::from_millis(500)),
                    format!("tenant {tenant} holds its whole share of the events in flight"),
                );
            }
            Err(Refusal::Saturated) => {
                return Outcome::wait(
                    wait(delivered, Duration::from_millis(500)),
                    "ingest is saturated",
                );
            }
        };
        if let Err(e) = accept::from_upstream(std::slice::from_ref(&delivery.event)) {
            return Outcome::dead(format!("refused: {e}"));
        }
        let prepared = match accept::prepare(
            &tenant,
            vec![delivery.event.clone()],
            &self.schemas,
            self.bounds,
        ) {
            Ok(p) => p,
            Err(e) => return Outcome::dead(format!("refused: {e}")),
        };
        match accept::store(&self.committer, prepared).await {
            Ok(_) => Outcome::Done,
            Err(
                e @ Rejection::Store {
                    transient: true, ..
                },
            ) => Outcome::unavailable(e),
            Err(e) => Outcome::dead(format!("refused: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The share of the in-flight budget is one the HTTP API holds too: with the tenant's whole
    /// share taken (by an HTTP request, say), its NATS message waits for a redelivery; nothing of
    /// it reaches the store (whose pool here connects nowhere).
    #[tokio::test]
    async fn a_tenant_over_its_share_of_admission_waits() {
        let mut config = crate::IngestConfig::default();
        config.flow.max_in_flight_events = 2;
        config.flow.max_tenant_share = 0.5;
        let admission = Admission::new(&config);
        let pool = sqlx::postgres::PgPoolOptions::new()
            .connect_lazy("postgres://nobody@127.0.0.1:1/nowhere")
            .expect("a lazy pool");
        let tracker = tokio_util::task::TaskTracker::new();
        let handler = IngestHandler {
            committer: Committer::start(
                quorum_event_store::EventStore::new(pool),
                10,
                1,
                50,
                &tracker,
            ),
            admission: admission.clone(),
            schemas: Arc::new(Schemas::new()),
            bounds: accept::Bounds {
                max_event_bytes: 1 << 20,
                max_message_bytes: 1 << 20,
            },
        };
        let acme = TenantId::new("acme").unwrap();
        let held = admission.admit(&acme, 1).expect("the tenant's share");
        let delivery = Delivery {
            event: quorum_domain::Event::new(
                "/upstream",
                "com.example.x",
                quorum_domain::StreamId::parse("x/1").unwrap(),
                acme.clone(),
                bytes::Bytes::new(),
            ),
            subject: "quorum.ingest.acme.com.example.x".into(),
            stream_seq: 1,
            delivered: 1,
        };
        match handler.handle(&delivery).await {
            Outcome::Wait { reason, .. } => assert!(reason.contains("share"), "{reason}"),
            other => panic!("expected a wait for the tenant's share, got {other:?}"),
        }
        drop(held);
    }

    #[test]
    fn the_tenant_is_the_subject_token() {
        assert_eq!(
            tenant_of("quorum.ingest.acme.com.example.x")
                .unwrap()
                .as_str(),
            "acme"
        );
        assert!(tenant_of("quorum.ingest.ACME.x").is_err());
        assert!(tenant_of("quorum.evt.acme.x").is_err());
    }
}
