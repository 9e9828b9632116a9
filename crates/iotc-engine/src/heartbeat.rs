//! Heartbeats the API's `/system/health` reads: `engine`, and `mqtt` (`running`, `disconnected`
//! or `disabled`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use iotc_core::ops::unix_seconds;
use iotc_core::redis::Redis;
use iotc_core::{health, keys};
use tracing::debug;

use crate::egress::Egress;

const EVERY: Duration = Duration::from_secs(10);
/// How often the MQTT state is looked at.
const CHECK: Duration = Duration::from_secs(1);
const TTL_S: u64 = 30;

/// `{"status":"<status>","timestamp":<unix s>}`.
pub fn value(status: &str, unix_s: u64) -> String {
    serde_json::json!({"status": status, "timestamp": unix_s}).to_string()
}

/// Writes the heartbeats every 10 s for ever, and at once when the MQTT state changes.
pub async fn run(mut redis: Redis, egress: Arc<Egress>) {
    let mut tick = tokio::time::interval(CHECK);
    let mut last: Option<(Instant, bool)> = None;
    loop {
        tick.tick().await;
        let connected = egress.connected();
        let due = match last {
            Some((at, was)) => at.elapsed() >= EVERY || was != connected,
            None => true,
        };
        if !due {
            continue;
        }
        let now = unix_seconds();
        let mut pipe = redis::pipe();
        pipe.set_ex(keys::heartbeat("engine"), value("running", now), TTL_S)
            .ignore();
        // The same words as the MQTT health message.
        let mqtt = health::mqtt_status(egress.mqtt_enabled(), connected);
        pipe.set_ex(keys::heartbeat("mqtt"), value(mqtt, now), TTL_S)
            .ignore();
        match pipe.query_async::<()>(&mut redis).await {
            Ok(()) => last = Some((Instant::now(), connected)),
            Err(e) => debug!(error = %e, "heartbeat not written"),
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
