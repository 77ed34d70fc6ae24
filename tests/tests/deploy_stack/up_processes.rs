//! `quorum up --processes`, as a user runs it (its own nats-server and Postgres): every service its
//! own OS process with the `QUORUM__…` variables docker-compose.yml gives that service; a question
//! answered end to end, in one trace across the processes; a service killed with SIGKILL started
//! again and answering; Ctrl-C stops every process.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Stdio;

use anyhow::{Context, ensure};
use quorum_testkit::{DEADLINE, wait_until};
use serde_json::Value;

use super::checks::answer_a_query;
use super::compose::Compose;
use super::harness::binaries;
use super::traces;

/// The Quorum service processes whose parent is `parent`: service name to pid and its
/// `QUORUM__…` variables.
fn services_of(parent: u32) -> BTreeMap<String, (u32, BTreeSet<String>)> {
    let mut found = BTreeMap::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid …: comm may hold spaces, so count from its closing parenthesis.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid != Some(parent) {
            continue;
        }
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let program = cmdline.split(|b| *b == 0).next().unwrap_or_default();
        let program = Path::new(std::str::from_utf8(program).unwrap_or_default());
        let Some(service) = program
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix("quorum-"))
        else {
            continue;
        };
        let environ = std::fs::read(entry.path().join("environ")).unwrap_or_default();
        let vars = environ
            .split(|b| *b == 0)
            .filter_map(|kv| std::str::from_utf8(kv).ok())
            .filter_map(|kv| kv.split_once('=').map(|(k, _)| k))
            .filter(|k| k.starts_with("QUORUM__"))
            .map(str::to_owned)
            .collect();
        found.insert(service.to_owned(), (pid, vars));
    }
    found
}

/// Whether `pid` is a live process (not gone, not a zombie waiting for its parent).
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z")
    })
}

fn signal(pid: u32, signal: &str) -> anyhow::Result<()> {
    let status = std::process::Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()?;
    ensure!(status.success(), "kill {signal} {pid}: {status}");
    Ok(())
}

