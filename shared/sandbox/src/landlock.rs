//! Best-effort Landlock confinement: the child may write only beneath its workdir.
//!
//! Written against the raw syscalls because `libc` has their numbers but no wrappers, and the
//! part run in the child must be plain syscalls anyway (async-signal-safe).

use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

const CREATE_RULESET_VERSION: u32 = 1;
const RULE_PATH_BENEATH: u32 = 1;

const WRITE_FILE: u64 = 1 << 1;
const REMOVE_DIR: u64 = 1 << 4;
const REMOVE_FILE: u64 = 1 << 5;
const MAKE_CHAR: u64 = 1 << 6;
const MAKE_DIR: u64 = 1 << 7;
const MAKE_REG: u64 = 1 << 8;
const MAKE_SOCK: u64 = 1 << 9;
const MAKE_FIFO: u64 = 1 << 10;
const MAKE_BLOCK: u64 = 1 << 11;
const MAKE_SYM: u64 = 1 << 12;
const REFER: u64 = 1 << 13; // ABI 2
const TRUNCATE: u64 = 1 << 14; // ABI 3

#[repr(C)]
struct RulesetAttr {
    handled_access_fs: u64,
}

// The kernel declares this struct packed.
#[repr(C, packed)]
struct PathBeneathAttr {
    allowed_access: u64,
    parent_fd: i32,
}

/// Builds, in the parent, a ruleset the child applies with [`restrict_self`].
///
/// Only write-like rights are handled, so reading and executing stay governed by ordinary
/// permissions. `Ok(None)` means the kernel has no Landlock (or it is disabled): the run goes
/// on unconfined and says so in its output.
pub(crate) fn prepare(workdir: &Path) -> io::Result<Option<OwnedFd>> {
    let abi = create_ruleset(None, CREATE_RULESET_VERSION);
    let abi = match abi {
        Ok(v) => v,
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOSYS | libc::EOPNOTSUPP)) => {
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    let mut handled = WRITE_FILE
        | REMOVE_DIR
        | REMOVE_FILE
        | MAKE_CHAR
        | MAKE_DIR
        | MAKE_REG
        | MAKE_SOCK
        | MAKE_FIFO
        | MAKE_BLOCK
        | MAKE_SYM;
    if abi >= 2 {
        handled |= REFER;
    }
    let mut file_rights = WRITE_FILE;
    if abi >= 3 {
        handled |= TRUNCATE;
        file_rights |= TRUNCATE;
    }
    let attr = RulesetAttr {
        handled_access_fs: handled,
    };
    let fd = create_ruleset(Some(&attr), 0)?;
    // SAFETY: a non-negative return of landlock_create_ruleset is a fresh fd that we own.
    #[allow(unsafe_code)]
    let ruleset = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
    add_rule(&ruleset, workdir, handled)?;
    // Many tools write diagnostics to /dev/null by path.
    add_rule(&ruleset, Path::new("/dev/null"), file_rights)?;
    Ok(Some(ruleset))
}

fn create_ruleset(attr: Option<&RulesetAttr>, flags: u32) -> io::Result<i64> {
    let (ptr, size) = match attr {
        Some(a) => (a as *const RulesetAttr, size_of::<RulesetAttr>()),
        None => (std::ptr::null(), 0),
    };
    // SAFETY: `ptr` is null or points to a live RulesetAttr of `size` bytes.
    #[allow(unsafe_code)]
    let ret = unsafe { libc::syscall(libc::SYS_landlock_create_ruleset, ptr, size, flags) };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn add_rule(ruleset: &OwnedFd, path: &Path, access: u64) -> io::Result<()> {
    let dir = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_CLOEXEC)
        .open(path)?;
    let attr = PathBeneathAttr {
        allowed_access: access,
        parent_fd: dir.as_raw_fd(),
    };
    // SAFETY: both fds are open for the duration of the call and `attr` outlives it.
    #[allow(unsafe_code)]
    let ret = unsafe {
        libc::syscall(
            libc::SYS_landlock_add_rule,
            ruleset.as_raw_fd(),
            RULE_PATH_BENEATH,
            &attr as *const PathBeneathAttr,
            0u32,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Applies the ruleset to the calling process. Runs between fork and exec, so it must only
/// make syscalls: no allocation, no locks.
pub(crate) fn restrict_self(ruleset: RawFd) -> io::Result<()> {
    // SAFETY: prctl and landlock_restrict_self are plain syscalls on integer arguments;
    // they are async-signal-safe and touch no memory of ours.
    #[allow(unsafe_code)]
    unsafe {
        // Required for unprivileged restrict_self, and it keeps setuid binaries from
        // regaining privileges inside the sandbox.
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            return Err(io::Error::last_os_error());
        }
        if libc::syscall(libc::SYS_landlock_restrict_self, ruleset, 0u32) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}
