//! docker-compose.yml as processes: each service of the Quorum image becomes a [`ProcessSpec`] as
//! compose would run it (its entrypoint or the image's, its command, its environment with
//! `${VAR:-default}` interpolated, bind mounts and tmpfs, its healthcheck's URL), in the order its
//! `depends_on` conditions give. nats and postgres are the test's own servers.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use serde_json::Value;

use super::harness::{Mount, NatsSetup, ProcessSpec, repo};

pub struct Compose {
    services: serde_json::Map<String, Value>,
    image_entrypoint: Vec<String>,
}

/// Services the test provides itself, by name, and what their image must be.
pub const PROVIDED: [(&str, &str); 2] = [("nats", "nats:"), ("postgres", "postgres:")];

impl Compose {
    pub fn load() -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(repo().join("docker-compose.yml"))?;
        let mut doc: Value = serde_saphyr::from_str(&text).context("parse docker-compose.yml")?;
        interpolate(&mut doc)?;
        let services = doc["services"].as_object().context("no services")?.clone();
        for (name, image) in PROVIDED {
            let got = services[name]["image"].as_str().unwrap_or_default();
            ensure!(
                got.starts_with(image),
                "service {name} runs {got}, not {image}…"
            );
        }
        Ok(Self {
            services,
            image_entrypoint: dockerfile_array("ENTRYPOINT")?,
        })
    }

    /// nats-server as the `nats` service runs it: the config file its command names, beside the
    /// other files mounted in its directory (what it includes: the users and permissions), and
    /// its environment, where that config reads the users' secrets. Only the JetStream store
    /// directory is the test's (nats-server refuses one given both in the file and as a flag).
    pub fn nats(&self) -> anyhow::Result<NatsSetup> {
        let s = &self.services["nats"];
        let command = strings(&s["command"])?;
        let config = command
            .iter()
            .position(|a| a == "--config" || a == "-c")
            .and_then(|i| command.get(i + 1))
            .context("nats runs with --config")?;
        let config_dir = std::path::Path::new(config)
            .parent()
            .context("the config's directory")?;
        let dir =
            std::env::temp_dir().join(format!("quorum-compose-nats-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir)?;
        let mut local_config = None;
        for volume in s["volumes"].as_array().into_iter().flatten() {
            let text = volume.as_str().context("volumes in short form")?;
            let mut parts = text.split(':');
            let (source, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            let target = std::path::Path::new(target);
            if target.parent() != Some(config_dir) {
                continue;
            }
            let source = source
                .strip_prefix("./")
                .context("a bind mount from the repository")?;
            let mut text = std::fs::read_to_string(repo().join(source))?;
            let local = dir.join(target.file_name().context("a file name")?);
            if target == std::path::Path::new(config) {
                text = text
                    .lines()
                    .filter(|l| !l.trim_start().starts_with("store_dir"))
                    .collect::<Vec<_>>()
                    .join("\n");
                local_config = Some(local.clone());
            }
            std::fs::write(&local, text)?;
        }
        Ok(NatsSetup {
            config: local_config.with_context(|| format!("nothing mounted at {config}"))?,
            env: environment(&s["environment"])?,
        })
    }

    /// The services of the Quorum image, dependencies first.
    pub fn order(&self) -> anyhow::Result<Vec<String>> {
        let mut done: BTreeSet<String> = PROVIDED.iter().map(|(n, _)| n.to_string()).collect();
        let mut order = Vec::new();
        while done.len() < self.services.len() {
            let next = self
                .services
                .keys()
                .find(|n| !done.contains(*n) && self.depends_on(n).keys().all(|d| done.contains(d)))
                .context("depends_on has a cycle or names no service")?
                .clone();
            done.insert(next.clone());
            order.push(next);
        }
        Ok(order)
    }

    /// `depends_on`: service to condition.
    pub fn depends_on(&self, name: &str) -> BTreeMap<String, String> {
        match &self.services[name]["depends_on"] {
            Value::Object(m) => m
                .iter()
                .map(|(k, v)| {
                    let c = v["condition"].as_str().unwrap_or("service_started");
                    (k.clone(), c.to_owned())
                })
                .collect(),
            Value::Array(a) => a
                .iter()
                .filter_map(Value::as_str)
                .map(|k| (k.to_owned(), "service_started".to_owned()))
                .collect(),
            _ => BTreeMap::new(),
        }
    }

    /// The conditions other services wait for on `name`.
    pub fn awaited(&self, name: &str) -> BTreeSet<String> {
        self.services
            .keys()
            .filter_map(|other| self.depends_on(other).get(name).cloned())
            .collect()
    }

    /// `name` as compose runs it; `command` replaces the service's, as `docker compose run
    /// <service> <command…>` does.
    pub fn spec(&self, name: &str, command: Option<&[&str]>) -> anyhow::Result<ProcessSpec> {
        let s = &self.services[name];
        ensure!(
            s["image"]
                .as_str()
                .is_some_and(|i| i.starts_with("quorum:"))
                && s["build"].is_object(),
            "{name} is not built from this repository's Dockerfile"
        );
        let mut argv = match &s["entrypoint"] {
            Value::Null => self.image_entrypoint.clone(),
            v => strings(v)?,
        };
        match command {
            Some(c) => argv.extend(c.iter().map(|a| a.to_string())),
            None => argv.extend(strings(&s["command"]).context("a command naming the binary")?),
        }
        let env = environment(&s["environment"])?;
        // What the process listens on: the addresses in its environment; what compose publishes
        // must be among them.
        let ports: Vec<u16> = env
            .values()
            .filter_map(|v| v.parse::<std::net::SocketAddr>().ok())
            .map(|a| a.port())
            .collect();
        for published in s["ports"].as_array().into_iter().flatten() {
            let text = published.as_str().context("ports in short form")?;
            let container: u16 = text.rsplit(':').next().unwrap_or_default().parse()?;
            ensure!(
                ports.contains(&container),
                "{name} publishes {container}, where nothing listens"
            );
        }
        let mut mounts = Vec::new();
        for volume in s["volumes"].as_array().into_iter().flatten() {
            let text = volume.as_str().context("volumes in short form")?;
            let mut parts = text.split(':');
            let (source, target) = (
                parts.next().unwrap_or(""),
                parts.next().context("a target")?,
            );
            let source = source
                .strip_prefix("./")
                .context("a bind mount from the repository")?;
            mounts.push((target.to_owned(), Mount::Host(repo().join(source))));
        }
        for path in s["tmpfs"].as_array().into_iter().flatten() {
            mounts.push((
                path.as_str().context("tmpfs paths")?.to_owned(),
                Mount::Empty,
            ));
        }
        let probes = match &s["healthcheck"]["test"] {
            Value::Null => Vec::new(),
            test => vec![healthcheck(name, &strings(test)?)?],
        };
        let stop_grace = match s["stop_grace_period"].as_str() {
            Some(text) => humantime::parse_duration(text)?,
            None => Duration::from_secs(10),
        };
        if let Some(drain) = env.get("QUORUM__COMMON__SHUTDOWN_GRACE") {
            let drain = humantime::parse_duration(drain)?;
            ensure!(
                stop_grace > drain,
                "{name}: stop_grace_period {stop_grace:?} ≤ drain {drain:?}"
            );
        }
        Ok(ProcessSpec {
            name: name.to_owned(),
            argv,
            env,
            ports,
            mounts,
            probes,
            stop_grace,
        })
    }
}

/// `["CMD", "curl", …, "http://127.0.0.1:<port><path>"]`: curl, which the image installs, against
/// the container itself.
fn healthcheck(name: &str, test: &[String]) -> anyhow::Result<(u16, String)> {
    ensure!(
        test.first().map(String::as_str) == Some("CMD"),
        "{name}: healthcheck not CMD"
    );
    ensure!(
        test.get(1).map(String::as_str) == Some("curl"),
        "{name}: healthcheck not curl"
    );
    let dockerfile = std::fs::read_to_string(repo().join("Dockerfile"))?;
    ensure!(
        dockerfile.contains(" curl "),
        "the image does not install curl"
    );
    let url = test
        .iter()
        .find(|a| a.starts_with("http://"))
        .context("a URL")?;
    let url = url::Url::parse(url)?;
    ensure!(
        matches!(url.host_str(), Some("127.0.0.1" | "localhost")),
        "{name}: not itself"
    );
    let path = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    };
    Ok((url.port().context("a port")?, path))
}

/// `environment` in map or list form. A name without a value passes the variable through from
/// the shell that runs compose (here: this test's environment), if set there.
fn environment(value: &Value) -> anyhow::Result<BTreeMap<String, String>> {
    let mut env = BTreeMap::new();
    let mut put = |key: &str, value: Option<String>| {
        if let Some(v) = value.or_else(|| std::env::var(key).ok()) {
            env.insert(key.to_owned(), v);
        }
    };
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                match v {
                    Value::Null => put(k, None),
                    Value::String(s) => put(k, Some(s.clone())),
                    other => put(k, Some(other.to_string())),
                }
            }
        }
        Value::Array(list) => {
            for item in list {
                let item = item.as_str().context("environment entries are strings")?;
                match item.split_once('=') {
                    Some((k, v)) => put(k, Some(v.to_owned())),
                    None => put(item, None),
                }
            }
        }
        Value::Null => {}
        _ => bail!("environment is neither a map nor a list"),
    }
    Ok(env)
}

