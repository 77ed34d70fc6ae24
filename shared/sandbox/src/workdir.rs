//! Per-saga working directories.

use std::fs::{self, DirBuilder, Permissions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt, chown};
use std::path::{Path, PathBuf};

use crate::limits::is_root;
use crate::policy::Policy;

const MAX_NAME: usize = 64;

/// Creates (or reuses) `<root>/<sanitized saga_id>`, mode 0700, owned by the service.
///
/// Suits a service that does not drop privileges; see [`saga_workdir_for`] otherwise.
pub fn saga_workdir(root: &Path, saga_id: &str) -> io::Result<PathBuf> {
    make(root, saga_id, 0o700, None)
}

/// Like [`saga_workdir`], but when `policy` makes children drop privileges the directory is
/// given to the sandbox uid (mode 0755) so the child can write its outputs there.
pub fn saga_workdir_for(policy: &Policy, root: &Path, saga_id: &str) -> io::Result<PathBuf> {
    if policy.drop_privileges && is_root() {
        make(
            root,
            saga_id,
            0o755,
            Some((policy.run_as.uid, policy.run_as.gid)),
        )
    } else {
        saga_workdir(root, saga_id)
    }
}

/// Turns a saga id into one safe path component: `[A-Za-z0-9_-]` kept, anything else
/// replaced by `_`. When that changed the id, a hash of the original is appended so that
/// distinct ids (`a/b`, `a_b`) never share a workdir.
pub fn sanitize_saga_id(saga_id: &str) -> io::Result<String> {
    if saga_id.is_empty() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty saga id"));
    }
    let clean = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if saga_id.len() <= MAX_NAME && saga_id.chars().all(clean) {
        return Ok(saga_id.to_owned());
    }
    let mut name: String = saga_id
        .chars()
        .map(|c| if clean(c) { c } else { '_' })
        .take(MAX_NAME - 17)
        .collect();
    name.push('-');
    name.push_str(&format!("{:016x}", fnv1a(saga_id.as_bytes())));
    Ok(name)
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn make(root: &Path, saga_id: &str, mode: u32, owner: Option<(u32, u32)>) -> io::Result<PathBuf> {
    let dir = root.join(sanitize_saga_id(saga_id)?);
    fs::create_dir_all(root)?;
    match DirBuilder::new().mode(mode).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            // A symlink planted here would move the saga's files elsewhere.
            let meta = fs::symlink_metadata(&dir)?;
            if !meta.file_type().is_dir() {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} exists and is not a directory", dir.display()),
                ));
            }
        }
        Err(e) => return Err(e),
    }
    // The umask may have narrowed the mode given at creation; an old dir may differ.
    fs::set_permissions(&dir, Permissions::from_mode(mode))?;
    if let Some((uid, gid)) = owner {
        chown(&dir, Some(uid), Some(gid))?;
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn clean_ids_are_kept_and_others_are_made_safe_and_distinct() {
        assert_eq!(sanitize_saga_id("saga-42_a").unwrap(), "saga-42_a");
        let a = sanitize_saga_id("a/b").unwrap();
        let b = sanitize_saga_id("a_b").unwrap();
        assert_ne!(a, b);
        for id in ["..", ".", "../../etc", "x/../y", &"z".repeat(500)] {
            let s = sanitize_saga_id(id).unwrap();
            assert!(
                !s.contains('/') && !s.contains('.') && s.len() <= MAX_NAME,
                "{s}"
            );
        }
        assert!(sanitize_saga_id("").is_err());
    }

    #[test]
    fn creates_a_private_dir_under_root_and_reuses_it() {
        let root = std::env::temp_dir().join(format!("quorum-sandbox-wd-{}", std::process::id()));
        let dir = saga_workdir(&root, "../escape").unwrap();
        assert_eq!(dir.parent().unwrap(), root);
        assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
        assert_eq!(saga_workdir(&root, "../escape").unwrap(), dir);
        fs::remove_dir_all(&root).unwrap();
    }
}
