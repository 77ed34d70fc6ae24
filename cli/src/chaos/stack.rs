//! The stack `quorum chaos` and `quorum soak` run: nats-server and Postgres as this process's
//! children, the six services as processes of their own as `quorum up --processes` runs them
//! (each as many times as asked), the recording service the sagas call, and the faults that
//! strike them.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use quorum_auth::Role;
use quorum_bus::access::ServiceUser;
use quorum_domain::TenantId;
use quorum_runtime::Shutdown;

use super::TENANT;
use super::check::{self, Held, Verdict};
use super::faults::{self, Fault, FaultKind};
use super::recorder::{self, Effects};
use super::{sagas, workload};
use crate::commands::up_config::UpConfig;
use crate::commands::up_processes;
use crate::local::LocalStack;
use crate::stack::ServiceAddr;

/// How to run the stack.
pub(crate) struct Setup {
    /// Processes per service.
    pub replicas: u32,
    /// The tenant's admitted rate, events a second per ingest replica (`None`: ingest's default).
    pub events_per_second: Option<u32>,
}

/// The stack under test: nats-server and Postgres as this process's children, and the six
/// services as processes of their own, as `quorum up --processes` runs them.
pub(crate) struct ChaosStack {
    pub local: LocalStack,
    pub pool: sqlx::PgPool,
    pub js: async_nats::jetstream::Context,
    /// `http://<ingest>` of every ingest replica.
    pub ingest: Vec<String>,
    /// An API key of the workload's tenant.
    pub key: String,
    /// The workload's NATS publisher: connected with the API key, as an upstream system is.
    pub publisher: async_nats::jetstream::Context,
    /// Every service replica (`consensus#2`) and its admin address.
    pub services: Vec<ServiceAddr>,
    /// What the sagas' steps applied.
    effects: Effects,
}

impl ChaosStack {
    pub async fn start(dir: &Path, shutdown: &Shutdown, setup: &Setup) -> anyhow::Result<Self> {
        let (recorder, effects) = recorder::start().await?;
        let local = LocalStack::start(dir, true).await?;
        let pool = crate::stack::pool(&local.database_url(), 8).await?;
        quorum_event_store::migrate(&pool).await?;
        let js = async_nats::jetstream::new(local.connect_as(ServiceUser::Admin).await?);
        quorum_bus::ensure_streams(&js).await?;
        let mut config = UpConfig::default();
        config.ingest.http_addr = "127.0.0.1:0".parse()?;
        config.audit.http_addr = "127.0.0.1:0".parse()?;
        config.dlq.http_addr = "127.0.0.1:0".parse()?;
        if let Some(rate) = setup.events_per_second {
            // Admitted at `rate`, with room above it for one batch (made small, so that a burst
            // meets the rate rather than the batch's allowance).
            config.ingest.limits.max_batch_events = 100;
            config.ingest.rate.events_per_second = rate;
            config.ingest.rate.burst = rate.max(100);
        }
        sagas::configure(&mut config, recorder);
        let urls = up_processes::Urls {
            nats: local.nats.url(),
            database: local.database_url(),
        };
        let services =
            up_processes::launch(&config, &urls, dir, Some(&local), setup.replicas, shutdown)
                .await?;
        let ingest: Vec<String> = services
            .iter()
            .filter(|s| base(&s.name) == "ingest")
            .filter_map(|s| s.http)
            .map(|addr| format!("http://{addr}"))
            .collect();
        anyhow::ensure!(!ingest.is_empty(), "no ingest address");
        let tenant = TenantId::new(TENANT)?;
        let key = quorum_auth::create(&pool, &tenant, &[Role::Publisher], None)
            .await?
            .key;
        let publisher = async_nats::ConnectOptions::with_token(key.clone())
            .custom_inbox_prefix(quorum_bus::access::tenant_inbox_prefix(&tenant))
            .connect(local.nats.url())
            .await
            .context("connect to NATS with the workload's API key")?;
        Ok(Self {
            local,
            pool,
            js,
            ingest,
            key,
            publisher: async_nats::jetstream::new(publisher),
            services: services.into_iter().filter(|s| s.name != "relay").collect(),
            effects,
        })
    }

