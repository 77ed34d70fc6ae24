//! Landlock confinement: the child reads only the program, the system's programs and libraries and
//! the read paths of its policy; it writes only beneath its workdir; where the kernel's ABI has
//! them, it opens no TCP connection, binds no TCP port, and signals nothing outside its domain.
//!
//! Written against the raw syscalls because `libc` has their numbers but no wrappers, and the
//! part run in the child must be plain syscalls anyway (async-signal-safe).

use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

const CREATE_RULESET_VERSION: u32 = 1;
const RULE_PATH_BENEATH: u32 = 1;

const EXECUTE: u64 = 1 << 0;
const WRITE_FILE: u64 = 1 << 1;
const READ_FILE: u64 = 1 << 2;
const READ_DIR: u64 = 1 << 3;
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

const NET_BIND_TCP: u64 = 1 << 0; // ABI 4
const NET_CONNECT_TCP: u64 = 1 << 1; // ABI 4

const SCOPE_ABSTRACT_UNIX_SOCKET: u64 = 1 << 0; // ABI 6
const SCOPE_SIGNAL: u64 = 1 << 1; // ABI 6

/// The rights a rule on a non-directory may carry; the kernel refuses others (EINVAL).
const FILE_RIGHTS: u64 = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE;

/// Devices programs commonly open by path. Readable, and `/dev/null` writable too.
const READ_DEVICES: [&str; 4] = ["/dev/null", "/dev/zero", "/dev/urandom", "/dev/random"];

/// Grows with the ABI: the kernel accepts a shorter struct from a caller that knows fewer fields,
/// so the size passed is the one this ABI knows (4: `handled_access_net`, 6: `scoped`).
#[repr(C)]
struct RulesetAttr {
    handled_access_fs: u64,
    handled_access_net: u64,
    scoped: u64,
}

// The kernel declares this struct packed.
#[repr(C, packed)]
struct PathBeneathAttr {
    allowed_access: u64,
    parent_fd: i32,
}

/// The kernel's Landlock ABI version, or `None` when it has no Landlock or it is disabled.
pub(crate) fn abi() -> io::Result<Option<u32>> {
    match create_ruleset(None, 0, CREATE_RULESET_VERSION) {
        Ok(v) => Ok(u32::try_from(v).ok()),
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOSYS | libc::EOPNOTSUPP)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// What a prepared ruleset enforces.
#[derive(Debug)]
pub(crate) struct Ruleset {
    pub(crate) fd: OwnedFd,
    /// Whether TCP connect and bind are refused (ABI 4 and later).
    pub(crate) tcp_denied: bool,
}

/// What the child may touch besides its workdir.
pub(crate) struct Allowed<'a> {
    pub(crate) workdir: &'a Path,
    /// The canonical program, readable and executable even outside `read_paths`.
    pub(crate) program: &'a Path,
    /// Readable and executable beneath (directories) or as themselves (files); missing ones are
    /// skipped, so one default list fits merged-/usr systems and others.
    pub(crate) read_paths: &'a [PathBuf],
}

/// Builds, in the parent, a ruleset the child applies with [`restrict_self`]. `Ok(None)` means
/// the kernel has no Landlock (or it is disabled).
pub(crate) fn prepare(allowed: &Allowed<'_>) -> io::Result<Option<Ruleset>> {
    let Some(abi) = abi()? else {
        return Ok(None);
    };
    let mut handled = EXECUTE
        | WRITE_FILE
        | READ_FILE
        | READ_DIR
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
    if abi >= 3 {
        handled |= TRUNCATE;
    }
    let (net, scoped, size) = match abi {
        1..=3 => (0, 0, size_of::<u64>()),
        4 | 5 => (NET_BIND_TCP | NET_CONNECT_TCP, 0, 2 * size_of::<u64>()),
        _ => (
            NET_BIND_TCP | NET_CONNECT_TCP,
            SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL,
            size_of::<RulesetAttr>(),
        ),
    };
    let attr = RulesetAttr {
        handled_access_fs: handled,
        handled_access_net: net,
        scoped,
    };
    let fd = create_ruleset(Some(&attr), size, 0)?;
    // SAFETY: a non-negative return of landlock_create_ruleset is a fresh fd that we own.
    #[allow(unsafe_code)]
    let fd = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };

    // Everything but executing: a step may write a file, but not then run it as a program.
    add_rule(&fd, allowed.workdir, handled & !EXECUTE)?;
    add_rule(&fd, allowed.program, (READ_FILE | EXECUTE) & handled)?;
    for path in allowed.read_paths {
        add_rule_if_present(&fd, path, (READ_FILE | READ_DIR | EXECUTE) & handled)?;
    }
    for device in READ_DEVICES {
        add_rule_if_present(&fd, Path::new(device), READ_FILE)?;
    }
    // Many tools write diagnostics to /dev/null by path, with O_TRUNC from a shell's `>`.
    add_rule(
        &fd,
        Path::new("/dev/null"),
        (WRITE_FILE | TRUNCATE) & handled,
    )?;
    // No network rule is added: with TCP handled, every connect and bind is refused.
    Ok(Some(Ruleset {
        fd,
        tcp_denied: net != 0,
    }))
}

fn create_ruleset(attr: Option<&RulesetAttr>, size: usize, flags: u32) -> io::Result<i64> {
    let ptr = attr.map_or(std::ptr::null(), |a| a as *const RulesetAttr);
    // SAFETY: `ptr` is null or points to a live RulesetAttr, of which the kernel reads at most
    // `size` bytes (never more than the struct's own size).
    #[allow(unsafe_code)]
    let ret = unsafe { libc::syscall(libc::SYS_landlock_create_ruleset, ptr, size, flags) };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn add_rule_if_present(ruleset: &OwnedFd, path: &Path, access: u64) -> io::Result<()> {
    match add_rule(ruleset, path, access) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

fn add_rule(ruleset: &OwnedFd, path: &Path, access: u64) -> io::Result<()> {
    let target = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_CLOEXEC)
        .open(path)?;
    let access = if target.metadata()?.is_dir() {
        access
    } else {
        access & FILE_RIGHTS
    };
    if access == 0 {
        return Ok(());
    }
    let attr = PathBeneathAttr {
        allowed_access: access,
        parent_fd: target.as_raw_fd(),
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
        let e = io::Error::last_os_error();
        return Err(io::Error::new(
            e.kind(),
            format!("landlock rule for {}: {e}", path.display()),
        ));
    }
    Ok(())
}

/// Applies the ruleset to the calling process, which must already have set no-new-privs. Runs
/// between fork and exec, so it must only make syscalls: no allocation, no locks.
pub(crate) fn restrict_self(ruleset: RawFd) -> io::Result<()> {
    // SAFETY: landlock_restrict_self is a plain syscall on integer arguments; it is
    // async-signal-safe and touches no memory of ours.
    #[allow(unsafe_code)]
    let ret = unsafe { libc::syscall(libc::SYS_landlock_restrict_self, ruleset, 0u32) };
    if ret != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
