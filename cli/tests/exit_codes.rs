//! What scripts rely on, driven through the `quorum` binary as a user runs it: exit 0 on success with
//! nothing on standard error, 1 for an operation's own failure, 2 for a command line that cannot be
//! run (refused before anything is sent), one JSON object on standard error under `--json`, and a
//! quiet exit when the reader of standard output goes away.

use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Output, Stdio};

use quorum_testkit::{DEADLINE, wait_until};
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;
use tokio::process::Command;

use crate::common;
use common::*;

/// The one JSON object a failing command writes on standard error under `--json`.
fn json_error(out: &Output) -> Value {
    let error: Value = serde_json::from_slice(&out.stderr)
        .unwrap_or_else(|e| panic!("stderr is not one JSON object ({e}): {}", text(&out.stderr)));
    assert_eq!(
        error["error"]["exit_code"].as_i64().map(|c| c as i32),
        out.status.code(),
        "{error}"
    );
    assert!(error["error"]["message"].is_string(), "{error}");
    error
}

fn tempdir(what: &str) -> anyhow::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("quorum-{what}-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir)?;
    // Postgres refuses a data directory under one only its owner may enter.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
    Ok(dir)
}

/// A TCP port nothing listens on (for a while).
fn closed_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

#[tokio::test]
async fn usage_errors_exit_2_before_anything_is_sent_and_a_wrong_database_url_fails_fast()
-> anyhow::Result<()> {
    let dir = tempdir("usage")?;
    let dir = dir.as_path();
    // Servers that are not there: a usage error must come back before any of them is tried.
    let port = closed_port()?;
    let db = format!("postgres://quorum:sekrit@127.0.0.1:{port}/quorum");
    let nats = format!("nats://127.0.0.1:{port}");
    let dlq = format!("http://127.0.0.1:{port}");
    let to = ["--database-url", &db, "--nats-url", &nats];

    let out = run(dir, &["ask", "Why?", "--strategy", "vote"]).await?;
    assert_code(&out, 2, "an unknown strategy");
    assert!(text(&out.stderr).contains("majority, similarity, judge"));
    let out = run(dir, &["--json", "ask", "Why?", "--strategy", "vote"]).await?;
    assert_code(&out, 2, "an unknown strategy under --json");
    assert!(out.stdout.is_empty());
    assert!(
        json_error(&out)["error"]["message"]
            .as_str()
            .unwrap()
            .contains("vote")
    );

    let replay = ["replay", "--correlation-id", "q1", "--to-file", "out.jsonl"];
    let out = run(
        dir,
        &[&to[..], &replay, &["--reason", "r", "--rate", "0"]].concat(),
    )
    .await?;
    assert_code(&out, 2, "replay --rate 0");
    let out = run(dir, &[&to[..], &replay].concat()).await?;
    assert_code(&out, 2, "a replay without --reason");
    assert!(text(&out.stderr).contains("--reason"));
    let out = run(
        dir,
        &[
            "dlq",
            "--dlq-url",
            &dlq,
            "--api-key",
            "k",
            "replay",
            "--consumer",
            "c",
            "--reason",
            "r",
            "--rate",
            "0",
        ],
    )
    .await?;
    assert_code(&out, 2, "dlq replay --rate 0");

    let out = run(dir, &["events", "--since", "yesterday"]).await?;
    assert_code(&out, 2, "an unreadable --since");
    let said = text(&out.stderr);
    assert!(said.contains("1h") && said.contains("RFC 3339"), "{said}");

    let out = run(
        dir,
        &[&to[..], &["audit", "verify", "--from", "50", "--to", "10"]].concat(),
    )
    .await?;
    assert_code(&out, 2, "a reversed range");
    assert!(!text(&out.stdout).contains("chain ok"));
    assert!(text(&out.stderr).contains("--from 50"));
    let out = run(
        dir,
        &[
            &to[..],
            &["--json", "audit", "verify", "--from", "50", "--to", "10"],
        ]
        .concat(),
    )
    .await?;
    json_error(&out);

    // A wrong database URL: refused within the command's own connect timeout (sqlx's pool would
    // wait 30 s and say only "pool timed out"), naming the host, never the password.
    for json in [false, true] {
        let mut args = vec!["--database-url", db.as_str(), "keys", "list"];
        if json {
            args.push("--json");
        }
        let out = run(dir, &args).await?;
        assert_code(&out, 1, "an unreachable database");
        let said = if json {
            json_error(&out)["error"]["message"]
                .as_str()
                .unwrap()
                .to_owned()
        } else {
            text(&out.stderr)
        };
        assert!(said.contains(&format!("127.0.0.1:{port}")), "{said}");
        assert!(said.contains("within 5 s"), "{said}");
        assert!(!said.contains("sekrit"), "{said}");
    }
    let _ = std::fs::remove_dir_all(dir);
    Ok(())
}

