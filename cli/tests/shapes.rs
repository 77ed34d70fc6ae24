//! One JSON shape per resource, driven through the `quorum` binary against one `quorum up`: an event
//! has the same keys from `events`, `tail` and `publish` over HTTP and NATS; every time is RFC 3339
//! UTC with milliseconds; `dlq show` is text unless `--json`; `audit verify --json` has the same
//! keys and types for a whole chain and a range.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use quorum_testkit::{DEADLINE, wait_until};
use serde_json::Value;
use tokio::process::Command;

use crate::common;
use common::*;

/// The JSON lines of a command that must succeed with nothing on standard error.
async fn lines(dir: &Path, args: &[&str]) -> anyhow::Result<Vec<Value>> {
    let out = run(dir, args).await?;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{args:?}: {}",
        text(&out.stderr)
    );
    assert_eq!(text(&out.stderr), "", "{args:?} wrote on stderr");
    text(&out.stdout)
        .lines()
        .map(|l| Ok(serde_json::from_str(l)?))
        .collect()
}

async fn one(dir: &Path, args: &[&str]) -> anyhow::Result<Value> {
    let out = run(dir, args).await?;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{args:?}: {}",
        text(&out.stderr)
    );
    Ok(serde_json::from_slice(&out.stdout)?)
}

fn tempdir(what: &str) -> anyhow::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("quorum-{what}-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir)?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
    Ok(dir)
}

fn keys(v: &Value) -> Vec<String> {
    v.as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .cloned()
        .collect()
}

/// `2026-05-01T12:00:00.123Z`: UTC, milliseconds.
fn assert_time(v: &Value, what: &str) {
    let t = v
        .as_str()
        .unwrap_or_else(|| panic!("{what}: not a time: {v}"));
    let b = t.as_bytes();
    let shape = t.len() == 24
        && b[4] == b'-'
        && b[10] == b'T'
        && b[19] == b'.'
        && b[23] == b'Z'
        && t[20..23].bytes().all(|c| c.is_ascii_digit());
    assert!(shape, "{what}: {t} is not RFC 3339 UTC with milliseconds");
}

/// Every value under a key that names a time, outside event data.
fn assert_times(v: &Value, path: &str) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                if k == "data" {
                    continue;
                }
                let is_time = k == "time" || k == "at" || k.ends_with("_at");
                if is_time && v.is_string() {
                    assert_time(v, &format!("{path}.{k}"));
                } else {
                    assert_times(v, &format!("{path}.{k}"));
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| assert_times(i, path)),
        _ => {}
    }
}

#[tokio::test]
async fn one_shape_per_resource_and_one_time_format() -> anyhow::Result<()> {
    let dir = tempdir("shapes")?;
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

    let publish = |id: &'static str, via: &'static str| {
        let mut args = vec![
            "--json",
            "publish",
            "--type",
            "com.example.shaped",
            "--subject",
            "shape/1",
            "--id",
            id,
            "--data",
            r#"{"n":1}"#,
        ];
        args.extend(["--via", via]);
        args
    };
    let over_http = lines(dir, &publish("shape-http", "http")).await?;
    let over_nats = lines(dir, &publish("shape-nats", "nats")).await?;
    assert_eq!(over_http.len(), 1);
    assert_eq!(over_nats.len(), 1);
    let (http, nats) = (&over_http[0], &over_nats[0]);
    assert_eq!(keys(http), keys(nats));
    assert_eq!(http["status"], "stored", "{http}");
    assert_eq!(nats["status"], "queued", "{nats}");
    assert_eq!(http["event"]["id"], "shape-http");
    assert_eq!(nats["event"]["id"], "shape-nats");

    let stored = wait_until("both stored", DEADLINE, || async {
        let events = lines(
            dir,
            &["--json", "events", "--stream", "sub-default/shape/1"],
        )
        .await
        .ok()?;
        (events.len() == 2).then_some(events)
    })
    .await?;
    let tailed = lines(
        dir,
        &[
            "--json",
            "tail",
            "--from-start",
            "--type",
            "com.example.shaped",
            "--count",
            "2",
        ],
    )
    .await?;
    for e in stored.iter().chain(&tailed).chain([http, nats]) {
        assert_eq!(keys(e), keys(http), "{e}");
        assert_times(e, "event");
    }
    assert_time(&stored[0]["recorded_at"], "recorded_at");
    assert_time(&stored[0]["event"]["time"], "event time");
    assert_eq!(tailed[0]["stream"], "sub-default/shape/1", "{}", tailed[0]);
    assert_eq!(tailed[0]["position"], stored[0]["position"]);

    // Times in the other resources too.
    let status = one(dir, &["--json", "status"]).await?;
    assert_times(&status, "status");
    let listed = lines(dir, &["--json", "keys", "list"]).await?;
    assert_times(&listed[0], "keys");
    assert!(listed[0][0]["created_at"].is_string(), "{}", listed[0]);

    // A dead letter: text by default, the API's JSON with --json.
    let nats_url = serde_json::from_slice::<Value>(&std::fs::read(&stack_file)?)?["nats_url"]
        .as_str()
        .unwrap()
        .to_owned();
    // As the operator, whose password the stack file's URL carries (ADR 27).
    let js =
        async_nats::jetstream::new(quorum_runtime::nats::connect(&nats_url, None, None).await?);
    js.publish("quorum.ingest.default.com.example.bad", "not json".into())
        .await?
        .await?;
    let letter = wait_until("the refusal parked", DEADLINE, || async {
        let list = one(dir, &["--json", "dlq", "list"]).await.ok()?;
        list["letters"][0]["id"].as_str().map(str::to_owned)
    })
    .await?;
    let out = run(dir, &["dlq", "show", &letter]).await?;
    let shown = text(&out.stdout);
    assert!(
        shown.starts_with(&format!("dead letter {letter}")),
        "{shown}"
    );
    assert!(shown.contains("payload (text"), "{shown}");
    assert!(serde_json::from_str::<Value>(&shown).is_err());
    let shown = one(dir, &["--json", "dlq", "show", &letter]).await?;
    assert_eq!(shown["id"], letter.as_str());
    assert_times(&shown, "letter");
    assert_time(&shown["first_failed_at"], "first_failed_at");
    let list = one(dir, &["--json", "dlq", "list"]).await?;
    assert_times(&list, "letters");

    // audit verify: the same keys and types, whole chain or range.
    let whole = wait_until("a chained event", DEADLINE, || async {
        let v = one(dir, &["--json", "audit", "verify"]).await.ok()?;
        (v["checked"].as_u64()? > 0).then_some(v)
    })
    .await?;
    let ranged = one(dir, &["--json", "audit", "verify", "--from", "1"]).await?;
    assert_eq!(keys(&whole), keys(&ranged));
    for v in [&whole, &ranged] {
        assert!(v["missing"].is_i64(), "{v}");
        assert!(v["missing_checked"].is_boolean(), "{v}");
        assert_eq!(v["ok"], true, "{v}");
    }
    assert_eq!(whole["missing_checked"], true);
    assert_eq!(ranged["missing_checked"], false);

    let pid = up.id().expect("running").to_string();
    Command::new("kill").args(["-INT", &pid]).status().await?;
    let exit = tokio::time::timeout(DEADLINE, up.wait()).await??;
    assert!(exit.success(), "quorum up exited {exit}");
    let _ = std::fs::remove_dir_all(dir);
    Ok(())
}
