//! The one leader-election helper against a real Postgres: one leader at a time however many
//! compete, a leader that lets go is followed by another, and a term that panics ends the term,
//! not the loop.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use quorum_runtime::leader::{Election, still_leader};
use quorum_testkit::{DEADLINE, wait_until};

fn election() -> Election {
    Election {
        role: "test loop",
        lock: "quorum-test/leader".into(),
        retry: Duration::from_millis(20),
    }
}

#[derive(Default)]
struct Seen {
    leading: AtomicUsize,
    most_at_once: AtomicUsize,
    terms: [AtomicUsize; 3],
}

#[tokio::test]
async fn one_leader_at_a_time_and_each_competitor_leads_in_turn() -> anyhow::Result<()> {
    let db = quorum_testkit::postgres().await.fresh_db().await?;
    let seen = Arc::new(Seen::default());
    let shutdown = tokio_util::sync::CancellationToken::new();
    let mut loops = Vec::new();
    for who in 0..3 {
        let seen = seen.clone();
        loops.push(tokio::spawn(election().run(
            db.pool.clone(),
            shutdown.clone(),
            move |mut conn| {
                let seen = seen.clone();
                async move {
                    let now = seen.leading.fetch_add(1, Ordering::SeqCst) + 1;
                    seen.most_at_once.fetch_max(now, Ordering::SeqCst);
                    seen.terms[who].fetch_add(1, Ordering::SeqCst);
                    for _ in 0..5 {
                        still_leader(&mut conn).await?;
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    seen.leading.fetch_sub(1, Ordering::SeqCst);
                    // Let go: nothing more to do this term.
                    Ok(())
                }
            },
        )));
    }
    wait_until("every competitor to lead twice", DEADLINE, || async {
        seen.terms.iter().all(|t| t.load(Ordering::SeqCst) >= 2)
    })
    .await?;
    shutdown.cancel();
    for l in loops {
        l.await?;
    }
    assert_eq!(seen.most_at_once.load(Ordering::SeqCst), 1);
    Ok(())
}

#[tokio::test]
async fn a_term_that_panics_is_followed_by_another() -> anyhow::Result<()> {
    let db = quorum_testkit::postgres().await.fresh_db().await?;
    let terms = Arc::new(AtomicUsize::new(0));
    let shutdown = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn(election().run(db.pool.clone(), shutdown.clone(), {
        let terms = terms.clone();
        move |_conn| {
            let n = terms.fetch_add(1, Ordering::SeqCst);
            async move {
                if n == 0 {
                    panic!("a bug in the first term");
                }
                Ok(())
            }
        }
    }));
    wait_until("a second term after the panic", DEADLINE, || async {
        terms.load(Ordering::SeqCst) >= 2
    })
    .await?;
    shutdown.cancel();
    running.await?;
    Ok(())
}
