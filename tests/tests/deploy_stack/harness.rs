//! Running a deployment file's processes here: each one as the file says (its argv, environment,
//! mounts, listening ports and health checks), with the file's host names pointed at this test's
//! nats-server and Postgres, each container port mapped to a free local one, each mount to a local
//! path; then a question answered end to end, and every process stopped within its grace period.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use quorum_testkit::wait_until;
use tokio::process::{Child, Command};

/// A process as a deployment file describes it, in the container's terms.
#[derive(Debug, Clone)]
pub struct ProcessSpec {
    /// The compose service or Kubernetes workload it comes from.
    pub name: String,
    /// What the container runs (entrypoint and command, or command and args), paths as mounted.
    pub argv: Vec<String>,
    pub env: BTreeMap<String, String>,
    /// Ports it listens on inside the container.
    pub ports: Vec<u16>,
    /// Container path to what is mounted there.
    pub mounts: Vec<(String, Mount)>,
    /// HTTP checks that must answer 2xx before it counts as up: container port and path.
    pub probes: Vec<(u16, String)>,
    /// How long a stop waits before killing (stop_grace_period, terminationGracePeriodSeconds).
    pub stop_grace: Duration,
}

#[derive(Debug, Clone)]
pub enum Mount {
    /// A file or directory of the repository (a compose bind mount).
    Host(PathBuf),
    /// Files with these contents (a ConfigMap volume).
    Files(BTreeMap<String, String>),
    /// An empty, writable directory (tmpfs, emptyDir).
    Empty,
}

/// Which host names of the file stand for the test's servers.
pub struct Hosts {
    pub nats: BTreeSet<String>,
    pub postgres: BTreeSet<String>,
}

/// nats-server as the file runs it: its config (the users and permissions, docs/adr/0027) and the
/// environment that config reads its secrets from. The port, address and store are the test's.
pub struct NatsSetup {
    /// The config file (with what it includes beside it).
    pub config: PathBuf,
    pub env: BTreeMap<String, String>,
}

/// The test's servers and where the workspace's binaries are.
pub struct Stack {
    pub nats: quorum_devstack::NatsServer,
    pub database_url: String,
    bin: PathBuf,
    scratch: PathBuf,
    hosts: Hosts,
    started: std::time::Instant,
}

/// A process started from a [`ProcessSpec`].
pub struct Running {
    pub spec: ProcessSpec,
    /// Container port to local port.
    pub ports: BTreeMap<u16, u16>,
    child: Child,
    log: PathBuf,
}

/// The repository's root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is in the repository")
        .to_path_buf()
}

impl Stack {
    /// A nats-server as the file configures it and an empty database (no migrations: the file's
    /// own migration step makes the schema), and the binaries built.
    pub async fn start(hosts: Hosts, nats: NatsSetup) -> anyhow::Result<Self> {
        quorum_testkit::init_tracing();
        let bin = binaries().await?;
        let scratch = std::env::temp_dir().join(format!("quorum-deploy-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&scratch)?;
        let nats = quorum_devstack::NatsServer::start(quorum_devstack::NatsOptions {
            log_file: Some(scratch.join("nats-server.log")),
            config_file: Some(nats.config),
            env: nats.env.into_iter().collect(),
            ..quorum_devstack::NatsOptions::new(0, scratch.join("nats"))
        })
        .await?;
        let pg = quorum_testkit::postgres().await;
        let name = format!("deploy_{}", uuid::Uuid::new_v4().simple());
        pg.server().create_database(&name)?;
        Ok(Self {
            nats,
            database_url: pg.url(&name),
            bin,
            scratch,
            hosts,
            started: std::time::Instant::now(),
        })
    }

    /// Time since the servers were up (the binaries built), for the test's log.
    pub fn age(&self) -> Duration {
        self.started.elapsed()
    }

    /// Starts `spec` as a process of its own.
    pub fn launch(&self, spec: &ProcessSpec) -> anyhow::Result<Running> {
        let mut ports = BTreeMap::new();
        for &port in &spec.ports {
            ports.insert(port, quorum_devstack::free_port()?);
        }
        let mounts = self.mounts(spec)?;
        let local = |value: &str| self.localize(value, &ports, &mounts);
        let mut argv = spec.argv.clone();
        // The image's init: it only forwards signals and reaps orphans; not needed here.
        if argv.first().map(String::as_str) == Some("/usr/bin/tini") {
            ensure!(
                argv.get(1).map(String::as_str) == Some("--"),
                "tini without --"
            );
            argv.drain(..2);
        }
        let program = argv.first().context("an empty command")?;
        let name = program.strip_prefix("/usr/local/bin/").unwrap_or(program);
        let binary = self.bin.join(name);
        ensure!(
            binary.is_file() && !name.contains('/'),
            "{}: {program} is not one of the image's binaries",
            spec.name
        );
        let log = self.scratch.join(format!("{}.log", spec.name));
        let mut cmd = Command::new(binary);
        cmd.args(
            argv[1..]
                .iter()
                .map(|a| local(a))
                .collect::<anyhow::Result<Vec<_>>>()?,
        )
        // A container's environment is what its file gives it, and PATH.
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log)?)
        .stderr(std::fs::File::options().append(true).open(&log)?)
        .kill_on_drop(true);
        for (key, value) in &spec.env {
            cmd.env(key, local(value)?);
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("start {}", spec.name))?;
        Ok(Running {
            spec: spec.clone(),
            ports,
            child,
            log,
        })
    }

