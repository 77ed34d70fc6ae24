//! NATS least privilege against the real server with the shipped users and permissions
//! (docs/adr/0027): no anonymous client; an upstream system connects with its API key (answered by
//! ingest's auth callout) and may publish under its own tenant only; a service user is held to its
//! own subjects; a key made while everything runs works at once, and a revoked one cannot connect.

use async_nats::{ConnectErrorKind, ConnectOptions};
use quorum_auth::Role;
use quorum_bus::access::{self, ServiceUser};
use quorum_domain::TenantId;
use quorum_ingest::IngestConfig;
use quorum_runtime::config::Secret;
use quorum_runtime::{Readiness, Shutdown};
use quorum_testkit::{DEADLINE, SecureNats, wait_until};
use serde_json::json;
use tokio::sync::mpsc;

struct Stack {
    nats: SecureNats,
    db: quorum_testkit::TestDb,
    _shutdown: Shutdown,
}

/// Ingest as its own NATS user, with the auth callout on, once the callout answers.
async fn stack() -> anyhow::Result<Stack> {
    quorum_testkit::init_tracing();
    let nats = quorum_testkit::secure_nats().await?;
    let db = quorum_testkit::postgres().await.fresh_db().await?;
    let secret = |user: &str| nats.credentials.password(user).map(Secret::new);
    let mut config = IngestConfig::default();
    config.common.nats_url = nats.server.url();
    config.common.nats_user = Some(ServiceUser::Ingest.name().into());
    config.common.nats_password = secret(ServiceUser::Ingest.name());
    config.common.database_url = db.url.clone();
    config.http_addr = "127.0.0.1:0".parse()?;
    config.run_relay = false;
    config.nats_auth.issuer_seed = Some(Secret::new(nats.credentials.issuer_seed.clone()));
    config.nats_auth.password = secret(access::CALLOUT_USER);
    let shutdown = Shutdown::new();
    let readiness = Readiness::new();
    quorum_ingest::start(&config, &shutdown, &readiness).await?;
    wait_until("ingest to be ready", DEADLINE, || async {
        readiness.check().await.ready
    })
    .await?;
    Ok(Stack {
        nats,
        db,
        _shutdown: shutdown,
    })
}

impl Stack {
    async fn key(&self, tenant: &str, roles: &[Role]) -> anyhow::Result<String> {
        Ok(
            quorum_auth::create(&self.db.pool, &TenantId::new(tenant)?, roles, None)
                .await?
                .key,
        )
    }

    /// Connects as the Quorum user `user`, with its inbox prefix.
    async fn service(&self, user: ServiceUser) -> anyhow::Result<async_nats::Client> {
        let password = self.nats.credentials.password(user.name()).map(Secret::new);
        Ok(quorum_runtime::nats::connect(
            &self.nats.server.url(),
            Some(user.name()),
            password.as_ref(),
        )
        .await?)
    }

    /// Connects with an API key as the token, the inbox prefix of `tenant`, and a channel of the
    /// server's errors (a denied publish is one).
    async fn upstream(
        &self,
        key: &str,
        tenant: &str,
    ) -> Result<(async_nats::Client, mpsc::UnboundedReceiver<String>), async_nats::ConnectError>
    {
        let (tx, rx) = mpsc::unbounded_channel();
        let client = ConnectOptions::with_token(key.to_owned())
            .custom_inbox_prefix(access::tenant_inbox_prefix(&TenantId::new(tenant).unwrap()))
            .event_callback(move |event| {
                let tx = tx.clone();
                async move {
                    let _ = tx.send(event.to_string());
                }
            })
            .connect(self.nats.server.url())
            .await?;
        Ok((client, rx))
    }

    async fn stored(&self, tenant: &str) -> anyhow::Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT count(*) FROM events WHERE tenant = $1 AND type <> 'quorum.dlq.parked'",
        )
        .bind(tenant)
        .fetch_one(&self.db.pool)
        .await?)
    }
}

