//! Subject names (DESIGN §4). Every token is sanitised so that an upstream type or a consumer name
//! can never inject a wildcard or an extra token.

use quorum_domain::TenantId;

/// Replaces anything that is not safe inside NATS subject tokens (`.` is kept: it separates tokens of
/// a reverse-DNS type) and collapses empty tokens, so the result is always a valid subject tail.
pub fn token_path(raw: &str) -> String {
    let cleaned: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let tokens: Vec<&str> = cleaned.split('.').filter(|t| !t.is_empty()).collect();
    if tokens.is_empty() {
        "_".to_owned()
    } else {
        tokens.join(".")
    }
}

/// A single token: like [`token_path`] but `.` is replaced too.
pub fn token(raw: &str) -> String {
    token_path(&raw.replace('.', "_"))
}

/// Where the relay publishes a committed event: `quorum.evt.<tenant>.<type>`.
pub fn event(tenant: &TenantId, ty: &str) -> String {
    format!("quorum.evt.{tenant}.{}", token_path(ty))
}

/// Every committed event of every tenant.
pub const ALL_EVENTS: &str = "quorum.evt.>";

/// Events of one type for every tenant (a consumer filter).
pub fn event_type_filter(ty: &str) -> String {
    format!("quorum.evt.*.{}", token_path(ty))
}

/// A replay aimed at one consumer: `quorum.redeliver.<consumer>.<tenant>.<type>`.
pub fn redeliver(consumer: &str, tenant: &TenantId, ty: &str) -> String {
    format!(
        "quorum.redeliver.{}.{tenant}.{}",
        token(consumer),
        token_path(ty)
    )
}

/// What a consumer listens on for replays aimed at it.
pub fn redeliver_filter(consumer: &str) -> String {
    format!("quorum.redeliver.{}.>", token(consumer))
}

/// Upstream systems publish here (the `QUORUM_INGEST` work queue).
pub fn ingest(tenant: &TenantId, ty: &str) -> String {
    format!("quorum.ingest.{tenant}.{}", token_path(ty))
}

/// The subjects of the ingest work queue start with this.
pub const INGEST_PREFIX: &str = "quorum.ingest.";

/// The tenant token of an ingest subject, `quorum.ingest.<tenant>.<type…>`: `None` for a subject of
/// another stream, `Some(Err(token))` when the token is no valid tenant name. On this queue the
/// subject is the credential (the NATS account allowed to publish there), never the payload.
pub fn ingest_tenant(subject: &str) -> Option<Result<TenantId, String>> {
    let rest = subject.strip_prefix(INGEST_PREFIX)?;
    let token = rest.split('.').next().unwrap_or_default();
    Some(TenantId::new(token).map_err(|_| token.to_owned()))
}

/// The tenant a dead letter of a message on `subject` belongs to (ADR 21): on the ingest queue the
/// subject's tenant, whatever the payload claims; elsewhere the decoded event's tenant; and
/// `_system` when neither names a valid one.
pub fn letter_tenant(subject: &str, event_tenant: Option<&TenantId>) -> TenantId {
    match ingest_tenant(subject) {
        Some(Ok(tenant)) => tenant,
        Some(Err(_)) => TenantId::system(),
        None => event_tenant.cloned().unwrap_or_else(TenantId::system),
    }
}

/// A dead-letter notice: `quorum.dlq.<consumer>.<tenant>`.
pub fn dlq(consumer: &str, tenant: Option<&TenantId>) -> String {
    format!(
        "quorum.dlq.{}.{}",
        token(consumer),
        tenant.map_or("_", TenantId::as_str)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_cannot_be_injected() {
        let t = TenantId::new("acme").unwrap();
        assert_eq!(
            event(&t, "quorum.query.submitted"),
            "quorum.evt.acme.quorum.query.submitted"
        );
        assert_eq!(event(&t, "a.*.>..b c"), "quorum.evt.acme.a._._.b_c");
        assert_eq!(event(&t, ""), "quorum.evt.acme._");
        assert_eq!(
            redeliver("fan.out", &t, "x"),
            "quorum.redeliver.fan_out.acme.x"
        );
        assert_eq!(dlq("c", None), "quorum.dlq.c._");
    }

    #[test]
    fn a_letter_of_the_ingest_queue_belongs_to_the_subjects_tenant() {
        let acme = TenantId::new("acme").unwrap();
        let globex = TenantId::new("globex").unwrap();
        assert_eq!(
            letter_tenant("quorum.ingest.acme.com.example.x", Some(&globex)),
            acme
        );
        assert_eq!(
            letter_tenant("quorum.ingest.ACME.x", Some(&globex)),
            TenantId::system()
        );
        assert_eq!(letter_tenant("quorum.evt.globex.x", Some(&globex)), globex);
        assert_eq!(letter_tenant("quorum.evt.x", None), TenantId::system());
        assert_eq!(
            ingest_tenant("quorum.ingest.ACME.x"),
            Some(Err("ACME".to_owned()))
        );
        assert_eq!(ingest_tenant("quorum.evt.acme.x"), None);
    }
}
