//! Tests of the admin server over real HTTP on a loopback port, against a real nats-server where
//! a connected client is needed.

use std::future::Future;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use tokio::task::JoinHandle;

use super::*;

struct Admin {
    base: String,
    http: reqwest::Client,
    shutdown: CancellationToken,
    server: JoinHandle<std::io::Result<()>>,
}

async fn spawn_admin(readiness: Readiness) -> Admin {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    let metrics = crate::metrics::install_recorder();
    let server = tokio::spawn(serve(listener, readiness, metrics, shutdown.clone()));
    Admin {
        base,
        http: quorum_http_client::client(),
        shutdown,
        server,
    }
}

impl Admin {
    async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
    }

    async fn readyz(&self) -> (StatusCode, Value) {
        let response = self.get("/readyz").await;
        (response.status(), response.json().await.unwrap())
    }
}

/// Polls `check` until it returns true, failing the test after `deadline`.
async fn eventually<F: Future<Output = bool>>(deadline: Duration, mut check: impl FnMut() -> F) {
    tokio::time::timeout(deadline, async {
        while !check().await {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("condition not met before the deadline");
}

#[tokio::test]
async fn livez_answers_and_shutdown_stops_the_server() {
    let admin = spawn_admin(Readiness::new()).await;

    let response = admin.get("/livez").await;
    assert_eq!(response.status(), StatusCode::OK);
    let (status, body) = admin.readyz().await;
    assert_eq!(status, StatusCode::OK, "no checks means ready: {body}");

    admin.shutdown.cancel();
    let stopped = tokio::time::timeout(Duration::from_secs(10), admin.server).await;
    stopped.expect("server stops on cancel").unwrap().unwrap();
}

#[tokio::test]
async fn readyz_follows_a_flag() {
    let readiness = Readiness::new();
    let bound = readiness.flag("consumer bound");
    let admin = spawn_admin(readiness.clone()).await;

    let (status, body) = admin.readyz().await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["ready"], false);
    assert_eq!(body["failing"], serde_json::json!(["consumer bound"]));
    assert_eq!(body["checks"][0]["kind"], "flag");

    bound.set(true);
    let (status, body) = admin.readyz().await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["failing"], serde_json::json!([]));
}

#[tokio::test]
async fn a_dead_vital_task_fails_livez_and_readyz() {
    let (readiness, shutdown) = (Readiness::new(), crate::Shutdown::new());
    readiness.flag("consumer bound").set(true);
    let admin = spawn_admin(readiness.clone()).await;
    assert_eq!(admin.get("/livez").await.status(), StatusCode::OK);

    crate::spawn_vital(&shutdown, &readiness, "consensus consumer", async {
        Err::<(), _>("consumer deleted on the server")
    });
    eventually(Duration::from_secs(30), || async {
        admin.get("/livez").await.status() == StatusCode::SERVICE_UNAVAILABLE
    })
    .await;
    let live = admin.get("/livez").await.text().await.unwrap();
    assert!(
        live.contains("consensus consumer: consumer deleted on the server"),
        "{live}"
    );
    let (status, body) = admin.readyz().await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["failing"], serde_json::json!(["consensus consumer"]));
    assert_eq!(body["checks"][1]["kind"], "task");
}

#[tokio::test]
async fn readyz_names_an_unreachable_postgres_and_nats() {
    let readiness = Readiness::new();
    // Nothing listens on port 1 of loopback: connecting is refused at once.
    let pool = sqlx::postgres::PgPoolOptions::new()
        .acquire_timeout(Duration::from_millis(200))
        .connect_lazy("postgres://quorum@127.0.0.1:1/quorum")
        .unwrap();
    readiness.add_postgres("postgres", pool);
    let client = async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .connect("nats://127.0.0.1:1")
        .await
        .unwrap();
    readiness.add_nats("nats", client);
    readiness.flag("consumer bound").set(true);
    let admin = spawn_admin(readiness).await;

    let (status, body) = admin.readyz().await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        body["failing"],
        serde_json::json!(["postgres", "nats"]),
        "{body}"
    );
    assert!(body["checks"][0]["error"].is_string(), "{body}");
    assert_eq!(body["checks"][2]["ok"], true);
}

#[tokio::test]
async fn readyz_follows_the_nats_connection() {
    let mut nats = NatsServer::start().await;
    let client = async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .connect(&nats.url)
        .await
        .unwrap();
    let readiness = Readiness::new();
    readiness.add_nats("nats", client);
    let admin = spawn_admin(readiness).await;

    eventually(Duration::from_secs(10), || async {
        admin.readyz().await.0 == StatusCode::OK
    })
    .await;

    nats.child.kill().await.unwrap();
    eventually(Duration::from_secs(10), || async {
        let (status, body) = admin.readyz().await;
        status == StatusCode::SERVICE_UNAVAILABLE && body["failing"] == serde_json::json!(["nats"])
    })
    .await;
}

#[tokio::test]
async fn metrics_serves_prometheus_text() {
    let admin = spawn_admin(Readiness::new()).await;
    ::metrics::counter!(crate::metrics::RELAY_PUBLISHED_TOTAL).increment(3);
    ::metrics::histogram!(crate::metrics::HANDLER_DURATION_SECONDS, "consumer" => "admin-test")
        .record(0.3);

    let response = admin.get("/metrics").await;
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()[reqwest::header::CONTENT_TYPE]
        .to_str()
        .unwrap();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let text = response.text().await.unwrap();
    assert!(text.contains("quorum_relay_published_total 3"), "{text}");
    // Recorded just before the scrape: the scrape's own upkeep put it in its bucket.
    assert!(
        text.contains(
            r#"quorum_handler_duration_seconds_bucket{consumer="admin-test",le="0.5"} 1"#
        ),
        "{text}"
    );
}

/// A nats-server of this test's own on a free loopback port, killed on drop.
struct NatsServer {
    child: tokio::process::Child,
    url: String,
}

impl NatsServer {
    async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let child = tokio::process::Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("nats-server must be on PATH for this test");
        Self {
            child,
            url: format!("nats://127.0.0.1:{port}"),
        }
    }
}
