//! The dev overlay as processes: `kubectl kustomize deploy/k8s/overlays/dev`, then each Deployment
//! and the migration Job as the kubelet would run its container (command and args over the image's
//! entrypoint and cmd, env and envFrom from the rendered ConfigMaps and the Secrets the cluster
//! provides, ConfigMap and emptyDir volumes, the probes' paths and named ports).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use base64::Engine as _;
use serde_json::Value;

use super::compose::dockerfile_array;
use super::harness::{Mount, NatsSetup, ProcessSpec, repo};

/// Where the manifests expect NATS: the official chart's Service, installed as release `nats` in
/// namespace `nats` (deploy/k8s/nats/values.yaml).
pub const NATS_HOST: &str = "nats.nats.svc.cluster.local";

pub struct Rendered {
    pub objects: Vec<Value>,
    /// Secrets the cluster makes: CloudNativePG's for the cluster of deploy/k8s/postgres.
    external: BTreeMap<String, BTreeMap<String, String>>,
    pub postgres_host: String,
}

/// kubectl: the pinned one setup.sh installs, else one on PATH.
pub fn kubectl() -> Option<PathBuf> {
    let tools = std::env::var_os("QUORUM_DEPLOY_TOOLS")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/quorum-deploy-tools"))
        });
    std::env::var_os("QUORUM_KUBECTL")
        .map(PathBuf::from)
        .or_else(|| tools.map(|t| t.join("bin/kubectl")).filter(|p| p.is_file()))
        .or_else(|| {
            std::env::split_paths(&std::env::var_os("PATH")?)
                .map(|d| d.join("kubectl"))
                .find(|p| p.is_file())
        })
}

impl Rendered {
    pub async fn overlay(kubectl: &PathBuf, overlay: &str) -> anyhow::Result<Self> {
        let out = tokio::process::Command::new(kubectl)
            .arg("kustomize")
            .arg(repo().join("deploy/k8s/overlays").join(overlay))
            .output()
            .await?;
        ensure!(
            out.status.success(),
            "kubectl kustomize: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let objects: Vec<Value> = serde_saphyr::from_multiple(std::str::from_utf8(&out.stdout)?)?;
        let namespace = objects
            .iter()
            .find(|o| o["kind"] == "Deployment")
            .and_then(|o| o["metadata"]["namespace"].as_str())
            .context("a namespace")?
            .to_owned();
        // What CloudNativePG makes for deploy/k8s/postgres/cluster.yaml: the Secret <name>-app
        // whose `uri` points at the Service <name>-rw.
        let cluster: Value = serde_saphyr::from_str(&std::fs::read_to_string(
            repo().join("deploy/k8s/postgres/cluster.yaml"),
        )?)?;
        let name = cluster["metadata"]["name"]
            .as_str()
            .context("cluster name")?;
        let initdb = &cluster["spec"]["bootstrap"]["initdb"];
        let (db, owner) = (initdb["database"].as_str(), initdb["owner"].as_str());
        let postgres_host = format!("{name}-rw.{namespace}");
        let uri = format!(
            "postgresql://{}:generated@{postgres_host}:5432/{}",
            owner.context("owner")?,
            db.context("database")?
        );
        let external =
            BTreeMap::from([(format!("{name}-app"), BTreeMap::from([("uri".into(), uri)]))]);
        Ok(Self {
            objects,
            external,
            postgres_host,
        })
    }

    pub fn of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.objects.iter().filter(move |o| o["kind"] == kind)
    }

    fn named(&self, kind: &str, name: &str) -> Option<&Value> {
        self.objects
            .iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
    }

    /// The data of a ConfigMap, or of a Secret (decoded).
    fn data(&self, kind: &str, name: &str) -> Option<BTreeMap<String, String>> {
        if let Some(object) = self.named(kind, name) {
            let mut out: BTreeMap<String, String> = BTreeMap::new();
            for (k, v) in object["data"].as_object().into_iter().flatten() {
                let text = v.as_str().unwrap_or_default();
                let value = if kind == "Secret" {
                    // Kustomize folds long values over lines; Kubernetes' decoder skips the line
                    // breaks, as here.
                    let text: String = text.split_whitespace().collect();
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(text)
                        .ok()?;
                    String::from_utf8(bytes).ok()?
                } else {
                    text.to_owned()
                };
                out.insert(k.clone(), value);
            }
            return Some(out);
        }
        (kind == "Secret")
            .then(|| self.external.get(name).cloned())
            .flatten()
    }

