//! Heartbeats the API's `/system/health` reads: `engine` always, `mqtt` when MQTT is on.

use std::sync::Arc;
use std::time::Duration;

use iotc_core::keys;
use iotc_core::ops::unix_seconds;
use redis::aio::ConnectionManager;
use tracing::debug;

use crate::egress::Egress;

const EVERY: Duration = Duration::from_secs(10);
const TTL_S: u64 = 30;

/// `{"status":"<status>","timestamp":<unix s>}`.
pub fn value(status: &str, unix_s: u64) -> String {
    serde_json::json!({"status": status, "timestamp": unix_s}).to_string()
}

/// Writes the heartbeats every 10 s for ever.
pub async fn run(mut redis: ConnectionManager, egress: Arc<Egress>) {
    let mut tick = tokio::time::interval(EVERY);
    loop {
        tick.tick().await;
        let now = unix_seconds();
        let mut pipe = redis::pipe();
        pipe.set_ex(keys::heartbeat("engine"), value("running", now), TTL_S)
            .ignore();
        if egress.mqtt_enabled() {
            let status = if egress.connected() {
                "running"
            } else {
                "disconnected"
            };
            pipe.set_ex(keys::heartbeat("mqtt"), value(status, now), TTL_S)
                .ignore();
        }
        if let Err(e) = pipe.query_async::<()>(&mut redis).await {
            debug!(error = %e, "heartbeat not written");
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn value_shape() {
        assert_eq!(
            super::value("running", 12),
            r#"{"status":"running","timestamp":12}"#
        );
    }
}