    /// The pid of a service replica (`consensus`, `consensus#2`), or of the ingest replica that
    /// leads the relay ([`faults::RELAY_LEADER`]). A process between lives (being restarted after an earlier fault) or a relay between
    /// leaders (a handover in progress) is waited for, up to half a minute.
    pub async fn pid(&self, target: &str) -> anyhow::Result<(String, u32)> {
        let until = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let found = self.pid_now(target).await;
            if found.is_ok() || std::time::Instant::now() > until {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    async fn pid_now(&self, target: &str) -> anyhow::Result<(String, u32)> {
        let label = if target == faults::RELAY_LEADER {
            self.relay_leader().await?
        } else {
            target.to_owned()
        };
        let admin = self
            .services
            .iter()
            .find(|s| s.name == label)
            .and_then(|s| s.admin)
            .with_context(|| format!("no service {label}"))?;
        Ok((label, pid_listening(admin)?))
    }

    /// The ingest replica whose `/metrics` says it leads the relay.
    async fn relay_leader(&self) -> anyhow::Result<String> {
        let http = quorum_http_client::client();
        for s in self.services.iter().filter(|s| base(&s.name) == "ingest") {
            let Some(admin) = s.admin else { continue };
            let Ok(answer) = http
                .get(format!("http://{admin}/metrics"))
                .timeout(Duration::from_secs(5))
                .send()
                .await
            else {
                continue;
            };
            let text = answer.text().await.unwrap_or_default();
            let leads = text.lines().any(|l| {
                l.starts_with("quorum_leader{") && l.contains("loop=\"relay\"") && l.ends_with(" 1")
            });
            if leads {
                return Ok(s.name.clone());
            }
        }
        anyhow::bail!("no ingest replica leads the relay")
    }

    /// Strikes `fault`, and says which process it struck. A stopped process is resumed by a task
    /// left in `stopped`.
    pub async fn strike(
        &mut self,
        fault: &Fault,
        stopped: &mut tokio::task::JoinSet<()>,
    ) -> anyhow::Result<String> {
        let mut struck = fault.target.clone();
        match fault.kind {
            FaultKind::Kill => {
                let (label, pid) = self.pid(&fault.target).await?;
                signal(pid, "-KILL")?;
                struck = format!("{label}, pid {pid}");
            }
            FaultKind::Stop => {
                let (label, pid) = self.pid(&fault.target).await?;
                signal(pid, "-STOP")?;
                struck = format!("{label}, pid {pid}");
                stopped.spawn(async move {
                    tokio::time::sleep(faults::STOP_FOR).await;
                    let _ = signal(pid, "-CONT");
                });
            }
            FaultKind::Nats | FaultKind::NatsWipe => {
                self.local.nats.kill();
                if fault.kind == FaultKind::NatsWipe {
                    let store = self.local.nats.store_dir().to_path_buf();
                    std::fs::remove_dir_all(&store)
                        .with_context(|| format!("wipe {}", store.display()))?;
                }
                tokio::time::sleep(Duration::from_secs(2)).await;
                self.local.nats.start_again().await?;
            }
            FaultKind::Postgres => self.local.postgres.crash_and_restart().await?,
        }
        Ok(struck)
    }

    /// The workload's sends against this stack at `rate` for `duration`.
    pub fn workload(
        &self,
        rate: u32,
        duration: Duration,
        wait_answers: bool,
    ) -> anyhow::Result<workload::Workload> {
        Ok(workload::Workload {
            http: quorum_http_client::builder()
                .pool_max_idle_per_host(256)
                .build()?,
            ingest: self.ingest.clone(),
            key: self.key.clone(),
            nats: Some(self.publisher.clone()),
            rate,
            duration,
            wait_answers,
        })
    }

    /// The checker's verdict once the pipeline is quiet: checked every two seconds until it
    /// passes or `within` has gone by since the workload ended, then as it stands.
    pub async fn settled_verdict(
        &self,
        history: &[workload::Sent],
        schedule: &[Fault],
        within: Duration,
    ) -> anyhow::Result<Verdict> {
        let ended = std::time::Instant::now();
        loop {
            let verdict = self.verdict(history, schedule).await;
            if verdict.as_ref().is_ok_and(Verdict::passed) || ended.elapsed() > within {
                return verdict;
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }

    async fn verdict(
        &self,
        history: &[workload::Sent],
        schedule: &[Fault],
    ) -> anyhow::Result<Verdict> {
        let tenant = TenantId::new(TENANT)?;
        let mut held = Held::read(&self.pool, &self.js, &tenant).await?;
        held.effects = sagas::by_saga(&self.effects.snapshot());
        let audit = quorum_audit::verify::verify(&self.pool, Default::default(), |_| {}).await?;
        Ok(check::check(
            history,
            schedule,
            &held,
            (audit.checked, audit.ok()),
        ))
    }
}

/// The service a replica's label names: `consensus` of `consensus#2`.
pub(crate) fn base(label: &str) -> &str {
    label.split_once('#').map_or(label, |(name, _)| name)
}

/// The pid of this process's child whose admin server is `admin` (the supervisor's current one:
/// a restarted replica keeps its address).
pub(crate) fn pid_listening(admin: SocketAddr) -> anyhow::Result<u32> {
    let me = std::process::id();
    let wanted = format!("QUORUM__COMMON__ADMIN_ADDR={admin}");
    for entry in std::fs::read_dir("/proc")?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if parent_of(pid) != Some(me) {
            continue;
        }
        let environ = std::fs::read(entry.path().join("environ")).unwrap_or_default();
        if environ.split(|b| *b == 0).any(|v| v == wanted.as_bytes()) {
            return Ok(pid);
        }
    }
    anyhow::bail!("no service process with its admin server on {admin} is running")
}

/// The parent of a live process (`None` once it is gone or a zombie).
pub(crate) fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // pid (comm) state ppid …: comm may hold spaces, so count from its closing parenthesis.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace();
    let state = fields.next()?;
    let ppid = fields.next()?.parse().ok()?;
    (state != "Z").then_some(ppid)
}

fn signal(pid: u32, signal: &str) -> anyhow::Result<()> {
    let status = std::process::Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()?;
    anyhow::ensure!(status.success(), "kill {signal} {pid}: {status}");
    Ok(())
}
