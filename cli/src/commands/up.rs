//! `quorum up`: the whole stack on one machine. Without URLs it starts nats-server and Postgres as
//! child processes with data under the data directory, migrates, creates the streams, runs the
//! relay (and, as they land, every service) in-process, and prints where everything listens. Ctrl-C
//! drains and stops everything; a second Ctrl-C exits at once.

use std::net::SocketAddr;
use std::path::PathBuf;

use super::up_config::UpConfig;
use quorum_runtime::{Readiness, Shutdown, admin, metrics};
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
}

pub async fn run(target: &Target, args: &UpArgs) -> anyhow::Result<()> {
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
    let mut config: UpConfig = quorum_runtime::config::load_validated(args.config.as_deref())?;
    if let Some(addr) = args.admin_addr {
        config.admin_addr = addr;
    }
    let shutdown = Shutdown::new();
    shutdown.spawn_signal_handler()?;

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
        Some(l) => (l.nats.url(), l.database_url()),
        None => target.urls()?,
    };

    let pool = crate::stack::pool(&database_url, 32).await?;
    quorum_event_store::migrate(&pool).await?;
    let client = async_nats::connect(&nats_url).await?;
    let js = async_nats::jetstream::new(client.clone());
    quorum_bus::ensure_streams(&js).await?;

    let readiness = Readiness::new();
    readiness.add_nats("nats", client);
    readiness.add_postgres("postgres", pool.clone());
    let listener = tokio::net::TcpListener::bind(config.admin_addr).await?;
    let admin_addr = listener.local_addr()?;
    shutdown.spawn(admin::serve(
        listener,
        readiness.clone(),
        metrics::install_recorder(),
        shutdown.token(),
    ));
    shutdown.spawn(quorum_relay::run(
        pool.clone(),
        js.clone(),
        config.relay.clone(),
        shutdown.token(),
    ));
    let mut ingest = config.ingest.clone();
    ingest.common.nats_url = nats_url.clone();
    ingest.common.database_url = database_url.clone();
    ingest.run_relay = false;
    let ingest = quorum_ingest::start(&ingest, &shutdown, &readiness).await?;
    let names: Vec<String> = config.experts.iter().map(|e| e.name.clone()).collect();
    quorum_expert_fanout::start(
        pool.clone(),
        js.clone(),
        config.experts.clone(),
        &shutdown,
        &readiness,
    );
    quorum_consensus::start(
        pool.clone(),
        js.clone(),
        names.clone(),
        quorum_consensus::Methods {
            judge: config.judge.clone(),
            embeddings: config.embeddings.clone(),
        },
        &shutdown,
        &readiness,
    );
    let audit = quorum_audit::start(&config.audit, pool.clone(), &shutdown, &readiness).await?;
    let dlq =
        quorum_dlq_replayer::start(&config.dlq, pool.clone(), js.clone(), &shutdown, &readiness)
            .await?;
    quorum_tool_exec::start(
        &config.tool_exec,
        pool.clone(),
        js.clone(),
        &shutdown,
        &readiness,
    );
    let api_key = match &local {
        Some(_) => Some(dev_key(&pool, &target.data_dir).await?),
        None => None,
    };

    let stack = StackFile {
        nats_url: nats_url.clone(),
        database_url: database_url.clone(),
        pid: std::process::id(),
        config: args
            .config
            .as_deref()
            .map(std::path::absolute)
            .transpose()?,
        services: vec![
            ServiceAddr {
                name: "relay".into(),
                http: None,
                admin: Some(admin_addr),
            },
            ServiceAddr {
                name: "ingest".into(),
                http: Some(ingest.http_addr),
                admin: Some(admin_addr),
            },
            ServiceAddr {
                name: "expert-fanout".into(),
                http: None,
                admin: Some(admin_addr),
            },
            ServiceAddr {
                name: "consensus".into(),
                http: None,
                admin: Some(admin_addr),
            },
            ServiceAddr {
                name: "tool-exec".into(),
                http: None,
                admin: Some(admin_addr),
            },
            ServiceAddr {
                name: "audit".into(),
                http: Some(audit.http_addr),
                admin: Some(admin_addr),
            },
            ServiceAddr {
                name: "dlq-replayer".into(),
                http: Some(dlq.http_addr),
                admin: Some(admin_addr),
            },
        ],
    };
    // 0600: it names the servers and their URLs, which a local Postgres URL may carry a
    // password in.
    crate::stack::write_stack_file(&target.stack_file(), &stack)?;
    let mut banner = format!(
        "quorum is up\n  nats      {nats_url}\n  postgres  {}\n  \
         ingest    http://{}  (/v1/events /v1/queries /openapi.json)\n  \
         audit     http://{}  (/v1/audit/export /openapi.json)\n  \
         dlq       http://{}  (/v1/dead-letters /v1/replays/{{job}} /openapi.json)\n  \
         admin     http://{admin_addr}  (/livez /readyz /metrics)\n",
        redact(&database_url),
        ingest.http_addr,
        audit.http_addr,
        dlq.http_addr,
    );
    if let Some(path) = &api_key {
        banner.push_str(&format!(
            "  api key   {}  (tenant {DEV_TENANT}, every role; quorum commands use it)\n",
            path.display()
        ));
    }
    banner.push_str(&format!(
        "  stack     {}\n  experts   {}\npress Ctrl-C to stop",
        target.stack_file().display(),
        names.join(", ")
    ));
    // The stack serves whether or not anyone reads the banner: a closed standard output
    // (`quorum up | head -3`) must not take the services down with it.
    if let Err(error) = outln!("{banner}") {
        tracing::warn!(%error, "cannot print where the stack listens");
    }
    if let (Some(question), Some(key)) = (&args.ask, &api_key) {
        let api = crate::api::Api {
            ingest_url: Some(format!("http://{}", ingest.http_addr)),
            api_key: Some(std::fs::read_to_string(key)?.trim().to_owned()),
        };
        let ask = super::ask::AskArgs::question(question.clone(), api);
        if let Err(e) = super::ask::run(target, &ask, false).await {
            eprintln!("the question was not answered: {e:#}");
        }
    }

    shutdown.token().cancelled().await;
    info!("stopping");
    let drained = shutdown.wait(config.shutdown_grace).await;
    let _ = std::fs::remove_file(target.stack_file());
    pool.close().await;
    if let Some(local) = local {
        local.stop().await;
    }
    drained?;
    eprintln!("stopped");
    Ok(())
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
