//! Home Assistant MQTT discovery configs of one device: one HA device (the EnOcean device) with
//! one entity per field its profile sends, button events, diagnostics (RSSI, signal energy)
//! and, for actuators, command entities on the control topic (docs/home-assistant.md).

use enocean::eep::ha::{self, Component, Entity};
use enocean::eep::{self, Eep, Profile};
use iotc_core::model::EnOceanSensor;
use serde_json::{Map, Value, json};

use super::actuators;
use super::config::HaTopics;

/// Identifier of the iotc node every device is reached through (`via_device`).
pub const BRIDGE_ID: &str = "iotc";

/// Largest number of entities published for one device (profiles have at most a few dozen
/// fields; this bounds a wrongly written table).
pub const MAX_ENTITIES: usize = 128;

/// One retained discovery message.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub topic: String,
    pub payload: Value,
}

/// The discovery configs of `device`, or none when its EEP is unknown.
pub fn configs(
    device: &EnOceanSensor,
    manufacturer: Option<u16>,
    topics: &HaTopics,
    availability: bool,
) -> Vec<Config> {
    let Some(profile) = device.eep.parse::<Eep>().ok().and_then(eep::profile) else {
        return Vec::new();
    };
    let id = device.source_eurid.to_ascii_lowercase();
    let ctx = Ctx {
        id: &id,
        topics,
        device: device_block(device, manufacturer, profile, &id),
        availability: availability_block(topics, &id, availability),
    };
    // Command entities first: the bound below never drops them.
    let mut out = actuators::configs(profile, &ctx);
    out.extend(ha::entities(profile).iter().map(|e| ctx.field(e)));
    out.extend(ha::buttons(profile).iter().map(|b| ctx.button(b)));
    out.extend(ctx.diagnostics());
    out.truncate(MAX_ENTITIES);
    out
}

/// What every entity of one device shares.
pub struct Ctx<'a> {
    pub id: &'a str,
    pub topics: &'a HaTopics,
    device: Value,
    availability: Value,
}

impl Ctx<'_> {
    /// The fields every config has: name, unique id, device, availability.
    pub fn base(&self, object: &str, name: &str) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("name".into(), name.into());
        m.insert(
            "unique_id".into(),
            format!("iotc_{}_{}", self.id, object).into(),
        );
        m.insert("device".into(), self.device.clone());
        m.insert("availability".into(), self.availability.clone());
        m.insert("availability_mode".into(), "all".into());
        m.insert(
            "origin".into(),
            json!({"name": "iotc", "sw_version": env!("CARGO_PKG_VERSION")}),
        );
        m
    }

    pub fn config(&self, component: &str, object: &str, m: Map<String, Value>) -> Config {
        Config {
            topic: self.topics.config(component, self.id, object),
            payload: Value::Object(m),
        }
    }

    fn field(&self, e: &Entity) -> Config {
        let object = object_id(&e.state_key);
        let name = match e.channel {
            Some(ch) => format!("{} (channel {})", e.name, u16::from(ch) + 1),
            None => e.name.to_string(),
        };
        let mut m = self.base(&object, &name);
        m.insert("state_topic".into(), self.topics.state(self.id).into());
        m.insert("value_template".into(), value_template(e).into());
        if let Some(c) = e.device_class {
            m.insert("device_class".into(), c.into());
        }
        let has_state_class = e.component == Component::Sensor && e.device_class != Some("enum");
        if let Some(c) = e.state_class.filter(|_| has_state_class) {
            m.insert("state_class".into(), c.into());
        }
        if let Some(u) = e.unit {
            m.insert("unit_of_measurement".into(), u.into());
        }
        if e.component == Component::Sensor && e.device_class == Some("enum") {
            m.insert("options".into(), json!(e.options));
        }
        if e.device_class == Some("signal_strength") || e.device_class == Some("battery") {
            m.insert("entity_category".into(), "diagnostic".into());
        }
        self.config(e.component.name(), &object, m)
    }

    fn button(&self, button: &str) -> Config {
        let object = object_id(button);
        let mut m = self.base(&object, &button_name(button));
        m.insert(
            "state_topic".into(),
            self.topics.action(self.id, button).into(),
        );
        m.insert("event_types".into(), json!(ha::BUTTON_EVENTS));
        m.insert("device_class".into(), "button".into());
        self.config(Component::Event.name(), &object, m)
    }

    /// RSSI of the last telegram and the energy a signal telegram reported.
    fn diagnostics(&self) -> Vec<Config> {
        let diag = [
            ("rssi", "RSSI", "signal_strength", "dBm"),
            ("signal_energy", "Energy reserve", "battery", "%"),
        ];
        diag.iter()
            .map(|(key, name, class, unit)| {
                let mut m = self.base(key, name);
                m.insert("state_topic".into(), self.topics.state(self.id).into());
                m.insert("value_template".into(), number_template(key, 1.0).into());
                m.insert("device_class".into(), (*class).into());
                m.insert("state_class".into(), ha::MEASUREMENT.into());
                m.insert("unit_of_measurement".into(), (*unit).into());
                m.insert("entity_category".into(), "diagnostic".into());
                self.config("sensor", key, m)
            })
            .collect()
    }
}

