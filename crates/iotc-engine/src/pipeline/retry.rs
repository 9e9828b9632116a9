//! Retrying Redis calls with the services' back-off until they succeed or the engine stops.

use std::time::Duration;

use iotc_core::backoff::Backoff;
use iotc_core::redis::Redis;
use tokio::sync::watch;
use tracing::warn;

/// Retries a Redis call until it succeeds; `None` on shutdown.
pub async fn redis<T, F, Fut>(
    redis: &Redis,
    shutdown: &mut watch::Receiver<bool>,
    what: &str,
    mut call: F,
) -> Option<T>
where
    F: FnMut(Redis) -> Fut,
    Fut: Future<Output = redis::RedisResult<T>>,
{
    let mut backoff = Backoff::default();
    loop {
        match call(redis.clone()).await {
            Ok(v) => return Some(v),
            Err(e) => {
                metrics::counter!("iotc_engine_redis_errors_total").increment(1);
                warn!(error = %e, "{what} failed; retrying");
            }
        }
        if *shutdown.borrow() {
            return None;
        }
        pause(shutdown, backoff.next_pause()).await;
    }
}

/// Sleeps `d`, or less when the engine is asked to stop.
pub async fn pause(shutdown: &mut watch::Receiver<bool>, d: Duration) {
    tokio::select! {
        _ = tokio::time::sleep(d) => {}
        _ = shutdown.changed() => {}
    }
}
