//! What a long listing and a wide action do, driven through the `quorum` binary against one
//! `quorum up`: `events` says when more are left and goes on from the cursor it showed (or shows
//! every one with `--all`); a replay of every stored event and a dead-letter replay by filter ask
//! first on a terminal (a real pty), and without one are refused unless `--yes`.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use quorum_testkit::{DEADLINE, wait_until};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::common;
use common::*;

/// `quorum args…` on a pseudo-terminal (util-linux `script`), answering `answer` to its question.
async fn on_a_terminal(dir: &Path, args: &[&str], answer: &str) -> anyhow::Result<Output> {
    let mut line = String::from("exec \"$QUORUM_BIN\" --data-dir \"$QUORUM_DIR\"");
    for a in args {
        line.push_str(&format!(" '{a}'"));
    }
    let mut cmd = Command::new("script");
    cmd.args(["-qec", &line, "/dev/null"])
        .env("QUORUM_BIN", env!("CARGO_BIN_EXE_quorum"))
        .env("QUORUM_DIR", dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    isolated(&mut cmd);
    let mut child = cmd.spawn()?;
    let mut stdin = child.stdin.take().expect("piped");
    stdin.write_all(format!("{answer}\n").as_bytes()).await?;
    stdin.flush().await?;
    let out = tokio::time::timeout(DEADLINE, child.wait_with_output()).await??;
    drop(stdin);
    Ok(out)
}

fn tempdir(what: &str) -> anyhow::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("quorum-{what}-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir)?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
    Ok(dir)
}

/// The event ids of `events --json` output, one event a line.
fn ids(out: &Output) -> Vec<String> {
    text(&out.stdout)
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            v["event"]["id"].as_str().unwrap_or_default().to_owned()
        })
        .collect()
}

#[tokio::test]
async fn events_page_on_and_wide_actions_ask_first() -> anyhow::Result<()> {
    let dir = tempdir("paging")?;
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

    let batch: Vec<Value> = (0..7)
        .map(|i| {
            json!({
                "specversion": "1.0", "id": format!("page-{i}"), "source": "/test/paging",
                "type": "com.example.paged", "subject": "page/1",
                "datacontenttype": "application/json", "data": {"i": i},
            })
        })
        .collect();
    let batch_file = dir.join("batch.json");
    std::fs::write(&batch_file, serde_json::to_vec(&batch)?)?;
    let out = run(dir, &["publish", "--file", batch_file.to_str().unwrap()]).await?;
    assert_code(&out, 0, "publish a batch");

    // Every event, and nothing said about more.
    let out = run(dir, &["--json", "events", "--all"]).await?;
    assert_code(&out, 0, "events --all");
    assert_eq!(text(&out.stderr), "");
    let all = ids(&out);
    assert!(all.len() >= 7, "{all:?}");

    // Three at a time: each page says where the next starts, and the pages make up the whole.
    let mut paged = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut args = vec!["--json", "events", "--limit", "3"];
        if let Some(a) = &after {
            args.extend(["--after", a.as_str()]);
        }
        let out = run(dir, &args).await?;
        assert_code(&out, 0, "a page of events");
        let page = ids(&out);
        assert!(page.len() <= 3);
        paged.extend(page);
        if out.stderr.is_empty() {
            break;
        }
        let more: Value = serde_json::from_slice(&out.stderr)?;
        assert_eq!(more["more"], true, "{more}");
        after = Some(more["next"].as_i64().expect("a cursor").to_string());
        assert!(paged.len() < all.len() + 3, "paging does not end");
    }
    assert_eq!(paged, all);
    let out = run(dir, &["events", "--limit", "3"]).await?;
    assert_code(&out, 0, "a page of events as text");
    let said = text(&out.stderr);
    assert!(said.contains("--after") && said.contains("--all"), "{said}");

    // A replay of every stored event: refused without a terminal, asked on one.
    let file = dir.join("replayed.jsonl");
    let file = file.to_str().unwrap();
    let everything = ["replay", "--to-file", file, "--reason", "paging test"];
    let out = run(dir, &everything).await?;
    assert_code(&out, 2, "a replay of everything without a terminal");
    assert!(text(&out.stderr).contains("--yes"), "{}", text(&out.stderr));
    let jobs: i64 = sqlx::query_scalar("SELECT count(*) FROM replay_jobs")
        .fetch_one(&pool)
        .await?;
    assert_eq!(jobs, 0, "nothing started");
    let out = on_a_terminal(dir, &everything, "n").await?;
    assert_code(&out, 1, "a replay declined");
    assert!(text(&out.stdout).contains("[y/N]"), "{}", text(&out.stdout));
    let out = on_a_terminal(dir, &everything, "y").await?;
    assert_code(&out, 0, "a replay confirmed");
    let out = run(dir, &[&everything[..], &["--yes"]].concat()).await?;
    assert_code(&out, 0, "a replay with --yes");
    // Each new replay writes its file afresh: the last one's events, not the sum of both.
    let lines = std::fs::read_to_string(file)?.lines().count();
    assert!(lines >= all.len() && lines < 2 * all.len(), "{lines} lines");

    // Dead letters by filter: counted, then asked for.
    // As the operator, whose password the stack file's URL carries (ADR 27).
    let nats =
        quorum_runtime::nats::connect(stack["nats_url"].as_str().unwrap(), None, None).await?;
    let js = async_nats::jetstream::new(nats);
    js.publish("quorum.ingest.default.com.example.bad", "not json".into())
        .await?
        .await?;
    wait_until("the refusal parked", DEADLINE, || async {
        let out = run(dir, &["--json", "dlq", "list"]).await.ok()?;
        let list: Value = serde_json::from_slice(&out.stdout).ok()?;
        (list["letters"].as_array()?.len() == 1).then_some(())
    })
    .await?;
    let by_filter = ["dlq", "replay", "--consumer", "ingest", "--reason", "fixed"];
    let out = run(dir, &by_filter).await?;
    assert_code(&out, 2, "a dead-letter replay by filter without a terminal");
    assert!(text(&out.stderr).contains("(1)"), "{}", text(&out.stderr));
    let out = on_a_terminal(dir, &by_filter, "n").await?;
    assert_code(&out, 1, "a dead-letter replay declined");
    let out = run(dir, &[&by_filter[..], &["--yes"]].concat()).await?;
    assert_code(&out, 0, "a dead-letter replay with --yes");
    assert!(
        text(&out.stdout).contains("replayed 1 of 1"),
        "{}",
        text(&out.stdout)
    );
    pool.close().await;

    let pid = up.id().expect("running").to_string();
    Command::new("kill").args(["-INT", &pid]).status().await?;
    let exit = tokio::time::timeout(DEADLINE, up.wait()).await??;
    assert!(exit.success(), "quorum up exited {exit}");
    let _ = std::fs::remove_dir_all(dir);
    Ok(())
}
