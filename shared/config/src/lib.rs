//! Typed configuration: defaults, then a TOML file, then `QUORUM__…` environment variables,
//! validated before anything starts; and [`CommonConfig`], the settings every service shares.
//!
//! Environment variables nest with a double underscore and their keys are case-insensitive:
//! `QUORUM__COMMON__NATS_URL` sets `nats_url` in the `[common]` table, `QUORUM__LOG_FORMAT` a
//! top-level `log_format`. A value that looks like a number, a boolean or an array is read as one.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format as _, Serialized, Toml};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use std::io::IsTerminal as _;

/// Prefix of the environment variables that override the config file.
pub const ENV_PREFIX: &str = "QUORUM__";
/// Separator of nested keys in an environment variable's name.
pub const ENV_SEPARATOR: &str = "__";

/// Configuration could not be loaded or is not valid. Each variant names what is at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A config file was named explicitly and does not exist.
    #[error("config file {} does not exist", path.display())]
    FileNotFound {
        /// The path as given.
        path: PathBuf,
    },
    /// A source could not be read or parsed at all (a TOML syntax error, say).
    #[error("cannot read config from {origin}: {message}")]
    Unreadable {
        /// Where the configuration came from (`file quorum.toml`).
        origin: String,
        /// What went wrong.
        message: String,
    },
    /// One key holds a value of the wrong type or one that fails validation.
    #[error("invalid config value for `{key}`{}: {message}", origin_suffix(origin))]
    Invalid {
        /// Dotted path of the key, e.g. `common.shutdown_grace`.
        key: String,
        /// Where the value came from, when known (`environment variable QUORUM__COMMON__NATS_URL`).
        origin: Option<String>,
        /// What is wrong with it.
        message: String,
    },
}

fn origin_suffix(origin: &Option<String>) -> String {
    origin
        .as_ref()
        .map(|o| format!(" (from {o})"))
        .unwrap_or_default()
}

impl ConfigError {
    /// A validation failure of `key`, for [`Validate`] implementations.
    pub fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            key: key.into(),
            origin: None,
            message: message.into(),
        }
    }

    /// Prefixes the key at fault with `section`, for a struct that validates a field holding a
    /// nested config: `self.common.validate().map_err(|e| e.within("common"))`.
    pub fn within(self, section: &str) -> Self {
        match self {
            Self::Invalid {
                key,
                origin,
                message,
            } => Self::Invalid {
                key: format!("{section}.{key}"),
                origin,
                message,
            },
            other => other,
        }
    }

    /// The dotted path of the key at fault, if one is.
    pub fn key(&self) -> Option<&str> {
        match self {
            Self::Invalid { key, .. } => Some(key),
            _ => None,
        }
    }

    fn from_figment(error: figment::Error) -> Self {
        let key = error.path.join(".");
        let message = error.kind.to_string();
        let origin = error
            .metadata
            .as_ref()
            .map(|metadata| match &metadata.source {
                Some(figment::Source::File(path)) => format!("file {}", path.display()),
                _ if metadata.name.contains("environment") => {
                    let name = error.path.join(ENV_SEPARATOR).to_ascii_uppercase();
                    format!("environment variable {ENV_PREFIX}{name}")
                }
                _ => metadata.name.to_string(),
            });
        if key.is_empty() {
            let origin = origin.unwrap_or_else(|| "configuration".into());
            Self::Unreadable { origin, message }
        } else {
            Self::Invalid {
                key,
                origin,
                message,
            }
        }
    }
}

/// A configuration that can check itself; run before anything starts, so a bad value stops the
/// process with a clear message instead of a failure deep inside a running service.
pub trait Validate {
    /// Checks every value, naming the first key at fault.
    fn validate(&self) -> Result<(), ConfigError>;
}

/// Loads a `T`: its [`Default`], overridden by the TOML `file` if one is given (a given file that
/// does not exist is an error), overridden by `QUORUM__…` environment variables.
pub fn load<T>(file: Option<&Path>) -> Result<T, ConfigError>
where
    T: DeserializeOwned + Serialize + Default,
{
    let mut figment = Figment::from(Serialized::defaults(T::default()));
    if let Some(path) = file {
        // figment treats a missing file as empty; a path the operator typed must exist.
        if !path.is_file() {
            return Err(ConfigError::FileNotFound { path: path.into() });
        }
        figment = figment.merge(Toml::file_exact(path));
    }
    figment
        .merge(Env::prefixed(ENV_PREFIX).split(ENV_SEPARATOR))
        .extract()
        .map_err(ConfigError::from_figment)
}

