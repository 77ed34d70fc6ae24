//! The auditors' export over HTTP: the auditor role only, the key's tenant only, every chained
//! event in chain order with its hash, as JSON lines or CSV.

use bytes::Bytes;
use quorum_auth::Role;
use quorum_domain::{Event, StreamId, TenantId, types};
use quorum_event_store::{EventStore, ExpectedVersion};
use quorum_runtime::{Readiness, Shutdown};

#[tokio::test]
async fn export_is_for_auditors_of_the_tenant_only() -> anyhow::Result<()> {
    let db = quorum_testkit::postgres().await.fresh_db().await?;
    let store = EventStore::new(db.pool.clone());
    for (tenant, n) in [("acme", 30), ("other", 5)] {
        let stream = StreamId::new("thing", tenant)?;
        let events: Vec<_> = (0..n)
            .map(|i| {
                let mut e = Event::new(
                    "/test",
                    "com.example.thing.happened",
                    stream.clone(),
                    TenantId::new(tenant).unwrap(),
                    Bytes::from(format!("{{\"n\":{i}}}")),
                );
                e.correlationid = Some(format!("corr-{tenant}"));
                e
            })
            .collect();
        store.append(&stream, ExpectedVersion::Any, &events).await?;
    }
    while quorum_audit::chainer::step(&db.pool, 1000, types::AUDIT_CHECKPOINT)
        .await?
        .links
        > 0
    {}

    let shutdown = Shutdown::new();
    let config = quorum_audit::config::AuditConfig {
        http_addr: "127.0.0.1:0".parse()?,
        ..Default::default()
    };
    let running =
        quorum_audit::start(&config, db.pool.clone(), &shutdown, &Readiness::new()).await?;
    let base = format!("http://{}/v1/audit/export", running.http_addr);
    let acme = TenantId::new("acme")?;
    let auditor = quorum_auth::create(&db.pool, &acme, &[Role::Auditor], None)
        .await?
        .key;
    let publisher = quorum_auth::create(&db.pool, &acme, &[Role::Publisher], None)
        .await?
        .key;
    let http = quorum_http_client::client();

    assert_eq!(http.get(&base).send().await?.status(), 401);
    assert_eq!(
        http.get(&base)
            .bearer_auth(&publisher)
            .send()
            .await?
            .status(),
        403
    );

    let body = http.get(&base).bearer_auth(&auditor).send().await?;
    assert_eq!(body.status(), 200);
    let text = body.text().await?;
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    assert_eq!(lines.len(), 30, "acme's events only");
    assert!(lines.iter().all(|l| l["event"]["tenant"] == "acme"));
    let seqs: Vec<i64> = lines.iter().map(|l| l["seq"].as_i64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "in chain order");
    assert!(
        lines
            .iter()
            .all(|l| l["hash"].as_str().is_some_and(|h| h.len() == 64))
    );

    // Another tenant's correlation id finds nothing; CSV has a header and one row per event.
    let other = http
        .get(&base)
        .bearer_auth(&auditor)
        .query(&[("correlation_id", "corr-other")])
        .send()
        .await?
        .text()
        .await?;
    assert!(other.is_empty());
    let csv = http
        .get(&base)
        .bearer_auth(&auditor)
        .query(&[("format", "csv"), ("correlation_id", "corr-acme")])
        .send()
        .await?
        .text()
        .await?;
    assert_eq!(csv.lines().count(), 31);
    assert!(csv.starts_with("seq,position,hash,"));
    assert_eq!(
        http.get(&base)
            .bearer_auth(&auditor)
            .query(&[("format", "xml")])
            .send()
            .await?
            .status(),
        400
    );
    shutdown.cancel();
    Ok(())
}
