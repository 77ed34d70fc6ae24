//! `quorum up`: the whole stack on one machine. Without URLs it starts nats-server and Postgres as
//! child processes with data under the data directory, migrates, creates the streams, runs the
//! relay and every service (in this process, or with `--processes` each as its own, as
//! docker-compose.yml does), and prints where everything listens. Ctrl-C drains and stops
//! everything; a second Ctrl-C exits at once.

use std::net::SocketAddr;
use std::path::PathBuf;

use super::up_config::UpConfig;
use anyhow::Context as _;
use quorum_runtime::Shutdown;
use tracing::info;

use crate::local::LocalStack;
use crate::outln;
use crate::stack::{ServiceAddr, StackFile, Target, read_stack_file, redact};

#[derive(Debug, Clone, clap::Args)]
pub struct UpArgs {
    /// A TOML config file: every setting, with its default and what it does, is in
    /// deploy/quorum.example.toml. `QUORUM__<SECTION>__<KEY>` variables override it. Other
    /// commands that read settings (`tools list`) find the file the running stack uses.
    #[arg(long, env = "QUORUM_CONFIG")]
    pub config: Option<PathBuf>,
    /// Where the admin server (/livez, /readyz, /metrics) listens; overrides the config.
    #[arg(long)]
    pub admin_addr: Option<SocketAddr>,
    /// Once up, ask the experts this question and show the answer (the stack keeps running).
    #[arg(long)]
    pub ask: Option<String>,
    /// Run every service as its own OS process (the `quorum-<service>` binaries beside this
    /// one), with the variables docker-compose.yml sets; their logs go to <data dir>/logs/.
    #[arg(long)]
    pub processes: bool,
}

/// Where the stack's APIs listen, however its services run.
pub(super) struct Running {
    pub(super) services: Vec<ServiceAddr>,
    pub(super) ingest: SocketAddr,
    pub(super) audit: SocketAddr,
    pub(super) dlq: SocketAddr,
}

pub async fn run(target: &Target, args: &UpArgs) -> anyhow::Result<()> {
    refuse_a_second_stack(target)?;
    let mut config: UpConfig = quorum_runtime::config::load_validated(args.config.as_deref())?;
    if let Some(addr) = args.admin_addr {
        config.admin_addr = addr;
    }
    let shutdown = Shutdown::new();
    shutdown.spawn_signal_handler()?;

    let servers = Servers::start(target).await?;
    let pool = crate::stack::pool(&servers.database_url, 32).await?;
    quorum_event_store::migrate(&pool).await?;
    // As the operator: it makes the streams.
    let client = target.connect_nats(&servers.nats_url).await?;
    quorum_bus::ensure_streams(&async_nats::jetstream::new(client.clone())).await?;

    let urls = servers.service_urls();
    let local = servers.local.as_ref();
    let running = if args.processes {
        eprintln!("starting the service processes");
        let services =
            super::up_processes::launch(&config, &urls, &target.data_dir, local, 1, &shutdown)
                .await?;
        Running::from_services(services)?
    } else {
        super::up_in_process::start(&config, &urls, local, pool.clone(), client, &shutdown).await?
    };
    let api_key = match local {
        Some(_) => Some(dev_key(&pool, &target.data_dir).await?),
        None => None,
    };
    announce(
        target,
        args,
        &config,
        &servers,
        &running,
        api_key.as_deref(),
    )?;
    if let (Some(question), Some(key)) = (&args.ask, &api_key) {
        ask(target, question, key, &running).await?;
    }

    shutdown.token().cancelled().await;
    info!("stopping");
    let drained = shutdown.wait(config.shutdown_grace).await;
    let _ = std::fs::remove_file(target.stack_file());
    pool.close().await;
    if let Some(local) = servers.local {
        local.stop().await;
    }
    drained?;
    eprintln!("stopped");
    Ok(())
}

/// The servers the stack runs on: started here under the data directory, or the operator's.
struct Servers {
    local: Option<LocalStack>,
    /// The operator's URL (a local stack's carries the admin user's password, ADR 27); the
    /// services connect as their own users.
    nats_url: String,
    database_url: String,
}

impl Servers {
    async fn start(target: &Target) -> anyhow::Result<Self> {
        let local = match (&target.nats_url, &target.database_url) {
            (Some(_), Some(_)) => None,
            (None, None) => {
                eprintln!(
                    "starting nats-server and postgres under {}",
                    target.data_dir.display()
                );
                Some(LocalStack::start(&target.data_dir, true).await?)
            }
            _ => anyhow::bail!("give both --nats-url and --database-url, or neither"),
        };
        let (nats_url, database_url) = match &local {
            Some(l) => (l.admin_url(), l.database_url()),
            None => target.urls()?,
        };
        Ok(Self {
            local,
            nats_url,
            database_url,
        })
    }

    /// The URLs the services are given: a local stack's NATS without the operator's password.
    fn service_urls(&self) -> super::up_processes::Urls {
        super::up_processes::Urls {
            nats: self
                .local
                .as_ref()
                .map_or_else(|| self.nats_url.clone(), |l| l.nats.url()),
            database: self.database_url.clone(),
        }
    }
}

