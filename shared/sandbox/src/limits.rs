//! What the child does to itself between fork and exec: new session, rlimits, a network
//! namespace of its own, no-new-privs, Landlock, and dropping to the unprivileged uid.

use std::io;
use std::os::fd::RawFd;

use crate::policy::Limits;

#[cfg(all(target_os = "linux", target_env = "gnu"))]
type Resource = libc::__rlimit_resource_t;
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
type Resource = libc::c_int;

/// Everything the child needs, computed in the parent so the child only makes syscalls.
/// `Copy` and free of heap data on purpose: nothing may allocate after fork.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChildSetup {
    rlimits: [(Resource, libc::rlimit); 6],
    /// `(uid, gid)` to switch to, when the service is root.
    creds: Option<(u32, u32)>,
    landlock: Option<RawFd>,
    /// `unshare` flags for a network namespace of its own; failing to make one fails the run.
    netns: Option<libc::c_int>,
}

impl ChildSetup {
    pub(crate) fn new(
        limits: &Limits,
        creds: Option<(u32, u32)>,
        landlock: Option<RawFd>,
        netns: Option<libc::c_int>,
    ) -> Self {
        let cpu = limit(
            libc::RLIMIT_CPU,
            limits.cpu_secs,
            limits.cpu_secs.saturating_add(1),
        );
        let same = |res, v| limit(res, v, v);
        Self {
            rlimits: [
                (libc::RLIMIT_CPU, cpu),
                (
                    libc::RLIMIT_AS,
                    same(libc::RLIMIT_AS, limits.address_space_bytes),
                ),
                (
                    libc::RLIMIT_NOFILE,
                    same(libc::RLIMIT_NOFILE, limits.open_files),
                ),
                (
                    libc::RLIMIT_NPROC,
                    same(libc::RLIMIT_NPROC, limits.processes),
                ),
                (
                    libc::RLIMIT_FSIZE,
                    same(libc::RLIMIT_FSIZE, limits.file_size_bytes),
                ),
                (libc::RLIMIT_CORE, same(libc::RLIMIT_CORE, 0)),
            ],
            creds,
            landlock,
            netns,
        }
    }

    /// Runs in the forked child before exec.
    ///
    /// Order matters: `setsid` first so the parent can kill the whole group by this pid;
    /// limits, the network namespace and Landlock while still privileged; `setgroups`,
    /// `setgid`, `setuid` last, in that order, because each later call removes the right to
    /// make the earlier ones. No-new-privs always: a setuid program the child runs must not
    /// regain what was dropped, and Landlock needs it.
    pub(crate) fn apply_in_child(&self) -> io::Result<()> {
        // SAFETY: only async-signal-safe syscalls (setsid, setrlimit, unshare, prctl) on data
        // already in this Copy struct; no allocation, locks or unwinding.
        #[allow(unsafe_code)]
        unsafe {
            if libc::setsid() == -1 {
                return Err(io::Error::last_os_error());
            }
            for (resource, lim) in &self.rlimits {
                if libc::setrlimit(*resource, lim) != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            if let Some(flags) = self.netns
                && libc::unshare(flags) != 0
            {
                return Err(io::Error::last_os_error());
            }
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        if let Some(fd) = self.landlock {
            crate::landlock::restrict_self(fd)?;
        }
        if let Some((uid, gid)) = self.creds {
            // SAFETY: as above; in the single-threaded child glibc's set*id are plain syscalls.
            #[allow(unsafe_code)]
            unsafe {
                if libc::setgroups(0, std::ptr::null()) != 0
                    || libc::setgid(gid) != 0
                    || libc::setuid(uid) != 0
                {
                    return Err(io::Error::last_os_error());
                }
            }
        }
        Ok(())
    }
}

/// Caps the wanted limit at the service's own hard limit, so that an unprivileged service
/// does not fail every spawn with EPERM for asking more than it has.
fn limit(resource: Resource, soft: u64, hard: u64) -> libc::rlimit {
    let ceiling = if is_root() {
        libc::RLIM_INFINITY
    } else {
        let mut current = libc::rlimit {
            rlim_cur: 0,
            rlim_max: libc::RLIM_INFINITY,
        };
        // SAFETY: getrlimit writes one rlimit into the live local we pass.
        #[allow(unsafe_code)]
        let ok = unsafe { libc::getrlimit(resource, &mut current) } == 0;
        if ok {
            current.rlim_max
        } else {
            libc::RLIM_INFINITY
        }
    };
    let hard = (hard as libc::rlim_t).min(ceiling);
    libc::rlimit {
        rlim_cur: (soft as libc::rlim_t).min(hard),
        rlim_max: hard,
    }
}

pub(crate) fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    #[allow(unsafe_code)]
    unsafe {
        libc::geteuid() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_hard_limit_is_one_second_past_soft_and_core_is_zero() {
        let limits = Limits {
            cpu_secs: 5,
            ..Limits::default()
        };
        let setup = ChildSetup::new(&limits, None, None, None);
        let (_, cpu) = setup.rlimits[0];
        assert_eq!((cpu.rlim_cur, cpu.rlim_max), (5, 6));
        let (res, core) = setup.rlimits[5];
        assert_eq!(res, libc::RLIMIT_CORE);
        assert_eq!((core.rlim_cur, core.rlim_max), (0, 0));
    }
}
