//! The service as its own process: it reads its config from the environment, becomes ready, and
//! stops cleanly on SIGTERM (the shape every service binary shares, `quorum_runtime::service`).

use std::process::Stdio;

use quorum_testkit::{DEADLINE, wait_until};

#[tokio::test]
async fn the_binary_becomes_ready_and_stops_on_sigterm() -> anyhow::Result<()> {
    let nats = quorum_testkit::nats().await?;
    let db = quorum_testkit::postgres().await.fresh_db().await?;
    let admin = quorum_devstack::free_port()?;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_quorum-consensus"))
        .env("QUORUM__COMMON__NATS_URL", nats.url())
        .env("QUORUM__COMMON__DATABASE_URL", &db.url)
        .env("QUORUM__COMMON__ADMIN_ADDR", format!("127.0.0.1:{admin}"))
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    wait_until("/readyz says ready", DEADLINE, || async {
        let Ok(mut conn) = tokio::net::TcpStream::connect(("127.0.0.1", admin)).await else {
            return false;
        };
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let _ = conn
            .write_all(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await;
        let mut reply = String::new();
        let _ = conn.read_to_string(&mut reply).await;
        reply.starts_with("HTTP/1.1 200")
    })
    .await?;
    let pid = child.id().expect("running").to_string();
    assert!(
        tokio::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .await?
            .success()
    );
    let exit = tokio::time::timeout(DEADLINE, child.wait()).await??;
    assert!(exit.success(), "exited {exit}");

    // A bad config is refused before anything starts, naming the key.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_quorum-consensus"))
        .env("QUORUM__COMMON__DATABASE_URL", "mysql://nope")
        .output()
        .await?;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("database_url"));
    Ok(())
}
