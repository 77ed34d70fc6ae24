//! `quorum up --processes`: every service as its own OS process, the way docker-compose.yml runs
//! them: the same binaries, the same `QUORUM__…` variables (`QUORUM__COMMON__NATS_URL` and the rest
//! of the file's `x-quorum-env`, `QUORUM__HTTP_ADDR`, `QUORUM__WORKDIR_ROOT`), each service's other
//! settings in a file made from `up`'s config (as compose mounts one), and each waited for on its
//! `/readyz`. A service that exits is started again, as compose's `restart: unless-stopped` does;
//! Ctrl-C stops them all with SIGTERM, so that each drains.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use quorum_devstack::ServiceProcess;
use quorum_runtime::Shutdown;
use serde::Serialize;

use super::up_config::UpConfig;
use crate::stack::ServiceAddr;

/// The stack's URLs, as the services are to reach them.
pub struct Urls {
    pub nats: String,
    pub database: String,
}

/// One service to run: its binary, its settings file, its variables, and where it listens.
#[derive(Clone)]
pub struct Plan {
    pub name: &'static str,
    /// Which copy of the service this is, from 1 (`docker compose up --scale`'s numbering).
    pub replica: u32,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub admin: SocketAddr,
    pub http: Option<SocketAddr>,
}

/// The variables docker-compose.yml gives every service (`x-quorum-env`), for this stack.
pub fn common_env(urls: &Urls, admin: SocketAddr, grace: Duration) -> Vec<(String, String)> {
    [
        ("QUORUM__COMMON__NATS_URL", urls.nats.clone()),
        ("QUORUM__COMMON__DATABASE_URL", urls.database.clone()),
        ("QUORUM__COMMON__ADMIN_ADDR", admin.to_string()),
        (
            "QUORUM__COMMON__SHUTDOWN_GRACE",
            format!("{}s", grace.as_secs().max(1)),
        ),
        ("QUORUM__COMMON__LOG_FORMAT", "json".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// What each service runs with. Settings files go to `<data dir>/services/`, logs beside them.
pub fn plans(
    config: &UpConfig,
    urls: &Urls,
    data_dir: &Path,
    bin_dir: &Path,
) -> anyhow::Result<Vec<Plan>> {
    let dir = data_dir.join("services");
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    // A service stops within its own grace; `up` waits a little longer for all of them.
    let grace = config.shutdown_grace.saturating_sub(Duration::from_secs(5));
    let names: Vec<String> = config.experts.iter().map(|e| e.name.clone()).collect();
    let mut ingest = config.ingest.clone();
    // As compose runs it: ingest runs the relay, one leader among its replicas.
    ingest.run_relay = true;
    ingest.relay = config.relay.clone();
    let services: [(&'static str, Option<SocketAddr>, String); 6] = [
        ("ingest", Some(config.ingest.http_addr), toml(&ingest)?),
        (
            "expert-fanout",
            None,
            toml(&quorum_expert_fanout::config::FanoutConfig {
                common: Default::default(),
                experts: config.experts.clone(),
            })?,
        ),
        (
            "consensus",
            None,
            toml(&quorum_consensus::config::ConsensusConfig {
                common: Default::default(),
                experts: names,
                judge: config.judge.clone(),
                embeddings: config.embeddings.clone(),
            })?,
        ),
        ("tool-exec", None, toml(&config.tool_exec)?),
        ("audit", Some(config.audit.http_addr), toml(&config.audit)?),
        (
            "dlq-replayer",
            Some(config.dlq.http_addr),
            toml(&config.dlq)?,
        ),
    ];
    let mut plans = Vec::new();
    for (name, http, settings) in services {
        let program = bin_dir.join(format!("quorum-{name}"));
        anyhow::ensure!(
            program.is_file(),
            "{} not found: --processes runs the service binaries beside `quorum` \
             (cargo build --release --bins)",
            program.display()
        );
        let file = dir.join(format!("{name}.toml"));
        write_private(&file, &settings)?;
        let admin = local(0)?;
        let mut env = common_env(urls, admin, grace);
        let http = match http {
            Some(addr) => {
                let addr = if addr.port() == 0 { local(0)? } else { addr };
                env.push(("QUORUM__HTTP_ADDR".into(), addr.to_string()));
                Some(addr)
            }
            None => None,
        };
        if name == "tool-exec" {
            let root = data_dir.join("sagas");
            env.push(("QUORUM__WORKDIR_ROOT".into(), root.display().to_string()));
        }
        plans.push(Plan {
            name,
            replica: 1,
            program,
            args: vec!["--config".into(), file.display().to_string()],
            env,
            admin,
            http,
        });
    }
    Ok(plans)
}

impl Plan {
    /// `ingest`, or `ingest#2` for a second replica: how logs and addresses name it.
    pub fn label(&self) -> String {
        match self.replica {
            1 => self.name.to_owned(),
            n => format!("{}#{n}", self.name),
        }
    }

    /// Replica `n` of this service: the same binary, settings and variables, listening on ports
    /// of its own.
    pub fn replica(&self, n: u32) -> anyhow::Result<Plan> {
        let mut plan = self.clone();
        plan.replica = n;
        plan.admin = local(0)?;
        plan.http = self.http.map(|_| local(0)).transpose()?;
        for (key, value) in &mut plan.env {
            match key.as_str() {
                "QUORUM__COMMON__ADMIN_ADDR" => *value = plan.admin.to_string(),
                "QUORUM__HTTP_ADDR" => {
                    *value = plan.http.map(|a| a.to_string()).unwrap_or_default();
                }
                _ => {}
            }
        }
        Ok(plan)
    }
}

/// Every plan `replicas` times, replicas of a service side by side.
pub fn scale(plans: Vec<Plan>, replicas: u32) -> anyhow::Result<Vec<Plan>> {
    let mut scaled = Vec::new();
    for plan in plans {
        let copies = (2..=replicas)
            .map(|n| plan.replica(n))
            .collect::<anyhow::Result<Vec<_>>>()?;
        scaled.push(plan);
        scaled.extend(copies);
    }
    Ok(scaled)
}

/// Plans every service of this stack `replicas` times, each as its own NATS user when `local` made
/// users (as compose gives each one), starts them all and waits until each is ready; supervised
/// on `shutdown`. Logs go to `<data dir>/logs/`.
pub async fn launch(
    config: &UpConfig,
    urls: &Urls,
    data_dir: &Path,
    local: Option<&crate::local::LocalStack>,
    replicas: u32,
    shutdown: &Shutdown,
) -> anyhow::Result<Vec<ServiceAddr>> {
    let bin_dir = std::env::current_exe()?
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let mut plans = scale(plans(config, urls, data_dir, &bin_dir)?, replicas)?;
    if let Some(local) = local {
        for plan in &mut plans {
            if let Some(user) = quorum_bus::access::ServiceUser::from_name(plan.name) {
                plan.env.extend(local.nats_env(user));
            }
        }
    }
    start(
        plans,
        &data_dir.join("logs"),
        shutdown,
        config.shutdown_grace,
    )
    .await
}

/// Starts every planned service, waits until each is ready, and supervises them on `shutdown`
/// until it is cancelled. Returns where they listen.
pub async fn start(
    plans: Vec<Plan>,
    logs: &Path,
    shutdown: &Shutdown,
    grace: Duration,
) -> anyhow::Result<Vec<ServiceAddr>> {
    std::fs::create_dir_all(logs).with_context(|| format!("create {}", logs.display()))?;
    let mut running = Vec::new();
    for plan in plans {
        let log = logs.join(format!("{}.log", plan.label()));
        let process = spawn(&plan, &log)?;
        running.push(Supervised {
            plan,
            process,
            log,
            started: Instant::now(),
            restarts: 0,
        });
    }
    let http = quorum_http_client::client();
    for s in &mut running {
        wait_ready(s, &http).await?;
    }
    let mut addrs: Vec<ServiceAddr> = running
        .iter()
        .map(|s| ServiceAddr {
            name: s.plan.label(),
            http: s.plan.http,
            admin: Some(s.plan.admin),
        })
        .collect();
    // The relay runs inside ingest; commands that look for it find ingest's admin server.
    addrs.push(ServiceAddr {
        name: "relay".into(),
        http: None,
        admin: Some(running[0].plan.admin),
    });
    shutdown.spawn(supervise(running, shutdown.token(), grace));
    Ok(addrs)
}

struct Supervised {
    plan: Plan,
    process: ServiceProcess,
    log: PathBuf,
    started: Instant,
    restarts: u32,
}

fn spawn(plan: &Plan, log: &Path) -> anyhow::Result<ServiceProcess> {
    let mut cmd = std::process::Command::new(&plan.program);
    cmd.args(&plan.args);
    // `up`'s own `QUORUM__<SECTION>__…` variables are in the settings files already, in each
    // service's terms; inherited as they are, they would name sections a service does not have.
    for (key, _) in std::env::vars_os() {
        if key
            .to_string_lossy()
            .starts_with(quorum_runtime::config::ENV_PREFIX)
        {
            cmd.env_remove(key);
        }
    }
    cmd.envs(plan.env.iter().map(|(k, v)| (k, v)));
    Ok(ServiceProcess::start(plan.name, cmd, log)?)
}

/// Ready when its `/readyz` answers 200; fails at once if it exits, and after a minute.
async fn wait_ready(s: &mut Supervised, http: &reqwest::Client) -> anyhow::Result<()> {
    let url = format!("http://{}/readyz", s.plan.admin);
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = s.process.exited() {
            anyhow::bail!(
                "quorum-{} exited {status} while starting; its log ({}) ends:\n{}",
                s.plan.name,
                s.log.display(),
                s.process.tail()
            );
        }
        let ready = http
            .get(&url)
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ready {
            return Ok(());
        }
        if Instant::now() > until {
            anyhow::bail!(
                "quorum-{} was not ready within 60s; its log ({}) ends:\n{}",
                s.plan.name,
                s.log.display(),
                s.process.tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Restarts a service that exits (after 1 s, doubling up to 30 s while it keeps failing within a
/// minute of starting) until `stop`, then stops them all at once.
async fn supervise(
    mut running: Vec<Supervised>,
    stop: tokio_util::sync::CancellationToken,
    grace: Duration,
) {
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    while !stop.is_cancelled() {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        for s in &mut running {
            let Some(status) = s.process.exited() else {
                continue;
            };
            if s.started.elapsed() > Duration::from_secs(60) {
                s.restarts = 0;
            }
            let delay = Duration::from_secs(1 << s.restarts.min(5)).min(Duration::from_secs(30));
            tracing::warn!(
                service = s.plan.name,
                %status,
                log = %s.log.display(),
                "a service exited; starting it again in {}s",
                delay.as_secs()
            );
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(delay) => {}
            }
            match spawn(&s.plan, &s.log) {
                Ok(p) => {
                    s.process = p;
                    s.started = Instant::now();
                    s.restarts += 1;
                }
                Err(error) => tracing::error!(service = s.plan.name, %error, "cannot restart"),
            }
        }
    }
    futures::future::join_all(running.iter_mut().map(|s| s.process.stop(grace))).await;
}

fn toml<T: Serialize>(config: &T) -> anyhow::Result<String> {
    toml::to_string(config).context("write a service's settings as TOML")
}

fn local(port: u16) -> anyhow::Result<SocketAddr> {
    let port = if port == 0 {
        quorum_devstack::free_port()?
    } else {
        port
    };
    Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
}

/// Settings may carry a database URL with its password: readable by the owner only.
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("write {}", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("write {}", path.display()))
}
