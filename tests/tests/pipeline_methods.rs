//! A question whose answers agree in meaning only or name a tool plan, through the same pipeline
//! as `pipeline`: a judge's merge, a judge that fails, an agreed plan run as a saga within the
//! policies.

use quorum_domain::{StreamId, types};
use quorum_experts::scripted::{Rule, ScriptedConfig};
use quorum_experts::{ExpertConfig, ProviderConfig};
use quorum_runtime::Readiness;
use quorum_testkit::{DEADLINE, wait_until};
use serde_json::{Value, json};

use crate::common;
use common::*;

/// Two experts that say the same in other words, and one that contradicts them.
fn paraphrases_and_a_contradiction() -> Vec<ExpertConfig> {
    vec![
        scripted("alpha", "The capital of France is Paris.", 0.0, 0),
        scripted("beta", "Paris is the capital of France", 0.0, 0),
        scripted("gamma", "The capital of France is Lyon.", 0.0, 0),
    ]
}

#[tokio::test]
async fn a_judge_merges_the_answers_and_the_grouping_still_names_the_dissent() -> anyhow::Result<()>
{
    let mut judge = scripted("judge", "unused", 0.0, 0);
    // The judge sees every answer by expert; its rule fires only on the prompt it is sent.
    judge.provider = ProviderConfig::Scripted(ScriptedConfig {
        rules: vec![Rule {
            contains: "- beta: paris is the capital of france".into(),
            answer: "Paris is the capital of France (merged)".into(),
        }],
        default_answer: "the judge did not see the answers".into(),
        ..Default::default()
    });
    let p = pipeline_with_judge(paraphrases_and_a_contradiction(), 1, Some(judge)).await?;
    let stream = p
        .ask(json!({"question": "What is the capital of France?", "strategy": "judge"}))
        .await?;
    let (ty, data) = p.consensus(&stream).await?;
    assert_eq!(ty, types::CONSENSUS_REACHED, "{data}");
    assert_eq!(data["answer"], "Paris is the capital of France (merged)");
    assert_eq!(data["strategy"], "judge");
    assert_eq!(data["majority"], json!(["alpha", "beta"]));
    assert_eq!(data["dissent"][0]["expert"], "gamma");
    assert_eq!(data["judge"]["expert"], "judge");
    assert_eq!(data["judge"]["provider"], "scripted");
    assert_eq!(data["judge"].get("error"), None, "{data}");
    p.shutdown.cancel();
    Ok(())
}

#[tokio::test]
async fn a_failing_judge_leaves_the_plainest_answer_and_says_why() -> anyhow::Result<()> {
    let p = pipeline_with_judge(
        paraphrases_and_a_contradiction(),
        1,
        Some(scripted("judge", "unused", 1.0, 0)),
    )
    .await?;
    let stream = p
        .ask(json!({"question": "What is the capital of France?", "strategy": "judge"}))
        .await?;
    let (ty, data) = p.consensus(&stream).await?;
    assert_eq!(ty, types::CONSENSUS_REACHED, "{data}");
    assert_eq!(data["answer"], "Paris is the capital of France");
    assert_eq!(data["majority"], json!(["alpha", "beta"]));
    let error = data["judge"]["error"].as_str().unwrap_or_default();
    assert!(error.contains("scripted failure"), "{data}");
    // Asked first whether Paris and Lyon mean the same, the judge failed too: the offline rules
    // decided, and the consensus says so.
    assert_eq!(data["grouping"]["method"], "judge", "{data}");
    let error = data["grouping"]["error"].as_str().unwrap_or_default();
    assert!(error.contains("scripted failure"), "{data}");
    p.shutdown.cancel();
    Ok(())
}

