//! The live console's feed (docs/console.md). While a console watches, the API keeps
//! `iotc:live:watchers` alive with a short TTL; every message the engine published is then
//! also appended to the capped stream `iotc:live`. Nobody watching costs one EXISTS per
//! second at most, so throughput does not pay for the console.

use std::collections::HashMap;
use std::sync::Mutex;

use iotc_core::keys;
use iotc_core::ops::unix_millis;
use iotc_core::redis::Redis;
use redis::streams::StreamMaxlen;
use tracing::debug;

use crate::egress::OutMessage;

/// How often the watcher key is read, in milliseconds.
pub const CHECK_EVERY_MS: u64 = 1000;
/// Largest payload copied to the stream; larger messages are skipped (and counted).
pub const PAYLOAD_MAX: usize = 16 * 1024;

/// Whether a console watches, as last read, and when to read it again.
#[derive(Debug, Default)]
pub struct Gate {
    watched: bool,
    next_check_ms: u64,
}

impl Gate {
    /// Whether the watcher key must be read again at `now_ms`.
    pub fn due(&self, now_ms: u64) -> bool {
        now_ms >= self.next_check_ms
    }

    pub fn set(&mut self, watched: bool, now_ms: u64) {
        self.watched = watched;
        self.next_check_ms = now_ms + CHECK_EVERY_MS;
    }

    pub fn watched(&self) -> bool {
        self.watched
    }
}

static GATE: Mutex<Gate> = Mutex::new(Gate {
    watched: false,
    next_check_ms: 0,
});

/// Call after a batch's messages were confirmed. `heard` maps a device EURID to the gateway
/// whose copy of its telegram was kept; it is only walked while a console watches.
pub async fn after_publish<'a>(
    redis: &Redis,
    messages: &[OutMessage],
    heard: impl IntoIterator<Item = (&'a str, &'a str)>,
) {
    if messages.is_empty() || !watched(redis).await {
        return;
    }
    let gateways: HashMap<&str, &str> = heard.into_iter().collect();
    let mut pipe = redis::pipe();
    let now = unix_millis().to_string();
    let mut written = 0;
    for m in messages {
        if m.payload.len() > PAYLOAD_MAX {
            metrics::counter!("iotc_engine_live_skipped_total").increment(1);
            continue;
        }
        let gateway = sensor_id(&m.payload)
            .and_then(|id| gateways.get(id.as_str()).copied())
            .unwrap_or("");
        pipe.xadd_maxlen(
            keys::LIVE_STREAM,
            StreamMaxlen::Approx(keys::LIVE_MAXLEN),
            "*",
            &[
                ("topic", m.topic.as_bytes()),
                ("payload", &m.payload[..]),
                ("gateway", gateway.as_bytes()),
                ("time", now.as_bytes()),
            ],
        )
        .ignore();
        written += 1;
    }
    match pipe.query_async::<()>(&mut redis.clone()).await {
        Ok(()) => metrics::counter!("iotc_engine_live_entries_total").increment(written),
        Err(e) => {
            // The console misses these; publishing is not affected.
            metrics::counter!("iotc_engine_live_errors_total").increment(1);
            debug!(error = %e, "writing the live console stream failed");
        }
    }
}

/// Reads the watcher key when due; otherwise the last answer.
async fn watched(redis: &Redis) -> bool {
    let now = unix_millis();
    {
        let gate = GATE.lock().unwrap_or_else(|p| p.into_inner());
        if !gate.due(now) {
            return gate.watched();
        }
    }
    let exists = redis::cmd("EXISTS")
        .arg(keys::LIVE_WATCHERS)
        .query_async::<bool>(&mut redis.clone())
        .await
        .unwrap_or(false);
    GATE.lock()
        .unwrap_or_else(|p| p.into_inner())
        .set(exists, now);
    exists
}

/// `sensor.id` of a device message (telemetry or event); `None` for gateway events.
fn sensor_id(payload: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Msg {
        sensor: Sensor,
    }
    #[derive(serde::Deserialize)]
    struct Sensor {
        id: String,
    }
    serde_json::from_slice::<Msg>(payload)
        .ok()
        .map(|m| m.sensor.id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gate_reads_again_after_the_interval() {
        let mut g = Gate::default();
        assert!(g.due(5));
        g.set(true, 5);
        assert!(g.watched());
        assert!(!g.due(5 + CHECK_EVERY_MS - 1));
        assert!(g.due(5 + CHECK_EVERY_MS));
    }

    #[test]
    fn sensor_id_of_device_messages_only() {
        let telemetry = br#"{"sensor":{"id":"0190e2e1","eep":"a5-02-05"},"telemetry":{}}"#;
        assert_eq!(sensor_id(telemetry).as_deref(), Some("0190e2e1"));
        let gateway = br#"{"gateway_info":{"mac":"021a1e000001"}}"#;
        assert_eq!(sensor_id(gateway), None);
        assert_eq!(sensor_id(b"not json"), None);
    }
}
