//! The local stack `quorum up` runs when no URLs are given: nats-server and Postgres as child
//! processes, their data under the data directory (kept for the next run).

use std::path::{Path, PathBuf};

use quorum_bus::access::ServiceUser;
use quorum_devstack::{NatsCredentials, NatsOptions, NatsServer, Postgres, PostgresOptions};
use quorum_runtime::config::Secret;

use crate::stack::Target;

/// The database Quorum uses in a local stack.
pub const DATABASE: &str = "quorum";

pub struct LocalStack {
    pub nats: NatsServer,
    pub postgres: Postgres,
    /// Every NATS user's password and the auth callout's issuer key, kept in the data directory
    /// (mode 0600) for the next run; `None` for a throwaway stack.
    pub credentials: Option<NatsCredentials>,
    dir: PathBuf,
    /// Declared after the servers so that it drops after them: the directory goes once nothing
    /// writes to it.
    _scratch: Option<Scratch>,
}

/// A directory removed when dropped, whether the stack was stopped or not.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl LocalStack {
    /// Starts both servers with data under `dir`, a directory closed to others (it holds the stack
    /// file and the API key). `durable` keeps Postgres's fsync on.
    pub async fn start(dir: &Path, durable: bool) -> anyhow::Result<Self> {
        crate::stack::prepare_data_dir(dir)?;
        // Users and permissions as the shipped configs have them, with this stack's own
        // passwords and issuer key (ADR 27): no anonymous client, even on loopback.
        let credentials = NatsCredentials::load_or_create(dir)?;
        Self::start_in(dir, durable, Some(credentials)).await
    }

    async fn start_in(
        dir: &Path,
        durable: bool,
        credentials: Option<NatsCredentials>,
    ) -> anyhow::Result<Self> {
        let config_file = match &credentials {
            Some(c) => Some(c.server_config_file(dir)?),
            None => None,
        };
        let nats = NatsServer::start(NatsOptions {
            log_file: Some(dir.join("nats-server.log")),
            config_file,
            ..NatsOptions::new(0, dir.join("nats"))
        })
        .await?;
        let postgres = Postgres::start(PostgresOptions {
            data_dir: dir.join("postgres"),
            port: 0,
            durable,
            log_file: Some(dir.join("postgres.log")),
        })
        .await?;
        postgres.create_database(DATABASE)?;
        Ok(Self {
            nats,
            postgres,
            credentials,
            dir: dir.to_path_buf(),
            _scratch: None,
        })
    }

    /// A throwaway stack in a temporary directory (for benchmarks), removed when the stack is
    /// stopped or dropped.
    pub async fn start_temporary() -> anyhow::Result<Self> {
        use std::os::unix::fs::PermissionsExt;
        let dir =
            std::env::temp_dir().join(format!("quorum-stack-{}", uuid::Uuid::new_v4().simple()));
        // Owned before anything can fail, so a failed start removes it too.
        let scratch = Scratch(dir.clone());
        std::fs::create_dir_all(&dir)?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
        // Open (unlike `start`'s) so that, as root, the `postgres` user reaches its cluster in place.
        // Its NATS has no users either: it lives on loopback for one measurement and is removed
        // after, and the benchmarks drive each path (the relay, ingest) as one client.
        let mut stack = Self::start_in(&dir, true, None).await?;
        stack._scratch = Some(scratch);
        Ok(stack)
    }

    pub fn database_url(&self) -> String {
        self.postgres.url(DATABASE)
    }

    /// The operator's URL, `nats://admin:<password>@127.0.0.1:<port>`: what the `quorum`
    /// commands connect with (the stack file that records it is readable by its owner only).
    pub fn admin_url(&self) -> String {
        let Some(password) = self
            .credentials
            .as_ref()
            .and_then(|c| c.password(ServiceUser::Admin.name()))
        else {
            return self.nats.url();
        };
        format!(
            "nats://{}:{password}@127.0.0.1:{}",
            ServiceUser::Admin.name(),
            self.nats.port()
        )
    }

    /// The user and password a service connects with.
    pub fn login(&self, user: ServiceUser) -> (Option<String>, Option<Secret>) {
        match self
            .credentials
            .as_ref()
            .and_then(|c| c.password(user.name()))
        {
            Some(password) => (Some(user.name().to_owned()), Some(Secret::new(password))),
            None => (None, None),
        }
    }

    /// Connects to this stack's NATS as `user`.
    pub async fn connect_as(&self, user: ServiceUser) -> anyhow::Result<async_nats::Client> {
        let (name, password) = self.login(user);
        quorum_runtime::nats::connect(&self.nats.url(), name.as_deref(), password.as_ref())
            .await
            .map_err(|e| anyhow::anyhow!("connect to nats as {user}: {e}"))
    }

    /// `ingest` pointed at this stack: its own NATS user, and the auth callout on, so that the
    /// stack's API keys work over NATS as over HTTP.
    pub fn configure_ingest(&self, ingest: &mut quorum_ingest::IngestConfig) {
        ingest.common.nats_url = self.nats.url();
        ingest.common.database_url = self.database_url();
        (ingest.common.nats_user, ingest.common.nats_password) = self.login(ServiceUser::Ingest);
        (ingest.relay.nats_user, ingest.relay.nats_password) = self.login(ServiceUser::Relay);
        if let Some(c) = &self.credentials {
            ingest.nats_auth.issuer_seed = Some(Secret::new(c.issuer_seed.clone()));
            ingest.nats_auth.password = c
                .password(quorum_bus::access::CALLOUT_USER)
                .map(Secret::new);
        }
    }

    /// The `QUORUM__…` variables that make a service binary (`quorum-<service>`) connect to this
    /// stack's NATS as its own user, as docker-compose.yml gives them: its user and password,
    /// and for ingest its relay's and the auth callout's. Empty for a stack without users.
    pub fn nats_env(&self, service: ServiceUser) -> Vec<(String, String)> {
        let mut env = Vec::new();
        let mut login = |prefix: &str, user: ServiceUser| {
            if let (Some(name), Some(password)) = self.login(user) {
                env.push((format!("{prefix}NATS_USER"), name));
                env.push((
                    format!("{prefix}NATS_PASSWORD"),
                    password.expose().to_owned(),
                ));
            }
        };
        login("QUORUM__COMMON__", service);
        if service == ServiceUser::Ingest {
            login("QUORUM__RELAY__", ServiceUser::Relay);
            if let Some(c) = &self.credentials {
                let callout = c
                    .password(quorum_bus::access::CALLOUT_USER)
                    .unwrap_or_default();
                env.push(("QUORUM__NATS_AUTH__PASSWORD".into(), callout.to_owned()));
                env.push((
                    "QUORUM__NATS_AUTH__ISSUER_SEED".into(),
                    c.issuer_seed.clone(),
                ));
            }
        }
        env
    }

    /// A target that points at this stack.
    pub fn target(&self) -> Target {
        Target {
            nats_url: Some(self.admin_url()),
            nats_user: None,
            nats_password: None,
            database_url: Some(self.database_url()),
            data_dir: self.dir.clone(),
        }
    }

    /// Stops both servers cleanly.
    pub async fn stop(mut self) {
        self.postgres.stop().await;
        let _ = self.nats.stop().await;
    }
}
