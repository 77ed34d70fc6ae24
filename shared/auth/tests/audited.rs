//! Making a key, revoking it and refusing one are events in the store, of tenant `_system`; a flood
//! of refusals makes at most one event per reason and minute, counting the rest.

use quorum_auth::{AUTH_REFUSED, Authenticator, KEY_CREATED, KEY_REVOKED, Role, create, revoke};
use quorum_domain::TenantId;
use serde_json::Value;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

/// (tenant, stream, data) of every event of type `ty`, in order.
async fn events(pool: &PgPool, ty: &str) -> anyhow::Result<Vec<(String, String, Value)>> {
    let rows: Vec<(String, String, Vec<u8>)> = sqlx::query_as(
        "SELECT tenant, stream_id, data FROM events WHERE type = $1 ORDER BY position",
    )
    .bind(ty)
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|(tenant, stream, data)| Ok((tenant, stream, serde_json::from_slice(&data)?)))
        .collect()
}

#[tokio::test]
async fn key_creation_and_revocation_are_recorded_without_the_secret() -> anyhow::Result<()> {
    let db = quorum_testkit::postgres().await.fresh_db().await?;
    let made = create(
        &db.pool,
        &TenantId::new("acme")?,
        &[Role::Publisher],
        Some("ci"),
    )
    .await?;
    let created = events(&db.pool, KEY_CREATED).await?;
    assert_eq!(created.len(), 1);
    let (tenant, stream, data) = &created[0];
    assert_eq!(tenant, "_system");
    assert_eq!(stream, &format!("auth-key/{}", made.id));
    assert_eq!(data["tenant"], "acme");
    assert_eq!(data["prefix"], made.prefix.as_str());
    assert_eq!(data["roles"], serde_json::json!(["publisher"]));
    // The key reads `qk_<prefix>_<secret>`, and the secret's alphabet has `_` in it too.
    let secret = made.key.splitn(3, '_').nth(2).unwrap();
    assert!(secret.len() >= 40, "{secret}");
    assert!(!data.to_string().contains(secret), "the secret is recorded");

    assert!(revoke(&db.pool, &made.prefix).await?);
    assert!(!revoke(&db.pool, &made.prefix).await?);
    let revoked = events(&db.pool, KEY_REVOKED).await?;
    assert_eq!(revoked.len(), 1, "one revocation, one event");
    assert_eq!(revoked[0].1, format!("auth-key/{}", made.id));
    assert_eq!(revoked[0].2["key_id"], made.id.to_string());
    Ok(())
}

#[tokio::test]
async fn refused_authentications_are_recorded_at_a_bounded_rate() -> anyhow::Result<()> {
    let db = quorum_testkit::postgres().await.fresh_db().await?;
    let auth = Authenticator::start(db.pool.clone(), CancellationToken::new());
    let unknown = format!("Bearer qk_0123456789ab_{}", "B".repeat(43));
    const FLOOD: u64 = 200;
    for _ in 0..FLOOD {
        assert!(auth.authenticate(Some(&unknown)).await.is_err());
    }
    assert!(auth.authenticate(None).await.is_err());

    let refused = events(&db.pool, AUTH_REFUSED).await?;
    let unknowns: Vec<&Value> = refused
        .iter()
        .filter(|(_, _, d)| d["reason"] == "unknown")
        .map(|(_, _, d)| d)
        .collect();
    // One per minute: two if the flood straddled a minute's turn.
    assert!(
        (1..=2).contains(&unknowns.len()),
        "{} events for {FLOOD} refusals",
        unknowns.len()
    );
    assert_eq!(unknowns[0]["refusals"], 1);
    assert_eq!(unknowns[0]["key_prefix"], "0123456789ab");
    let counted: u64 = unknowns
        .iter()
        .map(|d| d["refusals"].as_u64().unwrap())
        .sum();
    assert!(counted <= FLOOD);
    assert!(
        refused
            .iter()
            .all(|(tenant, stream, _)| tenant == "_system" && stream == "auth/refused")
    );
    assert_eq!(
        refused
            .iter()
            .filter(|(_, _, d)| d["reason"] == "missing")
            .count(),
        1
    );
    Ok(())
}
