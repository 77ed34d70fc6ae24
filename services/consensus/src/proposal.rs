//! Plans a consensus proposes: when the experts agree on an answer that is a tool plan, and the
//! query's tool policy lets a consensus call tools, the plan is requested as a saga in the same
//! transaction as the consensus. Tool-exec then checks it against the tenant's policy narrowed by
//! the query's (a query can only narrow), so this side needs no tenant knowledge.

use bytes::Bytes;
use quorum_domain::query::ToolPolicy as QueryToolPolicy;
use quorum_domain::{Event, StreamId, types};
use quorum_saga::{Origin, Plan, PlanRequested, SagaEvent, ToolPolicy};

/// Names this step in derived ids: never change it.
const HANDLER: &str = "consensus-plan";

/// The plan request the agreed `answer` makes, if it is a plan the query allows a consensus to
/// start: its saga stream and its event (id derived from the query, so a retried decision
/// requests the same saga).
pub fn propose(
    submitted: &Event,
    query_id: &str,
    policy: Option<&QueryToolPolicy>,
    answer: &str,
) -> Option<(StreamId, Event)> {
    let policy = policy.filter(|p| p.allowed)?;
    let plan = Plan::from_answer(answer)?;
    let id = quorum_domain::derived_event_id(&submitted.source, &submitted.id, HANDLER, 0);
    let stream = StreamId::new("saga", id.to_string()).ok()?;
    let request = SagaEvent::PlanRequested(PlanRequested {
        plan,
        origin: Origin::Consensus {
            query_id: query_id.to_owned(),
        },
        policy: Some(saga_policy(policy)),
    });
    let data = serde_json::to_vec(&request.data()).expect("a plan request serializes");
    let event = Event::derived(
        submitted,
        HANDLER,
        0,
        crate::decider::SOURCE,
        types::TOOL_PLAN_REQUESTED,
        stream.clone(),
        Bytes::from(data),
    );
    Some((stream, event))
}

/// The query's policy in the saga's terms: what it leaves open is left to the tenant's.
fn saga_policy(p: &QueryToolPolicy) -> ToolPolicy {
    ToolPolicy {
        allowed_tools: p.tools.clone().unwrap_or_else(|| vec!["*".into()]),
        max_steps: p.max_steps.map_or(u32::MAX as usize, |n| n as usize),
        allow_from_consensus: p.allowed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quorum_domain::TenantId;

    const PLAN: &str =
        r#"{"steps":[{"name":"ping","tool":{"tool":"http","args":{"url":"http://h/"}}}]}"#;

    fn submitted() -> Event {
        Event::new(
            "/quorum/ingest",
            types::QUERY_SUBMITTED,
            StreamId::new("query", "q1").unwrap(),
            TenantId::new("acme").unwrap(),
            Bytes::from_static(b"{}"),
        )
    }

    fn allowed() -> QueryToolPolicy {
        QueryToolPolicy {
            allowed: true,
            tools: Some(vec!["http".into()]),
            max_steps: Some(2),
        }
    }

    #[test]
    fn an_agreed_plan_is_requested_only_when_the_query_allows_it() {
        let s = submitted();
        assert!(propose(&s, "q1", None, PLAN).is_none(), "no policy");
        let off = QueryToolPolicy::default();
        assert!(propose(&s, "q1", Some(&off), PLAN).is_none(), "not allowed");
        assert!(
            propose(&s, "q1", Some(&allowed()), "Paris").is_none(),
            "not a plan"
        );

        let (stream, event) = propose(&s, "q1", Some(&allowed()), PLAN).expect("a request");
        assert_eq!(stream.category(), "saga");
        assert_eq!(event.subject.as_deref(), Some(stream.as_str()));
        assert_eq!(event.causationid.as_deref(), Some(s.id.as_str()));
        let data: serde_json::Value =
            serde_json::from_slice(event.data.as_deref().unwrap()).unwrap();
        let SagaEvent::PlanRequested(r) =
            SagaEvent::from_parts(types::TOOL_PLAN_REQUESTED, data).unwrap()
        else {
            panic!("not a plan request");
        };
        assert_eq!(
            r.origin,
            Origin::Consensus {
                query_id: "q1".into()
            }
        );
        let policy = r.policy.expect("the query's policy travels with the plan");
        assert_eq!(
            (policy.allowed_tools, policy.max_steps),
            (vec!["http".to_owned()], 2)
        );
        // The same decision again requests the same saga.
        assert_eq!(
            propose(&s, "q1", Some(&allowed()), PLAN).unwrap().1.id,
            event.id
        );
    }
}
