//! Which stream an upstream event is stored in (docs/adr/0006).
//!
//! Stream ids are global in the store, tenants are not: two tenants sending the same `subject` must
//! never share a stream (its versions, its order, its history). So an upstream event's stream is
//! named after its tenant, and its `subject` stays exactly as sent:
//!
//! - with a subject: `sub-<tenant>/<subject>`, so a tenant's events about one thing are ordered;
//! - without one: `ev-<tenant>/<uuid of (source, id)>`, a stream of its own (no order is implied);
//! - `quorum.query.submitted`: `query/<uuid of (tenant, source, id)>`, the query's stream, which the
//!   rest of the pipeline follows. Its subject is set to that stream.
//! - `quorum.tool.plan.requested`: `saga/<uuid of (tenant, source, id)>`, the saga's stream, in the
//!   same way; its data must be a plan request from upstream (`origin.kind` = `upstream`).
//!
//! The names are deterministic, so the same event sent twice lands in the same stream and is
//! recognised as a duplicate there.

use quorum_domain::{Event, StreamId, TenantId, types};
use uuid::Uuid;

use crate::accept::Rejection;

/// Longest subject kept as a stream name (the stream id column allows 512 bytes).
pub const MAX_SUBJECT_BYTES: usize = 400;

/// Seeds the v5 uuids of stream names; any fixed value works, this one must never change.
const NAMESPACE: Uuid = Uuid::from_u128(0x6a1f_27c4_5b0e_4d3a_9a61_0f3c_2e88_d1b7);

fn uuid_of(parts: &[&str]) -> Uuid {
    // NUL cannot occur in any of the parts (tenants and CloudEvents strings are printable), so the
    // joined key is unambiguous.
    Uuid::new_v5(&NAMESPACE, parts.join("\0").as_bytes())
}

/// The stream of a query submitted by `tenant` as the event (`source`, `id`).
pub fn query_stream(tenant: &TenantId, source: &str, id: &str) -> StreamId {
    let id = uuid_of(&["query", tenant.as_str(), source, id]);
    StreamId::new("query", id.to_string()).expect("a valid stream id")
}

/// The stream of a plan requested by `tenant` as the event (`source`, `id`).
pub fn saga_stream(tenant: &TenantId, source: &str, id: &str) -> StreamId {
    let id = uuid_of(&["saga", tenant.as_str(), source, id]);
    StreamId::new("saga", id.to_string()).expect("a valid stream id")
}

/// A plan request's data, checked as tool-exec will read it.
fn check_plan(event: &Event) -> Result<(), Rejection> {
    let data: serde_json::Value = event
        .data
        .as_deref()
        .map(serde_json::from_slice)
        .transpose()
        .map_err(|e| Rejection::invalid("data", format!("not JSON: {e}")))?
        .unwrap_or_default();
    match quorum_saga::SagaEvent::from_parts(types::TOOL_PLAN_REQUESTED, data) {
        Ok(quorum_saga::SagaEvent::PlanRequested(r))
            if r.origin == quorum_saga::Origin::Upstream =>
        {
            Ok(())
        }
        Ok(_) => Err(Rejection::invalid("data", "origin.kind must be upstream")),
        Err(e) => Err(Rejection::invalid(
            "data",
            format!("not a plan request: {e}"),
        )),
    }
}