/// Waits for the server to report a permissions violation naming `subject`.
async fn denied(errors: &mut mpsc::UnboundedReceiver<String>, subject: &str) -> anyhow::Result<()> {
    let wait = async {
        while let Some(e) = errors.recv().await {
            if e.contains("Permissions Violation") && e.contains(subject) {
                return Ok(());
            }
        }
        anyhow::bail!("the connection closed before a violation on {subject}")
    };
    tokio::time::timeout(DEADLINE, wait)
        .await
        .map_err(|_| anyhow::anyhow!("no permissions violation on {subject}"))?
}

fn event(id: &str) -> bytes::Bytes {
    json!({"specversion": "1.0", "id": id, "source": "nats://upstream", "type": "com.example.reading", "data": {"v": 1}})
        .to_string()
        .into()
}

fn refused(result: Result<async_nats::Client, async_nats::ConnectError>) -> bool {
    matches!(&result, Err(e) if matches!(e.kind(), ConnectErrorKind::AuthorizationViolation | ConnectErrorKind::Authentication))
}

#[tokio::test]
async fn anonymous_clients_and_wrong_passwords_are_refused() -> anyhow::Result<()> {
    let stack = stack().await?;
    let url = stack.nats.server.url();
    assert!(refused(async_nats::connect(&url).await), "anonymous");
    let wrong = ConnectOptions::with_user_and_password("ingest".into(), "not-its-password".into())
        .connect(&url)
        .await;
    assert!(refused(wrong), "a service user with the wrong password");
    let not_a_key =
        ConnectOptions::with_token("qk_000000000000_notakeyatallnotakeyatallnotakeyatall".into())
            .connect(&url)
            .await;
    assert!(refused(not_a_key), "an unknown key");
    // The same server lets the right credentials in: the refusals above are not a dead server.
    stack.service(ServiceUser::Audit).await?;
    Ok(())
}

#[tokio::test]
async fn a_key_publishes_under_its_own_tenant_only() -> anyhow::Result<()> {
    let stack = stack().await?;
    let key = stack.key("acme", &[Role::Publisher]).await?;
    let (client, mut errors) = stack.upstream(&key, "acme").await?;
    let js = async_nats::jetstream::new(client.clone());
    // Its own subject: acknowledged by JetStream and stored as acme's.
    js.publish("quorum.ingest.acme.com.example.reading", event("own-1"))
        .await?
        .await?;
    wait_until("acme's event stored", DEADLINE, || async {
        stack.stored("acme").await.is_ok_and(|n| n == 1)
    })
    .await?;
    // Another tenant's subject, and committed history: refused by the server.
    for subject in [
        "quorum.ingest.globex.com.example.reading",
        "quorum.evt.acme.com.example.reading",
        "quorum.evt.globex.quorum.query.submitted",
    ] {
        client.publish(subject, event("forged")).await?;
        client.flush().await?;
        denied(&mut errors, subject).await?;
    }
    // A later message of its own is stored after those were refused; none of them reached a
    // stream.
    js.publish("quorum.ingest.acme.com.example.reading", event("own-2"))
        .await?
        .await?;
    wait_until("acme's second event stored", DEADLINE, || async {
        stack.stored("acme").await.is_ok_and(|n| n == 2)
    })
    .await?;
    assert_eq!(stack.stored("globex").await?, 0);
    let admin = async_nats::jetstream::new(stack.service(ServiceUser::Admin).await?);
    let events = admin
        .get_stream(quorum_bus::EVENTS_STREAM)
        .await?
        .get_info()
        .await?;
    assert_eq!(events.state.messages, 0, "nothing reached QUORUM_EVENTS");
    // Nor may it use the JetStream API (make a consumer and read the queue, say).
    client
        .publish("$JS.API.CONSUMER.CREATE.QUORUM_INGEST", "{}".into())
        .await?;
    client.flush().await?;
    denied(&mut errors, "$JS.API.CONSUMER.CREATE.QUORUM_INGEST").await?;
    // The key also works as the password, under the tenant's name.
    let as_password = ConnectOptions::with_user_and_password("acme".into(), key.clone())
        .connect(stack.nats.server.url())
        .await;
    assert!(as_password.is_ok(), "{:?}", as_password.err());
    Ok(())
}

