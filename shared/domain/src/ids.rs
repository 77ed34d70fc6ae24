//! Typed identifiers and the id rules for events Quorum produces.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// See [`TenantId::system`].
pub const SYSTEM_TENANT: &str = "_system";

/// The tenant an event belongs to. It always comes from a credential or a subject token, never from a
/// payload, so it is validated to be safe as a NATS subject token.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TenantId(String);

impl TenantId {
    /// A tenant name: 1 to 64 characters of `[a-z0-9_-]`, so it can stand as one NATS subject token.
    pub fn new(name: impl Into<String>) -> Result<Self, crate::EventError> {
        let name = name.into();
        let valid = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if valid {
            Ok(Self(name))
        } else {
            Err(crate::EventError::InvalidTenant(name))
        }
    }

    /// The tenant of Quorum's own bookkeeping (audit checkpoints, dead letters that name no
    /// tenant). Its leading `_` keeps it apart from any tenant an operator would name.
    pub fn system() -> Self {
        Self(SYSTEM_TENANT.to_owned())
    }

    /// The tenant name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TenantId {
    type Error = crate::EventError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<TenantId> for String {
    fn from(value: TenantId) -> Self {
        value.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The id of an event stream, `<category>/<id>` (`query/0193…`, `saga/…`). It is the CloudEvent
/// `subject` attribute and the unit of optimistic concurrency and of ordered delivery.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct StreamId(String);

impl StreamId {
    /// Parses `<category>/<id>`: a non-empty category of `[a-z0-9_-]` and a non-empty id.
    pub fn parse(value: impl Into<String>) -> Result<Self, crate::EventError> {
        let value = value.into();
        let ok = match value.split_once('/') {
            Some((category, id)) => {
                !category.is_empty()
                    && category.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
                    })
                    && !id.is_empty()
                    && !id.chars().any(char::is_control)
                    && value.len() <= 512
            }
            None => false,
        };
        if ok {
            Ok(Self(value))
        } else {
            Err(crate::EventError::InvalidStream(value))
        }
    }

    /// A stream of `category` for the entity `id`.
    pub fn new(category: &str, id: impl fmt::Display) -> Result<Self, crate::EventError> {
        Self::parse(format!("{category}/{id}"))
    }

    /// The category, the part before the first `/`.
    pub fn category(&self) -> &str {
        self.0.split_once('/').map_or("", |(c, _)| c)
    }

    /// The whole id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for StreamId {
    type Error = crate::EventError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(value)
    }
}

impl From<StreamId> for String {
    fn from(value: StreamId) -> Self {
        value.0
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The namespace of Quorum's derived ids (a fixed, random UUID; changing it changes every derived id).
const DERIVED_NAMESPACE: Uuid = Uuid::from_u128(0x6f1c_2b7e_4a8d_4f0e_9b3a_5d2c_7e1f_0a94);

/// A fresh id for an event Quorum originates: UUIDv7, so ids sort by creation time.
pub fn new_event_id() -> Uuid {
    Uuid::now_v7()
}

/// The id of the `index`-th event that `handler` derives from the event (`cause_source`, `cause_id`).
///
/// Deterministic (UUIDv5), so a handler that runs again on a redelivered message produces the same ids,
/// and the event store's (`source`, `id`) idempotency turns the second append into a no-op. The cause's
/// source is part of the name because upstream ids are unique only together with their source.
pub fn derived_event_id(cause_source: &str, cause_id: &str, handler: &str, index: u32) -> Uuid {
    let name = format!("{cause_source}\n{cause_id}\n{handler}\n{index}");
    Uuid::new_v5(&DERIVED_NAMESPACE, name.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_are_deterministic_and_distinct() {
        let a = derived_event_id("/quorum/ingest", "e1", "fanout", 0);
        assert_eq!(a, derived_event_id("/quorum/ingest", "e1", "fanout", 0));
        assert_ne!(a, derived_event_id("/quorum/ingest", "e1", "fanout", 1));
        assert_ne!(a, derived_event_id("/quorum/ingest", "e1", "consensus", 0));
        assert_ne!(a, derived_event_id("/other", "e1", "fanout", 0));
        assert_eq!(a.get_version_num(), 5);
    }

    #[test]
    fn stream_ids_need_a_category_and_an_id() {
        let s = StreamId::parse("query/0193").unwrap();
        assert_eq!(s.category(), "query");
        assert!(StreamId::parse("query").is_err());
        assert!(StreamId::parse("/x").is_err());
        assert!(StreamId::parse("query/").is_err());
        assert!(StreamId::parse("Query/1").is_err());
    }

    #[test]
    fn tenants_are_subject_safe() {
        assert!(TenantId::new("acme-1").is_ok());
        for bad in ["", "a.b", "a b", "A", "a*", "a>"] {
            assert!(TenantId::new(bad).is_err(), "{bad:?} accepted");
        }
    }
}
