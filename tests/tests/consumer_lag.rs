//! A durable consumer's lag against a real JetStream: how many messages it has not finished and
//! the age of the oldest, before it reads them, while they await their acks, and once acked; and
//! looked at from a consumer info older than the stream's contents.

use std::time::Duration;

use async_nats::jetstream::{consumer, stream};
use futures::StreamExt;
use quorum_runtime::consumer::lag::lag;

#[tokio::test]
async fn lag_counts_unfinished_messages_and_ages_the_oldest() -> anyhow::Result<()> {
    let nats = quorum_testkit::nats().await?;
    let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await?);
    let stream = js
        .create_stream(stream::Config {
            name: "LAG".into(),
            subjects: vec!["lag.>".into()],
            ..Default::default()
        })
        .await?;
    let durable = stream
        .create_consumer(consumer::pull::Config {
            durable_name: Some("worker".into()),
            filter_subject: "lag.work".into(),
            ack_policy: consumer::AckPolicy::Explicit,
            ..Default::default()
        })
        .await?;
    let info = stream.consumer_info("worker").await?;
    assert_eq!(lag(&stream, &info).await?.messages, 0);
    assert_eq!(lag(&stream, &info).await?.oldest, None);

    // One message for another consumer, then three for this one.
    js.publish("lag.other", "x".into()).await?.await?;
    for i in 0..3 {
        js.publish("lag.work", format!("{i}").into()).await?.await?;
    }
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let before = lag(&stream, &stream.consumer_info("worker").await?).await?;
    assert_eq!(before.messages, 3, "{before:?}");
    let oldest = before.oldest.expect("an age");
    assert!(oldest >= Duration::from_secs(1), "{before:?}");
    assert!(oldest < Duration::from_secs(600), "{before:?}");

    // Delivered and not yet acked: still unfinished.
    let mut batch = durable.fetch().max_messages(3).messages().await?;
    let mut delivered = Vec::new();
    while let Some(m) = batch.next().await {
        delivered.push(m.map_err(|e| anyhow::anyhow!(e))?);
    }
    assert_eq!(delivered.len(), 3);
    let unacked = lag(&stream, &stream.consumer_info("worker").await?).await?;
    assert_eq!(unacked.messages, 3, "{unacked:?}");
    // Looked at from a consumer info read before the message just past its floor was removed (as
    // a work queue drops what is acknowledged): the first message still stored after it is aged.
    let stale = stream.consumer_info("worker").await?;
    assert!(
        stream
            .delete_message(stale.ack_floor.stream_sequence + 1)
            .await?
    );
    let after_removal = lag(&stream, &stale).await?;
    assert_eq!(after_removal.messages, 3, "{after_removal:?}");
    assert!(after_removal.oldest.is_some(), "{after_removal:?}");
    for m in &delivered {
        m.double_ack().await.map_err(|e| anyhow::anyhow!(e))?;
    }
    let done = lag(&stream, &stream.consumer_info("worker").await?).await?;
    assert_eq!((done.messages, done.oldest), (0, None), "{done:?}");
    // And from one read before everything after the floor went: nothing is left to age.
    stream.purge().await?;
    let gone = lag(&stream, &stale).await?;
    assert_eq!(gone.oldest, None, "{gone:?}");
    Ok(())
}
