//! The users of a local nats-server (`quorum up`, tests): the shipped configs' users and
//! permissions (`quorum_bus::access`), with passwords and an auth callout issuer key of this
//! stack's own, made on its first start and kept beside its data, readable by its owner only.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use quorum_bus::access::{self, ConfValue, ServerAuth, ServiceUser};
use serde::{Deserialize, Serialize};

use crate::process::{DevstackError, io};

/// Where [`NatsCredentials::load_or_create`] keeps them, in the stack's directory.
pub const CREDENTIALS_FILE: &str = "nats-credentials.json";
/// The server config written from them, in the same directory.
pub const SERVER_CONFIG_FILE: &str = "nats-auth.conf";

/// A password for every user of the server config, and the account seed that signs the auth
/// callout's answers. `Debug` shows neither.
#[derive(Clone, Serialize, Deserialize)]
pub struct NatsCredentials {
    /// User name to password: every [`ServiceUser`] and the callout's user.
    pub passwords: BTreeMap<String, String>,
    /// The issuer's account seed (`SA…`).
    pub issuer_seed: String,
}

impl fmt::Debug for NatsCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsCredentials")
            .field("users", &self.passwords.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

fn failed(detail: impl fmt::Display) -> DevstackError {
    DevstackError::Failed {
        what: "nats credentials",
        detail: detail.to_string(),
    }
}

fn random_password() -> Result<String, DevstackError> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).map_err(failed)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

impl NatsCredentials {
    /// Fresh passwords and a fresh issuer key.
    pub fn generate() -> Result<Self, DevstackError> {
        let mut passwords = BTreeMap::new();
        for user in ServiceUser::ALL
            .iter()
            .map(|u| u.name())
            .chain([access::CALLOUT_USER])
        {
            passwords.insert(user.to_owned(), random_password()?);
        }
        let issuer_seed = nkeys::KeyPair::new_account().seed().map_err(failed)?;
        Ok(Self {
            passwords,
            issuer_seed,
        })
    }

    /// The credentials kept in `dir`, made (mode 0600) on the first call.
    pub fn load_or_create(dir: &Path) -> Result<Self, DevstackError> {
        let path = dir.join(CREDENTIALS_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => {
                let read: Self = serde_json::from_slice(&bytes)
                    .map_err(|e| failed(format!("{}: {e}", path.display())))?;
                let missing = ServiceUser::ALL
                    .iter()
                    .map(|u| u.name())
                    .chain([access::CALLOUT_USER])
                    .find(|u| !read.passwords.contains_key(*u));
                if let Some(user) = missing {
                    return Err(failed(format!(
                        "{} has no password for {user}; remove the file to make new ones",
                        path.display()
                    )));
                }
                Ok(read)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let made = Self::generate()?;
                let json = serde_json::to_vec_pretty(&made).map_err(failed)?;
                write_private(&path, &json)?;
                Ok(made)
            }
            Err(e) => Err(io(format!("read {}", path.display()))(e)),
        }
    }

    /// The password of `user`.
    pub fn password(&self, user: &str) -> Option<&str> {
        self.passwords.get(user).map(String::as_str)
    }

    /// The issuer's public key (`A…`), the server config's `auth_callout.issuer`.
    pub fn issuer_public(&self) -> Result<String, DevstackError> {
        Ok(nkeys::KeyPair::from_seed(&self.issuer_seed)
            .map_err(failed)?
            .public_key())
    }

    /// The server config's `accounts` and `authorization` with these secrets written in.
    pub fn server_config(&self) -> Result<String, DevstackError> {
        let password = |user: &str| ConfValue::Literal(self.password(user).unwrap_or("").into());
        Ok(access::server_config(&ServerAuth {
            password: &password,
            issuer: ConfValue::Literal(self.issuer_public()?),
        }))
    }

    /// Writes [`Self::server_config`] to `dir` (mode 0600: it holds the passwords) for
    /// [`crate::NatsOptions::config_file`].
    pub fn server_config_file(&self, dir: &Path) -> Result<PathBuf, DevstackError> {
        let path = dir.join(SERVER_CONFIG_FILE);
        let _ = std::fs::remove_file(&path);
        write_private(&path, self.server_config()?.as_bytes())?;
        Ok(path)
    }
}

fn write_private(path: &Path, contents: &[u8]) -> Result<(), DevstackError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io(format!("create {}", parent.display())))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io(format!("create {}", path.display())))?;
    file.write_all(contents)
        .map_err(io(format!("write {}", path.display())))
}
