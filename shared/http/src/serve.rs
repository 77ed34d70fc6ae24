//! Serving an API until shutdown: stop accepting, let requests in flight finish, return.

use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Serves `app` on `listener` until `shutdown`. `name` labels the log line if serving fails.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: CancellationToken,
    name: &'static str,
) {
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await;
    if let Err(e) = served {
        tracing::warn!(api = name, error = %e, "api stopped");
    }
}
