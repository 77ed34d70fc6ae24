//! docker-compose.yml's services scaled out (2 ingest, 3 expert-fanout, 2 consensus, 2 audit), each
//! replica a process of its own as `docker compose up --scale` would start it; one replica of each
//! killed with SIGKILL while queries stream in. Every query is decided exactly once and the audit
//! chain verifies: the leaders (relay, chainer) move, the shared consumers redeliver (ADR 23).

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Context, ensure};
use futures::{StreamExt as _, TryStreamExt as _};
use quorum_testkit::wait_until;
use serde_json::{Value, json};

use super::compose::Compose;
use super::harness::{Hosts, Running, Stack};

const SCALE: [(&str, usize); 6] = [
    ("ingest", 2),
    ("expert-fanout", 3),
    ("consensus", 2),
    ("audit", 2),
    ("tool-exec", 1),
    ("dlq-replayer", 1),
];
/// Queries sent, a few at a time, and after how many of them one replica of each is killed.
const QUERIES: usize = 60;
const KILL_AFTER: usize = 20;

#[tokio::test]
async fn scaled_compose_workers_decide_every_query_once_when_one_replica_of_each_is_killed()
-> anyhow::Result<()> {
    let file = Compose::load()?;
    let stack = Stack::start(
        Hosts {
            nats: BTreeSet::from(["nats".to_owned()]),
            postgres: BTreeSet::from(["postgres".to_owned()]),
        },
        file.nats()?,
    )
    .await?;
    let client = quorum_http_client::client();
    stack.run_to_end(&file.spec("migrate", None)?).await?;
    let mut running: Vec<Running> = Vec::new();
    for (service, replicas) in SCALE {
        for i in 1..=replicas {
            let mut spec = file.spec(service, None)?;
            spec.name = format!("{service}-{i}");
            running.push(stack.launch(&spec)?);
        }
    }
    for process in &mut running {
        stack.healthy(process, &client).await?;
    }
    let args = [
        "quorum",
        "keys",
        "create",
        "--tenant",
        "scale",
        "--role",
        "publisher",
    ];
    let key = super::first_line(
        &stack
            .run_to_end(&file.spec("migrate", Some(&args))?)
            .await?,
    )?;
    let ingests =
        ["ingest-1", "ingest-2"].map(|n| super::find(&running, n).and_then(|r| r.url(8080, "")));
    let [first, second] = ingests;
    let (first, second) = (first?, second?);

    let submit = |ingest: String, i: usize| {
        let (client, key) = (client.clone(), key.clone());
        async move {
            let submitted: Value = client
                .post(format!("{ingest}/v1/queries"))
                .bearer_auth(&key)
                .header("Idempotency-Key", format!("scale-{i}"))
                .json(&json!({"question": "What is the capital of France?"}))
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            anyhow::Ok(
                submitted["query_id"]
                    .as_str()
                    .context("a query id")?
                    .to_owned(),
            )
        }
    };
    // Both ingests take the first queries; then, while the rest stream into the second one, one
    // replica of each scaled service dies: ingest-1 (with the relay, if it led), a fan-out, a
    // consensus, an audit replica (with the chainer, if it led).
    let first_part = (0..KILL_AFTER).map(|i| {
        submit(
            if i % 2 == 0 {
                first.clone()
            } else {
                second.clone()
            },
            i,
        )
    });
    let mut ids = futures::future::try_join_all(first_part).await?;
    let mut victims = Vec::new();
    for victim in ["ingest-1", "expert-fanout-1", "consensus-1", "audit-1"] {
        let at = running
            .iter()
            .position(|r| r.spec.name == victim)
            .context(victim)?;
        victims.push(running.remove(at));
    }
    let rest = futures::stream::iter((KILL_AFTER..QUERIES).map(|i| submit(second.clone(), i)))
        .buffer_unordered(8)
        .try_collect::<Vec<String>>();
    let kills = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        for victim in victims {
            victim.kill().await?;
        }
        anyhow::Ok(())
    };
    let (rest, killed) = tokio::join!(rest, kills);
    killed?;
    ids.extend(rest?);
    ensure!(
        ids.iter().collect::<BTreeSet<_>>().len() == QUERIES,
        "{QUERIES} distinct queries"
    );

    let pool = quorum_event_store::pool_options(4)
        .connect(&stack.database_url)
        .await?;
    let streams: Vec<String> = ids.iter().map(|id| format!("query/{id}")).collect();
    let decided = "SELECT count(*) FROM events WHERE stream_id = ANY($1) \
                   AND type IN ('quorum.consensus.reached', 'quorum.consensus.failed')";
    wait_until(
        "every query decided",
        3 * quorum_testkit::DEADLINE,
        || async {
            let n: i64 = sqlx::query_scalar(decided)
                .bind(&streams)
                .fetch_one(&pool)
                .await
                .ok()?;
            (n >= QUERIES as i64).then_some(())
        },
    )
    .await?;
    // Redeliveries after the kills had time to land: still exactly one decision per query.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let per_query: Vec<(String, i64)> = sqlx::query_as(
        "SELECT stream_id, count(*) FROM events WHERE stream_id = ANY($1) \
         AND type IN ('quorum.consensus.reached', 'quorum.consensus.failed') GROUP BY stream_id",
    )
    .bind(&streams)
    .fetch_all(&pool)
    .await?;
    ensure!(
        per_query.len() == QUERIES,
        "{} of {QUERIES} decided",
        per_query.len()
    );
    ensure!(
        per_query.iter().all(|(_, n)| *n == 1),
        "decided twice: {per_query:?}"
    );

    // The surviving audit replica chains everything, and the chain verifies.
    wait_until(
        "the decisions to be chained",
        3 * quorum_testkit::DEADLINE,
        || async {
            let n: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM audit_chain a JOIN events e ON e.position = a.position \
             WHERE e.stream_id = ANY($1) AND e.type LIKE 'quorum.consensus.%'",
            )
            .bind(&streams)
            .fetch_one(&pool)
            .await
            .ok()?;
            (n >= QUERIES as i64).then_some(())
        },
    )
    .await?;
    let report = quorum_audit::verify::verify(&pool, Default::default(), |_| {}).await?;
    ensure!(report.ok(), "{report:?}");
    super::stop_all(running).await
}
