//! Identity and selections are per tenant, against a real Postgres: the same source and id from two
//! tenants are two events, and a replay or export by a correlation id two tenants share is refused
//! unless it names the tenant.

use quorum_domain::{StreamId, TenantId};
use quorum_event_store::{EventStore, ExpectedVersion, Selection};

use crate::common;
use common::event;

async fn store() -> anyhow::Result<(EventStore, quorum_testkit::TestDb)> {
    let db = quorum_testkit::postgres().await.fresh_db().await?;
    Ok((EventStore::new(db.pool.clone()), db))
}

#[tokio::test]
async fn two_tenants_may_send_the_same_id_and_never_share_a_selection() -> anyhow::Result<()> {
    let (store, db) = store().await?;
    for tenant in ["acme", "other"] {
        let stream = StreamId::new(&format!("sub-{tenant}"), "orders/1")?;
        let mut e = event(&stream, "{}");
        e.tenant = Some(TenantId::new(tenant)?);
        e.id = "same-id".into();
        e.correlationid = Some("shared".into());
        let appended = store.append(&stream, ExpectedVersion::Any, &[e]).await?;
        assert!(
            !appended.events[0].duplicate,
            "{tenant}: not another tenant's duplicate"
        );
    }
    let both = Selection {
        correlation_id: Some("shared".into()),
        ..Selection::default()
    };
    let error = store
        .count_selected(&both, u64::MAX)
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("acme") && error.contains("other"), "{error}");
    let one = Selection {
        tenant: Some("acme".into()),
        ..both
    };
    assert_eq!(store.count_selected(&one, u64::MAX).await?, 1);
    drop(db);
    Ok(())
}