fn device_block(
    device: &EnOceanSensor,
    manufacturer: Option<u16>,
    profile: &Profile,
    id: &str,
) -> Value {
    let mut d = json!({
        "identifiers": [format!("iotc_{id}")],
        "name": device.friendly_id,
        "model": format!("{} {}", profile.eep, profile.title),
        "model_id": profile.eep.to_string(),
        "serial_number": id,
        "via_device": BRIDGE_ID,
    });
    if let Some(area) = device.location.as_deref().filter(|l| !l.trim().is_empty()) {
        d["suggested_area"] = area.into();
    }
    if let Some(m) = manufacturer {
        d["manufacturer"] = manufacturer_name(m).into();
    }
    d
}

/// How the device block names a manufacturer: its EnOcean manufacturer ID (the teach-in
/// carries the ID only; iotc keeps no table of names).
pub fn manufacturer_name(id: u16) -> String {
    format!("EnOcean manufacturer 0x{id:03X}")
}

/// The engine's availability, and the device's when device availability is on: both must
/// say `online`.
fn availability_block(topics: &HaTopics, id: &str, device: bool) -> Value {
    let mut list = vec![json!({"topic": topics.system_availability})];
    if device {
        list.push(json!({"topic": topics.availability(id)}));
    }
    Value::Array(list)
}

/// A template that gives the state value, or `None` (HA's unknown) when the key is missing
/// or not of the entity's kind (an error value of a numeric field).
pub fn value_template(e: &Entity) -> String {
    let v = format!("value_json[{}]", quote(&e.state_key));
    match (e.component, e.device_class) {
        (Component::BinarySensor, _) => format!(
            "{{{{ none if {v} is not defined else ('ON' if {v} in {} else 'OFF') }}}}",
            list(&e.options)
        ),
        (_, Some("enum")) => format!("{{{{ {v} if {v} in {} else none }}}}", list(&e.options)),
        _ => number_template(&e.state_key, e.factor),
    }
}

fn number_template(key: &str, factor: f64) -> String {
    let v = format!("value_json[{}]", quote(key));
    if factor == 1.0 {
        format!("{{{{ {v} if {v} is number else none }}}}")
    } else {
        format!("{{{{ ({v} * {factor}) if {v} is number else none }}}}")
    }
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn list(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| quote(s)).collect();
    format!("[{}]", quoted.join(", "))
}

/// An object id HA accepts: ASCII letters, digits, `_` and `-`.
pub fn object_id(key: &str) -> String {
    key.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `buttonA0` → `Button A0`.
fn button_name(button: &str) -> String {
    match button.strip_prefix("button") {
        Some(rest) => format!("Button {rest}"),
        None => "Push button".into(),
    }
}

/// The discovery config of the iotc node itself, which devices name as `via_device`.
pub fn bridge(topics: &HaTopics) -> Config {
    let payload = json!({
        "name": "Status",
        "unique_id": "iotc_bridge_status",
        "device": {"identifiers": [BRIDGE_ID], "name": "iotc", "model": "EnOcean IoT connector",
                   "sw_version": env!("CARGO_PKG_VERSION")},
        "state_topic": topics.system_availability,
        "payload_on": "online",
        "payload_off": "offline",
        "device_class": "connectivity",
        "entity_category": "diagnostic",
        "origin": {"name": "iotc", "sw_version": env!("CARGO_PKG_VERSION")},
    });
    Config {
        topic: format!(
            "{}/binary_sensor/{BRIDGE_ID}/status/config",
            topics.discovery_prefix
        ),
        payload,
    }
}
