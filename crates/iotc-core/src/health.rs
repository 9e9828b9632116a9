//! The one health vocabulary of `GET /system/health` (API) and the `system/health` MQTT message
//! (engine), so a client reading either sees the same words.

use serde::Serialize;

use crate::model::GatewayRecord;

/// A service answers (its heartbeat is fresh).
pub const RUNNING: &str = "running";
/// No heartbeat within its time to live.
pub const DOWN: &str = "down";
/// MQTT egress is on but the engine is not connected to the broker.
pub const DISCONNECTED: &str = "disconnected";
/// MQTT egress is off.
pub const DISABLED: &str = "disabled";
/// Nothing can be known (the API cannot read Redis).
pub const UNKNOWN: &str = "unknown";

/// Gateway: heard lately, the AP and its EnOcean USB sticks report healthy.
pub const HEALTHY: &str = "healthy";
/// Gateway: the AP reports `degraded`, or one of its USB sticks reports anything but healthy.
pub const DEGRADED: &str = "degraded";
/// Gateway: not heard for the gateway timeout.
pub const OFFLINE: &str = "offline";

/// The `mqtt` status the engine reports, in the API (through its heartbeat) and in MQTT alike.
pub fn mqtt_status(enabled: bool, connected: bool) -> &'static str {
    match (enabled, connected) {
        (false, _) => DISABLED,
        (true, true) => RUNNING,
        (true, false) => DISCONNECTED,
    }
}

/// One `gateway_info` entry, IoTC's `{mac, status, timestamp}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GatewayStatus {
    pub mac: String,
    pub status: String,
    /// When the gateway was last heard (traffic or health report), RFC 3339 UTC; empty if never.
    pub timestamp: String,
}

/// The status of a gateway at `now`: `offline` when not heard for `timeout_secs`, else the AP's
/// own status (`healthy`, `degraded`, `unavailable`, or `unknown` for a value this version does
/// not know), `degraded` when a USB stick is not healthy.
pub fn gateway_status(g: &GatewayRecord, now: u64, timeout_secs: u64) -> GatewayStatus {
    let last = g.last_seen.max(g.health_timestamp);
    let status = if last == 0 || now.saturating_sub(last) > timeout_secs {
        OFFLINE.to_string()
    } else if !g.ap_status.is_empty() && g.ap_status != HEALTHY {
        g.ap_status.clone()
    } else if g.usb.iter().any(|u| u.usb_health != HEALTHY) {
        DEGRADED.to_string()
    } else {
        HEALTHY.to_string()
    };
    GatewayStatus {
        mac: g.mac.clone(),
        status,
        timestamp: rfc3339(last),
    }
}

/// `2022-05-18T09:25:33Z` as IoTC's health message writes it; empty for 0 (never).
pub fn rfc3339(unix_s: u64) -> String {
    if unix_s == 0 {
        return String::new();
    }
    i64::try_from(unix_s)
        .ok()
        .and_then(|s| jiff::Timestamp::from_second(s).ok())
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::UsbHealth;

    #[test]
    fn gateway_states() {
        let mut g = GatewayRecord {
            mac: "a1b2c3d4e5f6".into(),
            last_seen: 1_000,
            ..Default::default()
        };
        let at = |g: &GatewayRecord, now| gateway_status(g, now, 300).status;
        assert_eq!(at(&g, 1_100), HEALTHY, "heard, no report yet");
        assert_eq!(
            gateway_status(&g, 1_100, 300).timestamp,
            "1970-01-01T00:16:40Z"
        );
        assert_eq!(at(&g, 1_400), OFFLINE);
        g.ap_status = "healthy".into();
        g.usb.push(UsbHealth {
            usb_identifier: "ENOCEAN_USB:x".into(),
            usb_health: "N/A".into(),
        });
        assert_eq!(at(&g, 1_100), DEGRADED, "the stick is gone");
        g.ap_status = "unavailable".into();
        assert_eq!(at(&g, 1_100), "unavailable", "the AP's own word");
        g.last_seen = 0;
        assert_eq!(gateway_status(&g, 1_100, 300).timestamp, "");
        assert_eq!(at(&g, 1_100), OFFLINE, "never heard");
    }

    #[test]
    fn mqtt_states() {
        assert_eq!(mqtt_status(false, false), "disabled");
        assert_eq!(mqtt_status(true, true), "running");
        assert_eq!(mqtt_status(true, false), "disconnected");
    }

    #[test]
    fn iotc_time_format() {
        assert_eq!(rfc3339(1_652_865_933), "2022-05-18T09:25:33Z");
    }
}