#[tokio::test]
async fn a_service_user_is_held_to_its_own_subjects() -> anyhow::Result<()> {
    let stack = stack().await?;
    let (tx, mut errors) = mpsc::unbounded_channel();
    let password = stack
        .nats
        .credentials
        .password(ServiceUser::Consensus.name())
        .map(Secret::new);
    let consensus = quorum_runtime::nats::options(Some("consensus"), password.as_ref())
        .event_callback(move |event| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(event.to_string());
            }
        })
        .connect(stack.nats.server.url())
        .await?;
    // Its own durable consumer: allowed (so the refusals below are the permissions, not a
    // connection that can do nothing).
    let js = async_nats::jetstream::new(consensus.clone());
    let stream = js.get_stream(quorum_bus::EVENTS_STREAM).await?;
    stream
        .create_consumer(async_nats::jetstream::consumer::pull::Config {
            durable_name: Some("consensus".into()),
            filter_subject: "quorum.evt.*.quorum.expert.responded".into(),
            ..Default::default()
        })
        .await?;
    // Committed history, another consumer's API, a stream's config, an upstream tenant's subject.
    for subject in [
        "quorum.evt.acme.quorum.consensus.reached",
        "$JS.API.CONSUMER.MSG.NEXT.QUORUM_EVENTS.expert-fanout",
        "$JS.API.STREAM.UPDATE.QUORUM_EVENTS",
        "quorum.ingest.acme.com.example.reading",
    ] {
        consensus.publish(subject, "{}".into()).await?;
        consensus.flush().await?;
        denied(&mut errors, subject).await?;
    }
    // Nor may it read another user's inbox.
    let inbox = format!("{}.x", access::inbox_prefix("relay"));
    let _sub = consensus.subscribe(inbox.clone()).await?;
    consensus.flush().await?;
    denied(&mut errors, &inbox).await?;
    // The relay's user may publish history (the one that may).
    let relay = async_nats::jetstream::new(stack.service(ServiceUser::Relay).await?);
    let published = relay
        .publish("quorum.evt.acme.com.example.reading", event("r-1"))
        .await?
        .await?;
    // And a consumer reads a message of its stream by sequence (the age of its lag).
    stream.get_raw_message(published.sequence).await?;
    Ok(())
}

#[tokio::test]
async fn a_new_key_connects_at_once_and_a_revoked_key_cannot() -> anyhow::Result<()> {
    let stack = stack().await?;
    // Made while the server and ingest run: no restart, no config change.
    let key = stack.key("initech", &[Role::Publisher]).await?;
    let (client, _errors) = stack.upstream(&key, "initech").await?;
    async_nats::jetstream::new(client)
        .publish("quorum.ingest.initech.com.example.reading", event("i-1"))
        .await?
        .await?;
    // A key that may not publish cannot connect to NATS at all.
    let auditor = stack.key("initech", &[Role::Auditor]).await?;
    assert!(refused(
        stack.upstream(&auditor, "initech").await.map(|(c, _)| c)
    ));
    let prefix = key.split('_').nth(1).expect("qk_<prefix>_<secret>");
    assert!(quorum_auth::revoke(&stack.db.pool, prefix).await?);
    // The revocation reaches ingest's key cache through Postgres' notification, promptly but not
    // synchronously with the revoking transaction: wait for it.
    wait_until("the revoked key to be refused", DEADLINE, || async {
        refused(stack.upstream(&key, "initech").await.map(|(c, _)| c))
    })
    .await?;
    // And it stays refused.
    assert!(refused(
        stack.upstream(&key, "initech").await.map(|(c, _)| c)
    ));
    Ok(())
}
