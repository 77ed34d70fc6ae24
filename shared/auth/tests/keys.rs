//! Keys against a real Postgres: only hashes stored, every way of failing told apart, revocation
//! felt at once by an authenticator that had the key cached.

use quorum_auth::{AuthError, Authenticator, Role, create, list, revoke};
use quorum_domain::TenantId;
use quorum_testkit::{DEADLINE, wait_until};
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn a_key_authenticates_as_its_tenant_and_roles_and_only_its_hash_is_stored()
-> anyhow::Result<()> {
    let db = quorum_testkit::postgres().await.fresh_db().await?;
    let acme = TenantId::new("acme")?;
    let made = create(
        &db.pool,
        &acme,
        &[Role::Publisher, Role::Auditor],
        Some("ci"),
    )
    .await?;
    let auth = Authenticator::start(db.pool.clone(), CancellationToken::new());
    let who = auth
        .authenticate(Some(&format!("Bearer {}", made.key)))
        .await?;
    assert_eq!(who.tenant, acme);
    assert!(who.has(Role::Publisher) && who.has(Role::Auditor) && !who.has(Role::Operator));

    let row: String = sqlx::query_scalar("SELECT row_to_json(k)::text FROM api_keys k")
        .fetch_one(&db.pool)
        .await?;
    let secret = made.key.rsplit('_').next().unwrap();
    assert!(!row.contains(secret), "the secret is stored: {row}");
    let listed = list(&db.pool, Some(&acme)).await?;
    assert_eq!(listed.len(), 1);
    assert!(!serde_json_free(&listed[0]).contains(secret));
    assert!(
        list(&db.pool, Some(&TenantId::new("other")?))
            .await?
            .is_empty()
    );
    Ok(())
}

fn serde_json_free(info: &quorum_auth::KeyInfo) -> String {
    format!("{info:?}")
}

#[tokio::test]
async fn every_bad_credential_is_refused_for_its_reason() -> anyhow::Result<()> {
    let db = quorum_testkit::postgres().await.fresh_db().await?;
    let made = create(&db.pool, &TenantId::new("acme")?, &[Role::Publisher], None).await?;
    let auth = Authenticator::start(db.pool.clone(), CancellationToken::new());
    // Prime the cache, then try a wrong secret under the same prefix.
    auth.authenticate(Some(&format!("Bearer {}", made.key)))
        .await?;
    let forged = format!("qk_{}_{}", made.prefix, "A".repeat(43));
    for (header, expected) in [
        (None, "Missing"),
        (Some("Basic abc".to_owned()), "Malformed"),
        (Some("Bearer nonsense".to_owned()), "Malformed"),
        (Some(format!("Bearer {forged}")), "Unknown"),
        (
            Some(format!("Bearer qk_0123456789ab_{}", "B".repeat(43))),
            "Unknown",
        ),
    ] {
        let err = auth.authenticate(header.as_deref()).await.unwrap_err();
        assert_eq!(variant(&err), expected, "{header:?}");
    }
    Ok(())
}

fn variant(e: &AuthError) -> &'static str {
    match e {
        AuthError::Missing => "Missing",
        AuthError::Malformed => "Malformed",
        AuthError::Unknown => "Unknown",
        AuthError::Revoked => "Revoked",
        AuthError::Database(_) => "Database",
    }
}

#[tokio::test]
async fn a_revoked_key_is_refused_even_when_cached() -> anyhow::Result<()> {
    let db = quorum_testkit::postgres().await.fresh_db().await?;
    let made = create(&db.pool, &TenantId::new("acme")?, &[Role::Operator], None).await?;
    // Cached for an hour: within the test's deadline only the revocation notice can evict it.
    let auth = Authenticator::start_with_ttl(
        db.pool.clone(),
        std::time::Duration::from_secs(3600),
        CancellationToken::new(),
    );
    wait_until("the revocation listener", DEADLINE, || async {
        auth.caching()
    })
    .await?;
    let header = format!("Bearer {}", made.key);
    auth.authenticate(Some(&header)).await?;
    // Served from the cache now: the row is gone from under it and the key still authenticates.
    sqlx::query("ALTER TABLE api_keys RENAME TO api_keys_away")
        .execute(&db.pool)
        .await?;
    auth.authenticate(Some(&header)).await?;
    sqlx::query("ALTER TABLE api_keys_away RENAME TO api_keys")
        .execute(&db.pool)
        .await?;
    assert!(revoke(&db.pool, &made.prefix).await?);
    assert!(!revoke(&db.pool, &made.prefix).await?, "revoked once");
    assert!(!revoke(&db.pool, "000000000000").await?, "no such key");
    wait_until("the revoked key to be refused", DEADLINE, || async {
        matches!(
            auth.authenticate(Some(&header)).await,
            Err(AuthError::Revoked)
        )
    })
    .await?;
    // By id too.
    let other = create(&db.pool, &TenantId::new("acme")?, &[Role::Operator], None).await?;
    assert!(revoke(&db.pool, &other.id.to_string()).await?);
    Ok(())
}

#[tokio::test]
async fn reserved_tenants_get_no_keys() -> anyhow::Result<()> {
    let db = quorum_testkit::postgres().await.fresh_db().await?;
    let refused = create(&db.pool, &TenantId::system(), &[Role::Operator], None).await;
    let error = refused.expect_err("a key for _system").to_string();
    assert!(error.contains("reserved"), "{error}");
    let keys: i64 = sqlx::query_scalar("SELECT count(*) FROM api_keys")
        .fetch_one(&db.pool)
        .await?;
    assert_eq!(keys, 0);
    Ok(())
}
