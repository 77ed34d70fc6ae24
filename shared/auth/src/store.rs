//! Making, listing and revoking keys in Postgres.

use chrono::{DateTime, Utc};
use quorum_domain::TenantId;
use serde::Serialize;
use sqlx::{PgPool, Row};
use uuid::Uuid;

use crate::{REVOKED_CHANNEL, Role, audit, key};

/// A key just made: `key` is shown once and never again.
#[derive(Debug, Clone, Serialize)]
pub struct NewKey {
    pub id: Uuid,
    pub prefix: String,
    pub key: String,
    pub tenant: TenantId,
    pub roles: Vec<Role>,
}

/// A key as listed: no secret, no hash.
#[derive(Debug, Clone, Serialize)]
pub struct KeyInfo {
    pub id: Uuid,
    pub prefix: String,
    pub tenant: String,
    pub roles: Vec<String>,
    pub label: Option<String>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Makes a key for `tenant` with `roles` (at least one), recording `quorum.auth.key.created` in the
/// same transaction.
pub async fn create(
    pool: &PgPool,
    tenant: &TenantId,
    roles: &[Role],
    label: Option<&str>,
) -> Result<NewKey, sqlx::Error> {
    if roles.is_empty() {
        return Err(sqlx::Error::Protocol(
            "a key needs at least one role".into(),
        ));
    }
    // Names starting with `_` are Quorum's own (`_system` holds its audit records and the dead
    // letters of no tenant): a key for one would read and act as Quorum.
    if tenant.as_str().starts_with('_') {
        return Err(sqlx::Error::Protocol(format!(
            "tenant {tenant} is reserved: names starting with '_' are Quorum's own"
        )));
    }
    let mut roles = roles.to_vec();
    roles.sort_by_key(|r| r.as_str());
    roles.dedup();
    let (prefix, whole) =
        key::generate().map_err(|e| sqlx::Error::Io(std::io::Error::other(e.to_string())))?;
    let id = Uuid::now_v7();
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO api_keys (id, prefix, tenant, roles, hash, label) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(&prefix)
    .bind(tenant.as_str())
    .bind(roles.iter().map(|r| r.as_str()).collect::<Vec<_>>())
    .bind(key::hash(&whole))
    .bind(label)
    .execute(&mut *tx)
    .await?;
    audit::key_created(&mut tx, id, &prefix, tenant, &roles, label).await?;
    tx.commit().await?;
    Ok(NewKey {
        id,
        prefix,
        key: whole,
        tenant: tenant.clone(),
        roles,
    })
}

/// Every key, or one tenant's, oldest first.
pub async fn list(pool: &PgPool, tenant: Option<&TenantId>) -> Result<Vec<KeyInfo>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, prefix, tenant, roles, label, created_at, revoked_at FROM api_keys
         WHERE $1::text IS NULL OR tenant = $1 ORDER BY created_at, id",
    )
    .bind(tenant.map(TenantId::as_str))
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(KeyInfo {
                id: r.try_get("id")?,
                prefix: r.try_get("prefix")?,
                tenant: r.try_get("tenant")?,
                roles: r.try_get("roles")?,
                label: r.try_get("label")?,
                created_at: r.try_get("created_at")?,
                revoked_at: r.try_get("revoked_at")?,
            })
        })
        .collect()
}

/// Revokes the key with this id or prefix; false when no live key matched. Every process caching
/// it is told in the same transaction, so the notice goes out only if the revocation commits, and
/// `quorum.auth.key.revoked` is recorded with it.
pub async fn revoke(pool: &PgPool, id_or_prefix: &str) -> Result<bool, sqlx::Error> {
    let id = Uuid::parse_str(id_or_prefix).ok();
    let mut tx = pool.begin().await?;
    let row = sqlx::query(
        "UPDATE api_keys SET revoked_at = now()
         WHERE (id = $1 OR prefix = $2) AND revoked_at IS NULL RETURNING id, prefix, tenant",
    )
    .bind(id)
    .bind(id_or_prefix)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else {
        return Ok(false);
    };
    let prefix: String = row.try_get("prefix")?;
    audit::key_revoked(&mut tx, row.try_get("id")?, &prefix, row.try_get("tenant")?).await?;
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(REVOKED_CHANNEL)
        .bind(&prefix)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(true)
}
