//! schemathesis (installed pinned by `scripts/setup.sh`) fuzzing the three HTTP APIs of one
//! `quorum up` from their own `/openapi.json`: ingest, audit and the dead letters. No server error,
//! no response its document does not describe.

use std::path::PathBuf;
use std::process::Stdio;

use quorum_testkit::{DEADLINE, wait_until};
use serde_json::Value;
use tokio::process::Command;

fn tempdir(what: &str) -> anyhow::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("quorum-{what}-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir)?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
    Ok(dir)
}

/// Runs schemathesis against the API at `base`; the report when it found problems.
async fn schemathesis(base: &str, key: &str) -> anyhow::Result<Option<String>> {
    // Run elsewhere: schemathesis keeps a cache in its working directory.
    let out = Command::new("schemathesis")
        .current_dir(std::env::temp_dir())
        .args([
            "run",
            &format!("{base}/openapi.json"),
            "--header",
            &format!("Authorization: Bearer {key}"),
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance",
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            "40",
            // One worker: with several, Python 3.11's parser can trip over itself inside
            // hypothesis, a tool error, not ours.
            "--workers",
            "1",
            // Fixed, so that CI runs the same cases each time; change it to explore.
            "--seed",
            "20261206",
            // Above the longest `?wait` of ingest's GET /v1/queries/{id}.
            "--request-timeout",
            "70",
            // An event stream stays open until its query is decided: not a request and response
            // to fuzz.
            "--exclude-path-regex",
            "/watch$",
            "--suppress-health-check",
            "all",
            "--no-color",
        ])
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| anyhow::anyhow!("cannot run schemathesis ({e}); run scripts/setup.sh"))?;
    Ok((!out.status.success()).then(|| {
        format!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }))
}

#[tokio::test]
async fn schemathesis_finds_nothing_wrong_in_ingest_audit_and_dead_letters() -> anyhow::Result<()> {
    let dir = tempdir("schemathesis")?;
    let mut up = Command::new(env!("CARGO_BIN_EXE_quorum"))
        .arg("--data-dir")
        .arg(&dir)
        .arg("up")
        .env_remove("RUST_LOG")
        .env_remove("QUORUM_NATS_URL")
        .env_remove("QUORUM_DATABASE_URL")
        .env_remove("QUORUM_CONFIG")
        .env("QUORUM__INGEST__HTTP_ADDR", "127.0.0.1:0")
        .env("QUORUM__AUDIT__HTTP_ADDR", "127.0.0.1:0")
        .env("QUORUM__DLQ__HTTP_ADDR", "127.0.0.1:0")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let stack_file = dir.join("stack.json");
    wait_until("quorum up writes its stack file", DEADLINE * 2, || async {
        stack_file.is_file()
    })
    .await?;
    let stack: Value = serde_json::from_slice(&std::fs::read(&stack_file)?)?;
    // The stack's own key: tenant default, every role.
    let key = std::fs::read_to_string(dir.join("api-key"))?
        .trim()
        .to_owned();
    let mut problems = Vec::new();
    for service in ["ingest", "audit", "dlq-replayer"] {
        let addr = stack["services"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|s| s["name"] == service)
            .and_then(|s| s["http"].as_str())
            .unwrap_or_else(|| panic!("{service} has no HTTP address: {stack}"));
        if let Some(report) = schemathesis(&format!("http://{addr}"), &key).await? {
            problems.push(format!("{service}:\n{report}"));
        }
    }
    assert!(
        problems.is_empty(),
        "schemathesis found problems:\n{}",
        problems.join("\n")
    );

    let pid = up.id().expect("running").to_string();
    Command::new("kill").args(["-INT", &pid]).status().await?;
    let exit = tokio::time::timeout(DEADLINE, up.wait()).await??;
    assert!(exit.success(), "quorum up exited {exit}");
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
