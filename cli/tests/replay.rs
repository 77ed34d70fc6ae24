//! `quorum replay` and `quorum audit` as an operator runs them, against a test database and a real
//! nats-server: a replay needs a reason, counts on `--dry-run`, survives Ctrl-C and resumes without
//! losing or repeating an event, and redelivers to one consumer only; `audit verify` exits non-zero
//! on a broken chain; `audit export` writes a file.

use bytes::Bytes;
use quorum_domain::{Event, StreamId, TenantId, types};
use quorum_event_store::{EventStore, ExpectedVersion};
use quorum_testkit::{DEADLINE, wait_until};
use tokio::process::Command;

fn quorum(db: &str, nats: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_quorum"));
    cmd.args(["--database-url", db, "--nats-url", nats]);
    cmd
}

async fn seed(store: &EventStore, n: usize) -> anyhow::Result<()> {
    let stream = StreamId::new("thing", "1")?;
    let events: Vec<_> = (0..n)
        .map(|i| {
            Event::new(
                "/test",
                "com.example.thing.happened",
                stream.clone(),
                TenantId::new("acme").unwrap(),
                Bytes::from(format!("{{\"n\":{i}}}")),
            )
        })
        .collect();
    for chunk in events.chunks(100) {
        store.append(&stream, ExpectedVersion::Any, chunk).await?;
    }
    Ok(())
}

#[tokio::test]
async fn a_replay_to_a_file_survives_ctrl_c_and_resumes_without_loss_or_repeat()
-> anyhow::Result<()> {
    let db = quorum_testkit::postgres().await.fresh_db().await?;
    let nats = quorum_testkit::nats().await?;
    let store = EventStore::new(db.pool.clone());
    seed(&store, 1000).await?;
    let dir = tempdir()?;
    let file = dir.join("out.jsonl");
    let file_arg = file.to_str().unwrap().to_owned();

    // No reason: refused, nothing recorded.
    let out = quorum(&db.url, &nats.url())
        .args(["replay", "--to-file", &file_arg])
        .output()
        .await?;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--reason"));
    let jobs: i64 = sqlx::query_scalar("SELECT count(*) FROM replay_jobs")
        .fetch_one(&db.pool)
        .await?;
    assert_eq!(jobs, 0);
    let out = quorum(&db.url, &nats.url())
        .args([
            "--json",
            "replay",
            "--type",
            "com.example.thing.happened",
            "--to-file",
            &file_arg,
            "--dry-run",
        ])
        .output()
        .await?;
    let dry: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(dry["count"], 1000);

    // What a file held before a new replay is not kept: a new job writes it afresh.
    std::fs::write(&file, "stale line from before\n")?;
    let mut child = quorum(&db.url, &nats.url())
        .args([
            "replay",
            "--type",
            "com.example.thing.happened",
            "--to-file",
            &file_arg,
        ])
        .args(["--reason", "audit request 7", "--rate", "400"])
        .kill_on_drop(true)
        .spawn()?;
    wait_until("the replay to be under way", DEADLINE, || async {
        sqlx::query_scalar::<_, i64>("SELECT done FROM replay_jobs")
            .fetch_optional(&db.pool)
            .await
            .ok()
            .flatten()
            .is_some_and(|d| d > 0)
    })
    .await?;
    let pid = child.id().expect("running") as i32;
    // What Ctrl-C sends.
    signal(pid, "INT");
    let status = tokio::time::timeout(DEADLINE, child.wait()).await??;
    assert_eq!(status.code(), Some(130), "an interrupted replay says so");
    let (job, done, state): (uuid::Uuid, i64, String) =
        sqlx::query_as("SELECT id, done, status FROM replay_jobs")
            .fetch_one(&db.pool)
            .await?;
    assert_eq!(state, "interrupted");
    assert!(done < 1000, "interrupted before the end ({done})");

    let out = quorum(&db.url, &nats.url())
        .args(["replay", "--resume", &job.to_string()])
        .output()
        .await?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&file)?;
    assert!(
        !text.contains("stale line"),
        "a new replay writes its file afresh"
    );
    let positions: Vec<i64> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["position"]
                .as_i64()
                .unwrap()
        })
        .collect();
    let committed: Vec<i64> = sqlx::query_scalar(
        "SELECT position FROM events WHERE type = 'com.example.thing.happened' ORDER BY tx_id, position",
    )
    .fetch_all(&db.pool)
    .await?;
    assert_eq!(positions, committed, "every event once, in commit order");

    // Each line in the event shape `events --json` prints, its time UTC with milliseconds.
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap())?;
    assert_eq!(first["status"], "stored", "{first}");
    assert_eq!(
        first["event"]["type"], "com.example.thing.happened",
        "{first}"
    );
    let at = first["recorded_at"].as_str().unwrap();
    assert!(at.len() == 24 && at.ends_with('Z'), "{at}");
    // The reason is on record as an event.
    let data: Vec<u8> = sqlx::query_scalar("SELECT data FROM events WHERE type = $1")
        .bind(types::REPLAY_REQUESTED)
        .fetch_one(&db.pool)
        .await?;
    let data: serde_json::Value = serde_json::from_slice(&data)?;
    assert_eq!(data["reason"], "audit request 7");
    assert_eq!(data["events"], 1000);
    Ok(())
}

