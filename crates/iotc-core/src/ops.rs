//! Operations surface every service shares: logging, Redis URL handling, and the
//! `/healthz`, `/readyz` and `/metrics` routes.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Starts `tracing` output; `LOG_FORMAT=json` switches to JSON lines.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LOG_LEVEL")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let json = std::env::var("LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// IoTC sets `REDIS_URL=redis` (a bare host name). Accept that, `host:port`, and full
/// `redis://` / `rediss://` URLs.
pub fn redis_url(raw: &str) -> String {
    let raw = raw.trim();
    if raw.starts_with("redis://") || raw.starts_with("rediss://") || raw.starts_with("unix://") {
        raw.to_string()
    } else if raw.contains(':') {
        format!("redis://{raw}")
    } else {
        format!("redis://{raw}:6379")
    }
}

/// Installs the Prometheus recorder once per process and returns its handle.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: std::sync::OnceLock<PrometheusHandle> = std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .install_recorder()
                .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder().handle())
        })
        .clone()
}

/// An async readiness check: `Ok(())` when the service's dependencies are reachable.
pub type ReadyCheck =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync>;

#[derive(Clone)]
struct OpsState {
    metrics: PrometheusHandle,
    ready: ReadyCheck,
}

/// `/healthz` (process alive), `/readyz` (dependencies reachable) and `/metrics`.
pub fn ops_router(ready: ReadyCheck) -> Router {
    let state = OpsState {
        metrics: metrics_handle(),
        ready,
    };
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn readyz(State(state): State<OpsState>) -> (StatusCode, String) {
    match (state.ready)().await {
        Ok(()) => (StatusCode::OK, "ready".into()),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e),
    }
}

async fn metrics(State(state): State<OpsState>) -> String {
    state.metrics.render()
}

/// Unix time in seconds.
pub fn unix_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Unix time in milliseconds.
pub fn unix_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::redis_url;

    #[test]
    fn redis_url_forms() {
        assert_eq!(redis_url("redis"), "redis://redis:6379");
        assert_eq!(redis_url("localhost:6380"), "redis://localhost:6380");
        assert_eq!(redis_url("redis://h:1/2"), "redis://h:1/2");
    }
}