    /// The workload's (Deployment's or Job's) only container as a process.
    pub fn spec(&self, kind: &str, name: &str) -> anyhow::Result<ProcessSpec> {
        let object = self
            .named(kind, name)
            .with_context(|| format!("no {kind} {name}"))?;
        let pod = &object["spec"]["template"]["spec"];
        let containers = pod["containers"].as_array().context("containers")?;
        ensure!(containers.len() == 1, "{name}: one container");
        let c = &containers[0];
        // command replaces the image's entrypoint, args its cmd (and command alone drops the cmd).
        let list = |v: &Value| -> Option<Vec<String>> {
            v.as_array().map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })
        };
        let mut argv = list(&c["command"]).map_or_else(|| dockerfile_array("ENTRYPOINT"), Ok)?;
        match (list(&c["args"]), c["command"].is_null()) {
            (Some(args), _) => argv.extend(args),
            (None, true) => argv.extend(dockerfile_array("CMD")?),
            (None, false) => {}
        }
        let mut env = BTreeMap::new();
        for source in c["envFrom"].as_array().into_iter().flatten() {
            let (kind, r) = match (&source["configMapRef"], &source["secretRef"]) {
                (Value::Null, r) => ("Secret", r),
                (r, _) => ("ConfigMap", r),
            };
            let from = r["name"].as_str().context("envFrom name")?;
            match self.data(kind, from) {
                Some(data) => env.extend(data),
                None if r["optional"] == true => {}
                None => bail!("{name}: envFrom {kind} {from} does not exist"),
            }
        }
        for var in c["env"].as_array().into_iter().flatten() {
            let key = var["name"].as_str().context("env name")?.to_owned();
            let value = if let Some(v) = var["value"].as_str() {
                v.to_owned()
            } else {
                let from = &var["valueFrom"];
                let (kind, r) = match (&from["configMapKeyRef"], &from["secretKeyRef"]) {
                    (Value::Null, r) => ("Secret", r),
                    (r, _) => ("ConfigMap", r),
                };
                let (from, k) = (
                    r["name"].as_str().unwrap_or(""),
                    r["key"].as_str().unwrap_or(""),
                );
                self.data(kind, from)
                    .and_then(|d| d.get(k).cloned())
                    .with_context(|| format!("{name}: {key} from {kind} {from} key {k}"))?
            };
            env.insert(key, value);
        }
        let mut named_ports = BTreeMap::new();
        for p in c["ports"].as_array().into_iter().flatten() {
            let number = u16::try_from(p["containerPort"].as_u64().context("containerPort")?)?;
            named_ports.insert(p["name"].as_str().unwrap_or_default().to_owned(), number);
        }
        let port_of = |v: &Value| match v {
            Value::String(n) => named_ports
                .get(n)
                .copied()
                .with_context(|| format!("no port {n}")),
            v => Ok(u16::try_from(v.as_u64().context("a port")?)?),
        };
        let mut probes = Vec::new();
        for (probe, path) in [
            ("startupProbe", "/livez"),
            ("livenessProbe", "/livez"),
            ("readinessProbe", "/readyz"),
        ] {
            let get = &c[probe]["httpGet"];
            if kind == "Job" {
                ensure!(get.is_null(), "{name}: a Job has no probes");
                continue;
            }
            ensure!(get["path"] == path, "{name}: {probe} is not on {path}");
            probes.push((port_of(&get["port"])?, path.to_owned()));
        }
        let volumes: BTreeMap<&str, &Value> = pod["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| Some((v["name"].as_str()?, v)))
            .collect();
        let mut mounts = Vec::new();
        for m in c["volumeMounts"].as_array().into_iter().flatten() {
            ensure!(
                m["subPath"].is_null(),
                "{name}: subPath mounts are not handled here"
            );
            let volume = volumes
                .get(m["name"].as_str().unwrap_or(""))
                .context("a volume")?;
            let mount = if let Some(cm) = volume["configMap"]["name"].as_str() {
                Mount::Files(
                    self.data("ConfigMap", cm)
                        .with_context(|| format!("ConfigMap {cm}"))?,
                )
            } else if volume["emptyDir"].is_object() {
                Mount::Empty
            } else {
                bail!("{name}: volume kind not handled: {volume}")
            };
            mounts.push((
                m["mountPath"].as_str().context("mountPath")?.to_owned(),
                mount,
            ));
        }
        let grace =
            Duration::from_secs(pod["terminationGracePeriodSeconds"].as_u64().unwrap_or(30));
        if let Some(drain) = env.get("QUORUM__COMMON__SHUTDOWN_GRACE") {
            let pre_stop = c["lifecycle"]["preStop"]["sleep"]["seconds"]
                .as_u64()
                .unwrap_or(0);
            let needed = humantime::parse_duration(drain)? + Duration::from_secs(pre_stop);
            ensure!(
                grace > needed,
                "{name}: terminationGracePeriodSeconds {grace:?} ≤ {needed:?}"
            );
        }
        Ok(ProcessSpec {
            name: name.to_owned(),
            argv,
            env,
            ports: named_ports.values().copied().collect(),
            mounts,
            probes,
            // Here, a stop is the SIGTERM after the preStop sleep.
            stop_grace: grace,
        })
    }

    /// nats-server as the NATS Helm chart runs it from deploy/k8s/nats/values.yaml: the config's
    /// `config.merge` (the users and permissions, max_payload) as the chart writes it, `<< … >>`
    /// raw, and the container's env, its secretKeyRefs read from the Secrets the overlay makes
    /// (the same Secret is created in NATS's namespace: deploy/k8s/README.md).
    pub fn nats(&self) -> anyhow::Result<NatsSetup> {
        let values: Value = serde_saphyr::from_str(&std::fs::read_to_string(
            repo().join("deploy/k8s/nats/values.yaml"),
        )?)?;
        let merge = &values["config"]["merge"];
        ensure!(merge.is_object(), "values.yaml has no config.merge");
        let dir = std::env::temp_dir().join(format!("quorum-k8s-nats-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir)?;
        let config = dir.join("nats.conf");
        std::fs::write(&config, quorum_bus::access::render_conf(merge))?;
        let mut env = BTreeMap::new();
        for (name, value) in values["container"]["env"].as_object().into_iter().flatten() {
            let value = match value {
                Value::String(v) => v.clone(),
                v => {
                    let r = &v["valueFrom"]["secretKeyRef"];
                    let (from, key) = (
                        r["name"].as_str().unwrap_or(""),
                        r["key"].as_str().unwrap_or(""),
                    );
                    self.data("Secret", from)
                        .and_then(|d| d.get(key).cloned())
                        .with_context(|| format!("nats env {name}: Secret {from} key {key}"))?
                }
            };
            env.insert(name.clone(), value);
        }
        Ok(NatsSetup { config, env })
    }

    /// A connection as the operator's NATS user, its password from the overlay's Secret.
    pub async fn connect_admin(&self, url: &str) -> anyhow::Result<async_nats::Client> {
        let password = self
            .data("Secret", "quorum-nats")
            .and_then(|d| d.get("admin").cloned())
            .context("Secret quorum-nats has no admin password")?;
        Ok(
            async_nats::ConnectOptions::with_user_and_password("admin".into(), password)
                .connect(url)
                .await?,
        )
    }

    /// Every ScaledObject's (stream, consumer), checked to scale a Deployment of the render.
    pub fn scaled_consumers(&self) -> anyhow::Result<BTreeSet<(String, String)>> {
        let mut out = BTreeSet::new();
        for so in self.of_kind("ScaledObject") {
            let target = so["spec"]["scaleTargetRef"]["name"]
                .as_str()
                .context("target")?;
            ensure!(
                self.named("Deployment", target).is_some(),
                "scales no Deployment {target}"
            );
            for t in so["spec"]["triggers"].as_array().into_iter().flatten() {
                if t["type"] == "nats-jetstream" {
                    let m = &t["metadata"];
                    // KEDA reads the consumer's backlog in one account's monitoring data: the
                    // account the services' users, and so the streams, are in.
                    ensure!(
                        m["account"] == quorum_bus::access::ACCOUNT,
                        "{target}: KEDA looks in account {}, the streams are in {}",
                        m["account"],
                        quorum_bus::access::ACCOUNT
                    );
                    let (s, c) = (m["stream"].as_str(), m["consumer"].as_str());
                    out.insert((
                        s.context("stream")?.to_owned(),
                        c.context("consumer")?.to_owned(),
                    ));
                }
            }
        }
        Ok(out)
    }
}

#[test]
fn the_helm_values_give_nats_the_shipped_users_and_permissions() -> anyhow::Result<()> {
    let values: Value = serde_saphyr::from_str(&std::fs::read_to_string(
        repo().join("deploy/k8s/nats/values.yaml"),
    )?)?;
    let merge = &values["config"]["merge"];
    let shipped =
        quorum_bus::access::server_config_json(&quorum_bus::access::ServerAuth::from_env());
    for block in ["accounts", "authorization"] {
        ensure!(
            merge[block] == shipped[block],
            "values.yaml's config.merge.{block} differs from shared/bus/src/access.rs"
        );
    }
    Ok(())
}