    /// Waits until `process` is healthy. A process that exited because a port picked for it was
    /// taken between the pick and its bind (another test's connection can get it) starts again
    /// on fresh ports, as devstack's own servers do; any other exit is the test's failure.
    pub async fn healthy(
        &self,
        process: &mut Running,
        client: &reqwest::Client,
    ) -> anyhow::Result<()> {
        let mut attempts = 1;
        loop {
            match process.healthy(client).await {
                Err(e) if attempts < quorum_devstack::PORT_ATTEMPTS && process.lost_its_port() => {
                    eprintln!("{}: port taken, starting again: {e}", process.spec.name);
                    *process = self.launch(&process.spec)?;
                    attempts += 1;
                }
                other => return other,
            }
        }
    }

    /// Runs a one-shot `spec` (a migration, a key) to its end; its standard output on success.
    pub async fn run_to_end(&self, spec: &ProcessSpec) -> anyhow::Result<String> {
        let mut running = self.launch(spec)?;
        let status = tokio::time::timeout(quorum_testkit::DEADLINE, running.child.wait())
            .await
            .with_context(|| format!("{} did not end", spec.name))??;
        let output = std::fs::read_to_string(&running.log)?;
        ensure!(
            status.success(),
            "{} failed ({status}):\n{output}",
            spec.name
        );
        Ok(output)
    }

    /// Local paths for the spec's mounts, made in the scratch directory where needed.
    fn mounts(&self, spec: &ProcessSpec) -> anyhow::Result<Vec<(String, PathBuf)>> {
        let mut out = Vec::new();
        for (i, (target, mount)) in spec.mounts.iter().enumerate() {
            let local = match mount {
                Mount::Host(path) => path.clone(),
                Mount::Empty | Mount::Files(_) => {
                    let dir = self.scratch.join(format!("{}-mount-{i}", spec.name));
                    std::fs::create_dir_all(&dir)?;
                    if let Mount::Files(files) = mount {
                        for (name, contents) in files {
                            std::fs::write(dir.join(name), contents)?;
                        }
                    }
                    dir
                }
            };
            ensure!(
                local.exists(),
                "{}: {} is missing",
                spec.name,
                local.display()
            );
            out.push((target.clone(), local));
        }
        Ok(out)
    }

    /// A value of the file as it must be here: a listening address on a mapped local port, a
    /// NATS or Postgres URL on the test's servers (its host must be one the file's servers go
    /// by), a mounted path on the local path.
    fn localize(
        &self,
        value: &str,
        ports: &BTreeMap<u16, u16>,
        mounts: &[(String, PathBuf)],
    ) -> anyhow::Result<String> {
        if let Ok(addr) = value.parse::<SocketAddr>() {
            if let Some(local) = ports.get(&addr.port()) {
                ensure!(
                    addr.ip().is_unspecified(),
                    "{value}: a container listens on every interface"
                );
                return Ok(format!("127.0.0.1:{local}"));
            }
            bail!("{value}: a listening address on a port the file does not declare");
        }
        if let Ok(url) = url::Url::parse(value) {
            let host = url.host_str().unwrap_or_default().to_owned();
            match url.scheme() {
                "nats" | "tls" => {
                    ensure!(self.hosts.nats.contains(&host), "{value}: not NATS's host");
                    return Ok(self.nats.url());
                }
                "postgres" | "postgresql" => {
                    ensure!(
                        self.hosts.postgres.contains(&host),
                        "{value}: not Postgres's host"
                    );
                    return Ok(self.database_url.clone());
                }
                _ => {}
            }
        }
        for (target, local) in mounts {
            if let Some(rest) = value.strip_prefix(target.as_str())
                && (rest.is_empty() || rest.starts_with('/'))
            {
                return Ok(format!("{}{rest}", local.display()));
            }
        }
        Ok(value.to_owned())
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.scratch);
    }
}