#[tokio::test]
async fn a_replay_to_a_consumer_reaches_only_its_redeliver_subject() -> anyhow::Result<()> {
    let db = quorum_testkit::postgres().await.fresh_db().await?;
    let nats = quorum_testkit::nats().await?;
    let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await?);
    quorum_bus::ensure_streams(&js).await?;
    // The consumer as the consensus service creates it; a replay refuses a consumer that does
    // not exist.
    js.get_stream(quorum_bus::EVENTS_STREAM)
        .await?
        .create_consumer(async_nats::jetstream::consumer::pull::Config {
            durable_name: Some("consensus".into()),
            filter_subject: quorum_bus::subjects::redeliver_filter("consensus"),
            ..Default::default()
        })
        .await?;
    let store = EventStore::new(db.pool.clone());
    seed(&store, 50).await?;
    let out = quorum(&db.url, &nats.url())
        .args([
            "replay",
            "--stream",
            "thing/1",
            "--to-consumer",
            "consensus",
            "--reason",
            "re-fold",
        ])
        .output()
        .await?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let info = js
        .get_stream(quorum_bus::EVENTS_STREAM)
        .await?
        .get_info()
        .await?;
    assert_eq!(info.state.messages, 50);
    let first = js
        .get_stream(quorum_bus::EVENTS_STREAM)
        .await?
        .get_raw_message(info.state.first_sequence)
        .await?;
    assert!(
        first
            .subject
            .starts_with("quorum.redeliver.consensus.acme."),
        "{}",
        first.subject
    );
    let event = quorum_bus::decode(Some(&first.headers), &first.payload)?;
    assert!(
        event.replayof.is_some(),
        "a replayed event says what it replays"
    );
    Ok(())
}

#[tokio::test]
async fn audit_verify_fails_on_a_changed_event_and_export_writes_every_record() -> anyhow::Result<()>
{
    let db = quorum_testkit::postgres().await.fresh_db().await?;
    let nats = quorum_testkit::nats().await?;
    let store = EventStore::new(db.pool.clone());
    seed(&store, 300).await?;
    while quorum_audit::chainer::step(&db.pool, 1000, types::AUDIT_CHECKPOINT)
        .await?
        .links
        > 0
    {}
    let verify = || {
        quorum(&db.url, &nats.url())
            .args(["--json", "audit", "verify"])
            .output()
    };
    let out = verify().await?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    let dir = tempdir()?;
    let file = dir.join("export.csv");
    let out = quorum(&db.url, &nats.url())
        .args([
            "audit",
            "export",
            "--tenant",
            "acme",
            "--format",
            "csv",
            "-o",
            file.to_str().unwrap(),
        ])
        .output()
        .await?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read_to_string(&file)?.lines().count(), 301);

    let position: i64 =
        sqlx::query_scalar("SELECT position FROM events ORDER BY position OFFSET 100 LIMIT 1")
            .fetch_one(&db.pool)
            .await?;
    let mut tx = db.pool.begin().await?;
    sqlx::query("ALTER TABLE events DISABLE TRIGGER events_append_only")
        .execute(&mut *tx)
        .await?;
    sqlx::query("UPDATE events SET data = '{\"n\":0}' WHERE position = $1")
        .bind(position)
        .execute(&mut *tx)
        .await?;
    sqlx::query("ALTER TABLE events ENABLE TRIGGER events_append_only")
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    let out = verify().await?;
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(report["broken"]["position"], position);
    Ok(())
}

fn tempdir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("quorum-replay-test-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn signal(pid: i32, sig: &str) {
    let _ = std::process::Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status();
}
