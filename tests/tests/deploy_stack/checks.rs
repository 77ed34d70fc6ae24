//! What every deployment test checks once its processes run: a question answered end to end and
//! found in the audit chain, and the file's NATS closed to anonymous clients but open to a key.

use anyhow::{Context, ensure};
use quorum_testkit::wait_until;
use serde_json::{Value, json};

use super::harness::Stack;

/// Asks the scripted experts a question through ingest and waits for the consensus in the
/// `queries` read model; then for the consensus in the audit chain, through the audit API.
pub async fn answer_a_query(
    client: &reqwest::Client,
    ingest: &str,
    audit: &str,
    key: &str,
    idempotency_key: &str,
) -> anyhow::Result<()> {
    // With an idempotency key, as a careful client sends it: a retry after a connection that
    // failed before the answer names the same query.
    let submit = || {
        client
            .post(format!("{ingest}/v1/queries"))
            .bearer_auth(key)
            .header("Idempotency-Key", idempotency_key)
            .json(&json!({"question": "What is the capital of France?"}))
            .send()
    };
    let submitted = match submit().await {
        Err(e) if e.is_connect() || e.is_request() => {
            eprintln!("submit failed ({e:#}), once more");
            submit().await?
        }
        other => other?,
    };
    ensure!(submitted.status() == 202, "submit: {}", submitted.status());
    let submitted: Value = submitted.json().await?;
    let id = submitted["query_id"]
        .as_str()
        .context("a query id")?
        .to_owned();
    let view: Value = wait_until(
        "the query to be decided",
        2 * quorum_testkit::DEADLINE,
        || {
            let url = format!("{ingest}/v1/queries/{id}?wait=10s");
            async move {
                let view: Value = client
                    .get(url)
                    .bearer_auth(key)
                    .send()
                    .await
                    .ok()?
                    .json()
                    .await
                    .ok()?;
                (view["status"] != "pending" && !view["status"].is_null()).then_some(view)
            }
        },
    )
    .await?;
    ensure!(view["status"] == "reached", "{view}");
    ensure!(view["consensus"]["answer"] == "Paris", "{view}");
    // Two agreeing experts decide; the third may answer later (recorded as late).
    ensure!(
        view["experts"].as_object().map(|e| e.len()) >= Some(2),
        "{view}"
    );
    let export = format!("{audit}/v1/audit/export?correlation_id={id}");
    wait_until(
        "the consensus to be chained",
        2 * quorum_testkit::DEADLINE,
        || async {
            let text = client
                .get(&export)
                .bearer_auth(key)
                .send()
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            text.contains("quorum.consensus.reached").then_some(())
        },
    )
    .await?;
    Ok(())
}

/// The file's NATS refuses an anonymous client, and takes an upstream system's event published
/// with its API key (`tenant`'s, with the publisher role): the users and the auth callout the
/// file configures are in force, and the callout's issuer keys of nats and ingest match.
pub async fn nats_is_locked_and_takes_a_key(
    stack: &Stack,
    key: &str,
    tenant: &str,
) -> anyhow::Result<()> {
    ensure!(
        async_nats::connect(stack.nats.url()).await.is_err(),
        "nats lets an anonymous client in"
    );
    let client = async_nats::ConnectOptions::with_token(key.to_owned())
        .custom_inbox_prefix(format!("_INBOX.{tenant}"))
        .connect(stack.nats.url())
        .await
        .context("connect to nats with the API key")?;
    let event = json!({"specversion": "1.0", "id": "over-nats-1", "source": "/deploy-test",
        "type": "com.example.deployed", "data": {}});
    async_nats::jetstream::new(client)
        .publish(
            format!("quorum.ingest.{tenant}.com.example.deployed"),
            event.to_string().into(),
        )
        .await?
        .await
        .context("publish with the API key")?;
    Ok(())
}
