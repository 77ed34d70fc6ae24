//! `quorum up` end to end: it starts its own servers, `quorum status --json` finds them, events flow
//! through the relay, and Ctrl-C stops everything.

use std::process::Stdio;
use std::time::Duration;

use quorum_testkit::{DEADLINE, wait_until};
use tokio::process::Command;

fn quorum(dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_quorum"));
    cmd.arg("--data-dir")
        .arg(dir)
        .env_remove("QUORUM_NATS_URL")
        .env_remove("QUORUM_DATABASE_URL")
        .env_remove("QUORUM_INGEST_URL")
        .env_remove("QUORUM_API_KEY")
        // Any free port, not the usual 8080: tests run side by side.
        .env("QUORUM__INGEST__HTTP_ADDR", "127.0.0.1:0")
        .env("QUORUM__AUDIT__HTTP_ADDR", "127.0.0.1:0")
        .env("QUORUM__DLQ__HTTP_ADDR", "127.0.0.1:0");
    cmd
}

async fn status(dir: &std::path::Path) -> anyhow::Result<serde_json::Value> {
    let out = quorum(dir).args(["status", "--json"]).output().await?;
    anyhow::ensure!(
        out.status.success(),
        "status failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(serde_json::from_slice(&out.stdout)?)
}

#[tokio::test]
async fn up_runs_the_stack_status_finds_it_and_ctrl_c_stops_it() -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("quorum-up-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;

    // Without a stack, status says how to get one.
    let out = quorum(&dir).arg("status").output().await?;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("quorum up"));

    let mut up = quorum(&dir)
        .arg("up")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let stack_file = dir.join("stack.json");
    wait_until("quorum up writes its stack file", DEADLINE * 2, || async {
        stack_file.is_file()
    })
    .await?;

    let s = status(&dir).await?;
    let nats_url = s["nats_url"].as_str().expect("nats url").to_owned();
    let database_url = s["database_url"].as_str().expect("database url").to_owned();
    // As the operator's NATS user, whose password status never shows (ADR 27).
    assert!(
        nats_url.starts_with("nats://admin:redacted@127.0.0.1:"),
        "{nats_url}"
    );
    assert!(database_url.starts_with("postgres://"));
    // The local NATS refuses an anonymous client; its secrets are its owner's alone, and the
    // stack's own key (made for tenant `default`) connects to NATS as over HTTP.
    let local_nats = nats_url.replace("admin:redacted@", "");
    assert!(async_nats::connect(&local_nats).await.is_err(), "anonymous");
    for secret in ["nats-credentials.json", "nats-auth.conf", "stack.json"] {
        let mode = std::fs::metadata(dir.join(secret))?.permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{secret}");
    }
    let key = std::fs::read_to_string(dir.join("api-key"))?;
    async_nats::ConnectOptions::with_token(key.trim().to_owned())
        .custom_inbox_prefix("_INBOX.default")
        .connect(&local_nats)
        .await?;
    let streams: Vec<&str> = s["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    assert_eq!(streams, ["QUORUM_EVENTS", "QUORUM_INGEST", "QUORUM_DLQ"]);
    let admin = s["services"][0]["admin"]
        .as_str()
        .expect("admin address")
        .to_owned();

    // An appended event reaches JetStream through the relay, and status shows it. The stack's
    // own events (its API key's creation, audited) may be there before it.
    let before = wait_until("the stack's own events relayed", DEADLINE, || async {
        let s = status(&dir).await.ok()?;
        (s["relay"]["lag_events"] == 0)
            .then(|| s["streams"][0]["messages"].as_u64())
            .flatten()
    })
    .await?;
    let pool = sqlx::PgPool::connect(&database_url).await?;
    let store = quorum_event_store::EventStore::new(pool.clone());
    let stream = quorum_domain::StreamId::parse("test/up")?;
    let event = quorum_domain::Event::new(
        "/quorum/test",
        "quorum.test.happened",
        stream.clone(),
        quorum_domain::TenantId::new("acme")?,
        bytes::Bytes::from_static(b"{}"),
    );
    store
        .append(
            &stream,
            quorum_event_store::ExpectedVersion::NoStream,
            &[event],
        )
        .await?;
    wait_until("the event is relayed", DEADLINE, || async {
        status(&dir).await.is_ok_and(|s| {
            s["streams"][0]["messages"] == before + 1 && s["relay"]["lag_events"] == 0
        })
    })
    .await?;
    pool.close().await;

    // Through ingest with the CLI and the stack's own key: stored, relayed, read back, tailed.
    let publish = quorum(&dir)
        .args([
            "publish",
            "--type",
            "com.example.hello",
            "--id",
            "hello-1",
            "--subject",
            "greeting/1",
        ])
        .args(["--data", r#"{"hello":"world"}"#, "--json"])
        .output()
        .await?;
    assert!(
        publish.status.success(),
        "{}",
        String::from_utf8_lossy(&publish.stderr)
    );
    let answer: serde_json::Value = serde_json::from_slice(&publish.stdout)?;
    assert_eq!(answer["stream"], "sub-default/greeting/1");
    assert_eq!(answer["status"], "stored");
    let again = quorum(&dir)
        .args([
            "publish",
            "--type",
            "com.example.hello",
            "--id",
            "hello-1",
            "--subject",
            "greeting/1",
        ])
        .args(["--data", r#"{"hello":"world"}"#, "--mode", "structured"])
        .output()
        .await?;
    assert!(
        String::from_utf8_lossy(&again.stdout).starts_with("duplicate"),
        "{again:?}"
    );
    let tail = quorum(&dir)
        .args([
            "tail",
            "--from-start",
            "--type",
            "com.example.>",
            "--count",
            "1",
            "--json",
        ])
        .output();
    let tail = tokio::time::timeout(DEADLINE, tail).await??;
    let tailed: serde_json::Value = serde_json::from_slice(&tail.stdout)?;
    assert_eq!(tailed["event"]["id"], "hello-1");
    assert_eq!(tailed["event"]["data"]["hello"], "world");
    let events = quorum(&dir)
        .args(["events", "--stream", "sub-default/greeting/1", "--json"])
        .output()
        .await?;
    let stored: serde_json::Value = serde_json::from_slice(&events.stdout)?;
    assert_eq!(stored["event"]["subject"], "greeting/1");

    // A question answered end to end by the default scripted experts, who word it three ways;
    // waiting for all three, so each result is in the answer.
    let ask = quorum(&dir)
        .args([
            "ask",
            "What is the capital of France?",
            "--decide",
            "all",
            "--json",
        ])
        .output();
    let ask = tokio::time::timeout(DEADLINE, ask).await??;
    assert!(
        ask.status.success(),
        "{}",
        String::from_utf8_lossy(&ask.stderr)
    );
    let answered: serde_json::Value = serde_json::from_slice(&ask.stdout)?;
    assert_eq!(answered["outcome"], "quorum.consensus.reached");
    assert_eq!(answered["consensus"]["answer"], "Paris");
    assert_eq!(
        answered["consensus"]["majority"].as_array().map(Vec::len),
        Some(3)
    );
    assert_eq!(answered["results"].as_array().map(Vec::len), Some(3));
    let worded: std::collections::BTreeSet<&str> = answered["results"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["answer"].as_str())
        .collect();
    assert_eq!(worded.len(), 3, "three wordings: {worded:?}");
    // The read model has it too, waited for if the projection is behind.
    let ingest = s["services"][1]["http"]
        .as_str()
        .expect("ingest address")
        .to_owned();
    let key = std::fs::read_to_string(dir.join("api-key"))?;
    let view: serde_json::Value = quorum_http_client::client()
        .get(format!(
            "http://{ingest}/v1/queries/{}?wait=30s",
            answered["query_id"].as_str().unwrap()
        ))
        .bearer_auth(key.trim())
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(view["status"], "reached", "{view}");
    assert_eq!(view["consensus"]["answer"], "Paris");
    assert_eq!(view["experts"].as_object().map(|m| m.len()), Some(3));
    // Watching a decided query: its last state, as a `decided` event, and the stream ends.
    let watched = quorum_http_client::client()
        .get(format!(
            "http://{ingest}/v1/queries/{}/watch",
            answered["query_id"].as_str().unwrap()
        ))
        .bearer_auth(key.trim())
        .send()
        .await?;
    assert_eq!(watched.headers()["content-type"], "text/event-stream");
    let text = tokio::time::timeout(DEADLINE, watched.text()).await??;
    assert!(
        text.contains("event: decided") && text.contains("Paris"),
        "{text}"
    );

    // The query's history is chained and verifies; dead letters and the rebuild work from the CLI
    // against the running stack, with the key `up` made.
    let query_id = answered["query_id"].as_str().unwrap().to_owned();
    wait_until("the query's consensus to be chained", DEADLINE, || async {
        let out = quorum(&dir)
            .args(["audit", "export", "--correlation-id", &query_id])
            .output()
            .await
            .ok()?;
        let text = String::from_utf8(out.stdout).ok()?;
        text.contains("quorum.consensus.reached").then_some(text)
    })
    .await?;
    let verified = quorum(&dir)
        .args(["audit", "verify", "--json"])
        .output()
        .await?;
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stdout)
    );
    let dlq = quorum(&dir)
        .args(["dlq", "list", "--json"])
        .output()
        .await?;
    assert!(
        dlq.status.success(),
        "{}",
        String::from_utf8_lossy(&dlq.stderr)
    );
    let letters: serde_json::Value = serde_json::from_slice(&dlq.stdout)?;
    assert_eq!(letters["letters"], serde_json::json!([]));
    let rebuilt = quorum(&dir)
        .args(["replay", "--rebuild", "queries", "--reason", "test"])
        .output()
        .await?;
    assert!(
        rebuilt.status.success(),
        "{}",
        String::from_utf8_lossy(&rebuilt.stderr)
    );
    let status: String = sqlx::query_scalar("SELECT status FROM queries WHERE query_id = $1")
        .bind(&query_id)
        .fetch_one(&sqlx::PgPool::connect(&database_url).await?)
        .await?;
    assert_eq!(status, "reached", "the rebuilt read model has the query");

    // A tool plan through the running tool-exec: the default policy allows no tool, so it fails
    // before any step, with the reason, and `saga show` says so.
    let plan = dir.join("plan.json");
    std::fs::write(
        &plan,
        r#"{"steps":[{"name":"hi","tool":{"tool":"exec","args":{"program":"/bin/echo","args":["hi"]}}}]}"#,
    )?;
    let run = quorum(&dir)
        .args(["--json", "saga", "run"])
        .arg(&plan)
        .output();
    let run = tokio::time::timeout(DEADLINE, run).await??;
    assert_eq!(
        run.status.code(),
        Some(1),
        "a failed saga exits 1: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let saga: serde_json::Value = serde_json::from_slice(&run.stdout)?;
    assert_eq!(saga["status"], "failed", "{saga}");
    assert!(saga["reason"].as_str().unwrap().contains("exec"), "{saga}");
    let shown = quorum(&dir)
        .args(["--json", "saga", "show", saga["saga"].as_str().unwrap()])
        .output()
        .await?;
    let shown: serde_json::Value = serde_json::from_slice(&shown.stdout)?;
    assert_eq!(
        shown["events"],
        serde_json::json!(["quorum.tool.plan.requested", "quorum.tool.plan.failed"])
    );

    // The admin server answers.
    let mut conn = tokio::net::TcpStream::connect(&admin).await?;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    conn.write_all(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await?;
    let mut reply = String::new();
    conn.read_to_string(&mut reply).await?;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");

    // Ctrl-C: clean exit, servers gone, stack file removed.
    let pid = up.id().expect("running").to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .await?
            .success()
    );
    let exit = tokio::time::timeout(DEADLINE, up.wait()).await??;
    assert!(exit.success(), "quorum up exited {exit}");
    assert!(!stack_file.exists());
    let port: u16 = nats_url.rsplit(':').next().unwrap().parse()?;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "nats-server still running"
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
