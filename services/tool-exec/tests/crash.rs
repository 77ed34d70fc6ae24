//! kill -9 of the tool-exec process in the middle of step 2: restarted, it finishes the saga from
//! its events, and the step whose tool honours the idempotency key is applied once although it was
//! called twice.

use crate::common;

use std::process::Stdio;

use common::*;
use quorum_testkit::{DEADLINE, wait_until};
use serde_json::json;
use tokio::process::{Child, Command};

fn spawn(config_path: &std::path::Path) -> anyhow::Result<Child> {
    Ok(Command::new(env!("CARGO_BIN_EXE_quorum-tool-exec"))
        .arg("--config")
        .arg(config_path)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()?)
}

#[tokio::test]
async fn killed_mid_step_the_saga_resumes_and_applies_each_step_once() -> anyhow::Result<()> {
    let env = env().await?;
    let (addr, rec) = service().await?;
    let config = config(&env, addr.port());
    let path = config.workdir_root.with_extension("toml");
    std::fs::write(&path, toml_of(&config)?)?;
    let mut process = spawn(&path)?;

    let plan = json!({ "steps": [
        http_step("one", addr, "/apply/1", Some("/undo/1")),
        http_step("two", addr, "/slow/2", Some("/undo/2")),
        http_step("three", addr, "/apply/3", Some("/undo/3")),
    ]});
    let id = submit(&env.store, plan).await?;
    wait_until("step two to be under way", DEADLINE, || async {
        rec.received().iter().any(|r| r.path == "/slow/2")
    })
    .await?;
    process.start_kill()?;
    process.wait().await?;
    assert!(
        !saga_types(&env.store, &id)
            .await?
            .iter()
            .any(|t| is_terminal(t)),
        "killed before the saga ended"
    );

    let mut restarted = spawn(&path)?;
    let types = wait_until(
        "the saga to end after the restart",
        DEADLINE * 2,
        || async {
            let types = saga_types(&env.store, &id).await.ok()?;
            types
                .last()
                .is_some_and(|t| is_terminal(t))
                .then_some(types)
        },
    )
    .await?;
    assert_eq!(types.last().unwrap(), "quorum.tool.plan.completed");
    // Step two was called again after the crash, with the same key, and applied once.
    let key = format!("{id}:1:do");
    let calls = rec.received().iter().filter(|r| r.key == key).count();
    assert!(
        calls >= 2,
        "step two was re-run after the crash ({calls} calls)"
    );
    let applied = rec.applied();
    for step in 0..3 {
        assert_eq!(
            applied.get(&format!("{id}:{step}:do")),
            Some(&1),
            "step {step} applied once: {applied:?}"
        );
    }
    // One start of step two in the history: the re-run after the crash is the same attempt.
    let events = saga_events(&env.store, &id).await?;
    let starts = events
        .iter()
        .filter(|(t, d)| t == "quorum.tool.step.started" && d["step"] == 1)
        .count();
    assert_eq!(starts, 1);
    restarted.start_kill()?;
    env.shutdown.cancel();
    Ok(())
}

/// The config as the binary reads it.
fn toml_of(c: &quorum_tool_exec::config::ToolExecConfig) -> anyhow::Result<String> {
    Ok(format!(
        r#"workdir_root = "{root}"
ack_wait = "3s"

[common]
nats_url = "{nats}"
database_url = "{db}"
admin_addr = "127.0.0.1:0"
log_format = "json"

[http]
allowed_hosts = ["{host}"]

[default_policy]
allowed_tools = ["http"]
max_steps = 8
"#,
        root = c.workdir_root.display(),
        nats = c.common.nats_url,
        db = c.common.database_url,
        host = c.http.allowed_hosts[0],
    ))
}
