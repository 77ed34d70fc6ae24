//! Confinement of path arguments to the workdir.

use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

/// Resolves `arg`, a path relative to `workdir`, and checks it stays beneath it.
///
/// `workdir` must already be canonical. Refused: empty paths, NUL bytes, absolute paths, any
/// `..` component, and existing symlinks along the way that resolve outside `workdir` (or
/// cannot be resolved). Components that do not exist yet are accepted, so output files can be
/// named. Returns the resolved path; the caller still passes `arg` itself to the program.
///
/// The check is done before the child starts, so a process that can write into the workdir
/// concurrently could swap a component for a symlink afterwards; the child's own confinement
/// (its uid and Landlock) is what bounds that.
pub fn resolve_path_arg(workdir: &Path, arg: &str) -> Result<PathBuf, String> {
    if arg.is_empty() {
        return Err("empty path".into());
    }
    if arg.contains('\0') {
        return Err("contains a NUL byte".into());
    }
    let rel = Path::new(arg);
    if rel.is_absolute() {
        return Err("absolute path".into());
    }
    let mut current = workdir.to_path_buf();
    let mut components = rel.components();
    for component in components.by_ref() {
        match component {
            Component::Normal(name) => current.push(name),
            Component::CurDir => continue,
            Component::ParentDir => return Err("contains a `..` component".into()),
            Component::RootDir | Component::Prefix(_) => return Err("absolute path".into()),
        }
        match fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => {
                current = fs::canonicalize(&current)
                    .map_err(|e| format!("unresolvable symlink {}: {e}", current.display()))?;
                if !current.starts_with(workdir) {
                    return Err(format!(
                        "symlink resolves outside the workdir to {}",
                        current.display()
                    ));
                }
            }
            Ok(_) => {}
            // Nothing below a missing component exists, so nothing below it can be a symlink.
            Err(e) if e.kind() == io::ErrorKind::NotFound => break,
            Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => break,
            Err(e) => return Err(format!("cannot inspect {}: {e}", current.display())),
        }
    }
    for component in components {
        match component {
            Component::Normal(name) => current.push(name),
            Component::CurDir => {}
            Component::ParentDir => return Err("contains a `..` component".into()),
            Component::RootDir | Component::Prefix(_) => return Err("absolute path".into()),
        }
    }
    if !current.starts_with(workdir) {
        return Err(format!(
            "resolves outside the workdir to {}",
            current.display()
        ));
    }
    Ok(current)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "quorum-sandbox-paths-{}-{name}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("sub")).unwrap();
        fs::write(dir.join("sub/file.txt"), "hi").unwrap();
        fs::canonicalize(dir).unwrap()
    }

    #[test]
    fn plain_relative_paths_resolve_inside() {
        let wd = scratch("plain");
        assert_eq!(
            resolve_path_arg(&wd, "sub/file.txt").unwrap(),
            wd.join("sub/file.txt")
        );
        assert_eq!(
            resolve_path_arg(&wd, "./sub/new/out.txt").unwrap(),
            wd.join("sub/new/out.txt")
        );
        assert_eq!(resolve_path_arg(&wd, ".").unwrap(), wd);
        fs::remove_dir_all(&wd).unwrap();
    }

    #[test]
    fn escapes_are_refused() {
        let wd = scratch("escape");
        symlink("/etc", wd.join("link")).unwrap();
        symlink("/nonexistent-target", wd.join("dangling")).unwrap();
        symlink("sub", wd.join("inner")).unwrap();
        for bad in [
            "",
            "../x",
            "sub/../../x",
            "sub/..",
            "/etc/passwd",
            "a\0b",
            "link/passwd",
            "link",
            "dangling/x",
        ] {
            assert!(resolve_path_arg(&wd, bad).is_err(), "{bad:?} was accepted");
        }
        assert_eq!(
            resolve_path_arg(&wd, "inner/file.txt").unwrap(),
            wd.join("sub/file.txt"),
            "a symlink that stays inside is fine"
        );
        fs::remove_dir_all(&wd).unwrap();
    }
}
