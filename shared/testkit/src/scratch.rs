//! Scratch directories for test servers, and removing those of test processes that have ended.
//!
//! nextest runs every test in a process of its own, and a test process exits without running static
//! destructors, so nothing of a test process can clean up after it: a Postgres copy is ~40 MB, and
//! hundreds of them pile up in the temp dir. Instead each process holds an exclusive `flock` on a
//! file in each of its directories for as long as it lives (the kernel drops it when the process
//! dies, even under SIGKILL), and every new test process removes the directories whose lock it can
//! take. A lock works across PID namespaces, where a "is that pid alive" check would not.

use std::fs::{File, TryLockError};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, Once};
use std::time::{Duration, SystemTime};

const PREFIX: &str = "quorum-test-";
/// Directories are made under this prefix and renamed once locked, so the sweeper never sees one
/// that is not locked yet.
const NASCENT: &str = ".quorum-nascent-";
const LOCK: &str = "owner.lock";
/// Directories from before the lock (no lock file) are removed only when this old, so that a test
/// built from an older checkout and still running keeps its own.
const LEGACY_AGE: Duration = Duration::from_secs(3600);

/// A new directory under the system temp dir, readable by others (Postgres may run as another user),
/// removed by a later test process once this one has ended.
pub(crate) fn scratch_dir(what: &str) -> anyhow::Result<PathBuf> {
    static SWEEP: Once = Once::new();
    // Held, never released: the locks must live exactly as long as the process.
    static LOCKS: Mutex<Vec<File>> = Mutex::new(Vec::new());

    let base = std::env::temp_dir();
    SWEEP.call_once(|| sweep(&base));
    let id = format!(
        "{what}-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    );
    let nascent = base.join(format!("{NASCENT}{id}"));
    std::fs::create_dir(&nascent)?;
    std::fs::set_permissions(&nascent, std::fs::Permissions::from_mode(0o755))?;
    let lock = File::create(nascent.join(LOCK))?;
    lock.lock()?;
    let dir = base.join(format!("{PREFIX}{id}"));
    std::fs::rename(&nascent, &dir)?;
    LOCKS.lock().unwrap_or_else(|e| e.into_inner()).push(lock);
    Ok(dir)
}

/// Removes the scratch directories of ended test processes. Best effort: a directory another user
/// owns, or one that another sweeper is removing, is left alone.
fn sweep(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !(name.starts_with(PREFIX) || name.starts_with(NASCENT)) {
            continue;
        }
        let dir = entry.path();
        match File::open(dir.join(LOCK)) {
            Ok(lock) => match lock.try_lock() {
                // Holding the lock while removing keeps other sweepers off this directory.
                Ok(()) => remove(&dir),
                Err(TryLockError::WouldBlock) | Err(TryLockError::Error(_)) => {}
            },
            // A nascent directory without its lock file is being made right now, or its maker
            // died at once; only age tells them apart.
            Err(_) if older_than(&dir, LEGACY_AGE) => remove(&dir),
            Err(_) => {}
        }
    }
}

fn remove(dir: &Path) {
    if let Err(e) = std::fs::remove_dir_all(dir)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::debug!(dir = %dir.display(), error = %e, "cannot remove an old scratch dir");
    }
}

fn older_than(dir: &Path, age: Duration) -> bool {
    std::fs::symlink_metadata(dir)
        .and_then(|m| m.modified())
        .is_ok_and(|t| {
            SystemTime::now()
                .duration_since(t)
                .is_ok_and(|elapsed| elapsed > age)
        })
}