/// [`load`], then [`Validate::validate`].
pub fn load_validated<T>(file: Option<&Path>) -> Result<T, ConfigError>
where
    T: DeserializeOwned + Serialize + Default + Validate,
{
    let config: T = load(file)?;
    config.validate()?;
    Ok(config)
}

/// The settings every service embeds, conventionally as the `[common]` table.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CommonConfig {
    /// NATS server URL(s), comma-separated; scheme `nats`, `tls`, `ws` or `wss`.
    pub nats_url: String,
    /// The NATS user this process connects as (docs/adr/0027): one per service in the shipped
    /// server configs (`ingest`, `relay`, `expert-fanout`, …), each with only the subjects it
    /// needs. Unset connects without a user, to a server that asks for none.
    pub nats_user: Option<String>,
    /// That user's password; from the environment (`QUORUM__COMMON__NATS_PASSWORD`) or a secret,
    /// never a committed file. Never logged.
    pub nats_password: Option<Secret>,
    /// Postgres URL; scheme `postgres` or `postgresql`.
    pub database_url: String,
    /// At most this many pooled Postgres connections (1 to 1000). A process also holds one for
    /// each leader loop and group writer it runs, so the replicas of every service times this,
    /// plus a few each, must stay under the server's `max_connections`.
    pub database_connections: u32,
    /// Where the admin server (`/livez`, `/readyz`, `/metrics`) listens; port 0 picks a free one.
    pub admin_addr: SocketAddr,
    /// How long shutdown waits for in-flight work: `"30s"`, `"1m 30s"` or plain seconds (`30`).
    #[serde(with = "duration")]
    pub shutdown_grace: Duration,
    /// How log lines are written: `auto`, `json` or `pretty`.
    pub log_format: LogFormat,
}

/// Pooled Postgres connections per process unless configured: ten processes fit Postgres's default
/// `max_connections` of 100 with room for their leader connections and an operator's.
pub const DEFAULT_DATABASE_CONNECTIONS: u32 = 8;

impl Default for CommonConfig {
    fn default() -> Self {
        Self {
            nats_url: "nats://127.0.0.1:4222".into(),
            nats_user: None,
            nats_password: None,
            database_url: "postgres://quorum@127.0.0.1:5432/quorum".into(),
            database_connections: DEFAULT_DATABASE_CONNECTIONS,
            admin_addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            shutdown_grace: Duration::from_secs(30),
            log_format: LogFormat::Auto,
        }
    }
}

// By hand so that logging the config at startup never prints a password.
impl fmt::Debug for CommonConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CommonConfig")
            .field("nats_url", &redact(&self.nats_url))
            .field("nats_user", &self.nats_user)
            .field("nats_password", &self.nats_password)
            .field("database_url", &redact(&self.database_url))
            .field("database_connections", &self.database_connections)
            .field("admin_addr", &self.admin_addr)
            .field("shutdown_grace", &self.shutdown_grace)
            .field("log_format", &self.log_format)
            .finish()
    }
}

impl Validate for CommonConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        for server in self.nats_url.split(',') {
            check_url("nats_url", server.trim(), &["nats", "tls", "ws", "wss"])?;
        }
        check_nats_login(self.nats_user.as_deref(), self.nats_password.as_ref())
            .map_err(|(key, message)| ConfigError::invalid(key, message))?;
        if !(1..=1000).contains(&self.database_connections) {
            return Err(ConfigError::invalid(
                "database_connections",
                format!("{}: 1 to 1000", self.database_connections),
            ));
        }
        check_url(
            "database_url",
            &self.database_url,
            &["postgres", "postgresql"],
        )
    }
}

