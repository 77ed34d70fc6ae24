//! Upstream systems publishing to `QUORUM_INGEST` (`quorum.ingest.<tenant>.>`): the same checks and
//! the same group commit as HTTP. The tenant is the subject's token; the NATS account that may
//! publish there is the credential. A message that can never be accepted is parked as a dead letter
//! with the reason, never dropped (the runtime parks what does not even decode).

use std::sync::Arc;
use std::time::Duration;

use quorum_domain::TenantId;
use quorum_runtime::consumer::{Delivery, Handler, Outcome};
use quorum_schemas::Schemas;

use crate::accept::{self, Rejection};
use crate::commit::Committer;

/// The durable consumer's name, shared by ingest replicas.
pub const CONSUMER: &str = "ingest";
/// What it reads.
pub const FILTER: &str = "quorum.ingest.>";

pub struct IngestHandler {
    pub committer: Committer,
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
            ) => Outcome::retry(Duration::from_secs(1), e),
            Err(e) => Outcome::dead(format!("refused: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
