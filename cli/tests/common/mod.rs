//! What the CLI tests that drive `quorum` against a local stack share: the command, isolated from
//! the environment, and reading what it said.
#![allow(dead_code)] // each test file uses its own part

use std::path::Path;
use std::process::{Output, Stdio};

use quorum_testkit::DEADLINE;
use tokio::process::Command;

/// `quorum --data-dir dir`, isolated from the environment, reading nothing from standard input.
pub fn quorum(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_quorum"));
    cmd.arg("--data-dir").arg(dir);
    isolated(&mut cmd);
    cmd.stdin(Stdio::null());
    cmd
}

/// Nothing from the environment points `quorum` elsewhere or asks for logs; every API on any free
/// port, since tests run side by side.
pub fn isolated(cmd: &mut Command) {
    cmd.env_remove("RUST_LOG")
        .env_remove("QUORUM_NATS_URL")
        .env_remove("QUORUM_DATABASE_URL")
        .env_remove("QUORUM_INGEST_URL")
        .env_remove("QUORUM_DLQ_URL")
        .env_remove("QUORUM_API_KEY")
        .env_remove("QUORUM_CONFIG")
        .env("QUORUM__INGEST__HTTP_ADDR", "127.0.0.1:0")
        .env("QUORUM__AUDIT__HTTP_ADDR", "127.0.0.1:0")
        .env("QUORUM__DLQ__HTTP_ADDR", "127.0.0.1:0");
}

/// Runs `quorum args…` to its end.
pub async fn run(dir: &Path, args: &[&str]) -> anyhow::Result<Output> {
    let out = quorum(dir).args(args).output();
    Ok(tokio::time::timeout(DEADLINE * 2, out).await??)
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts the exit code, showing what the command said when it differs.
pub fn assert_code(out: &Output, code: i32, what: &str) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "{what}: stdout {:?}, stderr {:?}",
        text(&out.stdout),
        text(&out.stderr)
    );
}
