//! `quorum up` without `--processes`: every service in this process, sharing one pool, with one
//! admin server. On a local stack each service connects to NATS as its own user (ADR 27);
//! against servers of one's own they share the operator's connection.

use std::net::SocketAddr;

use quorum_bus::access::ServiceUser;
use quorum_runtime::{Readiness, Shutdown, admin, metrics};

use super::up::Running;
use super::up_config::UpConfig;
use super::up_processes::Urls;
use crate::local::LocalStack;
use crate::stack::ServiceAddr;

/// What every service is started with.
struct Context<'a> {
    config: &'a UpConfig,
    urls: &'a Urls,
    local: Option<&'a LocalStack>,
    pool: sqlx::PgPool,
    client: async_nats::Client,
    shutdown: &'a Shutdown,
    readiness: Readiness,
}

/// Starts the admin server, the relay and every service; returns where they listen.
pub(super) async fn start(
    config: &UpConfig,
    urls: &Urls,
    local: Option<&LocalStack>,
    pool: sqlx::PgPool,
    client: async_nats::Client,
    shutdown: &Shutdown,
) -> anyhow::Result<Running> {
    let cx = Context {
        config,
        urls,
        local,
        pool,
        client,
        shutdown,
        readiness: Readiness::new(),
    };
    let admin_addr = cx.admin().await?;
    cx.relay().await?;
    let http = cx.services().await?;
    let service = |name: &str, http: Option<SocketAddr>| ServiceAddr {
        name: name.into(),
        http,
        admin: Some(admin_addr),
    };
    Ok(Running {
        services: vec![
            service("relay", None),
            service("ingest", Some(http.ingest)),
            service("expert-fanout", None),
            service("consensus", None),
            service("tool-exec", None),
            service("audit", Some(http.audit)),
            service("dlq-replayer", Some(http.dlq)),
        ],
        ingest: http.ingest,
        audit: http.audit,
        dlq: http.dlq,
    })
}

/// Where the services with an HTTP API listen.
struct Apis {
    ingest: SocketAddr,
    audit: SocketAddr,
    dlq: SocketAddr,
}

impl Context<'_> {
    /// The one admin server (/livez, /readyz, /metrics) and the pool's saturation report.
    async fn admin(&self) -> anyhow::Result<SocketAddr> {
        self.readiness.add_nats("nats", self.client.clone());
        self.readiness.add_postgres("postgres", self.pool.clone());
        let listener = tokio::net::TcpListener::bind(self.config.admin_addr).await?;
        let addr = listener.local_addr()?;
        self.shutdown.spawn(admin::serve(
            listener,
            self.readiness.clone(),
            metrics::install_recorder(),
            self.shutdown.token(),
        ));
        self.shutdown.spawn(quorum_runtime::saturation::report_pool(
            self.pool.clone(),
            self.shutdown.token(),
        ));
        Ok(addr)
    }

    /// The relay. Against servers of one's own it still needs its own user (`[relay]
    /// nats_user`): the operator's may not publish history.
    async fn relay(&self) -> anyhow::Result<()> {
        let relay = &self.config.relay;
        let js = match (self.local, &relay.nats_user) {
            (None, Some(user)) => async_nats::jetstream::new(
                quorum_runtime::nats::connect(
                    &self.urls.nats,
                    Some(user.as_str()),
                    relay.nats_password.as_ref(),
                )
                .await?,
            ),
            _ => self.jetstream_as(ServiceUser::Relay).await?,
        };
        self.shutdown.spawn(quorum_relay::run(
            self.pool.clone(),
            js,
            relay.clone(),
            self.shutdown.token(),
        ));
        Ok(())
    }

    /// The six services.
    async fn services(&self) -> anyhow::Result<Apis> {
        let (config, shutdown, readiness) = (self.config, self.shutdown, &self.readiness);
        let mut ingest = config.ingest.clone();
        match self.local {
            Some(l) => l.configure_ingest(&mut ingest),
            None => {
                ingest.common.nats_url = self.urls.nats.clone();
                ingest.common.database_url = self.urls.database.clone();
            }
        }
        // The relay runs here already.
        ingest.run_relay = false;
        let ingest = quorum_ingest::start(&ingest, shutdown, readiness).await?;
        let names: Vec<String> = config.experts.iter().map(|e| e.name.clone()).collect();
        quorum_expert_fanout::start(
            self.pool.clone(),
            self.jetstream_as(ServiceUser::ExpertFanout).await?,
            config.experts.clone(),
            shutdown,
            readiness,
        );
        quorum_consensus::start(
            self.pool.clone(),
            self.jetstream_as(ServiceUser::Consensus).await?,
            names,
            quorum_consensus::Methods {
                judge: config.judge.clone(),
                embeddings: config.embeddings.clone(),
            },
            shutdown,
            readiness,
        );
        let audit =
            quorum_audit::start(&config.audit, self.pool.clone(), shutdown, readiness).await?;
        let dlq = quorum_dlq_replayer::start(
            &config.dlq,
            self.pool.clone(),
            self.jetstream_as(ServiceUser::DlqReplayer).await?,
            shutdown,
            readiness,
        )
        .await?;
        quorum_tool_exec::start(
            &config.tool_exec,
            self.pool.clone(),
            self.jetstream_as(ServiceUser::ToolExec).await?,
            shutdown,
            readiness,
        );
        Ok(Apis {
            ingest: ingest.http_addr,
            audit: audit.http_addr,
            dlq: dlq.http_addr,
        })
    }

    /// A JetStream context as `user`: its own connection on a local stack, the shared one
    /// otherwise.
    async fn jetstream_as(
        &self,
        user: ServiceUser,
    ) -> anyhow::Result<async_nats::jetstream::Context> {
        let client = match self.local {
            Some(l) => l.connect_as(user).await?,
            None => self.client.clone(),
        };
        Ok(async_nats::jetstream::new(client))
    }
}
