//! Sagas through the real tool-exec consumer, against real NATS and Postgres and a test HTTP service:
//! compensation in reverse order, completion once, a compensation that keeps failing ends as a dead
//! letter and a saga marked for attention, and refusals that change nothing.

use crate::common;

use common::*;
use quorum_runtime::Readiness;
use quorum_testkit::{DEADLINE, wait_until};
use serde_json::json;

async fn terminal(env: &Env, id: &str) -> anyhow::Result<Vec<String>> {
    wait_until("the saga to end", DEADLINE, || async {
        let types = saga_types(&env.store, id).await.ok()?;
        types
            .last()
            .is_some_and(|t| is_terminal(t))
            .then_some(types)
    })
    .await
}

#[tokio::test]
async fn a_failed_third_step_compensates_the_second_then_the_first() -> anyhow::Result<()> {
    let env = env().await?;
    let (addr, rec) = service().await?;
    quorum_tool_exec::start(
        &config(&env, addr.port()),
        env.db.pool.clone(),
        env.js.clone(),
        &env.shutdown,
        &Readiness::new(),
    );
    let plan = json!({ "steps": [
        http_step("one", addr, "/apply/1", Some("/undo/1")),
        http_step("two", addr, "/apply/2", Some("/undo/2")),
        http_step("three", addr, "/fail/3", Some("/undo/3")),
        http_step("four", addr, "/apply/4", Some("/undo/4")),
    ]});
    let id = submit(&env.store, plan).await?;
    let types = terminal(&env, &id).await?;
    let short: Vec<&str> = types
        .iter()
        .map(|t| t.trim_start_matches("quorum.tool."))
        .collect();
    assert_eq!(
        short,
        [
            "plan.requested",
            "step.started",
            "step.succeeded", // one
            "step.started",
            "step.succeeded", // two
            "step.started",
            "step.failed", // three, not retried: a 400 is final
            "step.started",
            "step.succeeded",
            "step.compensated", // undo two
            "step.started",
            "step.succeeded",
            "step.compensated", // undo one
            "plan.compensated",
        ]
    );
    let events = saga_events(&env.store, &id).await?;
    let compensated: Vec<u64> = events
        .iter()
        .filter(|(t, _)| t == "quorum.tool.step.compensated")
        .map(|(_, d)| d["step"].as_u64().unwrap())
        .collect();
    assert_eq!(compensated, [1, 0]);
    assert_eq!(events.last().unwrap().1["failed_step"], 2);
    let paths: Vec<String> = rec
        .received()
        .into_iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        paths,
        [
            "POST /apply/1",
            "POST /apply/2",
            "POST /fail/3",
            "DELETE /undo/2",
            "DELETE /undo/1"
        ]
    );
    // Every call carried its step's key; a compensation has a key of its own.
    let keys: Vec<String> = rec.received().into_iter().map(|r| r.key).collect();
    assert_eq!(keys[0], format!("{id}:0:do"));
    assert_eq!(keys[3], format!("{id}:1:undo"));
    env.shutdown.cancel();
    Ok(())
}

#[tokio::test]
async fn a_plan_that_succeeds_completes_once() -> anyhow::Result<()> {
    let env = env().await?;
    let (addr, rec) = service().await?;
    quorum_tool_exec::start(
        &config(&env, addr.port()),
        env.db.pool.clone(),
        env.js.clone(),
        &env.shutdown,
        &Readiness::new(),
    );
    let plan = json!({ "steps": [
        http_step("a", addr, "/apply/a", None),
        { "name": "b", "tool": { "tool": "exec", "args": { "program": "/bin/echo", "args": ["hello; rm -rf /", "$(id)", "|"] } } },
        http_step("c", addr, "/apply/c", None),
    ]});
    let id = submit(&env.store, plan).await?;
    let types = terminal(&env, &id).await?;
    assert_eq!(types.last().unwrap(), "quorum.tool.plan.completed");
    wait_until("the consumer to be idle", DEADLINE, || {
        consumer_idle(&env, "tool-exec")
    })
    .await?;
    let types = saga_types(&env.store, &id).await?;
    assert_eq!(
        types
            .iter()
            .filter(|t| *t == "quorum.tool.plan.completed")
            .count(),
        1
    );
    // The shell metacharacters reached echo literally: no shell ran them.
    let events = saga_events(&env.store, &id).await?;
    let echo = events
        .iter()
        .find(|(t, d)| t == "quorum.tool.step.succeeded" && d["step"] == 1)
        .unwrap();
    assert_eq!(echo.1["output"]["stdout"], "hello; rm -rf / $(id) |\n");
    assert_eq!(rec.applied().len(), 2);
    env.shutdown.cancel();
    Ok(())
}