impl Running {
    /// `http://127.0.0.1:<local port>` for a container port.
    pub fn url(&self, container_port: u16, path: &str) -> anyhow::Result<String> {
        let port = self.ports.get(&container_port).with_context(|| {
            format!("{}: port {container_port} is not declared", self.spec.name)
        })?;
        Ok(format!("http://127.0.0.1:{port}{path}"))
    }

    /// Whether the process has exited, refused a listening address that was in use.
    fn lost_its_port(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
            && std::fs::read_to_string(&self.log)
                .is_ok_and(|log| log.contains("Address already in use"))
    }

    /// Waits until every probe answers 2xx; says what the process wrote if it dies or never does.
    async fn healthy(&mut self, client: &reqwest::Client) -> anyhow::Result<()> {
        let urls = self
            .spec
            .probes
            .iter()
            .map(|(port, path)| self.url(*port, path))
            .collect::<anyhow::Result<Vec<_>>>()?;
        ensure!(!urls.is_empty(), "{}: no health check", self.spec.name);
        let what = format!("{} to be healthy ({})", self.spec.name, urls.join(", "));
        let child = std::cell::RefCell::new(&mut self.child);
        // Six processes start at once on a small, shared machine.
        let waited = wait_until(&what, 2 * quorum_testkit::DEADLINE, || {
            let (child, urls) = (&child, &urls);
            async move {
                if let Ok(Some(status)) = child.borrow_mut().try_wait() {
                    return Some(Err(anyhow::anyhow!("exited with {status}")));
                }
                for url in urls {
                    match client.get(url).send().await {
                        Ok(r) if r.status().is_success() => {}
                        _ => return None,
                    }
                }
                Some(Ok(()))
            }
        })
        .await;
        match waited {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) | Err(e) => bail!("{}: {e}\n{}", self.spec.name, self.output()),
        }
    }

    /// SIGTERM, then the exit status within the grace period the file gives.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let pid = self.child.id().context("already exited")?.to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().await?;
        ensure!(sent.success(), "kill -TERM {pid}");
        let status = tokio::time::timeout(self.spec.stop_grace, self.child.wait()).await;
        match status {
            Ok(Ok(s)) if s.success() => Ok(()),
            Ok(Ok(s)) => bail!("{} stopped with {s}\n{}", self.spec.name, self.output()),
            Ok(Err(e)) => Err(e.into()),
            Err(_) => bail!(
                "{} did not stop within its grace period of {:?}\n{}",
                self.spec.name,
                self.spec.stop_grace,
                self.output()
            ),
        }
    }

    /// SIGKILL, as a crash or the OOM killer would.
    pub async fn kill(mut self) -> anyhow::Result<()> {
        self.child.kill().await?;
        Ok(())
    }

    fn output(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(40).collect();
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    }
}

/// The workspace's binaries, in this test's profile, never stale ones. `cargo test` builds a
/// package's binaries only for that package's integration tests (dlq-replayer and expert-fanout
/// have none), so they are built here; with every target selected, as for the tests themselves,
/// dev-dependencies' features unify the same way and nothing the test build made is built again.
pub async fn binaries() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    // <target>/<profile dir>/deps/<this test>
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .context("the test binary is not in <target>/<profile>/deps")?
        .to_path_buf();
    let target = dir.parent().context("no target directory")?;
    let mut cmd = Command::new(env!("CARGO"));
    // Without what cargo and nextest set for a running test (this package's name and directory):
    // build scripts such as ring's watch those variables, and different values would rebuild
    // them, and everything above them, in another build than the one the test run made.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        let runner = [
            "CARGO_PKG_",
            "CARGO_MANIFEST_",
            "CARGO_BIN_",
            "CARGO_CRATE_",
            "NEXTEST",
        ]
        .iter()
        .any(|p| key.starts_with(p))
            || ["CARGO_PRIMARY_PACKAGE", "CARGO_TARGET_TMPDIR", "OUT_DIR"].contains(&&*key);
        if runner {
            cmd.env_remove(&*key);
        }
    }
    cmd.args([
        "build",
        "--workspace",
        "--all-targets",
        "--locked",
        "--target-dir",
    ])
    .arg(target)
    .current_dir(repo());
    match dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => {}
        Some("release") => {
            cmd.arg("--release");
        }
        Some(profile) => {
            cmd.args(["--profile", profile]);
        }
        None => bail!("no profile directory"),
    }
    let out = cmd.output().await.context("run cargo")?;
    ensure!(
        out.status.success(),
        "cargo build failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(dir)
}
