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
}