/// Writes the stack file the other commands find the stack by, and prints where it listens.
fn announce(
    target: &Target,
    args: &UpArgs,
    config: &UpConfig,
    servers: &Servers,
    running: &Running,
    api_key: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    let stack = StackFile {
        nats_url: servers.nats_url.clone(),
        database_url: servers.database_url.clone(),
        pid: std::process::id(),
        config: args
            .config
            .as_deref()
            .map(std::path::absolute)
            .transpose()?,
        services: running.services.clone(),
    };
    // 0600: it names the servers and their URLs, which a local Postgres URL may carry a
    // password in.
    crate::stack::write_stack_file(&target.stack_file(), &stack)?;
    let names: Vec<String> = config.experts.iter().map(|e| e.name.clone()).collect();
    let banner = Banner {
        nats_url: &servers.nats_url,
        database_url: &servers.database_url,
        api_key,
        experts: &names,
        logs: args.processes.then(|| target.data_dir.join("logs")),
    }
    .render(running, &target.stack_file());
    // The stack serves whether or not anyone reads the banner: a closed standard output
    // (`quorum up | head -3`) must not take the services down with it.
    if let Err(error) = outln!("{banner}") {
        tracing::warn!(%error, "cannot print where the stack listens");
    }
    Ok(())
}

/// One stack per data directory: a second would find the first's servers on its ports.
fn refuse_a_second_stack(target: &Target) -> anyhow::Result<()> {
    if let Some(running) = read_stack_file(&target.stack_file())
        && std::path::Path::new(&format!("/proc/{}", running.pid)).exists()
        && running.pid != std::process::id()
    {
        anyhow::bail!(
            "a stack is already running from {} (pid {})",
            target.data_dir.display(),
            running.pid
        );
    }
    Ok(())
}

/// `up --ask`: the question asked through the stack just started, with its development key. An
/// unanswered question is said, and the stack keeps serving.
async fn ask(
    target: &Target,
    question: &str,
    key: &std::path::Path,
    running: &Running,
) -> anyhow::Result<()> {
    let api = crate::api::Api {
        ingest_url: Some(format!("http://{}", running.ingest)),
        api_key: Some(std::fs::read_to_string(key)?.trim().to_owned()),
    };
    let ask = super::ask::AskArgs::question(question.to_owned(), api);
    if let Err(e) = super::ask::run(target, &ask, false).await {
        eprintln!("the question was not answered: {e:#}");
    }
    Ok(())
}

/// What `up` prints once the stack serves.
struct Banner<'a> {
    nats_url: &'a str,
    database_url: &'a str,
    api_key: Option<&'a std::path::Path>,
    experts: &'a [String],
    /// Where the service processes log, when they are processes.
    logs: Option<PathBuf>,
}

impl Banner<'_> {
    fn render(&self, running: &Running, stack_file: &std::path::Path) -> String {
        let mut out = format!(
            "quorum is up\n  nats      {}\n  postgres  {}\n  \
             ingest    http://{}  (/v1/events /v1/queries /openapi.json)\n  \
             audit     http://{}  (/v1/audit/export /openapi.json)\n  \
             dlq       http://{}  (/v1/dead-letters /v1/replays/{{job}} /openapi.json)\n",
            redact(self.nats_url),
            redact(self.database_url),
            running.ingest,
            running.audit,
            running.dlq,
        );
        // One admin server in-process; one per service process.
        let admins: Vec<_> = match self.logs {
            Some(_) => running
                .services
                .iter()
                .filter(|s| s.name != "relay")
                .collect(),
            None => running.services.iter().take(1).collect(),
        };
        for service in admins {
            if let Some(admin) = service.admin {
                let name = if self.logs.is_some() {
                    &service.name
                } else {
                    "admin"
                };
                out.push_str(&format!(
                    "  {name:<9} http://{admin}  (/livez /readyz /metrics)\n"
                ));
            }
        }
        if let Some(logs) = &self.logs {
            out.push_str(&format!("  logs      {}\n", logs.display()));
        }
        if let Some(path) = self.api_key {
            out.push_str(&format!(
                "  api key   {}  (tenant {DEV_TENANT}, every role; quorum commands use it)\n",
                path.display()
            ));
        }
        out.push_str(&format!(
            "  stack     {}\n  experts   {}\npress Ctrl-C to stop",
            stack_file.display(),
            self.experts.join(", ")
        ));
        out
    }
}

impl Running {
    fn from_services(services: Vec<ServiceAddr>) -> anyhow::Result<Self> {
        let http = |name: &str| {
            services
                .iter()
                .find(|s| s.name == name)
                .and_then(|s| s.http)
                .with_context(|| format!("{name} has no HTTP address"))
        };
        Ok(Self {
            ingest: http("ingest")?,
            audit: http("audit")?,
            dlq: http("dlq-replayer")?,
            services,
        })
    }
}

/// The tenant of the local stack's key.
pub const DEV_TENANT: &str = "default";

/// The local stack's API key: made on the first `up` (every role, tenant `default`) and kept in the
/// data directory, readable by its owner only, where the other commands find it.
async fn dev_key(pool: &sqlx::PgPool, data_dir: &std::path::Path) -> anyhow::Result<PathBuf> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = data_dir.join(crate::api::API_KEY_FILE);
    if path.is_file() {
        return Ok(path);
    }
    let tenant = quorum_domain::TenantId::new(DEV_TENANT)?;
    let roles = [
        quorum_auth::Role::Publisher,
        quorum_auth::Role::Operator,
        quorum_auth::Role::Auditor,
    ];
    let key = quorum_auth::create(pool, &tenant, &roles, Some("quorum up")).await?;
    std::fs::create_dir_all(data_dir)?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)?;
    writeln!(file, "{}", key.key)?;
    Ok(path)
}
