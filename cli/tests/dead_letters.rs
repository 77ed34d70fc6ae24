//! Every dead letter `quorum status` counts is reachable through `quorum dlq` (ADR 21): a message NATS
//! ingest refuses is filed under the tenant its subject names, one whose subject names no valid
//! tenant under `_system` (reached with `--system`); and discarding the letter of a saga that needs
//! attention closes that saga's call for attention. Driven through the `quorum` binary against one
//! `quorum up`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::any;
use quorum_testkit::{DEADLINE, wait_until};
use serde_json::{Value, json};
use tokio::process::Command;

use crate::common;
use common::*;

/// Runs a command that must succeed quietly and returns its JSON output.
async fn json_of(dir: &Path, args: &[&str]) -> anyhow::Result<Value> {
    let out = run(dir, args).await?;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{args:?}: stdout {:?}, stderr {:?}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_eq!(text(&out.stderr), "", "{args:?} wrote on stderr");
    Ok(serde_json::from_slice(&out.stdout)?)
}

fn tempdir(what: &str) -> anyhow::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("quorum-{what}-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir)?;
    // Postgres refuses a data directory under one only its owner may enter.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
    Ok(dir)
}

/// A service a saga's steps call: `/apply` succeeds, everything else answers 500.
async fn service() -> anyhow::Result<SocketAddr> {
    let app = Router::new()
        .route("/apply", any(|| async { StatusCode::OK }))
        .fallback(|| async { StatusCode::INTERNAL_SERVER_ERROR });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(addr)
}

fn total(list: &Value) -> i64 {
    list["counts"]
        .as_object()
        .map(|c| c.values().filter_map(Value::as_i64).sum())
        .unwrap_or_default()
}

