//! The HTTP API against a real Postgres and nats-server: who may call, what is stored, and what a
//! caller is told.

use futures::StreamExt;
use quorum_auth::Role;
use serde_json::json;

use crate::common;
use common::{ingest, structured};

const STRUCTURED: &str = "application/cloudevents+json";

#[tokio::test]
async fn keys_and_roles_decide_and_refusals_store_nothing() -> anyhow::Result<()> {
    let ing = ingest(|_| {}).await?;
    let publisher = ing.key("acme", &[Role::Publisher]).await?;
    let revoked = ing.key("acme", &[Role::Publisher]).await?;
    let auditor = ing.key("acme", &[Role::Auditor]).await?;
    let body = structured("e-1", "com.example.order.created");

    let none = ing.post(None, STRUCTURED, &[], body.clone()).await?;
    assert_eq!(none.status, 401);
    assert_eq!(none.content_type(), "application/problem+json");
    let bogus = ing
        .post(Some("qk_000000000000_nope"), STRUCTURED, &[], body.clone())
        .await?;
    assert_eq!(bogus.status, 401);
    // An auditor may read but not publish.
    assert_eq!(
        ing.post(Some(&auditor), STRUCTURED, &[], body.clone())
            .await?
            .status,
        403
    );
    // Revoked: refused, after a first success that primed any cache.
    assert_eq!(
        ing.post(
            Some(&revoked),
            STRUCTURED,
            &[],
            structured("e-0", "com.example.x")
        )
        .await?
        .status,
        202
    );
    let prefix = revoked.split('_').nth(1).expect("qk_<prefix>_<secret>");
    assert!(quorum_auth::revoke(&ing.db.pool, prefix).await?);
    // Revocation reaches every process through a notification, so it takes effect a moment after
    // the commit. Probe with a request that could never store anything (415 while the key still
    // passes), then send a real event.
    quorum_testkit::wait_until(
        "the revoked key to be refused",
        quorum_testkit::DEADLINE,
        || async {
            ing.post(Some(&revoked), "text/plain", &[], "probe")
                .await
                .is_ok_and(|a| a.status == 401)
        },
    )
    .await?;
    let refused = ing
        .post(Some(&revoked), STRUCTURED, &[], body.clone())
        .await?;
    assert_eq!(refused.status, 401);
    // An event naming another tenant than the key's.
    let other = json!({"specversion": "1.0", "id": "e-2", "source": "/s", "type": "com.example.x", "tenant": "globex"});
    let refused = ing
        .post(Some(&publisher), STRUCTURED, &[], other.to_string())
        .await?;
    assert_eq!(refused.status, 403);
    assert_eq!(refused.json["attribute"], "tenant");
    assert_eq!(ing.events_stored().await?, 1, "only the one accepted event");
    Ok(())
}

#[tokio::test]
async fn the_same_event_twice_is_stored_once_and_the_second_is_told() -> anyhow::Result<()> {
    let ing = ingest(|_| {}).await?;
    let key = ing.key("acme", &[Role::Publisher]).await?;
    let body = structured("dup-1", "com.example.order.created");
    let first = ing.post(Some(&key), STRUCTURED, &[], body.clone()).await?;
    let second = ing.post(Some(&key), STRUCTURED, &[], body.clone()).await?;
    assert_eq!((first.status, second.status), (202, 202));
    assert_eq!(first.json["events"][0]["duplicate"], false);
    assert_eq!(second.json["events"][0]["duplicate"], true);
    assert_eq!(
        first.json["events"][0]["position"],
        second.json["events"][0]["position"]
    );

    // Concurrently: 16 callers send one new event; all succeed, exactly one stored it.
    let body = structured("dup-2", "com.example.order.created");
    let answers = futures::future::join_all(
        (0..16).map(|_| ing.post(Some(&key), STRUCTURED, &[], body.clone())),
    )
    .await;
    let mut fresh = 0;
    for a in answers {
        let a = a?;
        assert_eq!(a.status, 202, "{:?}", a.json);
        fresh += usize::from(a.json["events"][0]["duplicate"] == false);
    }
    assert_eq!(fresh, 1);
    assert_eq!(ing.events_stored().await?, 2);

    // The same id with other content is a conflict, and changes nothing.
    let changed = json!({"specversion": "1.0", "id": "dup-1", "source": "https://upstream.example/orders",
        "type": "com.example.order.created", "datacontenttype": "application/json", "data": {"n": 2}});
    let clash = ing
        .post(Some(&key), STRUCTURED, &[], changed.to_string())
        .await?;
    assert_eq!(clash.status, 409);
    assert_eq!(ing.events_stored().await?, 2);
    Ok(())
}

