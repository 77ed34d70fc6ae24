//! Authorization against a real Postgres that fails: the answer carries an error id, never the
//! database's words, and only a failure a retry can cure is a 503 with `Retry-After`.

use axum::http::{HeaderMap, HeaderValue, header};
use quorum_auth::{Authenticator, Role, create};
use quorum_domain::TenantId;
use tokio_util::sync::CancellationToken;

fn bearer(key: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {key}")).unwrap(),
    );
    headers
}

#[tokio::test]
async fn a_broken_schema_is_a_500_with_an_error_id_and_no_database_words() -> anyhow::Result<()> {
    let db = quorum_testkit::postgres().await.fresh_db().await?;
    let key = create(&db.pool, &TenantId::new("acme")?, &[Role::Auditor], None).await?;
    sqlx::query("ALTER TABLE api_keys RENAME COLUMN hash TO hash_renamed")
        .execute(&db.pool)
        .await?;
    let auth = Authenticator::start(db.pool.clone(), CancellationToken::new());
    let problem = quorum_http::authorize(&auth, &bearer(&key.key), &[Role::Auditor])
        .await
        .unwrap_err();
    assert_eq!(problem.status, 500, "{problem:?}");
    assert!(
        problem.retry_after.is_none(),
        "a permanent failure is not retried"
    );
    let body = serde_json::to_string(&problem)?;
    assert!(!body.contains("hash"), "the database's words leak: {body}");
    let id = problem.error_id.clone().expect("an error id");
    assert!(body.contains(&format!("\"error_id\":\"{id}\"")), "{body}");
    Ok(())
}

#[tokio::test]
async fn an_unreachable_database_is_a_503_with_retry_after_and_an_error_id() -> anyhow::Result<()> {
    let db = quorum_testkit::postgres().await.fresh_db().await?;
    let key = create(&db.pool, &TenantId::new("acme")?, &[Role::Auditor], None).await?;
    let auth = Authenticator::start(db.pool.clone(), CancellationToken::new());
    db.pool.close().await;
    let problem = quorum_http::authorize(&auth, &bearer(&key.key), &[Role::Auditor])
        .await
        .unwrap_err();
    assert_eq!(problem.status, 503, "{problem:?}");
    assert!(problem.retry_after.is_some());
    assert!(problem.error_id.is_some());
    let body = serde_json::to_string(&problem)?;
    assert!(
        !body.contains("closed"),
        "the database's words leak: {body}"
    );
    Ok(())
}
