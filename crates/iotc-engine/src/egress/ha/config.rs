//! Settings of the Home Assistant egress: discovery, the state topic and device availability.
//! Everything is off by default; IoTC's own topics never change.

use std::time::Duration;

use crate::egress::config::parse_flag;

#[derive(clap::Args, Debug, Clone)]
pub struct HaArgs {
    /// Publishes Home Assistant MQTT discovery configs for every onboarded device (implies
    /// IOTC_STATE_TOPIC and IOTC_DEVICE_AVAILABILITY).
    #[arg(long, env = "IOTC_HA_DISCOVERY", value_parser = parse_flag, action = clap::ArgAction::Set, default_value = "false")]
    pub ha_discovery: bool,

    /// Discovery prefix Home Assistant listens on.
    #[arg(
        long,
        env = "IOTC_HA_DISCOVERY_PREFIX",
        default_value = "homeassistant"
    )]
    pub ha_discovery_prefix: String,

    /// Publishes a retained JSON object of the latest value of every key per device.
    #[arg(long, env = "IOTC_STATE_TOPIC", value_parser = parse_flag, action = clap::ArgAction::Set, default_value = "false")]
    pub state_topic: bool,

    /// The state topic; `<ID>` = EURID (MQTT_TOPIC_PREFIX applies).
    #[arg(long, env = "SENSOR_STATE", default_value = "sensor/<ID>/state")]
    pub sensor_state: String,

    /// Publishes retained `online`/`offline` per device, from the rhythm it keeps.
    #[arg(long, env = "IOTC_DEVICE_AVAILABILITY", value_parser = parse_flag, action = clap::ArgAction::Set, default_value = "false")]
    pub device_availability: bool,

    /// The availability topic of a device.
    #[arg(
        long,
        env = "SENSOR_AVAILABILITY",
        default_value = "sensor/<ID>/availability"
    )]
    pub sensor_availability: String,

    /// Button events (`{"event_type":"press"}`); `<BUTTON>` = the button name.
    #[arg(
        long,
        env = "SENSOR_ACTION",
        default_value = "sensor/<ID>/action/<BUTTON>"
    )]
    pub sensor_action: String,

    /// Command topic actuator entities publish to (the control egress reads it).
    #[arg(long, env = "IOTC_HA_COMMAND_TOPIC", default_value = "sensor/<ID>/set")]
    pub ha_command_topic: String,

    /// Shortest availability timeout, seconds.
    #[arg(long, env = "IOTC_AVAILABILITY_MIN_SECONDS", default_value_t = 900,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub availability_min_seconds: u64,

    /// Longest availability timeout, seconds; also the timeout before an interval is known.
    #[arg(long, env = "IOTC_AVAILABILITY_MAX_SECONDS", default_value_t = 86_400,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub availability_max_seconds: u64,

    /// The timeout is this many times the device's usual interval (between min and max).
    #[arg(long, env = "IOTC_AVAILABILITY_FACTOR", default_value_t = 3.0)]
    pub availability_factor: f64,
}

impl HaArgs {
    pub fn any(&self) -> bool {
        self.ha_discovery || self.state_topic || self.device_availability
    }

    pub fn state_on(&self) -> bool {
        self.ha_discovery || self.state_topic
    }

    pub fn availability_on(&self) -> bool {
        self.ha_discovery || self.device_availability
    }

    /// The timeout bounds (min, max), max raised to min when given below it.
    pub fn bounds(&self) -> (Duration, Duration) {
        let min = Duration::from_secs(self.availability_min_seconds);
        let max = Duration::from_secs(self.availability_max_seconds).max(min);
        (min, max)
    }

    pub fn factor(&self) -> f64 {
        if self.availability_factor.is_finite() && self.availability_factor >= 1.0 {
            self.availability_factor
        } else {
            3.0
        }
    }
}

/// Topic templates of the Home Assistant egress, MQTT_TOPIC_PREFIX applied.
#[derive(Debug, Clone)]
pub struct HaTopics {
    pub discovery_prefix: String,
    state: String,
    availability: String,
    action: String,
    command: String,
    /// The engine's own availability (`system/availability`).
    pub system_availability: String,
    /// IoTC's telemetry topic (diagnostic entities read the RSSI there).
    telemetry: String,
}

impl HaTopics {
    pub fn new(args: &HaArgs, topics: &crate::egress::Topics, prefix: &str) -> HaTopics {
        let p = |t: &str| format!("{prefix}{}", t.trim());
        HaTopics {
            discovery_prefix: args.ha_discovery_prefix.trim().trim_end_matches('/').into(),
            state: p(&args.sensor_state),
            availability: p(&args.sensor_availability),
            action: p(&args.sensor_action),
            command: p(&args.ha_command_topic),
            system_availability: topics.availability(),
            telemetry: topics.sensor_telemetry("<ID>"),
        }
    }

    pub fn state(&self, id: &str) -> String {
        self.state.replace("<ID>", id)
    }

    pub fn availability(&self, id: &str) -> String {
        self.availability.replace("<ID>", id)
    }

    pub fn action(&self, id: &str, button: &str) -> String {
        self.action.replace("<ID>", id).replace("<BUTTON>", button)
    }

    pub fn command(&self, id: &str) -> String {
        self.command.replace("<ID>", id)
    }

    pub fn telemetry(&self, id: &str) -> String {
        self.telemetry.replace("<ID>", id)
    }

    /// `<prefix>/<component>/<node>/<object>/config`.
    pub fn config(&self, component: &str, id: &str, object: &str) -> String {
        format!(
            "{}/{component}/iotc_{id}/{object}/config",
            self.discovery_prefix
        )
    }
}
