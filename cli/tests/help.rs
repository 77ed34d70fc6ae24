//! The help an operator reads: every command shows examples, every flag says what it does, the
//! global flags stand apart from each command's own, and shell completions are generated.

use clap::CommandFactory;

/// Every command and subcommand, with its path (`quorum dlq list`).
fn commands() -> Vec<(String, clap::Command)> {
    fn walk(path: &str, cmd: &clap::Command, out: &mut Vec<(String, clap::Command)>) {
        for sub in cmd.get_subcommands() {
            if sub.get_name() == "help" {
                continue;
            }
            let path = format!("{path} {}", sub.get_name());
            out.push((path.clone(), sub.clone()));
            walk(&path, sub, out);
        }
    }
    let mut out = Vec::new();
    let mut root = quorum::Cli::command();
    root.build();
    walk("quorum", &root, &mut out);
    out
}

#[test]
fn every_command_has_examples_and_every_flag_a_help() {
    let mut missing = Vec::new();
    for (path, cmd) in commands() {
        let examples = cmd
            .get_after_help()
            .map(|h| h.to_string())
            .unwrap_or_default();
        if !examples.contains("Examples:") || !examples.contains("quorum ") {
            missing.push(format!("{path}: no examples"));
        }
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if matches!(id, "help" | "version") || arg.is_hide_set() {
                continue;
            }
            let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
            if help.trim().is_empty() {
                missing.push(format!("{path}: --{id} has no help"));
            }
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}

#[test]
fn global_flags_stand_under_their_own_heading() {
    for (path, cmd) in commands() {
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if matches!(
                id,
                "nats_url" | "database_url" | "data_dir" | "json" | "verbose"
            ) {
                assert_eq!(
                    arg.get_help_heading(),
                    Some(quorum::help::GLOBAL),
                    "{path}: --{id}"
                );
            }
            if matches!(id, "api_key" | "ingest_url" | "dlq_url") {
                assert_eq!(
                    arg.get_help_heading(),
                    Some(quorum::help::CONNECTION),
                    "{path}: --{id}"
                );
            }
        }
    }
}

fn quorum(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_quorum"))
        .args(args)
        .env_remove("QUORUM_CONFIG")
        .output()
        .expect("quorum runs")
}

#[test]
fn help_points_at_the_example_config_and_shows_examples() {
    let out = quorum(&["up", "--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("deploy/quorum.example.toml"), "{help}");
    assert!(help.contains("QUORUM_CONFIG"), "{help}");
    assert!(!help.contains("UpConfig"), "{help}");
    assert!(help.contains("Examples:"), "{help}");
    assert!(help.contains("Global options:"), "{help}");
    let out = quorum(&["dlq", "list", "--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("Connection options:"), "{help}");
    assert!(help.contains("--api-key"), "{help}");
}

#[test]
fn completions_are_generated_for_bash_zsh_and_fish() {
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef quorum"),
        ("fish", "complete -c quorum"),
    ] {
        let out = quorum(&["completion", shell]);
        assert!(out.status.success(), "{shell}");
        assert!(out.stderr.is_empty(), "{shell}");
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(script.contains(marker), "{shell}: {script}");
        assert!(script.contains("dlq"), "{shell}");
    }
    let out = quorum(&["completion", "powershell"]);
    assert_eq!(out.status.code(), Some(2));
}
