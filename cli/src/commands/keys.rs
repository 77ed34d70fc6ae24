//! `quorum keys create|list|revoke`: API keys, straight in Postgres (an operator with database
//! access needs no key to make the first one).

use quorum_auth::Role;
use quorum_domain::TenantId;

use crate::outln;
use crate::stack::Target;

#[derive(Debug, Clone, clap::Subcommand)]
pub enum Keys {
    /// Make a key; it is printed once and only its hash is kept.
    #[command(after_help = crate::help::KEYS_CREATE)]
    Create {
        /// The tenant the key acts for: 1 to 64 of `a-z 0-9 _ -`, not starting with `_`.
        #[arg(long)]
        tenant: String,
        /// publisher, operator or auditor (repeat for several).
        #[arg(long = "role", required = true)]
        roles: Vec<Role>,
        /// A note on what the key is for.
        #[arg(long)]
        label: Option<String>,
    },
    /// Keys (never their secrets), of one tenant or all.
    #[command(after_help = crate::help::KEYS_LIST)]
    List {
        /// Only this tenant's keys.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Revoke a key by id or prefix; every ingest refuses it at once.
    #[command(after_help = crate::help::KEYS_REVOKE)]
    Revoke {
        /// The key's id or its prefix (`qk_…`), as `keys list` shows them.
        key: String,
    },
}

pub async fn run(target: &Target, keys: &Keys, json: bool) -> anyhow::Result<()> {
    let pool = target.connect_postgres().await?;
    quorum_event_store::migrate(&pool).await?;
    match keys {
        Keys::Create {
            tenant,
            roles,
            label,
        } => {
            let made = quorum_auth::create(
                &pool,
                &TenantId::new(tenant.clone())?,
                roles,
                label.as_deref(),
            )
            .await?;
            if json {
                outln!("{}", serde_json::to_string(&made)?)?;
            } else {
                outln!("{}", made.key)?;
                let roles: Vec<String> = made.roles.iter().map(ToString::to_string).collect();
                eprintln!(
                    "key {} (prefix {}) for tenant {} with {}; shown only now",
                    made.id,
                    made.prefix,
                    made.tenant,
                    roles.join(", ")
                );
            }
        }
        Keys::List { tenant } => {
            let tenant = tenant.clone().map(TenantId::new).transpose()?;
            let keys = quorum_auth::list(&pool, tenant.as_ref()).await?;
            if json {
                let keys = crate::times::normalized_json(serde_json::to_value(&keys)?);
                outln!("{keys}")?;
            } else {
                for k in keys {
                    outln!(
                        "{}  {}  {:<16} {:<28} {}{}",
                        k.id,
                        k.prefix,
                        k.tenant,
                        k.roles.join(","),
                        k.label.as_deref().unwrap_or("-"),
                        k.revoked_at
                            .map(|t| format!("  revoked {}", crate::times::rfc3339(t)))
                            .unwrap_or_default()
                    )?;
                }
            }
        }
        Keys::Revoke { key } => {
            anyhow::ensure!(
                quorum_auth::revoke(&pool, key).await?,
                "no live key with id or prefix {key}"
            );
            let stack_key = forget_stack_key_if_revoked(target, &pool).await?;
            if json {
                outln!(
                    "{}",
                    serde_json::json!({"revoked": key, "stack_key_removed": stack_key.is_some()})
                )?;
            } else {
                outln!("revoked {key}")?;
            }
            if let Some(path) = stack_key {
                eprintln!(
                    "that was the local stack's key: {} is removed so that nothing uses a dead key; \
                     make another with `quorum keys create --tenant default --role publisher --role operator --role auditor` \
                     and pass it with --api-key (or QUORUM_API_KEY)",
                    path.display()
                );
            }
        }
    }
    Ok(())
}

/// Removes the local stack's key file (`quorum up` keeps one for the other commands) when that key
/// is revoked, so that no command goes on presenting a dead key; the path removed, if any.
async fn forget_stack_key_if_revoked(
    target: &Target,
    pool: &sqlx::PgPool,
) -> anyhow::Result<Option<std::path::PathBuf>> {
    let path = target.data_dir.join(crate::api::API_KEY_FILE);
    let Ok(kept) = std::fs::read_to_string(&path) else {
        return Ok(None);
    };
    // A key reads `qk_<prefix>_<secret>`.
    let Some(prefix) = kept.trim().split('_').nth(1) else {
        return Ok(None);
    };
    let revoked = quorum_auth::list(pool, None)
        .await?
        .iter()
        .any(|k| k.prefix == prefix && k.revoked_at.is_some());
    if !revoked {
        return Ok(None);
    }
    std::fs::remove_file(&path)?;
    Ok(Some(path))
}