#[tokio::test]
async fn queries_are_submitted_and_history_is_scoped_to_the_tenant() -> anyhow::Result<()> {
    let ing = ingest(|_| {}).await?;
    let publisher = ing.key("acme", &[Role::Publisher]).await?;
    let auditor = ing.key("acme", &[Role::Auditor]).await?;
    let stranger = ing.key("globex", &[Role::Auditor, Role::Operator]).await?;
    let query = json!({"question": "Is the sky blue?", "experts": ["a", "b", "c"], "quorum": 2});
    let submit = |key: String, idem: Option<&'static str>| {
        let mut req = ing
            .http
            .post(ing.url("/v1/queries"))
            .bearer_auth(key)
            .header("content-type", "application/json")
            .body(query.to_string());
        if let Some(k) = idem {
            req = req.header("idempotency-key", k);
        }
        req.send()
    };
    let r = submit(publisher.clone(), Some("q-1")).await?;
    assert_eq!(r.status(), 202);
    let location = r.headers()["location"].to_str()?.to_owned();
    let submitted: serde_json::Value = r.json_body().await?;
    assert_eq!(submitted["duplicate"], false);
    let again: serde_json::Value = submit(publisher.clone(), Some("q-1"))
        .await?
        .json_body()
        .await?;
    assert_eq!(again["query_id"], submitted["query_id"]);
    assert_eq!(again["duplicate"], true);

    let history = ing.get(&auditor, &location).await?;
    assert_eq!(history.status, 200, "{:?}", history.json);
    let stored = &history.json["events"][0];
    assert_eq!(stored["event"]["type"], "quorum.query.submitted");
    assert_eq!(stored["event"]["data"]["question"], "Is the sky blue?");
    assert_eq!(stored["event"]["tenant"], "acme");
    let by_correlation = ing
        .get(
            &auditor,
            &format!(
                "/v1/events?correlation_id={}",
                submitted["query_id"].as_str().unwrap()
            ),
        )
        .await?;
    assert_eq!(
        by_correlation.json["events"].as_array().map(Vec::len),
        Some(1)
    );

    // Another tenant: not found, and nothing by correlation id.
    assert_eq!(ing.get(&stranger, &location).await?.status, 404);
    let theirs = ing
        .get(
            &stranger,
            &format!(
                "/v1/events?correlation_id={}",
                submitted["query_id"].as_str().unwrap()
            ),
        )
        .await?;
    assert_eq!(theirs.json["events"], json!([]));
    // A publisher key on a reader's route.
    assert_eq!(ing.get(&publisher, &location).await?.status, 403);

    // A bad query names its field and stores nothing.
    let bad = ing
        .http
        .post(ing.url("/v1/queries"))
        .bearer_auth(&publisher)
        .header("content-type", "application/json")
        .body(json!({"question": "q", "deadline_ms": 5}).to_string())
        .send()
        .await?;
    assert_eq!(bad.status(), 400);
    assert_eq!(ing.events_stored().await?, 1);
    Ok(())
}

