//! Tests of config loading: each runs in a `figment::Jail` (its own working directory and
//! environment, restored afterwards), so they stay safe when run in parallel threads.

// `Jail`'s closures must return `figment::Error`, which is large; that is figment's API.
#![allow(clippy::result_large_err)]

use std::path::Path;
use std::time::Duration;

use figment::Jail;
use serde::{Deserialize, Serialize};

use super::*;

/// The shape a service's config takes: the common table plus sections of its own.
#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
struct ServiceConfig {
    common: CommonConfig,
    consensus: Consensus,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
struct Consensus {
    quorum: u32,
    #[serde(with = "duration")]
    deadline: Duration,
}

impl Default for Consensus {
    fn default() -> Self {
        Self {
            quorum: 2,
            deadline: Duration::from_secs(60),
        }
    }
}

impl Validate for ServiceConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        self.common.validate().map_err(|e| e.within("common"))?;
        if self.consensus.quorum == 0 {
            return Err(ConfigError::invalid(
                "consensus.quorum",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

fn jail(test: impl FnOnce(&mut Jail) -> figment::error::Result<()>) {
    Jail::expect_with(|jail| {
        // Whatever the machine running the tests has set must not leak in.
        jail.clear_env();
        test(jail)
    });
}

#[test]
fn defaults_when_nothing_is_given() {
    jail(|_| {
        let config: ServiceConfig = load(None).unwrap();
        assert_eq!(config, ServiceConfig::default());
        assert_eq!(config.common.nats_url, "nats://127.0.0.1:4222");
        assert_eq!(config.common.shutdown_grace, Duration::from_secs(30));
        config.validate().unwrap();
        Ok(())
    });
}

#[test]
fn the_file_overrides_defaults() {
    jail(|jail| {
        jail.create_file(
            "quorum.toml",
            r#"
            [common]
            nats_url = "nats://nats.internal:4222"
            admin_addr = "0.0.0.0:9090"
            shutdown_grace = "1m 30s"
            log_format = "json"

            [consensus]
            deadline = 5
            "#,
        )?;
        let config: ServiceConfig = load(Some(Path::new("quorum.toml"))).unwrap();
        assert_eq!(config.common.nats_url, "nats://nats.internal:4222");
        assert_eq!(config.common.admin_addr, "0.0.0.0:9090".parse().unwrap());
        assert_eq!(config.common.shutdown_grace, Duration::from_secs(90));
        assert_eq!(config.common.log_format, LogFormat::Json);
        assert_eq!(config.consensus.deadline, Duration::from_secs(5));
        // Keys the file leaves out keep their defaults.
        assert_eq!(
            config.common.database_url,
            CommonConfig::default().database_url
        );
        assert_eq!(config.consensus.quorum, 2);
        Ok(())
    });
}

#[test]
fn the_environment_wins_over_the_file() {
    jail(|jail| {
        jail.create_file(
            "quorum.toml",
            "[common]\nnats_url = \"nats://from-file:4222\"\n[consensus]\nquorum = 3\n",
        )?;
        jail.set_env("QUORUM__COMMON__NATS_URL", "nats://from-env:4222");
        // Key names are case-insensitive.
        jail.set_env("quorum__Consensus__QUORUM", "5");
        jail.set_env("QUORUM__COMMON__SHUTDOWN_GRACE", "45s");
        jail.set_env("QUORUM__COMMON__ADMIN_ADDR", "127.0.0.1:9191");

        let config: ServiceConfig = load(Some(Path::new("quorum.toml"))).unwrap();
        assert_eq!(config.common.nats_url, "nats://from-env:4222");
        assert_eq!(config.consensus.quorum, 5);
        assert_eq!(config.common.shutdown_grace, Duration::from_secs(45));
        assert_eq!(config.common.admin_addr, "127.0.0.1:9191".parse().unwrap());
        Ok(())
    });
}

#[test]
fn a_missing_explicit_file_is_an_error() {
    jail(|_| {
        let error = load::<ServiceConfig>(Some(Path::new("nope.toml"))).unwrap_err();
        assert_eq!(
            error,
            ConfigError::FileNotFound {
                path: "nope.toml".into()
            }
        );
        assert_eq!(error.to_string(), "config file nope.toml does not exist");
        Ok(())
    });
}

#[test]
fn a_bad_value_in_the_environment_names_the_variable() {
    jail(|jail| {
        jail.set_env("QUORUM__COMMON__SHUTDOWN_GRACE", "soon");
        let error = load::<ServiceConfig>(None).unwrap_err();
        assert_eq!(error.key(), Some("common.shutdown_grace"), "{error}");
        let message = error.to_string();
        assert!(
            message.contains("environment variable QUORUM__COMMON__SHUTDOWN_GRACE"),
            "{message}"
        );
        assert!(message.contains("invalid duration \"soon\""), "{message}");
        Ok(())
    });
}

#[test]
fn a_bad_value_in_the_file_names_the_file() {
    jail(|jail| {
        jail.create_file("quorum.toml", "[common]\nadmin_addr = \"localhost\"\n")?;
        let error = load::<ServiceConfig>(Some(Path::new("quorum.toml"))).unwrap_err();
        assert_eq!(error.key(), Some("common.admin_addr"), "{error}");
        assert!(error.to_string().contains("quorum.toml"), "{error}");

        jail.create_file("broken.toml", "[common\n")?;
        let error = load::<ServiceConfig>(Some(Path::new("broken.toml"))).unwrap_err();
        assert!(
            matches!(&error, ConfigError::Unreadable { origin, .. } if origin.contains("broken.toml")),
            "{error:?}"
        );
        Ok(())
    });
}

#[test]
fn validation_names_the_key_and_the_expected_scheme() {
    jail(|jail| {
        jail.set_env("QUORUM__COMMON__DATABASE_URL", "mysql://db/quorum");
        let error = load_validated::<ServiceConfig>(None).unwrap_err();
        assert_eq!(error.key(), Some("common.database_url"));
        assert_eq!(
            error.to_string(),
            "invalid config value for `common.database_url`: scheme `mysql` is not one of postgres, postgresql"
        );
        Ok(())
    });

    let mut config = CommonConfig {
        nats_url: "nats://a:4222, tls://b:4222".into(),
        ..CommonConfig::default()
    };
    config.validate().expect("a list of servers is valid");
    config.nats_url = "not a url".into();
    assert_eq!(config.validate().unwrap_err().key(), Some("nats_url"));
}

#[test]
fn the_database_pool_size_comes_from_the_environment_within_bounds() {
    jail(|jail| {
        let config = load_validated::<ServiceConfig>(None).unwrap();
        assert_eq!(
            config.common.database_connections,
            crate::DEFAULT_DATABASE_CONNECTIONS
        );
        jail.set_env("QUORUM__COMMON__DATABASE_CONNECTIONS", "3");
        let config = load_validated::<ServiceConfig>(None).unwrap();
        assert_eq!(config.common.database_connections, 3);
        jail.set_env("QUORUM__COMMON__DATABASE_CONNECTIONS", "0");
        let error = load_validated::<ServiceConfig>(None).unwrap_err();
        assert_eq!(error.key(), Some("common.database_connections"), "{error}");
        assert!(error.to_string().contains("1 to 1000"), "{error}");
        Ok(())
    });
}

#[test]
fn a_nats_user_comes_with_its_password_and_a_plain_name() {
    let mut config = CommonConfig {
        nats_user: Some("ingest".into()),
        ..CommonConfig::default()
    };
    assert_eq!(config.validate().unwrap_err().key(), Some("nats_password"));
    config.nats_password = Some(Secret::new("pw"));
    config.validate().expect("a user and its password");
    config.nats_user = Some("in gest.>".into());
    assert_eq!(config.validate().unwrap_err().key(), Some("nats_user"));
    config.nats_user = None;
    assert_eq!(config.validate().unwrap_err().key(), Some("nats_user"));
}

#[test]
fn durations_read_as_seconds_or_human_and_write_as_human() {
    jail(|jail| {
        jail.set_env("QUORUM__COMMON__SHUTDOWN_GRACE", "10");
        jail.set_env("QUORUM__CONSENSUS__DEADLINE", "250ms");
        let config: ServiceConfig = load(None).unwrap();
        assert_eq!(config.common.shutdown_grace, Duration::from_secs(10));
        assert_eq!(config.consensus.deadline, Duration::from_millis(250));
        Ok(())
    });
    let json = serde_json::to_value(CommonConfig::default()).unwrap();
    assert_eq!(json["shutdown_grace"], "30s");
}

#[test]
fn debug_output_hides_passwords() {
    let config = CommonConfig {
        database_url: "postgres://quorum:hunter2@db:5432/quorum".into(),
        nats_url: "nats://svc:s3cret@a:4222,nats://b:4222".into(),
        nats_user: Some("consensus".into()),
        nats_password: Some(Secret::new("n4tspass")),
        ..CommonConfig::default()
    };
    let debug = format!("{config:?}");
    assert!(
        !debug.contains("hunter2") && !debug.contains("s3cret") && !debug.contains("n4tspass"),
        "{debug}"
    );
    assert!(debug.contains("consensus"), "{debug}");
    assert!(
        debug.contains("postgres://quorum:***@db:5432/quorum"),
        "{debug}"
    );
}
