//! Clients nobody here wrote: the Python CloudEvents SDK over HTTP, nats-py over NATS, and
//! schemathesis fuzzing the live API from its own `/openapi.json`. `scripts/setup.sh` installs them
//! (pinned); without them these tests fail and say so.

use std::path::PathBuf;
use std::process::Stdio;

use quorum_auth::Role;
use quorum_testkit::{DEADLINE, wait_until};
use serde_json::Value;
use tokio::process::Command;

use crate::common;
use common::ingest;

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/clients")
        .join(name)
}

async fn python(args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("python3")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| anyhow::anyhow!("cannot run python3 ({e}); run scripts/setup.sh"))?;
    anyhow::ensure!(
        out.status.success(),
        "python3 {args:?} failed (run scripts/setup.sh for its packages):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}

#[tokio::test]
async fn the_python_cloudevents_sdk_posts_binary_and_structured_events() -> anyhow::Result<()> {
    let ing = ingest(|_| {}).await?;
    let key = ing.key("acme", &[Role::Publisher]).await?;
    let reader = ing.key("acme", &[Role::Auditor]).await?;
    let out = python(&[
        script("cloudevents_http.py").to_str().unwrap(),
        &format!("http://{}", ing.addr),
        &key,
    ])
    .await?;
    let answers: Vec<Value> = out
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    assert_eq!(answers.len(), 2);
    for a in &answers {
        assert_eq!(a["status"], 202, "{a}");
        let stored = &a["answer"]["events"][0];
        assert_eq!(stored["id"], a["id"]);
        assert_eq!(
            stored["stream"], "sub-acme/order/42",
            "the subject orders them"
        );
    }
    let page = ing
        .get(&reader, "/v1/streams/sub-acme%2Forder%2F42/events")
        .await?;
    let events = page.json["events"].as_array().expect("events");
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["event"]["id"], "py-binary-1");
    assert_eq!(events[0]["event"]["priority"], "high");
    assert_eq!(events[0]["event"]["data"]["order"], 42);
    assert_eq!(events[1]["event"]["id"], "py-structured-1");
    assert_eq!(events[1]["event"]["data"]["carrier"], "ups");
    Ok(())
}

#[tokio::test]
async fn nats_py_publishes_to_quorum_ingest() -> anyhow::Result<()> {
    let ing = ingest(|_| {}).await?;
    python(&[
        script("nats_publish.py").to_str().unwrap(),
        &ing.nats.url(),
        "acme",
    ])
    .await?;
    wait_until("both events stored", DEADLINE, || async {
        ing.events_stored().await.is_ok_and(|n| n == 2)
    })
    .await?;
    let rows: Vec<(String, String, String)> =
        sqlx::query_as("SELECT event_id, tenant, stream_id FROM events ORDER BY stream_version")
            .fetch_all(&ing.db.pool)
            .await?;
    assert_eq!(
        rows,
        [
            (
                "py-nats-1".into(),
                "acme".into(),
                "sub-acme/sensor/7".into()
            ),
            (
                "py-nats-2".into(),
                "acme".into(),
                "sub-acme/sensor/7".into()
            ),
        ]
    );
    Ok(())
}

#[tokio::test]
async fn schemathesis_finds_no_server_error_and_no_undocumented_response() -> anyhow::Result<()> {
    let ing = ingest(|_| {}).await?;
    let key = ing
        .key("acme", &[Role::Publisher, Role::Auditor, Role::Operator])
        .await?;
    // Run elsewhere: schemathesis keeps a cache in its working directory.
    let out = Command::new("schemathesis")
        .current_dir(std::env::temp_dir())
        .args([
            "run",
            &format!("http://{}/openapi.json", ing.addr),
            "--header",
            &format!("Authorization: Bearer {key}"),
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance",
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            "60",
            // One worker: with several, Python 3.11's parser can trip over itself inside
            // hypothesis ("AST constructor recursion depth mismatch"), a tool error, not ours.
            "--workers",
            "1",
            // Fixed, so that CI runs the same cases each time; change it to explore.
            "--seed",
            "20261124",
            // Above the longest `?wait` of GET /v1/queries/{id}, which the stateful phase may find.
            "--request-timeout",
            "70",
            // An event stream stays open until its query is decided, and nothing decides queries
            // here: it is not a request and response to fuzz.
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
    let report = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "schemathesis found problems:\n{report}"
    );
    Ok(())
}
