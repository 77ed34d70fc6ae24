//! Servers die with the test process that started them, even when it is killed -9 and runs no
//! destructor; Postgres then still removes its shared memory segment.
//!
//! The test runs this very test binary again as a child (only the `holder` test, which is ignored
//! unless a variable says otherwise), reads the servers' pids, kills the child with SIGKILL and
//! waits for the servers to go.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use quorum_testkit::{DEADLINE, wait_until};

const HOLDER: &str = "QUORUM_TESTKIT_HOLDER";

/// The child: starts both servers, says their pids, and waits to be killed.
#[tokio::test]
#[ignore = "run by servers_die_with_a_killed_test_process"]
async fn holder() -> anyhow::Result<()> {
    if std::env::var_os(HOLDER).is_none() {
        return Ok(());
    }
    let nats = quorum_testkit::nats().await?;
    let pg = quorum_testkit::postgres().await.server();
    // postmaster.pid, line 7: "<shmem key> <shmem id>".
    let pidfile = std::fs::read_to_string(pg.data_dir().join("postmaster.pid"))?;
    let shmid = pidfile
        .lines()
        .nth(6)
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("none");
    println!(
        "holding nats={} postgres={} shmid={shmid}",
        nats.pid().unwrap_or(0),
        pg.pid().unwrap_or(0)
    );
    tokio::time::sleep(DEADLINE * 10).await;
    Ok(())
}

#[tokio::test]
async fn servers_die_with_a_killed_test_process() -> anyhow::Result<()> {
    let mut child = Holder(
        Command::new(std::env::current_exe()?)
            .args([
                "parent_death::holder",
                "--exact",
                "--ignored",
                "--nocapture",
            ])
            .env(HOLDER, "1")
            .stdout(Stdio::piped())
            .spawn()?,
    );
    let stdout = child.0.stdout.take().expect("piped");
    let (tx, rx) = tokio::sync::oneshot::channel();
    // Blocking reads on a thread of their own; the line comes or the child ends.
    std::thread::spawn(move || {
        let line = BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .find(|l| l.starts_with("holding "));
        let _ = tx.send(line);
    });
    let line = tokio::time::timeout(DEADLINE * 2, rx).await??;
    let line = line.ok_or_else(|| anyhow::anyhow!("the holder ended without starting servers"))?;
    let field = |key: &str| -> String {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
            .unwrap_or_default()
            .to_owned()
    };
    let (nats, postgres, shmid) = (field("nats"), field("postgres"), field("shmid"));
    assert!(alive(&nats) && alive(&postgres), "servers run: {line}");
    assert!(segment_exists(&shmid), "postgres has its segment: {line}");

    child.0.kill()?; // SIGKILL: no destructor, no atexit.
    child.0.wait()?;

    wait_until("nats-server exits", DEADLINE, || async { !alive(&nats) }).await?;
    wait_until("postgres exits", DEADLINE, || async { !alive(&postgres) }).await?;
    wait_until("postgres removes its segment", DEADLINE, || async {
        !segment_exists(&shmid)
    })
    .await?;
    Ok(())
}

/// The holder process, killed if the test fails before it means to kill it.
struct Holder(std::process::Child);

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Running, and not a zombie (whoever inherits the orphan may be slow to reap it).
fn alive(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        // "pid (comm) S ...": the state follows the last ')'.
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X")
    })
}

fn segment_exists(shmid: &str) -> bool {
    std::fs::read_to_string("/proc/sysvipc/shm").is_ok_and(|table| {
        table
            .lines()
            .skip(1)
            .any(|l| l.split_whitespace().nth(1) == Some(shmid))
    })
}
