//! MQTT topic names: IoTC's defaults, overridable with IoTC's variables, plus a global prefix.

use super::EgressArgs;

/// Topic templates with `<ID>` / `<MAC>` placeholders, prefix already applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    sensor_telemetry: String,
    sensor_event: String,
    sensor_stats: String,
    sensor_info: String,
    gateway_event: String,
    gateway_stats: String,
    system_health: String,
    availability: String,
}

impl Topics {
    pub fn from_args(args: &EgressArgs) -> Topics {
        let p = |t: &str| format!("{}{}", args.mqtt_topic_prefix, clean(t));
        Topics {
            sensor_telemetry: p(&args.sensor_telemetry),
            sensor_event: p(&args.sensor_event),
            sensor_stats: p(&args.sensor_stats),
            sensor_info: p(&args.sensor_info),
            gateway_event: p(&args.gateway_event),
            gateway_stats: p(&args.gateway_stats),
            system_health: p(&args.system_health),
            availability: p(&args.system_availability),
        }
    }

    pub fn sensor_telemetry(&self, id: &str) -> String {
        self.sensor_telemetry.replace("<ID>", id)
    }

    pub fn sensor_event(&self, id: &str) -> String {
        self.sensor_event.replace("<ID>", id)
    }

    pub fn sensor_stats(&self, id: &str) -> String {
        self.sensor_stats.replace("<ID>", id)
    }

    /// Retained metadata of one device (friendly name, location, EEP).
    pub fn sensor_info(&self, id: &str) -> String {
        self.sensor_info.replace("<ID>", id)
    }

    pub fn gateway_event(&self, mac: &str) -> String {
        self.gateway_event.replace("<MAC>", mac)
    }

    pub fn gateway_stats(&self, mac: &str) -> String {
        self.gateway_stats.replace("<MAC>", mac)
    }

    pub fn system_health(&self) -> String {
        self.system_health.clone()
    }

    /// Retained `online` / `offline` of this engine (the Last Will topic).
    pub fn availability(&self) -> String {
        self.availability.clone()
    }
}

/// A configured topic is used exactly as written, a trailing slash included: IoTC's topic table
/// writes `system/health/`, and a subscriber of that topic must get it. Only the surrounding
/// blanks of an environment variable are dropped.
fn clean(template: &str) -> &str {
    template.trim()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::egress::config::test_args;

    fn topics(args: &[&str]) -> Topics {
        Topics::from_args(&test_args(args))
    }

    #[test]
    fn iotc_defaults() {
        let t = topics(&[]);
        assert_eq!(t.sensor_telemetry("a1b2c3d4"), "sensor/a1b2c3d4/telemetry");
        assert_eq!(t.sensor_event("a1b2c3d4"), "sensor/a1b2c3d4/meta/event");
        assert_eq!(t.sensor_stats("a1b2c3d4"), "sensor/a1b2c3d4/meta/stats");
        assert_eq!(t.sensor_info("a1b2c3d4"), "sensor/a1b2c3d4/meta/info");
        assert_eq!(
            t.gateway_event("24f27fca1ba4"),
            "gateway/24f27fca1ba4/meta/event"
        );
        assert_eq!(
            t.gateway_stats("24f27fca1ba4"),
            "gateway/24f27fca1ba4/meta/stats"
        );
        assert_eq!(t.system_health(), "system/health");
        assert_eq!(t.availability(), "system/availability");
    }

    #[test]
    fn iotc_topic_table_with_trailing_slashes_is_used_exactly() {
        let t = topics(&[
            "--sensor-event",
            "sensor/<ID>/meta/event/",
            "--gateway-stats",
            "gateway/<MAC>/meta/stats/",
            "--system-health",
            " system/health/ ",
        ]);
        assert_eq!(t.sensor_event("a1b2c3d4"), "sensor/a1b2c3d4/meta/event/");
        assert_eq!(
            t.gateway_stats("24f27fca1ba4"),
            "gateway/24f27fca1ba4/meta/stats/"
        );
        assert_eq!(t.system_health(), "system/health/");
    }

    #[test]
    fn overrides_and_prefix() {
        let t = topics(&[
            "--sensor-telemetry",
            "devices/telegram/<ID>",
            "--gateway-stats",
            "ap/stats/<MAC>/",
            "--mqtt-topic-prefix",
            "site1/",
            "--system-health",
            "iotc/health",
        ]);
        assert_eq!(
            t.sensor_telemetry("01020304"),
            "site1/devices/telegram/01020304"
        );
        assert_eq!(
            t.gateway_stats("aabbccddeeff"),
            "site1/ap/stats/aabbccddeeff/",
            "a trailing slash is kept"
        );
        assert_eq!(t.system_health(), "site1/iotc/health");
        assert_eq!(
            t.sensor_event("01020304"),
            "site1/sensor/01020304/meta/event"
        );
    }
}
