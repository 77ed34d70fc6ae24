//! The deployment files, exercised rather than only parsed: every Quorum service of
//! docker-compose.yml, and every Deployment of the Kubernetes dev overlay, started as its own
//! process exactly as the file says (command, environment, mounts, health checks), against this
//! test's nats-server and Postgres; each waited healthy, a question answered end to end, the
//! consensus found in the audit chain, and each process stopped cleanly within its grace period.
//! `replicas` scales the compose services out and kills one replica of each under a stream of
//! queries.
//! No Docker engine or cluster runs here: what the container runtime would add (the image's
//! filesystem, networking) is what these tests cannot show; `scripts/check-deploy.sh` validates
//! the files against their schemas.

mod chaos;
mod checks;
mod compose;
mod harness;
mod k8s;
mod metrics;
mod replicas;
mod traces;
mod up_processes;

use std::collections::BTreeSet;

use anyhow::Context;
use checks::answer_a_query;
use harness::{Hosts, Running, Stack};

/// The key an operator makes first (README's Deploy section).
const KEY_ARGS: [&str; 9] = [
    "quorum",
    "keys",
    "create",
    "--tenant",
    "deploy",
    "--role",
    "publisher",
    "--role",
    "auditor",
];

#[tokio::test]
async fn docker_compose_services_answer_a_query_as_separate_processes() -> anyhow::Result<()> {
    let file = compose::Compose::load()?;
    let stack = Stack::start(
        Hosts {
            nats: BTreeSet::from(["nats".to_owned()]),
            postgres: BTreeSet::from(["postgres".to_owned()]),
        },
        file.nats()?,
    )
    .await?;
    let client = quorum_http_client::client();
    let mut running: Vec<Running> = Vec::new();
    for name in file.order()? {
        let awaited = file.awaited(&name);
        let spec = file.spec(&name, None)?;
        if awaited.contains("service_completed_successfully") {
            stack.run_to_end(&spec).await?;
            continue;
        }
        let mut process = stack.launch(&spec)?;
        // A dependency another service waits on healthy is waited for before that one starts;
        // the rest are waited for all together below.
        if awaited.contains("service_healthy") {
            stack.healthy(&mut process, &client).await?;
        }
        running.push(process);
    }
    for process in &mut running {
        stack.healthy(process, &client).await?;
    }
    eprintln!("healthy after {:?}", stack.age());
    // `docker compose run --rm migrate quorum keys create …`
    let key = stack
        .run_to_end(&file.spec("migrate", Some(&KEY_ARGS))?)
        .await?;
    let key = first_line(&key)?;
    let ingest = find(&running, "ingest")?.url(8080, "")?;
    let audit = find(&running, "audit")?.url(8081, "")?;
    answer_a_query(&client, &ingest, &audit, &key, "deploy-stack-1").await?;
    checks::nats_is_locked_and_takes_a_key(&stack, &key, "deploy").await?;
    eprintln!("answered after {:?}", stack.age());
    metrics::check(&client, &running).await?;
    stop_all(running).await
}

#[tokio::test]
async fn kubernetes_dev_overlay_deployments_answer_a_query_as_separate_processes()
-> anyhow::Result<()> {
    let kubectl = k8s::kubectl();
    let why = "needs kubectl (scripts/setup.sh installs it) to render the overlay";
    let Some(kubectl) = kubectl else {
        quorum_testkit::require(false, why);
        return Ok(());
    };
    let rendered = k8s::Rendered::overlay(&kubectl, "dev").await?;
    let stack = Stack::start(
        Hosts {
            nats: BTreeSet::from([k8s::NATS_HOST.to_owned()]),
            postgres: BTreeSet::from([rendered.postgres_host.clone()]),
        },
        rendered.nats()?,
    )
    .await?;
    let client = quorum_http_client::client();
    // The kubelet starts everything at once: the Job migrates while the services start (they
    // migrate too, under the same lock).
    let job = rendered.spec("Job", "quorum-migrate")?;
    let names: Vec<String> = rendered
        .of_kind("Deployment")
        .filter_map(|d| d["metadata"]["name"].as_str().map(str::to_owned))
        .collect();
    anyhow::ensure!(names.len() == 6, "six Deployments: {names:?}");
    let mut running = Vec::new();
    for name in &names {
        running.push(stack.launch(&rendered.spec("Deployment", name)?)?);
    }
    stack.run_to_end(&job).await?;
    for process in &mut running {
        stack.healthy(process, &client).await?;
    }
    eprintln!("healthy after {:?}", stack.age());
    // `kubectl exec deploy/quorum-ingest -- quorum keys create …`: the container's environment,
    // no entrypoint.
    let mut keys = rendered.spec("Deployment", "quorum-ingest")?;
    keys.name = "keys".into();
    keys.argv = KEY_ARGS.map(String::from).to_vec();
    let key = first_line(&stack.run_to_end(&keys).await?)?;
    let ingest = find(&running, "quorum-ingest")?.url(8080, "")?;
    let audit = find(&running, "quorum-audit")?.url(8081, "")?;
    answer_a_query(&client, &ingest, &audit, &key, "deploy-stack-1").await?;
    checks::nats_is_locked_and_takes_a_key(&stack, &key, "deploy").await?;
    eprintln!("answered after {:?}", stack.age());
    // KEDA would find every consumer its ScaledObjects name, on the streams the services made.
    let js = async_nats::jetstream::new(rendered.connect_admin(&stack.nats.url()).await?);
    for (stream, consumer) in rendered.scaled_consumers()? {
        js.get_stream(&stream)
            .await?
            .consumer_info(&consumer)
            .await
            .with_context(|| {
                format!("a ScaledObject names {stream}/{consumer}, which no service made")
            })?;
    }
    stop_all(running).await
}

/// SIGTERM to every process at once, as `docker compose down` and a namespace's deletion do; each
/// must exit cleanly within its own grace period.
pub(crate) async fn stop_all(running: Vec<Running>) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let stopped = futures::future::join_all(running.into_iter().map(Running::stop)).await;
    eprintln!("stopped in {:?}", started.elapsed());
    stopped.into_iter().collect()
}

pub(crate) fn find<'a>(running: &'a [Running], name: &str) -> anyhow::Result<&'a Running> {
    running
        .iter()
        .find(|r| r.spec.name == name)
        .with_context(|| format!("{name} is not running"))
}

/// `quorum keys create` prints the key alone on standard output (the rest goes to standard error,
/// which the harness appends to the same log after it).
pub(crate) fn first_line(output: &str) -> anyhow::Result<String> {
    output
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("qk_"))
        .map(str::to_owned)
        .context("no key printed")
}