async fn consumer_idle(env: &Env, name: &str) -> bool {
    let Ok(stream) = env.js.get_stream(quorum_bus::EVENTS_STREAM).await else {
        return false;
    };
    stream
        .consumer_info(name)
        .await
        .is_ok_and(|i| i.num_pending == 0 && i.num_ack_pending == 0)
}

#[tokio::test]
async fn a_compensation_that_keeps_failing_parks_the_saga_for_attention() -> anyhow::Result<()> {
    let env = env().await?;
    let (addr, rec) = service().await?;
    quorum_tool_exec::start(
        &config(&env, addr.port()),
        env.db.pool.clone(),
        env.js.clone(),
        &env.shutdown,
        &Readiness::new(),
    );
    let plan = json!({ "max_attempts": 2, "steps": [
        http_step("one", addr, "/apply/1", Some("/flaky/1")),
        http_step("two", addr, "/fail/2", None),
    ]});
    let id = submit(&env.store, plan).await?;
    let types = terminal(&env, &id).await?;
    assert_eq!(types.last().unwrap(), "quorum.tool.plan.failed");
    let events = saga_events(&env.store, &id).await?;
    assert_eq!(events.last().unwrap().1["needs_attention"], true);
    // Retried (a 500 may pass), then given up on: two attempts at the compensation.
    let undo_calls = rec
        .received()
        .iter()
        .filter(|r| r.path == "/flaky/1")
        .count();
    assert_eq!(undo_calls, 2);
    let letter: uuid::Uuid = wait_until("the dead letter", DEADLINE, || async {
        sqlx::query_scalar("SELECT id FROM dead_letters WHERE consumer = 'tool-exec'")
            .fetch_optional(&env.db.pool)
            .await
            .ok()
            .flatten()
    })
    .await?;
    // What `quorum saga show` prints.
    let view = quorum_tool_exec::show::show(&env.store, &id)
        .await?
        .expect("the saga");
    assert_eq!(view.status, "failed");
    assert!(view.needs_attention);
    assert_eq!(view.dead_letter, Some(letter));
    assert!(view.reason.unwrap().contains("step"));
    env.shutdown.cancel();
    Ok(())
}