#[tokio::test]
async fn every_letter_status_counts_is_reachable_and_a_discard_closes_the_saga_it_held()
-> anyhow::Result<()> {
    let dir = tempdir("dead-letters")?;
    let dir = dir.as_path();
    let service = service().await?;
    let config = dir.join("quorum.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[tool_exec.http]
allowed_hosts = ["{service}"]

[tool_exec.default_policy]
allowed_tools = ["http"]
max_steps = 4
"#
        ),
    )?;
    let mut up = quorum(dir)
        .arg("up")
        .arg("--config")
        .arg(&config)
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let stack_file = dir.join("stack.json");
    wait_until("quorum up writes its stack file", DEADLINE * 2, || async {
        stack_file.is_file()
    })
    .await?;
    let stack: Value = serde_json::from_slice(&std::fs::read(&stack_file)?)?;
    // As the operator, whose password the stack file's URL carries (ADR 27).
    let nats =
        quorum_runtime::nats::connect(stack["nats_url"].as_str().unwrap(), None, None).await?;
    let js = async_nats::jetstream::new(nats);

    // Without --config, `tools list` shows the running stack's settings, from the file `up` used.
    let out = run(dir, &["--json", "tools", "list"]).await?;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let tools: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(
        tools["http"]["allowed_hosts"],
        json!([service.to_string()]),
        "{tools}"
    );
    assert!(
        tools["config"]
            .as_str()
            .is_some_and(|c| c.ends_with("quorum.toml")),
        "{tools}"
    );

    // Two messages NATS ingest cannot accept: one that does not decode, on the stack key's tenant's
    // subject, and one on a subject whose tenant token is no valid tenant.
    for (subject, payload) in [
        ("quorum.ingest.default.com.example.bad", "not json".to_owned()),
        (
            "quorum.ingest.NOT_A_TENANT.com.example.bad",
            json!({"specversion": "1.0", "id": "nt-1", "source": "/test", "type": "com.example.bad"})
                .to_string(),
        ),
    ] {
        js.publish(subject, payload.into()).await?.await?;
    }
    let status = wait_until("both refusals parked", DEADLINE, || async {
        let status = json_of(dir, &["--json", "status"]).await.ok()?;
        (status["dead_letters"]["parked"].as_i64() == Some(2)).then_some(status)
    })
    .await?;
    let tenants: Vec<(String, i64)> =
        serde_json::from_value(status["dead_letters"]["by_tenant"].clone())?;
    assert_eq!(
        tenants,
        [("_system".to_owned(), 1), ("default".to_owned(), 1)],
        "{status}"
    );

    // What status counts, dlq lists: the key's tenant's letters, and with --system those of none.
    let own = json_of(dir, &["--json", "dlq", "list", "--status", "any"]).await?;
    assert_eq!(total(&own), 1, "{own}");
    let all = json_of(
        dir,
        &["--json", "dlq", "list", "--status", "any", "--system"],
    )
    .await?;
    assert_eq!(
        total(&all),
        status["dead_letters"]["parked"].as_i64().unwrap(),
        "{all}"
    );
    let letters = all["letters"].as_array().unwrap();
    assert_eq!(letters.len(), 2, "{all}");
    let id_of = |subject: &str| {
        letters
            .iter()
            .find(|l| l["subject"] == subject)
            .and_then(|l| l["id"].as_str())
            .unwrap_or_else(|| panic!("no letter of {subject}: {all}"))
            .to_owned()
    };
    let own_letter = id_of("quorum.ingest.default.com.example.bad");
    let system_letter = id_of("quorum.ingest.NOT_A_TENANT.com.example.bad");

    // show, discard and replay reach both (the system one only when asked for).
    let out = run(dir, &["dlq", "show", &system_letter]).await?;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let shown = json_of(dir, &["--json", "dlq", "--system", "show", &system_letter]).await?;
    assert_eq!(shown["tenant"], "_system", "{shown}");
    let shown = json_of(dir, &["--json", "dlq", "show", &own_letter]).await?;
    assert_eq!(shown["tenant"], "default", "{shown}");
    json_of(
        dir,
        &[
            "--json",
            "dlq",
            "discard",
            &system_letter,
            "--system",
            "--reason",
            "not a tenant",
        ],
    )
    .await?;
    let replayed = json_of(
        dir,
        &[
            "--json",
            "dlq",
            "replay",
            &own_letter,
            "--reason",
            "retry",
            "--rate",
            "100",
        ],
    )
    .await?;
    assert_eq!(replayed["done"], 1, "{replayed}");
    // Refused again, and parked again under the same tenant, pointing at the first.
    let again = wait_until("the replayed letter parked again", DEADLINE, || async {
        let list = json_of(dir, &["--json", "dlq", "list"]).await.ok()?;
        list["letters"]
            .as_array()?
            .iter()
            .find(|l| l["replayed_from"] == own_letter.as_str())
            .cloned()
    })
    .await?;
    assert_eq!(again["status"], "parked", "{again}");

    // A saga whose compensation fails needs attention, and names its dead letter.
    let plan = dir.join("plan.json");
    std::fs::write(
        &plan,
        json!({"max_attempts": 1, "steps": [
            {"name": "one",
             "tool": {"tool": "http", "args": {"method": "POST", "url": format!("http://{service}/apply")}},
             "compensate": {"tool": "http", "args": {"method": "DELETE", "url": format!("http://{service}/undo")}}},
            {"name": "two",
             "tool": {"tool": "http", "args": {"method": "POST", "url": format!("http://{service}/fail")}}},
        ]})
        .to_string(),
    )?;
    let out = run(dir, &["--json", "saga", "run", plan.to_str().unwrap()]).await?;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let saga: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(saga["needs_attention"], true, "{saga}");
    let id = saga["saga"].as_str().unwrap().to_owned();
    let letter = wait_until("the saga's dead letter", DEADLINE, || async {
        let view = json_of(dir, &["--json", "saga", "show", &id]).await.ok()?;
        view["dead_letter"].as_str().map(str::to_owned)
    })
    .await?;
    let out = run(dir, &["saga", "show", &id]).await?;
    assert!(text(&out.stdout).contains("NEEDS ATTENTION"));

    // Discarded: the saga no longer asks for attention, and says why.
    json_of(
        dir,
        &[
            "--json",
            "dlq",
            "discard",
            &letter,
            "--reason",
            "undone by hand",
        ],
    )
    .await?;
    let view = json_of(dir, &["--json", "saga", "show", &id]).await?;
    assert_eq!(view["status"], "failed", "{view}");
    assert_eq!(view["needs_attention"], false, "{view}");
    assert!(
        view["resolution"]
            .as_str()
            .is_some_and(|r| r.contains("undone by hand")),
        "{view}"
    );
    let out = run(dir, &["saga", "show", &id]).await?;
    let said = text(&out.stdout);
    assert!(!said.contains("NEEDS ATTENTION"), "{said}");
    assert!(said.contains("discarded"), "{said}");

    let pid = up.id().expect("running").to_string();
    Command::new("kill").args(["-INT", &pid]).status().await?;
    let exit = tokio::time::timeout(DEADLINE, up.wait()).await??;
    assert!(exit.success(), "quorum up exited {exit}");
    let _ = std::fs::remove_dir_all(dir);
    Ok(())
}