/// A NATS user and password are given together, and the user is a plain name (it also names the
/// user's inbox subjects, `_INBOX_<user>.>`). Errors name the key at fault, unprefixed.
pub fn check_nats_login(
    user: Option<&str>,
    password: Option<&Secret>,
) -> Result<(), (&'static str, String)> {
    match (user, password) {
        (None, None) => Ok(()),
        (Some(_), None) => Err((
            "nats_password",
            "nats_user is set; give its password too".into(),
        )),
        (None, Some(_)) => Err((
            "nats_user",
            "nats_password is set; name its user too".into(),
        )),
        (Some(user), Some(password)) => {
            let plain = !user.is_empty()
                && user.len() <= 64
                && user
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !plain {
                return Err((
                    "nats_user",
                    format!("{user:?}: 1 to 64 letters, digits, '-' or '_'"),
                ));
            }
            if password.expose().is_empty() {
                return Err(("nats_password", "must not be empty".into()));
            }
            Ok(())
        }
    }
}

/// A secret setting (a password, a private key): read and written like a string, shown as `***`
/// by `Debug`, so that logging a config never prints it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// A secret holding `value`.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value, for the one place that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

fn check_url(key: &str, value: &str, schemes: &[&str]) -> Result<(), ConfigError> {
    let url = url::Url::parse(value)
        .map_err(|error| ConfigError::invalid(key, format!("not a URL: {error}")))?;
    if !schemes.contains(&url.scheme()) {
        let expected = schemes.join(", ");
        let message = format!("scheme `{}` is not one of {expected}", url.scheme());
        return Err(ConfigError::invalid(key, message));
    }
    Ok(())
}

/// `value` with the password of any URL in it replaced, for logs.
fn redact(value: &str) -> String {
    value
        .split(',')
        .map(|part| match url::Url::parse(part.trim()) {
            Ok(mut url) if url.password().is_some() => {
                // Only fails for URLs that cannot carry a password, which this one does.
                let _ = url.set_password(Some("***"));
                url.to_string()
            }
            _ => part.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Serde for a [`Duration`] written as a human duration (`"30s"`, `"1m 30s"`, `"250ms"`) or as a
/// number of seconds; serialized as a human duration. Use with
/// `#[serde(with = "quorum_runtime::config::duration")]`.
pub mod duration {
    use std::fmt;
    use std::time::Duration;

    use serde::de::{self, Visitor};
    use serde::{Deserializer, Serializer};

    /// Writes `value` as a human duration such as `"1m 30s"`.
    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&humantime::format_duration(*value))
    }

    /// Reads a human duration or a number of seconds.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        deserializer.deserialize_any(DurationVisitor)
    }

    struct DurationVisitor;

    impl Visitor<'_> for DurationVisitor {
        type Value = Duration;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a duration such as \"30s\" or \"1m 30s\", or a number of seconds")
        }

        fn visit_str<E: de::Error>(self, value: &str) -> Result<Duration, E> {
            humantime::parse_duration(value.trim())
                .map_err(|error| E::custom(format!("invalid duration {value:?}: {error}")))
        }

        fn visit_u64<E: de::Error>(self, seconds: u64) -> Result<Duration, E> {
            Ok(Duration::from_secs(seconds))
        }

        fn visit_i64<E: de::Error>(self, seconds: i64) -> Result<Duration, E> {
            u64::try_from(seconds)
                .map(Duration::from_secs)
                .map_err(|_| E::custom("a duration cannot be negative"))
        }

        fn visit_f64<E: de::Error>(self, seconds: f64) -> Result<Duration, E> {
            Duration::try_from_secs_f64(seconds).map_err(|_| {
                E::custom("a duration must be a finite, non-negative number of seconds")
            })
        }
    }
}

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// [`LogFormat::Pretty`] when stderr is a terminal, [`LogFormat::Json`] otherwise.
    #[default]
    Auto,
    /// One JSON object per line, event fields flattened to the top level: for log collectors.
    Json,
    /// Human-readable, one line per event, coloured: for a person at a terminal.
    Pretty,
}

impl LogFormat {
    /// Whether this format writes JSON, deciding `Auto` by whether stderr is a terminal.
    pub fn is_json(self) -> bool {
        match self {
            Self::Json => true,
            Self::Pretty => false,
            Self::Auto => !std::io::stderr().is_terminal(),
        }
    }
}

#[cfg(test)]
mod tests;
