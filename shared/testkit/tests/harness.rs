//! The harness itself: real servers, isolated databases, waiting.

use std::time::Duration;

use quorum_testkit::{DEADLINE, wait_until};

#[tokio::test]
async fn fresh_databases_are_migrated_and_independent() -> anyhow::Result<()> {
    let pg = quorum_testkit::postgres().await;
    let (a, b) = (pg.fresh_db().await?, pg.fresh_db().await?);
    assert_ne!(a.name, b.name);
    sqlx::query("CREATE TABLE only_in_a (x int)")
        .execute(&a.pool)
        .await?;
    let in_b: Option<String> = sqlx::query_scalar("SELECT to_regclass('only_in_a')::text")
        .fetch_one(&b.pool)
        .await?;
    assert_eq!(in_b, None);
    let events: Option<String> = sqlx::query_scalar("SELECT to_regclass('events')::text")
        .fetch_one(&b.pool)
        .await?;
    assert_eq!(events.as_deref(), Some("events"));
    Ok(())
}

#[tokio::test]
async fn nats_restarts_on_the_same_url_and_dies_on_drop() -> anyhow::Result<()> {
    let mut nats = quorum_testkit::nats().await?;
    let url = nats.url();
    let client = async_nats::connect(&url).await?;
    async_nats::jetstream::new(client.clone())
        .query_account()
        .await?;
    nats.stop().await?;
    nats.start_again().await?;
    assert_eq!(nats.url(), url);
    wait_until("client reconnects", DEADLINE, || async {
        client.connection_state() == async_nats::connection::State::Connected
    })
    .await?;
    let port = nats.port();
    drop(nats);
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "server still listening"
    );
    Ok(())
}

#[tokio::test]
async fn nats_survives_a_kill_with_its_streams() -> anyhow::Result<()> {
    let mut nats = quorum_testkit::nats().await?;
    let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await?);
    js.create_stream(async_nats::jetstream::stream::Config {
        name: "KEPT".into(),
        subjects: vec!["kept.>".into()],
        ..Default::default()
    })
    .await?;
    nats.kill();
    assert_eq!(nats.pid(), None);
    nats.start_again().await?;
    let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await?);
    js.get_stream("KEPT").await?;
    Ok(())
}

#[tokio::test]
async fn wait_until_hands_back_what_it_waited_for() -> anyhow::Result<()> {
    let mut polls = 0;
    let found = wait_until("the third poll", DEADLINE, || {
        polls += 1;
        let now = polls;
        async move { (now >= 3).then_some(now) }
    })
    .await?;
    assert_eq!(found, 3);
    Ok(())
}

#[tokio::test]
async fn wait_until_names_what_never_happened() {
    let err = wait_until("pigs to fly", Duration::from_millis(100), || async {
        false
    })
    .await
    .expect_err("pigs do not fly");
    assert!(err.to_string().contains("pigs to fly"), "{err}");
}
