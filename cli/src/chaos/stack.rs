//! The stack `quorum chaos` and `quorum soak` run: nats-server and Postgres as this process's
//! children, the six services as processes of their own as `quorum up --processes` runs them, and
//! the faults that strike them.

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
use super::workload;
use crate::commands::up_config::UpConfig;
use crate::commands::up_processes;
use crate::local::LocalStack;

/// The stack under test: nats-server and Postgres as this process's children, and the six
/// services as processes of their own, as `quorum up --processes` runs them.
pub(crate) struct ChaosStack {
    pub local: LocalStack,
    pub pool: sqlx::PgPool,
    pub js: async_nats::jetstream::Context,
    /// `http://<ingest>`.
    pub ingest: String,
    /// An API key of the workload's tenant.
    pub key: String,
}

impl ChaosStack {
    pub async fn start(dir: &Path, shutdown: &Shutdown) -> anyhow::Result<Self> {
        let local = LocalStack::start(dir, true).await?;
        let pool = crate::stack::pool(&local.database_url(), 8).await?;
        quorum_event_store::migrate(&pool).await?;
        let js = async_nats::jetstream::new(local.connect_as(ServiceUser::Admin).await?);
        quorum_bus::ensure_streams(&js).await?;
        let mut config = UpConfig::default();
        config.ingest.http_addr = "127.0.0.1:0".parse()?;
        config.audit.http_addr = "127.0.0.1:0".parse()?;
        config.dlq.http_addr = "127.0.0.1:0".parse()?;
        let urls = up_processes::Urls {
            nats: local.nats.url(),
            database: local.database_url(),
        };
        let bin_dir = std::env::current_exe()?
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let mut plans = up_processes::plans(&config, &urls, dir, &bin_dir)?;
        for plan in &mut plans {
            if let Some(user) = ServiceUser::from_name(plan.name) {
                plan.env.extend(local.nats_env(user));
            }
        }
        let services =
            up_processes::start(plans, &dir.join("logs"), shutdown, config.shutdown_grace).await?;
        let ingest = services
            .iter()
            .find(|s| s.name == "ingest")
            .and_then(|s| s.http)
            .context("ingest's address")?;
        let key = quorum_auth::create(&pool, &TenantId::new(TENANT)?, &[Role::Publisher], None)
            .await?
            .key;
        Ok(Self {
            local,
            pool,
            js,
            ingest: format!("http://{ingest}"),
            key,
        })
    }

    /// Strikes `fault`. A stopped process is resumed by a task left in `stopped`.
    pub async fn strike(
        &mut self,
        fault: &Fault,
        stopped: &mut tokio::task::JoinSet<()>,
    ) -> anyhow::Result<()> {
        match fault.kind {
            FaultKind::Kill => signal(service_pid(&fault.target)?, "-KILL")?,
            FaultKind::Stop => {
                let pid = service_pid(&fault.target)?;
                signal(pid, "-STOP")?;
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
        Ok(())
    }

    pub async fn verdict(
        &self,
        history: &[workload::Sent],
        schedule: &[Fault],
        tenant: &TenantId,
    ) -> anyhow::Result<Verdict> {
        let held = Held::read(&self.pool, &self.js, tenant).await?;
        let audit = quorum_audit::verify::verify(&self.pool, Default::default(), |_| {}).await?;
        Ok(check::check(
            history,
            schedule,
            &held,
            (audit.checked, audit.ok()),
        ))
    }
}

/// The pid of this process's child running `quorum-<service>` (the supervisor's current one).
pub(crate) fn service_pid(service: &str) -> anyhow::Result<u32> {
    let me = std::process::id();
    let program = format!("quorum-{service}");
    for entry in std::fs::read_dir("/proc")?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if parent_of(pid) != Some(me) {
            continue;
        }
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let exe = cmdline.split(|b| *b == 0).next().unwrap_or_default();
        if Path::new(std::str::from_utf8(exe).unwrap_or_default()).file_name()
            == Some(std::ffi::OsStr::new(&program))
        {
            return Ok(pid);
        }
    }
    anyhow::bail!("no {program} process is running")
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