/// Names `event`'s stream; sets the subject of a query. Refuses Quorum's own types other than a
/// query, which only Quorum may produce.
pub fn stream_for(tenant: &TenantId, event: &mut Event) -> Result<StreamId, Rejection> {
    if event.ty == types::QUERY_SUBMITTED {
        let stream = query_stream(tenant, &event.source, &event.id);
        match &event.subject {
            Some(s) if s != stream.as_str() => {
                return Err(Rejection::invalid(
                    "subject",
                    format!(
                        "the stream of a quorum.query.submitted is named by Quorum ({stream}); send it without a subject"
                    ),
                ));
            }
            _ => event.subject = Some(stream.to_string()),
        }
        return Ok(stream);
    }
    if event.ty == types::TOOL_PLAN_REQUESTED {
        check_plan(event)?;
        let stream = saga_stream(tenant, &event.source, &event.id);
        match &event.subject {
            Some(s) if s != stream.as_str() => {
                return Err(Rejection::invalid(
                    "subject",
                    format!(
                        "the stream of a plan is named by Quorum ({stream}); send it without a subject"
                    ),
                ));
            }
            _ => event.subject = Some(stream.to_string()),
        }
        return Ok(stream);
    }
    if event.ty.starts_with("quorum.") {
        return Err(Rejection::invalid(
            "type",
            format!(
                "{} is reserved for Quorum's own events; upstream systems may send quorum.query.submitted and quorum.tool.plan.requested",
                event.ty
            ),
        ));
    }
    match &event.subject {
        Some(subject) if subject.len() > MAX_SUBJECT_BYTES => Err(Rejection::invalid(
            "subject",
            format!("longer than {MAX_SUBJECT_BYTES} bytes"),
        )),
        Some(subject) => StreamId::new(&format!("sub-{tenant}"), subject.clone())
            .map_err(|e| Rejection::invalid("subject", e.to_string())),
        None => Ok(StreamId::new(
            &format!("ev-{tenant}"),
            uuid_of(&[&event.source, &event.id]).to_string(),
        )
        .expect("a valid stream id")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upstream(ty: &str, subject: Option<&str>) -> Event {
        let mut e = Event::new(
            "https://example.com/orders",
            ty,
            StreamId::parse("x/1").unwrap(),
            TenantId::new("acme").unwrap(),
            bytes::Bytes::new(),
        );
        e.subject = subject.map(str::to_owned);
        e
    }

    #[test]
    fn tenants_never_share_a_stream() {
        let (acme, other) = (
            TenantId::new("acme").unwrap(),
            TenantId::new("other").unwrap(),
        );
        let mut a = upstream("com.example.order", Some("order/1"));
        let mut b = a.clone();
        let sa = stream_for(&acme, &mut a).unwrap();
        assert_eq!(sa.as_str(), "sub-acme/order/1");
        assert_ne!(sa, stream_for(&other, &mut b).unwrap());
        assert_eq!(a.subject.as_deref(), Some("order/1"), "kept as sent");
    }

    #[test]
    fn names_are_deterministic() {
        let acme = TenantId::new("acme").unwrap();
        let mut a = upstream("com.example.order", None);
        let mut b = a.clone();
        assert_eq!(
            stream_for(&acme, &mut a).unwrap(),
            stream_for(&acme, &mut b).unwrap()
        );
        let mut q = upstream(types::QUERY_SUBMITTED, None);
        let mut q2 = q.clone();
        let s = stream_for(&acme, &mut q).unwrap();
        assert!(s.as_str().starts_with("query/"));
        assert_eq!(q.subject.as_deref(), Some(s.as_str()));
        assert_eq!(stream_for(&acme, &mut q2).unwrap(), s);
    }

    #[test]
    fn a_plan_gets_its_saga_stream_and_bad_plans_are_refused() {
        let acme = TenantId::new("acme").unwrap();
        let with = |data: &str| {
            let mut e = upstream(types::TOOL_PLAN_REQUESTED, None);
            e.data = Some(bytes::Bytes::from(data.to_owned()));
            e
        };
        let ok = r#"{"plan":{"steps":[{"name":"a","tool":{"tool":"http","args":{}}}]},"origin":{"kind":"upstream"}}"#;
        let mut e = with(ok);
        let s = stream_for(&acme, &mut e).unwrap();
        assert!(s.as_str().starts_with("saga/"));
        assert_eq!(e.subject.as_deref(), Some(s.as_str()));
        let consensus = r#"{"plan":{"steps":[]},"origin":{"kind":"consensus","query_id":"q"}}"#;
        for bad in [
            "{}",
            "not json",
            consensus,
            r#"{"plan":{"steps":[]},"origin":{"kind":"upstream"},"x":1}"#,
        ] {
            let err = stream_for(&acme, &mut with(bad)).unwrap_err();
            assert_eq!(err.attribute(), "data", "{bad}");
        }
    }

    #[test]
    fn quorum_types_are_reserved_and_query_subjects_assigned() {
        let acme = TenantId::new("acme").unwrap();
        let mut e = upstream("quorum.consensus.reached", None);
        assert_eq!(stream_for(&acme, &mut e).unwrap_err().attribute(), "type");
        let mut q = upstream(types::QUERY_SUBMITTED, Some("query/mine"));
        assert_eq!(
            stream_for(&acme, &mut q).unwrap_err().attribute(),
            "subject"
        );
        let mut long = upstream("com.example.x", Some(&"s".repeat(MAX_SUBJECT_BYTES + 1)));
        assert_eq!(
            stream_for(&acme, &mut long).unwrap_err().attribute(),
            "subject"
        );
    }
}