#[tokio::test]
async fn quorum_up_processes_runs_each_service_as_compose_does() -> anyhow::Result<()> {
    quorum_testkit::init_tracing();
    let bin = binaries().await?;
    let receiver = traces::Receiver::start().await?;
    let data = std::env::temp_dir().join(format!("quorum-up-processes-{}", uuid::Uuid::new_v4()));
    let log = std::fs::File::create(std::env::temp_dir().join(format!(
        "{}.log",
        data.file_name().and_then(|n| n.to_str()).unwrap_or("up")
    )))?;
    let mut up = tokio::process::Command::new(bin.join("quorum"))
        .arg("--data-dir")
        .arg(&data)
        .args(["up", "--processes"])
        // Its own servers, and the default ports of its APIs taken by nobody else's test.
        .env_remove("QUORUM_NATS_URL")
        .env_remove("QUORUM_DATABASE_URL")
        .env("QUORUM__INGEST__HTTP_ADDR", "127.0.0.1:0")
        .env("QUORUM__AUDIT__HTTP_ADDR", "127.0.0.1:0")
        .env("QUORUM__DLQ__HTTP_ADDR", "127.0.0.1:0")
        // Every process exports its spans to the test's receiver, soon after they end.
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.endpoint)
        .env("OTEL_BSP_SCHEDULE_DELAY", "200")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true)
        .spawn()?;
    let up_pid = up.id().context("up's pid")?;
    let stack_file = data.join("stack.json");
    let stack: Value = wait_until("the stack to be up", 3 * DEADLINE, || async {
        serde_json::from_slice(&std::fs::read(&stack_file).ok()?).ok()
    })
    .await?;
    let http = |name: &str| -> anyhow::Result<String> {
        let addr = stack["services"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["name"] == name))
            .and_then(|s| s["http"].as_str())
            .with_context(|| format!("{name}'s address in {stack}"))?;
        Ok(format!("http://{addr}"))
    };
    let (ingest, audit) = (http("ingest")?, http("audit")?);
    let key = std::fs::read_to_string(data.join("api-key"))?
        .trim()
        .to_owned();

    // Each service its own process, with the variables compose gives it, names and all.
    let compose = Compose::load()?;
    let services = services_of(up_pid);
    let names: BTreeSet<&str> = services.keys().map(String::as_str).collect();
    ensure!(
        names
            == BTreeSet::from([
                "audit",
                "consensus",
                "dlq-replayer",
                "expert-fanout",
                "ingest",
                "tool-exec"
            ]),
        "service processes: {names:?}"
    );
    for (name, (_, vars)) in &services {
        let want: BTreeSet<String> = compose
            .spec(name, None)?
            .env
            .into_keys()
            .filter(|k| k.starts_with("QUORUM__"))
            .collect();
        ensure!(
            vars == &want,
            "{name} runs with {vars:?}, compose gives it {want:?}"
        );
    }

    let client = quorum_http_client::client();
    answer_a_query(&client, &ingest, &audit, &key, "up-processes-1").await?;

    // A question asked inside a client's trace is one trace across the processes.
    let trace_id = uuid::Uuid::new_v4().simple().to_string();
    let client_span = "00f067aa0ba902b7";
    traces::ask_in_a_trace(
        &client,
        &ingest,
        &key,
        &format!("00-{trace_id}-{client_span}-01"),
    )
    .await?;
    let mut last = None;
    let traced = wait_until(
        "one trace from ingest to the consensus",
        2 * DEADLINE,
        || {
            let spans = receiver.trace(&trace_id);
            let checked = traces::check_one_trace(&spans, client_span);
            let done = checked.is_ok();
            last = checked.err();
            async move { done.then_some(()) }
        },
    )
    .await;
    if let Err(e) = traced {
        anyhow::bail!(
            "{e}: {:#}",
            last.unwrap_or_else(|| anyhow::anyhow!("nothing checked"))
        );
    }

    // A service killed outright is started again, and the stack answers with the new one.
    let (killed, _) = services["consensus"];
    signal(killed, "-KILL")?;
    wait_until("consensus to be started again", 2 * DEADLINE, || async {
        services_of(up_pid)
            .get("consensus")
            .is_some_and(|(pid, _)| *pid != killed)
            .then_some(())
    })
    .await?;
    answer_a_query(&client, &ingest, &audit, &key, "up-processes-2").await?;

    // Ctrl-C: every service drains and exits, then `up` itself.
    let pids: Vec<u32> = services_of(up_pid).values().map(|(pid, _)| *pid).collect();
    signal(up_pid, "-INT")?;
    let status = tokio::time::timeout(2 * DEADLINE, up.wait()).await??;
    ensure!(status.success(), "up exited {status}");
    let alive: Vec<&u32> = pids.iter().filter(|pid| running(**pid)).collect();
    ensure!(alive.is_empty(), "still running after up: {alive:?}");
    let _ = std::fs::remove_dir_all(&data);
    Ok(())
}

/// `quorum-<service> --help` lists every setting the service reads, with the variable that sets it:
/// what a compose file or a Deployment may give it.
#[tokio::test]
async fn every_service_binary_lists_its_settings() -> anyhow::Result<()> {
    let bin = binaries().await?;
    let own: [(&str, &[&str]); 6] = [
        ("ingest", &["QUORUM__HTTP_ADDR", "QUORUM__RUN_RELAY"]),
        ("expert-fanout", &["QUORUM__EXPERTS"]),
        ("consensus", &["QUORUM__EXPERTS", "QUORUM__JUDGE"]),
        (
            "tool-exec",
            &["QUORUM__WORKDIR_ROOT", "QUORUM__HTTP__ALLOWED_HOSTS"],
        ),
        ("audit", &["QUORUM__HTTP_ADDR", "QUORUM__CHAIN__BATCH"]),
        ("dlq-replayer", &["QUORUM__HTTP_ADDR", "QUORUM__PUMP_POLL"]),
    ];
    for (service, variables) in own {
        let out = std::process::Command::new(bin.join(format!("quorum-{service}")))
            .arg("--help")
            .output()?;
        let help = String::from_utf8(out.stdout)?;
        ensure!(
            out.status.success(),
            "quorum-{service} --help: {}",
            out.status
        );
        for variable in ["QUORUM__COMMON__NATS_URL", "QUORUM__COMMON__DATABASE_URL"]
            .iter()
            .chain(variables)
        {
            ensure!(
                help.contains(variable),
                "quorum-{service} --help does not list {variable}:\n{help}"
            );
        }
        let refused = std::process::Command::new(bin.join(format!("quorum-{service}")))
            .arg("--no-such-flag")
            .output()?;
        ensure!(
            refused.status.code() == Some(2),
            "quorum-{service} --no-such-flag: {}",
            refused.status
        );
    }
    Ok(())
}
