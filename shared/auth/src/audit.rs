//! Who got a key, who lost one, and who was turned away, as events in the store, where the audit
//! chain covers them like any other. They belong to tenant `_system` (the key's tenant is in the
//! data): a refused caller has no tenant anyone can trust, and a tenant's own history stays what its
//! publishers sent. Refusals are rate-bounded: at most one event per reason and minute per process,
//! each counting the refusals it stands for, so a flood of bad keys cannot flood the store.

use std::collections::HashMap;

use bytes::Bytes;
use quorum_domain::{Event, StreamId, TenantId};
use quorum_event_store::{EventStore, ExpectedVersion, StoreError};
use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::Role;

/// A key was made (`key_id`, `prefix`, `tenant`, `roles`, `label`; never the secret).
pub const KEY_CREATED: &str = "quorum.auth.key.created";
/// A key was revoked (`key_id`, `prefix`, `tenant`).
pub const KEY_REVOKED: &str = "quorum.auth.key.revoked";
/// Requests were refused authentication (`reason`, `refusals`: how many this event stands for,
/// `key_prefix` of the one recorded when it presented a well-formed key).
pub const AUTH_REFUSED: &str = "quorum.auth.refused";

/// The source of these events: under `/quorum/`, which upstream publishers cannot use.
pub const SOURCE: &str = "/quorum/auth";

/// A key's own stream: its creation and its revocation.
pub fn key_stream(id: Uuid) -> StreamId {
    StreamId::parse(format!("auth-key/{id}")).expect("a uuid makes a valid stream id")
}

/// The stream of refused authentications.
pub fn refusals_stream() -> StreamId {
    StreamId::parse("auth/refused").expect("a valid stream id")
}

fn event(ty: &str, stream: StreamId, data: serde_json::Value) -> Event {
    Event::new(
        SOURCE,
        ty,
        stream,
        TenantId::system(),
        Bytes::from(data.to_string()),
    )
}

/// The store's error as the key functions report theirs.
fn sqlx_error(e: StoreError) -> sqlx::Error {
    match e {
        StoreError::Database(e) => e,
        other => sqlx::Error::Protocol(other.to_string()),
    }
}

/// Appends `quorum.auth.key.created` inside the transaction that inserts the key.
pub(crate) async fn key_created(
    tx: &mut PgConnection,
    id: Uuid,
    prefix: &str,
    tenant: &TenantId,
    roles: &[Role],
    label: Option<&str>,
) -> Result<(), sqlx::Error> {
    let data = json!({
        "key_id": id, "prefix": prefix, "tenant": tenant, "roles": roles, "label": label,
    });
    let e = event(KEY_CREATED, key_stream(id), data);
    EventStore::append_in(tx, &key_stream(id), ExpectedVersion::Any, &[e])
        .await
        .map(drop)
        .map_err(sqlx_error)
}

/// Appends `quorum.auth.key.revoked` inside the transaction that revokes the key.
pub(crate) async fn key_revoked(
    tx: &mut PgConnection,
    id: Uuid,
    prefix: &str,
    tenant: &str,
) -> Result<(), sqlx::Error> {
    let data = json!({ "key_id": id, "prefix": prefix, "tenant": tenant });
    let e = event(KEY_REVOKED, key_stream(id), data);
    EventStore::append_in(tx, &key_stream(id), ExpectedVersion::Any, &[e])
        .await
        .map(drop)
        .map_err(sqlx_error)
}

/// The event recording `refusals` refusals for `reason`.
pub(crate) fn refused(reason: &str, refusals: u64, key_prefix: Option<&str>) -> Event {
    let data = json!({ "reason": reason, "refusals": refusals, "key_prefix": key_prefix });
    event(AUTH_REFUSED, refusals_stream(), data)
}

/// Which refusals are recorded: the first of each reason in each minute, standing for itself and
/// for those of that reason not recorded since the last one. Holds one entry per reason (a handful),
/// whatever the traffic.
#[derive(Debug, Default)]
pub(crate) struct RefusalGate {
    /// Per reason: the minute of its last recorded refusal, and the refusals since not recorded.
    last: HashMap<&'static str, (i64, u64)>,
}

impl RefusalGate {
    /// `Some(n)` when a refusal for `reason` in `minute` is to be recorded as standing for `n`
    /// refusals; `None` when it is only counted, for the next recorded one.
    pub(crate) fn admit(&mut self, reason: &'static str, minute: i64) -> Option<u64> {
        match self.last.get_mut(reason) {
            Some((last, unrecorded)) if *last == minute => {
                *unrecorded += 1;
                None
            }
            Some((last, unrecorded)) => {
                let n = *unrecorded + 1;
                (*last, *unrecorded) = (minute, 0);
                Some(n)
            }
            None => {
                self.last.insert(reason, (minute, 0));
                Some(1)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_refusal_per_reason_and_minute_is_recorded_and_counts_the_rest() {
        let mut gate = RefusalGate::default();
        assert_eq!(gate.admit("unknown", 10), Some(1));
        for _ in 0..1000 {
            assert_eq!(gate.admit("unknown", 10), None);
        }
        // Another reason is recorded on its own.
        assert_eq!(gate.admit("revoked", 10), Some(1));
        // The next minute's first stands for itself and the 1000 counted.
        assert_eq!(gate.admit("unknown", 11), Some(1001));
        assert_eq!(gate.admit("unknown", 11), None);
        assert_eq!(gate.admit("unknown", 15), Some(2));
    }
}
