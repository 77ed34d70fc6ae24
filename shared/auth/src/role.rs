//! Roles and the caller they describe.

use std::fmt;
use std::str::FromStr;

use quorum_domain::TenantId;
use serde::{Deserialize, Serialize};

/// What a key may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Sends events and queries.
    Publisher,
    /// Dead letters and replays.
    Operator,
    /// Reads and exports history.
    Auditor,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Publisher, Role::Operator, Role::Auditor];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Publisher => "publisher",
            Role::Operator => "operator",
            Role::Auditor => "auditor",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown role {s:?}: publisher, operator or auditor"))
    }
}

/// An authenticated caller: the key, its tenant and its roles.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub key_id: uuid::Uuid,
    pub tenant: TenantId,
    pub roles: Vec<Role>,
}

impl Principal {
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}