#[tokio::test]
async fn limits_and_content_types_are_enforced() -> anyhow::Result<()> {
    let ing = ingest(|c| {
        c.limits.max_event_bytes = 1024;
        c.limits.max_batch_events = 3;
        c.rate.burst = 3;
    })
    .await?;
    let key = ing.key("acme", &[Role::Publisher]).await?;
    let big = json!({"specversion": "1.0", "id": "big", "source": "/s", "type": "t", "data": "x".repeat(2000)});
    assert_eq!(
        ing.post(Some(&key), STRUCTURED, &[], big.to_string())
            .await?
            .status,
        413
    );
    let batch: Vec<_> = (0..4)
        .map(|i| json!({"specversion": "1.0", "id": format!("b{i}"), "source": "/s", "type": "t"}))
        .collect();
    let too_many = ing
        .post(
            Some(&key),
            "application/cloudevents-batch+json",
            &[],
            serde_json::to_string(&batch)?,
        )
        .await?;
    assert_eq!(too_many.status, 413);
    let plain = ing.post(Some(&key), "application/json", &[], "{}").await?;
    assert_eq!(plain.status, 415);
    // One bad event refuses the whole batch and names it.
    let mut mixed = batch[..3].to_vec();
    mixed[1]["time"] = json!("lunchtime");
    let refused = ing
        .post(
            Some(&key),
            "application/cloudevents-batch+json",
            &[],
            serde_json::to_string(&mixed)?,
        )
        .await?;
    assert_eq!(refused.status, 400);
    assert_eq!(refused.json["index"], 1);
    assert_eq!(refused.json["attribute"], "time");
    assert_eq!(ing.events_stored().await?, 0);
    Ok(())
}

/// reqwest's `json` feature is off; this is all the tests need of it.
trait JsonBody {
    async fn json_body(self) -> anyhow::Result<serde_json::Value>;
}

impl JsonBody for reqwest::Response {
    async fn json_body(self) -> anyhow::Result<serde_json::Value> {
        Ok(serde_json::from_slice(&self.bytes().await?)?)
    }
}

#[tokio::test]
async fn concurrent_single_events_share_transactions() -> anyhow::Result<()> {
    let ing = ingest(|_| {}).await?;
    let key = ing.key("acme", &[Role::Publisher]).await?;
    let answers = futures::stream::iter(0..300)
        .map(|i| {
            ing.post(
                Some(&key),
                STRUCTURED,
                &[],
                structured(&format!("g-{i}"), "com.example.x"),
            )
        })
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await;
    for a in answers {
        assert_eq!(a?.status, 202);
    }
    // Events committed together share their transaction id.
    let (events, transactions): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(DISTINCT tx_id) FROM events WHERE tenant <> '_system'",
    )
    .fetch_one(&ing.db.pool)
    .await?;
    assert_eq!(events, 300);
    assert!(
        transactions < events,
        "no request shared a commit: {transactions} transactions"
    );
    Ok(())
}

/// A store failure that a retry cannot cure is a 500 with an error id and nothing of the database's
/// own words; no `Retry-After`, since the same request fails again.
#[tokio::test]
async fn a_permanent_store_failure_is_a_500_naming_only_an_error_id() -> anyhow::Result<()> {
    let ing = ingest(|_| {}).await?;
    let key = ing.key("acme", &[Role::Publisher]).await?;
    // Every new row now breaks a constraint the code knows nothing of.
    sqlx::query("ALTER TABLE events ADD CONSTRAINT no_more_rows CHECK (false) NOT VALID")
        .execute(&ing.db.pool)
        .await?;

    let answer = ing
        .post(
            Some(&key),
            STRUCTURED,
            &[],
            structured("e-1", "com.example.x"),
        )
        .await?;
    assert_eq!(answer.status, 500, "{:?}", answer.json);
    assert_eq!(answer.content_type(), "application/problem+json");
    assert!(answer.headers.get("retry-after").is_none());
    let error_id = answer.json["error_id"].as_str().expect("an error id");
    let body = answer.json.to_string();
    assert!(body.contains(error_id));
    for leak in ["no_more_rows", "constraint", "events", "violates"] {
        assert!(!body.contains(leak), "{leak:?} leaked: {body}");
    }
    Ok(())
}
