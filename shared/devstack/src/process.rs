//! Starting and stopping server processes. This is the one module with `unsafe`: the code run between
//! fork and exec (dropping root for Postgres, and asking the kernel to kill the child when its parent
//! dies) and sending signals.
#![allow(unsafe_code)]

use std::fs::File;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Why a server could not be started or stopped. Fields name the program (`what`) and carry what
/// a person needs to act: a hint, the OS error, or the last lines of the server's log.
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs)] // the fields are described above, once for all variants
pub enum DevstackError {
    /// A binary or a user the servers need is missing.
    #[error("{what} not found: {hint}")]
    NotFound { what: &'static str, hint: String },
    /// A file-system or process operation failed.
    #[error("cannot {action}: {source}")]
    Io {
        action: String,
        source: std::io::Error,
    },
    /// The server kept running but did not answer before the deadline.
    #[error("{what} did not become ready within {secs}s; last log lines:\n{log}")]
    NotReady {
        what: &'static str,
        secs: u64,
        log: String,
    },
    /// The server exited before it was ready (a bad setting, or its port taken meanwhile).
    #[error("{what} exited {status} while starting; last log lines:\n{log}")]
    Exited {
        what: &'static str,
        status: std::process::ExitStatus,
        log: String,
    },
    /// A helper program (initdb, psql, chown) failed.
    #[error("{what} failed: {detail}")]
    Failed { what: &'static str, detail: String },
}

pub(crate) fn io(action: impl Into<String>) -> impl FnOnce(std::io::Error) -> DevstackError {
    let action = action.into();
    move |source| DevstackError::Io { action, source }
}

/// How often a server on a port of [`free_port`]'s is started before giving up. The port is free
/// when picked, but any process may bind it before the server does; the server then exits at once,
/// and another port is worth a try.
pub const PORT_ATTEMPTS: u32 = 3;

/// A TCP port that was free a moment ago on 127.0.0.1, picked at random below the kernel's
/// ephemeral range. The kernel hands ports of that range to every outgoing connection, so a port
/// `bind(0)` picked could become some client socket's before our server binds it (seen: a service
/// of a deploy test refused `Address already in use` while other tests made connections). Below the
/// range, only another picker's guess can take it, one chance in thousands.
pub fn free_port() -> Result<u16, DevstackError> {
    const FLOOR: u16 = 10_000;
    let low = ephemeral_low().unwrap_or(32_768);
    if low > FLOOR + 1_000 {
        for _ in 0..64 {
            let mut bytes = [0u8; 2];
            getrandom::fill(&mut bytes).map_err(|e| DevstackError::Failed {
                what: "getrandom",
                detail: e.to_string(),
            })?;
            let port = FLOOR + u16::from_le_bytes(bytes) % (low - FLOOR);
            if TcpListener::bind(("127.0.0.1", port)).is_ok() {
                return Ok(port);
            }
        }
    }
    let l = TcpListener::bind("127.0.0.1:0").map_err(io("bind a free port"))?;
    Ok(l.local_addr().map_err(io("read a free port"))?.port())
}

/// The first port of the kernel's ephemeral range (`ip_local_port_range`), if it can be read.
fn ephemeral_low() -> Option<u16> {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The user to run as, when we are root and the server refuses root (Postgres).
#[derive(Clone, Copy, Debug)]
pub(crate) struct RunAs {
    pub uid: u32,
    pub gid: u32,
}

impl RunAs {
    /// `Some(postgres user)` when running as root, `None` otherwise.
    pub(crate) fn unprivileged_if_root() -> Result<Option<RunAs>, DevstackError> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Ok(None);
        }
        let name = c"postgres";
        // SAFETY: getpwnam takes a NUL-terminated string; the result is read at once, before any
        // other call that could reuse its static buffer.
        let pw = unsafe { libc::getpwnam(name.as_ptr()) };
        if pw.is_null() {
            return Err(DevstackError::NotFound {
                what: "user postgres",
                hint: "Postgres refuses to run as root; install Debian's postgresql package (it creates the user)".into(),
            });
        }
        // SAFETY: pw is non-null and points to a valid passwd record.
        let (uid, gid) = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
        Ok(Some(RunAs { uid, gid }))
    }

    /// Gives `path` (and everything in it) to this user.
    pub(crate) fn chown(&self, path: &Path) -> Result<(), DevstackError> {
        let status = Command::new("chown")
            .arg("-R")
            .arg(format!("{}:{}", self.uid, self.gid))
            .arg(path)
            .status()
            .map_err(io("run chown"))?;
        if !status.success() {
            return Err(DevstackError::Failed {
                what: "chown",
                detail: format!("{} exited {status}", path.display()),
            });
        }
        Ok(())
    }
}

/// Prepares `cmd` to write its output to `log`, to run as `run_as` (if any), and to receive
/// `death_signal` when the process that started it dies.
pub(crate) fn configure(
    cmd: &mut Command,
    run_as: Option<RunAs>,
    log: &Path,
    death_signal: i32,
) -> Result<(), DevstackError> {
    let out = File::options()
        .create(true)
        .append(true)
        .open(log)
        .map_err(io(format!("open {}", log.display())))?;
    let err = out.try_clone().map_err(io("clone a log handle"))?;
    cmd.stdin(Stdio::null()).stdout(out).stderr(err);
    let parent = std::process::id();
    // SAFETY: between fork and exec only async-signal-safe calls (setgroups, setgid, setuid, prctl,
    // getppid) run, and nothing allocates: the error values are raw OS errors.
    unsafe {
        cmd.pre_exec(move || {
            if let Some(u) = run_as
                && (libc::setgroups(0, std::ptr::null()) != 0
                    || libc::setgid(u.gid) != 0
                    || libc::setuid(u.uid) != 0)
            {
                return Err(std::io::Error::last_os_error());
            }
            // After the uid change, which clears it: the server dies with its parent even when
            // the parent is killed -9 and runs no destructor (a test process under nextest).
            if libc::prctl(libc::PR_SET_PDEATHSIG, death_signal) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died before prctl; then no signal will ever come.
            if libc::getppid() as u32 != parent {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
    Ok(())
}

type SpawnRequest = (Command, mpsc::Sender<std::io::Result<Child>>);

/// Spawns `cmd` from a thread that lives as long as the process. The kernel's parent-death signal
/// fires when the *thread* that forked the child exits, so children must not be forked from runtime
/// threads that come and go.
pub(crate) fn spawn(cmd: Command) -> std::io::Result<Child> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    let sender = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("devstack-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .expect("spawn the spawner thread");
        Mutex::new(tx)
    });
    let (tx, rx) = mpsc::channel();
    sender
        .lock()
        .expect("spawner lock")
        .send((cmd, tx))
        .map_err(|_| std::io::Error::other("spawner gone"))?;
    rx.recv()
        .map_err(|_| std::io::Error::other("spawner gone"))?
}

/// Sends `signal` to `child`.
pub(crate) fn signal(child: &Child, signal: i32) {
    // SAFETY: kill has no memory preconditions; the pid is our own child's.
    unsafe {
        libc::kill(child.id() as libc::pid_t, signal);
    }
}

/// Signals `child`, waits up to `grace` for it to exit, then kills it.
pub(crate) async fn stop(child: &mut Child, sig: i32, grace: Duration) {
    signal(child, sig);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// [`stop`] for `Drop`, which cannot await: blocks the thread for at most `grace`.
pub(crate) fn stop_blocking(child: &mut Child, sig: i32, grace: Duration) {
    if sig != libc::SIGKILL {
        signal(child, sig);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The last lines of a log file, for error messages.
pub(crate) fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// FNV-1a: a stable short name for a path (not for security).
pub(crate) fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// Finds `name` on PATH.
pub(crate) fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

/// Waits until `ready` says the server serves, failing early when it exits and late when the
/// deadline passes.
pub(crate) async fn wait_ready<F, Fut>(
    what: &'static str,
    log: &Path,
    deadline: Duration,
    child: &mut Child,
    mut ready: F,
) -> Result<(), DevstackError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let until = Instant::now() + deadline;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(DevstackError::Exited {
                what,
                status,
                log: tail(log),
            });
        }
        if ready().await {
            return Ok(());
        }
        if Instant::now() > until {
            return Err(DevstackError::NotReady {
                what,
                secs: deadline.as_secs(),
                log: tail(log),
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
