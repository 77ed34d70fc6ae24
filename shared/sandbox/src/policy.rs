//! What a sandboxed run may do: allowlists, limits and the identity it runs under.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The sandbox configuration, normally read from the service's TOML config.
///
/// Every field has a default, so a config only names what it changes; unknown keys are an
/// error so that a typo (e.g. `max_timout`) cannot silently fall back to a default.
/// Durations are given in seconds (integer or float).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    /// Absolute paths of the only programs that may be run. Compared after canonicalizing both
    /// sides, so `/bin/echo` also admits `/usr/bin/echo` on merged-/usr systems.
    pub allowed_programs: Vec<PathBuf>,
    /// Names of the variables a request may set. A request naming any other is refused.
    pub env_allowlist: BTreeSet<String>,
    /// `PATH` given to the child unless `PATH` is allowlisted and the request sets it.
    pub default_path: String,
    /// Timeout used when the request gives none.
    #[serde(deserialize_with = "secs", serialize_with = "to_secs")]
    pub default_timeout: Duration,
    /// Upper bound on any request's timeout.
    #[serde(deserialize_with = "secs", serialize_with = "to_secs")]
    pub max_timeout: Duration,
    /// Bytes kept of stdout and of stderr each; the rest is read and dropped.
    pub max_output_bytes: usize,
    pub limits: Limits,
    /// Whether a service running as root switches the child to `run_as`. Without it the
    /// kernel does not enforce `limits.processes` (root is exempt from RLIMIT_NPROC).
    pub drop_privileges: bool,
    pub run_as: RunAs,
    /// What happens where the kernel cannot contain the child: `strict` (the default) refuses
    /// to run it, `best_effort` runs it with whatever containment there is.
    pub mode: SandboxMode,
    /// Directories (read and execute beneath) and files (read and execute) the child may open
    /// besides its workdir and the program itself, under Landlock. The defaults hold the
    /// system's programs and libraries; a program kept elsewhere (e.g. `/opt/tool`) needs its
    /// directory here. Paths that do not exist are skipped.
    pub read_paths: Vec<PathBuf>,
}

/// How a run is contained, chosen by the operator.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SandboxMode {
    /// Reads and writes confined by Landlock and no network (a network namespace of its own),
    /// or the program does not run.
    #[default]
    Strict,
    /// Whatever the kernel allows; each run reports what applied. For machines without
    /// Landlock or namespaces, chosen explicitly.
    BestEffort,
}

impl SandboxMode {
    /// The name used in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Strict => "strict",
            Self::BestEffort => "best_effort",
        }
    }
}

/// The system's programs and libraries, and the few files the dynamic loader and libc read.
/// Not `/etc` as a whole (it may hold the service's own configuration), nor `/proc` (another
/// process's command line or environment), nor `/tmp`.
pub const DEFAULT_READ_PATHS: [&str; 10] = [
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/localtime",
];

impl Default for Policy {
    fn default() -> Self {
        Self {
            allowed_programs: Vec::new(),
            env_allowlist: BTreeSet::new(),
            default_path: "/usr/local/bin:/usr/bin:/bin".to_owned(),
            default_timeout: Duration::from_secs(30),
            max_timeout: Duration::from_secs(300),
            max_output_bytes: 1 << 20,
            limits: Limits::default(),
            drop_privileges: true,
            run_as: RunAs::default(),
            mode: SandboxMode::Strict,
            read_paths: DEFAULT_READ_PATHS.iter().map(PathBuf::from).collect(),
        }
    }
}

/// Resource limits set with `setrlimit` in the child; the core size is always 0.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// RLIMIT_CPU soft limit (SIGXCPU); the hard limit, one second later, is SIGKILL.
    pub cpu_secs: u64,
    /// RLIMIT_AS: allocations past this fail instead of growing.
    pub address_space_bytes: u64,
    /// RLIMIT_NOFILE.
    pub open_files: u64,
    /// RLIMIT_NPROC: counts every process of the child's uid on the machine, not just its own.
    pub processes: u64,
    /// RLIMIT_FSIZE: largest file the child may write.
    pub file_size_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            cpu_secs: 30,
            address_space_bytes: 1 << 30,
            open_files: 256,
            processes: 64,
            file_size_bytes: 64 << 20,
        }
    }
}

/// The unprivileged identity a root service runs children as.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunAs {
    pub uid: u32,
    pub gid: u32,
    /// Promise that only this sandbox, one run at a time, uses `uid`. Then every process of
    /// `uid` is killed after each run, which also catches children that escaped the process
    /// group and session with `setsid`. Never set it for a shared uid such as `nobody`.
    pub exclusive: bool,
}

impl Default for RunAs {
    fn default() -> Self {
        // nobody / nogroup on Debian.
        Self {
            uid: 65534,
            gid: 65534,
            exclusive: false,
        }
    }
}

fn to_secs<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

fn secs<'de, D: Deserializer<'de>>(de: D) -> Result<Duration, D::Error> {
    let secs = f64::deserialize(de)?;
    Duration::try_from_secs_f64(secs).map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_config_gives_defaults() {
        let p: Policy = toml::from_str("").unwrap();
        assert_eq!(p, Policy::default());
        assert!(
            p.allowed_programs.is_empty(),
            "nothing is allowed by default"
        );
        assert!(p.drop_privileges);
        assert_eq!(p.run_as.uid, 65534);
        assert_eq!(
            p.mode,
            SandboxMode::Strict,
            "fail closed unless told otherwise"
        );
    }

    #[test]
    fn the_weaker_mode_is_named_explicitly() {
        let p: Policy = toml::from_str(r#"mode = "best_effort""#).unwrap();
        assert_eq!(p.mode, SandboxMode::BestEffort);
        assert!(toml::from_str::<Policy>(r#"mode = "off""#).is_err());
    }

    #[test]
    fn partial_config_overrides_only_what_it_names() {
        let p: Policy = toml::from_str(
            r#"
            allowed_programs = ["/bin/echo"]
            env_allowlist = ["LANG"]
            max_timeout = 2.5
            [limits]
            processes = 20
            [run_as]
            uid = 64000
            gid = 64000
            "#,
        )
        .unwrap();
        assert_eq!(p.allowed_programs, vec![PathBuf::from("/bin/echo")]);
        assert!(p.env_allowlist.contains("LANG"));
        assert_eq!(p.max_timeout, Duration::from_millis(2500));
        assert_eq!(p.limits.processes, 20);
        assert_eq!(p.limits.cpu_secs, Limits::default().cpu_secs);
        assert_eq!(p.run_as.uid, 64000);
        assert!(!p.run_as.exclusive);
    }

    #[test]
    fn unknown_keys_and_negative_durations_are_rejected() {
        assert!(toml::from_str::<Policy>("max_timout = 3").is_err());
        assert!(toml::from_str::<Policy>("[limits]\nprocs = 3").is_err());
        assert!(toml::from_str::<Policy>("max_timeout = -1").is_err());
    }
}