fn strings(value: &Value) -> anyhow::Result<Vec<String>> {
    value
        .as_array()
        .context("a list (exec form)")?
        .iter()
        .map(|v| v.as_str().map(str::to_owned).context("a string"))
        .collect()
}

/// The JSON array of the Dockerfile's last `<instruction> [...]` (the runtime stage's).
pub fn dockerfile_array(instruction: &str) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(repo().join("Dockerfile"))?;
    let line = text
        .lines()
        .filter_map(|l| {
            l.strip_prefix(instruction)?
                .trim()
                .strip_prefix('[')
                .map(|_| l)
        })
        .next_back()
        .with_context(|| format!("no {instruction} in the Dockerfile"))?;
    Ok(serde_json::from_str(line[instruction.len()..].trim())?)
}

/// Compose's interpolation of every string: `${VAR:-default}`, `${VAR-default}`, `${VAR}`, `$$`.
/// Variables are read from an empty environment (a fresh shell with no `.env`), so defaults apply.
fn interpolate(value: &mut Value) -> anyhow::Result<()> {
    match value {
        Value::String(s) => *s = interpolate_str(s)?,
        Value::Array(a) => a.iter_mut().try_for_each(interpolate)?,
        Value::Object(m) => m.values_mut().try_for_each(interpolate)?,
        _ => {}
    }
    Ok(())
}

fn interpolate_str(s: &str) -> anyhow::Result<String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        if let Some(r) = rest.strip_prefix('$') {
            out.push('$');
            rest = r;
        } else if let Some(r) = rest.strip_prefix('{') {
            let end = r
                .find('}')
                .with_context(|| format!("unclosed ${{ in {s}"))?;
            let expr = &r[..end];
            let default = expr.split_once(":-").or_else(|| expr.split_once('-'));
            out.push_str(default.map_or("", |(_, d)| d));
            rest = &r[end + 1..];
        } else {
            bail!("unsupported $ form in {s}");
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[test]
fn interpolation_uses_defaults() {
    assert_eq!(
        interpolate_str("127.0.0.1:${P:-8080}:8080").unwrap(),
        "127.0.0.1:8080:8080"
    );
    assert_eq!(
        interpolate_str("quorum:${T-local} $$x").unwrap(),
        "quorum:local $x"
    );
}