#[tokio::test]
async fn refusals_are_clear_and_change_nothing() -> anyhow::Result<()> {
    let env = env().await?;
    let (addr, rec) = service().await?;
    let cfg = config(&env, addr.port());
    let marker = cfg.workdir_root.join("marker");
    quorum_tool_exec::start(
        &cfg,
        env.db.pool.clone(),
        env.js.clone(),
        &env.shutdown,
        &Readiness::new(),
    );
    let port = addr.port();
    let cases = [
        // A host not on the allowlist (same server, other name): nothing is sent.
        (
            json!({ "tool": "http", "args": { "method": "POST", "url": format!("http://localhost:{port}/apply/x") } }),
            "not on the http allowlist",
        ),
        // A program not on the allowlist: it never runs.
        (
            json!({ "tool": "exec", "args": { "program": "/usr/bin/touch", "args": [marker.to_str().unwrap()] } }),
            "not allowed",
        ),
        // Paths outside the saga's directory.
        (
            json!({ "tool": "exec", "args": { "program": "/bin/echo", "args": ["../x"], "path_args": [0] } }),
            "..",
        ),
        (
            json!({ "tool": "exec", "args": { "program": "/bin/echo", "args": ["/etc/passwd"], "path_args": [0] } }),
            "absolute",
        ),
        // Arguments of the wrong shape.
        (
            json!({ "tool": "http", "args": { "verb": "POST" } }),
            "http arguments",
        ),
    ];
    for (call, expect) in cases {
        let id = submit(
            &env.store,
            json!({ "steps": [{ "name": "x", "tool": call }] }),
        )
        .await?;
        let types = terminal(&env, &id).await?;
        assert_eq!(
            types.last().unwrap(),
            "quorum.tool.plan.compensated",
            "{call}"
        );
        let events = saga_events(&env.store, &id).await?;
        let failed: Vec<_> = events
            .iter()
            .filter(|(t, _)| t == "quorum.tool.step.failed")
            .collect();
        assert_eq!(failed.len(), 1, "refused once, not retried: {call}");
        let error = failed[0].1["error"].as_str().unwrap().to_lowercase();
        assert!(error.contains(expect), "{error:?} should say {expect:?}");
    }
    assert!(
        rec.received().is_empty(),
        "nothing reached the service: {:?}",
        rec.received()
    );
    assert!(!marker.exists());

    // A tool the tenant's policy does not allow: the plan fails before anything runs.
    let id = submit(
        &env.store,
        json!({ "steps": [{ "name": "x", "tool": { "tool": "mcp:nope/x", "args": {} } }] }),
    )
    .await?;
    let types = terminal(&env, &id).await?;
    assert_eq!(
        types,
        ["quorum.tool.plan.requested", "quorum.tool.plan.failed"]
    );
    let events = saga_events(&env.store, &id).await?;
    assert!(
        events[1].1["reason"]
            .as_str()
            .unwrap()
            .contains("mcp:nope/x")
    );
    assert_eq!(events[1].1["needs_attention"], false);
    env.shutdown.cancel();
    Ok(())
}

#[tokio::test]
async fn a_step_that_ignores_its_timeout_is_killed_and_the_service_goes_on() -> anyhow::Result<()> {
    let env = env().await?;
    let (addr, _rec) = service().await?;
    quorum_tool_exec::start(
        &config(&env, addr.port()),
        env.db.pool.clone(),
        env.js.clone(),
        &env.shutdown,
        &Readiness::new(),
    );
    let stuck = json!({ "max_attempts": 1, "steps": [{
        "name": "stuck",
        "timeout_ms": 1000,
        "tool": { "tool": "exec", "args": { "program": "/bin/sh", "args": ["-c", "trap '' TERM; sleep 4321 & sleep 4321"] } },
    }]});
    let id = submit(&env.store, stuck).await?;
    let types = terminal(&env, &id).await?;
    assert_eq!(types.last().unwrap(), "quorum.tool.plan.compensated");
    let events = saga_events(&env.store, &id).await?;
    let failed = events
        .iter()
        .find(|(t, _)| t == "quorum.tool.step.failed")
        .unwrap();
    assert!(
        failed.1["error"].as_str().unwrap().contains("timed out"),
        "{}",
        failed.1
    );
    // Nothing of it is left running.
    let left = std::fs::read_dir("/proc")?
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("cmdline")).ok())
        .filter(|c| c.starts_with("sleep\u{0}4321"))
        .count();
    assert_eq!(left, 0, "the whole process group was killed");
    // And the next saga runs as usual.
    let next = submit(
        &env.store,
        json!({ "steps": [
            { "name": "ok", "tool": { "tool": "exec", "args": { "program": "/bin/true" } } },
        ]}),
    )
    .await?;
    assert_eq!(
        terminal(&env, &next).await?.last().unwrap(),
        "quorum.tool.plan.completed"
    );
    env.shutdown.cancel();
    Ok(())
}