/// A test service the plan's http steps call: each POST recorded with its idempotency key.
async fn recording_service() -> anyhow::Result<(
    std::net::SocketAddr,
    std::sync::Arc<std::sync::Mutex<Vec<String>>>,
)> {
    use axum::http::HeaderMap;
    let calls = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = calls.clone();
    let app = axum::Router::new().route(
        "/ping",
        axum::routing::post(move |headers: HeaderMap| async move {
            let key = headers
                .get("idempotency-key")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            seen.lock().unwrap().push(key.to_owned());
            "pong"
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((addr, calls))
}

#[tokio::test]
async fn an_agreed_plan_runs_as_a_saga_only_within_the_query_and_tenant_policies()
-> anyhow::Result<()> {
    let (addr, calls) = recording_service().await?;
    let plan = json!({"steps": [{"name": "ping", "tool": {"tool": "http",
        "args": {"method": "POST", "url": format!("http://{addr}/ping")}}}]})
    .to_string();
    // Every expert agrees on the plan when asked to ping.
    let expert = |name: &str| {
        let mut e = scripted(name, "unused", 0.0, 0);
        e.provider = ProviderConfig::Scripted(ScriptedConfig {
            rules: vec![Rule {
                contains: "ping".into(),
                answer: plan.clone(),
            }],
            ..Default::default()
        });
        e
    };
    let p = pipeline(vec![expert("alpha"), expert("beta"), expert("gamma")], 1).await?;
    let mut tools = quorum_tool_exec::config::ToolExecConfig::default();
    tools.http.allowed_hosts = vec![addr.to_string()];
    tools.default_policy.allowed_tools = vec!["http".into()];
    // acme lets a consensus start plans; every other tenant keeps the default (it may not).
    let mut acme = tools.default_policy.clone();
    acme.allow_from_consensus = true;
    tools.tenants.insert("acme".into(), acme);
    quorum_tool_exec::start(
        &tools,
        p.env.db.pool.clone(),
        p.env.js.clone(),
        &p.shutdown,
        &Readiness::new(),
    );
    let saga_of = |data: &Value| data["saga"].as_str().map(str::to_owned);
    let store = &p.env.store;
    let saga_end = |saga: String| async move {
        let stream = StreamId::parse(&saga)?;
        wait_until("the saga to end", DEADLINE, || async {
            let events = store.read_stream(&stream, 1, 100).await.ok()?;
            let last = events.last()?;
            let ended = ["completed", "compensated", "failed"]
                .map(|end| format!("quorum.tool.plan.{end}"))
                .contains(&last.event.ty);
            ended.then(|| {
                let data: Value = serde_json::from_slice(last.event.data.as_deref()?).ok()?;
                Some((last.event.ty.clone(), data))
            })?
        })
        .await
    };

    // Allowed by the query and the tenant: the plan runs, once.
    let allowed = json!({"allowed": true, "tools": ["http"], "max_steps": 2});
    let stream = p
        .ask(json!({"question": "Please ping the service", "tool_policy": allowed}))
        .await?;
    let (ty, data) = p.consensus(&stream).await?;
    assert_eq!(ty, types::CONSENSUS_REACHED, "{data}");
    let saga = saga_of(&data).expect("the consensus names the saga it started");
    let (end, _) = saga_end(saga.clone()).await?;
    assert_eq!(end, "quorum.tool.plan.completed");
    assert_eq!(calls.lock().unwrap().len(), 1, "the step ran once");
    let request = &p
        .env
        .store
        .read_stream(&StreamId::parse(&saga)?, 1, 1)
        .await?[0];
    let query_id = stream.as_str().trim_start_matches("query/");
    assert_eq!(request.event.correlationid.as_deref(), Some(query_id));
    let request: Value = serde_json::from_slice(request.event.data.as_deref().unwrap())?;
    assert_eq!(
        request["origin"],
        json!({"kind": "consensus", "query_id": query_id})
    );

    // No tool policy on the query: the plan is only an answer.
    let stream = p
        .ask(json!({"question": "Please ping the service"}))
        .await?;
    let (ty, data) = p.consensus(&stream).await?;
    assert_eq!(
        (ty.as_str(), saga_of(&data)),
        (types::CONSENSUS_REACHED, None)
    );

    // The query narrows the tools to exec: tool-exec refuses before any step.
    let narrow = json!({"allowed": true, "tools": ["exec"]});
    let stream = p
        .ask(json!({"question": "Please ping the service", "tool_policy": narrow}))
        .await?;
    let (_, data) = p.consensus(&stream).await?;
    let (end, why) = saga_end(saga_of(&data).expect("a saga")).await?;
    assert_eq!(end, "quorum.tool.plan.failed");
    assert!(
        why["reason"].as_str().unwrap().contains("not allowed"),
        "{why}"
    );

    // A tenant whose policy keeps consensus plans off: refused whatever the query says.
    let stream = p
        .ask_as(
            "globex",
            json!({"question": "Please ping the service", "tool_policy": allowed}),
        )
        .await?;
    let (_, data) = p.consensus(&stream).await?;
    let (end, why) = saga_end(saga_of(&data).expect("a saga")).await?;
    assert_eq!(end, "quorum.tool.plan.failed");
    assert!(
        why["reason"].as_str().unwrap().contains("consensus"),
        "{why}"
    );

    assert_eq!(
        calls.lock().unwrap().len(),
        1,
        "no refused plan called anything"
    );
    p.shutdown.cancel();
    Ok(())
}