#[tokio::test]
async fn against_a_stack_failures_exit_1_successes_are_quiet_and_a_closed_pipe_ends_cleanly()
-> anyhow::Result<()> {
    let dir = tempdir("exit-codes")?;
    let dir = dir.as_path();
    let mut up = quorum(dir)
        .arg("up")
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let stack_file = dir.join("stack.json");
    wait_until("quorum up writes its stack file", DEADLINE * 2, || async {
        stack_file.is_file()
    })
    .await?;
    let stack: Value = serde_json::from_slice(&std::fs::read(&stack_file)?)?;
    let pool = sqlx::PgPool::connect(stack["database_url"].as_str().unwrap()).await?;

    // Success: the result on stdout, nothing at all on stderr (no library notices).
    for args in [
        &["migrate"][..],
        &["keys", "list"],
        &["--json", "keys", "list"],
    ] {
        let out = run(dir, args).await?;
        assert_code(&out, 0, &args.join(" "));
        assert_eq!(text(&out.stderr), "", "{args:?} wrote on stderr");
        assert!(!out.stdout.is_empty());
    }

    // An expert the running stack does not have is refused before anything is sent.
    let out = run(dir, &["ask", "Why?", "--experts", "alpha,zeta"]).await?;
    assert_code(&out, 2, "unknown expert");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("zeta") && said.contains("alpha, beta, gamma"),
        "{said}"
    );

    // No consensus: three experts cannot make a quorum of five. The result is still shown.
    let out = run(
        dir,
        &[
            "ask",
            "What is the capital of France?",
            "--quorum",
            "5",
            "--json",
        ],
    )
    .await?;
    assert_code(&out, 1, "no consensus");
    let asked: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(asked["outcome"], "quorum.consensus.failed", "{asked}");
    assert!(
        json_error(&out)["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no consensus")
    );
    let query_id = asked["query_id"].as_str().unwrap().to_owned();

    // A saga that fails (the default policy allows no tool).
    let plan = dir.join("plan.json");
    std::fs::write(
        &plan,
        json!({"steps": [{"name": "hi", "tool": {"tool": "exec", "args": {"program": "/bin/echo", "args": ["hi"]}}}]})
            .to_string(),
    )?;
    let out = run(dir, &["--json", "saga", "run", plan.to_str().unwrap()]).await?;
    assert_code(&out, 1, "a failed saga");
    let saga: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(saga["status"], "failed", "{saga}");
    json_error(&out);

    // Nothing matched where specific items were asked for.
    let nobody = uuid::Uuid::now_v7().to_string();
    let out = run(dir, &["saga", "show", &nobody]).await?;
    assert_code(&out, 1, "saga show of no saga");
    let out = run(dir, &["--json", "events", "--stream", "nope/1"]).await?;
    assert_code(&out, 1, "events of no stream");
    assert!(out.stdout.is_empty());
    json_error(&out);

    // A consumer that does not exist: said so, and nothing replayed or recorded.
    let out = run(
        dir,
        &[
            "replay",
            "--correlation-id",
            &query_id,
            "--to-consumer",
            "nosuch",
            "--reason",
            "test",
        ],
    )
    .await?;
    assert_code(&out, 1, "a replay to no consumer");
    let said = text(&out.stderr);
    assert!(said.contains("no consumer nosuch"), "{said}");
    assert!(!text(&out.stdout).contains("replayed"));
    let jobs: i64 = sqlx::query_scalar("SELECT count(*) FROM replay_jobs")
        .fetch_one(&pool)
        .await?;
    assert_eq!(jobs, 0, "no replay job for a consumer that does not exist");

    // A reader that goes away: more output than a pipe holds, a few bytes read, the pipe closed.
    let batch: Vec<Value> = (0..500)
        .map(|i| {
            json!({
                "specversion": "1.0", "id": format!("pipe-{i}"), "source": "/test/pipe",
                "type": "com.example.piped", "subject": "pipe/1",
                "datacontenttype": "application/json", "data": {"pad": "x".repeat(200)},
            })
        })
        .collect();
    let batch_file = dir.join("batch.json");
    std::fs::write(&batch_file, serde_json::to_vec(&batch)?)?;
    let out = run(dir, &["publish", "--file", batch_file.to_str().unwrap()]).await?;
    assert_code(&out, 0, "publish a batch");
    let mut events = quorum(dir)
        .args(["events", "--json", "--limit", "5000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut stdout = events.stdout.take().expect("piped");
    let mut first = [0u8; 10];
    stdout.read_exact(&mut first).await?;
    drop(stdout);
    let mut stderr = String::new();
    events
        .stderr
        .take()
        .expect("piped")
        .read_to_string(&mut stderr)
        .await?;
    let status = tokio::time::timeout(DEADLINE, events.wait()).await??;
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        status.code() == Some(0) || status.signal() == Some(libc::SIGPIPE),
        "a closed pipe ends with 0 or SIGPIPE, not {status}: {stderr}"
    );

    // The audit chain: a range with nothing in it, a whole chain that holds, then a changed event.
    wait_until("the query's events to be chained", DEADLINE, || async {
        let out = run(dir, &["audit", "export", "--correlation-id", &query_id])
            .await
            .ok()?;
        text(&out.stdout)
            .contains("quorum.consensus.failed")
            .then_some(())
    })
    .await?;
    let out = run(
        dir,
        &[
            "audit",
            "verify",
            "--from",
            "900000000",
            "--to",
            "900000001",
        ],
    )
    .await?;
    assert_code(&out, 1, "a range with no chained events");
    assert!(!text(&out.stdout).contains("chain ok"));
    let out = run(dir, &["audit", "verify"]).await?;
    assert_code(&out, 0, "a chain that holds");
    let position: i64 = sqlx::query_scalar("SELECT position FROM audit_chain ORDER BY seq LIMIT 1")
        .fetch_one(&pool)
        .await?;
    let mut tx = pool.begin().await?;
    sqlx::query("ALTER TABLE events DISABLE TRIGGER events_append_only")
        .execute(&mut *tx)
        .await?;
    sqlx::query("UPDATE events SET data = '{\"changed\":true}' WHERE position = $1")
        .bind(position)
        .execute(&mut *tx)
        .await?;
    sqlx::query("ALTER TABLE events ENABLE TRIGGER events_append_only")
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    let out = run(dir, &["--json", "audit", "verify"]).await?;
    assert_code(&out, 1, "a broken chain");
    let report: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(report["broken"]["position"], position, "{report}");
    json_error(&out);
    pool.close().await;

    // Ctrl-C stops the stack.
    let pid = up.id().expect("running").to_string();
    Command::new("kill").args(["-INT", &pid]).status().await?;
    let exit = tokio::time::timeout(DEADLINE, up.wait()).await??;
    assert!(exit.success(), "quorum up exited {exit}");
    let _ = std::fs::remove_dir_all(dir);
    Ok(())
}
