use crate::common;

use common::*;
use quorum_saga::*;
use serde_json::json;

fn policy(tools: &[&str], max_steps: usize) -> ToolPolicy {
    ToolPolicy {
        allowed_tools: tools.iter().map(|s| s.to_string()).collect(),
        max_steps,
        allow_from_consensus: false,
    }
}

#[test]
fn valid_plan_passes() {
    assert_eq!(plan(3, &[]).validate(&policy(&["http"], 3)), Ok(()));
}

#[test]
fn empty_and_oversized_plans_are_refused() {
    let p = policy(&["http"], 2);
    assert_eq!(plan(0, &[]).validate(&p), Err(PlanError::Empty));
    assert_eq!(
        plan(3, &[]).validate(&p),
        Err(PlanError::TooManySteps { count: 3, max: 2 })
    );
}

#[test]
fn names_must_be_unique_and_non_empty() {
    let p = policy(&["http"], 5);
    let mut dup = plan(3, &[]);
    dup.steps[2].name = "a".into();
    let err = dup.validate(&p).unwrap_err();
    assert_eq!(err.to_string(), "step 2 (\"a\") reuses the name of step 0");
    let mut blank = plan(2, &[]);
    blank.steps[1].name = " ".into();
    assert_eq!(blank.validate(&p), Err(PlanError::EmptyName { index: 1 }));
}

#[test]
fn tools_and_compensations_must_be_allowed_including_prefixes() {
    let p = policy(&["http", "mcp:time/*"], 5);
    let mut ok = plan(2, &[]);
    ok.steps[1].tool = call("mcp:time/now", "x");
    assert_eq!(ok.validate(&p), Ok(()));

    let mut outside = plan(2, &[]);
    outside.steps[1].tool = call("mcp:timer/now", "x");
    let err = outside.validate(&p).unwrap_err();
    let message = err.to_string();
    assert!(
        message.starts_with("step 1 (\"b\"): tool \"mcp:timer/now\" is not allowed by the policy"),
        "{message}"
    );
    // The refusal names the settings that would allow it.
    assert!(
        message.contains("allowed_tools") && message.contains("tool_policy.tools"),
        "{message}"
    );

    let mut undo = plan(2, &[]);
    undo.steps[0].compensate = Some(call("exec", "rm"));
    assert!(matches!(
        undo.validate(&p),
        Err(PlanError::CompensationNotAllowed { index: 0, .. })
    ));
}

#[test]
fn timeouts_and_attempts_are_bounded() {
    let p = policy(&["http"], 5);
    for (value, ok) in [
        (0, false),
        (1, true),
        (MAX_TIMEOUT_MS, true),
        (MAX_TIMEOUT_MS + 1, false),
    ] {
        let mut t = plan(1, &[]);
        t.steps[0].timeout_ms = Some(value);
        assert_eq!(t.validate(&p).is_ok(), ok, "timeout {value}");
    }
    let mut a = plan(1, &[]);
    a.steps[0].max_attempts = Some(0);
    assert!(matches!(
        a.validate(&p),
        Err(PlanError::StepMaxAttempts { index: 0, .. })
    ));
}

#[test]
fn merged_policy_is_the_narrower_for_validation() {
    let tenant = ToolPolicy {
        allow_from_consensus: true,
        ..policy(&["http", "mcp:*"], 10)
    };
    let query = policy(&["mcp:time/*"], 2);
    let merged = ToolPolicy::merge(&tenant, Some(&query));
    assert_eq!(plan(2, &[]).validate(&tenant), Ok(()));
    assert!(matches!(
        plan(2, &[]).validate(&merged),
        Err(PlanError::ToolNotAllowed { index: 0, .. })
    ));
    assert!(matches!(
        plan(3, &[]).validate(&merged),
        Err(PlanError::TooManySteps { max: 2, .. })
    ));
    let consensus = Origin::Consensus {
        query_id: "q1".into(),
    };
    let mut timely = plan(1, &[0]);
    timely.steps[0].tool = call("mcp:time/now", "x");
    assert_eq!(timely.validate_request(&tenant, &consensus), Ok(()));
    assert_eq!(
        timely.validate_request(&merged, &consensus),
        Err(PlanError::ConsensusNotAllowed)
    );
    assert_eq!(timely.validate_request(&merged, &Origin::Upstream), Ok(()));
}

#[test]
fn plan_json_round_trips_and_unknown_fields_are_refused() {
    let doc = json!({"steps":[{"name":"a","tool":{"tool":"http","args":{"method":"POST","url":"http://x/y"}},"compensate":{"tool":"http","args":{"method":"DELETE","url":"http://x/y"}}}]});
    let parsed: Plan = serde_json::from_value(doc.clone()).unwrap();
    assert_eq!(
        parsed.steps[0].compensate.as_ref().unwrap().args["method"],
        "DELETE"
    );
    assert_eq!(parsed.steps[0].timeout_ms, None);
    assert_eq!(serde_json::to_value(&parsed).unwrap(), doc);
    let text = serde_json::to_string(&parsed).unwrap();
    assert_eq!(serde_json::from_str::<Plan>(&text).unwrap(), parsed);

    let mut extra = doc.clone();
    extra["steps"][0]["retries"] = json!(2);
    let err = serde_json::from_value::<Plan>(extra).unwrap_err();
    assert!(err.to_string().contains("unknown field `retries`"), "{err}");
    let mut top = doc;
    top["priority"] = json!(1);
    assert!(serde_json::from_value::<Plan>(top).is_err());
}

#[test]
fn a_plan_is_read_from_an_answer_and_prose_is_not() {
    let json = r#"{"steps":[{"name":"ping","tool":{"tool":"http","args":{"url":"http://h/"}}}]}"#;
    let plan = Plan::from_answer(json).expect("a bare plan");
    assert_eq!(plan.steps[0].name, "ping");
    let fenced = format!("```json\n{json}\n```\n");
    assert_eq!(Plan::from_answer(&fenced), Some(plan));
    assert_eq!(Plan::from_answer("Paris"), None);
    assert_eq!(
        Plan::from_answer(r#"{"steps":[]}"#),
        None,
        "no steps, no plan"
    );
    assert_eq!(Plan::from_answer(r#"{"steps":[],"extra":1}"#), None);
    assert_eq!(Plan::from_answer("The plan: {\"steps\": []}"), None);
}
