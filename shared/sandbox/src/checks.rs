//! Everything decided about a request before anything is spawned.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::error::ExecError;
use crate::paths::resolve_path_arg;
use crate::policy::Policy;
use crate::run::ExecRequest;

pub(crate) fn check_program(policy: &Policy, program: &str) -> Result<PathBuf, ExecError> {
    let refuse = |reason: String| ExecError::ProgramNotAllowed {
        program: program.to_owned(),
        reason,
    };
    if program.contains('\0') {
        return Err(refuse("contains a NUL byte".into()));
    }
    let path = Path::new(program);
    if !path.is_absolute() {
        return Err(refuse("not an absolute path".into()));
    }
    let canonical = fs::canonicalize(path).map_err(|e| refuse(format!("cannot resolve: {e}")))?;
    let allowed = policy
        .allowed_programs
        .iter()
        .filter(|p| p.is_absolute())
        .filter_map(|p| fs::canonicalize(p).ok())
        .any(|p| p == canonical);
    if !allowed {
        return Err(refuse(format!(
            "{} is not on the allowlist",
            canonical.display()
        )));
    }
    // Exec the resolved path so a symlink swapped after this check cannot redirect the run.
    Ok(canonical)
}

pub(crate) fn canonical_workdir(workdir: &Path) -> Result<PathBuf, ExecError> {
    let invalid = |source| ExecError::InvalidWorkdir {
        path: workdir.to_path_buf(),
        source,
    };
    let canonical = fs::canonicalize(workdir).map_err(invalid)?;
    if !canonical.is_dir() {
        return Err(invalid(std::io::Error::from_raw_os_error(libc::ENOTDIR)));
    }
    Ok(canonical)
}

pub(crate) fn check_path_args(workdir: &Path, req: &ExecRequest) -> Result<(), ExecError> {
    for &index in &req.path_args {
        let arg = req
            .args
            .get(index)
            .ok_or_else(|| ExecError::InvalidRequest {
                reason: format!(
                    "path_args names argument {index} but there are {}",
                    req.args.len()
                ),
            })?;
        resolve_path_arg(workdir, arg).map_err(|reason| ExecError::PathOutsideWorkdir {
            arg: arg.clone(),
            reason,
        })?;
    }
    Ok(())
}

pub(crate) fn build_env(
    policy: &Policy,
    env: &BTreeMap<String, String>,
) -> Result<Vec<(String, String)>, ExecError> {
    let mut out = Vec::with_capacity(env.len() + 1);
    for (name, value) in env {
        if !policy.env_allowlist.contains(name) {
            return Err(ExecError::EnvNotAllowed { name: name.clone() });
        }
        if name.is_empty() || name.contains(['=', '\0']) || value.contains('\0') {
            return Err(ExecError::InvalidRequest {
                reason: format!("malformed environment variable {name:?}"),
            });
        }
        out.push((name.clone(), value.clone()));
    }
    if !env.contains_key("PATH") {
        out.push(("PATH".to_owned(), policy.default_path.clone()));
    }
    Ok(out)
}
