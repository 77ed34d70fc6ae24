//! A service binary's command line: `--config <file>` (or `QUORUM_<NAME>_CONFIG`), and `--help`,
//! which lists every setting the service reads, the variable that sets it, and its default. A
//! service runs from its environment alone; the listing is what a compose file or a Deployment
//! may set.

use std::path::PathBuf;

use clap::{Arg, Command, value_parser};
use serde::Serialize;
use serde_json::Value;

use crate::config::{ENV_PREFIX, ENV_SEPARATOR};

/// The config file given on the command line or in the environment, if any. Exits, as clap does,
/// on `--help`, `--version` or a bad argument.
pub(super) fn config_file<C: Serialize + Default>(name: &'static str) -> Option<PathBuf> {
    command::<C>(name)
        .get_matches()
        .get_one::<PathBuf>("config")
        .cloned()
}

/// The variable that names a service's config file: `QUORUM_EXPERT_FANOUT_CONFIG`.
pub fn config_env(name: &str) -> String {
    format!("QUORUM_{}_CONFIG", name.to_uppercase().replace('-', "_"))
}

/// The command line of `quorum-<name>`, its help listing the settings of `C`.
pub fn command<C: Serialize + Default>(name: &'static str) -> Command {
    // clap keeps names as `&'static str`; these are made once per process.
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    Command::new(leak(format!("quorum-{name}")))
        .about(leak(format!(
            "Quorum's {name} service, as its own process."
        )))
        .version(env!("CARGO_PKG_VERSION"))
        .arg(
            Arg::new("config")
                .long("config")
                .value_name("FILE")
                .env(leak(config_env(name)))
                .value_parser(value_parser!(PathBuf))
                .help("A TOML file of the settings below (variables win over it)"),
        )
        .after_help(leak(settings::<C>()))
}

/// Every setting of `C` as a table: its path in the file, its variable, its default.
pub fn settings<C: Serialize + Default>() -> String {
    let mut rows = Vec::new();
    // Serializing a config's default cannot fail: every field is plain data.
    let defaults = serde_json::to_value(C::default()).unwrap_or(Value::Null);
    flatten(String::new(), &defaults, &mut rows);
    let key_width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let env_width = rows
        .iter()
        .map(|(k, _)| variable(k).len())
        .max()
        .unwrap_or(0);
    let mut out = String::from(
        "Settings: a key of the config file, or the variable that sets it, and the default.\n\
         Lists and tables take TOML in a variable (QUORUM__EXPERTS='[{name = \"a\", ...}]').\n",
    );
    for (key, default) in &rows {
        out.push_str(&format!(
            "  {key:key_width$}  {:env_width$}  {default}\n",
            variable(key)
        ));
    }
    out.push_str(
        "\nAlso read: RUST_LOG (log filter, default info), OTEL_EXPORTER_OTLP_ENDPOINT (export \
         spans over OTLP/HTTP).\nEvery setting, with what it does: deploy/quorum.example.toml.",
    );
    out
}

/// `common.nats_url` → `QUORUM__COMMON__NATS_URL`.
fn variable(key: &str) -> String {
    let path: Vec<String> = key.split('.').map(str::to_uppercase).collect();
    format!("{ENV_PREFIX}{}", path.join(ENV_SEPARATOR))
}

/// The leaves of a config's tree, a table's keys joined by dots; a list is one setting.
fn flatten(key: String, value: &Value, rows: &mut Vec<(String, String)>) {
    match value {
        Value::Object(table) if !table.is_empty() => {
            for (name, value) in table {
                let path = if key.is_empty() {
                    name.clone()
                } else {
                    format!("{key}.{name}")
                };
                flatten(path, value, rows);
            }
        }
        _ => rows.push((key, show(value))),
    }
}

fn show(value: &Value) -> String {
    match value {
        Value::Null => "(none)".into(),
        Value::String(s) => s.clone(),
        Value::Array(items) if items.is_empty() => "[]".into(),
        // A list of tables (the experts) is too long for a line: how many, and their names.
        Value::Array(items) if items.iter().all(Value::is_object) => {
            let names: Vec<&str> = items
                .iter()
                .filter_map(|t| t.get("name").and_then(Value::as_str))
                .collect();
            format!("{} tables: {}", items.len(), names.join(", "))
        }
        Value::Object(_) => "{}".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CommonConfig;

    #[derive(Serialize, Default)]
    struct Example {
        common: CommonConfig,
        experts: Vec<String>,
        judge: Option<String>,
    }

    #[test]
    fn the_help_lists_each_setting_with_its_variable_and_default() {
        let help = settings::<Example>();
        let line = |key: &str| {
            help.lines()
                .find(|l| l.split_whitespace().next() == Some(key))
                .unwrap_or_else(|| panic!("{key} missing from:\n{help}"))
                .split_whitespace()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            line("common.nats_url"),
            [
                "common.nats_url",
                "QUORUM__COMMON__NATS_URL",
                "nats://127.0.0.1:4222"
            ]
        );
        assert_eq!(
            line("common.shutdown_grace")[1..],
            ["QUORUM__COMMON__SHUTDOWN_GRACE", "30s"]
        );
        assert_eq!(line("experts")[1..], ["QUORUM__EXPERTS", "[]"]);
        assert_eq!(line("judge")[1..], ["QUORUM__JUDGE", "(none)"]);
    }

    #[test]
    fn the_config_file_comes_from_the_flag_or_the_services_variable() {
        let matches = command::<Example>("expert-fanout")
            .try_get_matches_from(["quorum-expert-fanout", "--config", "f.toml"])
            .unwrap();
        assert_eq!(
            matches.get_one::<PathBuf>("config"),
            Some(&PathBuf::from("f.toml"))
        );
        assert_eq!(config_env("expert-fanout"), "QUORUM_EXPERT_FANOUT_CONFIG");
        let refused = command::<Example>("consensus")
            .try_get_matches_from(["quorum-consensus", "--confg", "f.toml"])
            .unwrap_err();
        assert_eq!(refused.kind(), clap::error::ErrorKind::UnknownArgument);
    }
}
