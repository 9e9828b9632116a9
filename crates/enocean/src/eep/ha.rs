//! Home Assistant's view of the profile fields: which entity a decoded field becomes
//! (component, `device_class`, `state_class`, unit). Data next to the profile tables, read by
//! the engine's discovery (docs/home-assistant.md).
//!
//! A numeric field is mapped by its key first ([`KEYS`]: `co2`, `humidity`, `batteryState`),
//! then by its unit ([`UNITS`]); a field whose unit has no Home Assistant class stays a plain
//! `sensor` with its unit. An enumerated field becomes a `binary_sensor` where its key is known
//! ([`BINARY`]) and one of its values means "on", otherwise a `sensor` with the `enum` class and
//! its value names as options. Rocker and push buttons become `event` entities ([`buttons`]).
//! Class, unit and state class names are Home Assistant's (see the lists in the engine's tests).

use super::model::{Case, Direction, FieldDef, Item, Profile};

/// The kind of Home Assistant entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Component {
    Sensor,
    BinarySensor,
    Event,
}

impl Component {
    /// The name in discovery topics (`homeassistant/<component>/...`).
    pub fn name(self) -> &'static str {
        match self {
            Component::Sensor => "sensor",
            Component::BinarySensor => "binary_sensor",
            Component::Event => "event",
        }
    }
}

/// `state_class` names.
pub const MEASUREMENT: &str = "measurement";
pub const TOTAL_INCREASING: &str = "total_increasing";

/// One entity a profile field gives.
#[derive(Debug, Clone, PartialEq)]
pub struct Entity {
    pub component: Component,
    /// The field's key in the device's state object (see [`state_key`]).
    pub state_key: String,
    /// The field's name in the EEP (`Temperature`).
    pub name: &'static str,
    pub device_class: Option<&'static str>,
    pub state_class: Option<&'static str>,
    /// Home Assistant's spelling of the unit.
    pub unit: Option<&'static str>,
    /// The state value is multiplied by this (klx → lx).
    pub factor: f64,
    /// `enum` sensors: the value names; binary sensors: the names meaning "on".
    pub options: Vec<&'static str>,
    /// Multi-channel actuators: the output channel (0-based) the value belongs to.
    pub channel: Option<u8>,
}

/// A numeric class: (EEP unit, Home Assistant unit, device_class, state_class, factor).
type UnitClass = (
    &'static str,
    &'static str,
    Option<&'static str>,
    &'static str,
    f64,
);

const M: &str = MEASUREMENT;
const T: &str = TOTAL_INCREASING;

/// Units with a Home Assistant class, as the profiles spell them.
pub const UNITS: &[UnitClass] = &[
    ("°C", "°C", Some("temperature"), M, 1.0),
    ("°F", "°F", Some("temperature"), M, 1.0),
    ("°K", "K", Some("temperature"), M, 1.0),
    ("%RH", "%", Some("humidity"), M, 1.0),
    ("%rH", "%", Some("humidity"), M, 1.0),
    ("%rel", "%", Some("humidity"), M, 1.0),
    ("lx", "lx", Some("illuminance"), M, 1.0),
    ("klx", "lx", Some("illuminance"), M, 1000.0),
    ("V", "V", Some("voltage"), M, 1.0),
    ("A", "A", Some("current"), M, 1.0),
    ("mA", "mA", Some("current"), M, 1.0),
    ("W", "W", Some("power"), M, 1.0),
    ("KW", "kW", Some("power"), M, 1.0),
    ("kWh", "kWh", Some("energy"), T, 1.0),
    ("KWh", "kWh", Some("energy"), T, 1.0),
    ("Wh", "Wh", Some("energy"), T, 1.0),
    ("Ws", "J", Some("energy"), T, 1.0),
    ("hPa", "hPa", Some("pressure"), M, 1.0),
    ("dBm", "dBm", Some("signal_strength"), M, 1.0),
    ("dB", "dB", Some("sound_pressure"), M, 1.0),
    ("m/s", "m/s", Some("wind_speed"), M, 1.0),
    ("mph", "mph", Some("wind_speed"), M, 1.0),
    ("m³", "m³", Some("volume"), T, 1.0),
    ("m3/h", "m³/h", Some("volume_flow_rate"), M, 1.0),
    ("liter/s", "L/min", Some("volume_flow_rate"), M, 60.0),
    ("Liter/s", "L/min", Some("volume_flow_rate"), M, 60.0),
    ("s", "s", Some("duration"), M, 1.0),
    ("ms", "ms", Some("duration"), M, 1.0),
    ("min", "min", Some("duration"), M, 1.0),
    ("h", "h", Some("duration"), M, 1.0),
    ("day", "d", Some("duration"), M, 1.0),
    ("W/m2", "W/m²", Some("irradiance"), M, 1.0),
    ("pH", "", Some("ph"), M, 1.0),
    // Without a class: a temperature difference in K would be read as absolute by HA.
    ("K", "K", None, M, 1.0),
    ("%", "%", None, M, 1.0),
    ("ppm", "ppm", None, M, 1.0),
    ("ppb", "ppb", None, M, 1.0),
    ("µg/m3", "µg/m³", None, M, 1.0),
    ("Bq/m3", "Bq/m³", None, M, 1.0),
    ("µSv/h", "µSv/h", None, M, 1.0),
    ("g", "g", None, M, 1.0),
];

/// Key overrides for numeric fields: (key, EEP unit or "" for any, device_class, HA unit).
/// The profiles name one substance with several keys; each spelling is listed.
pub const KEYS: &[(&str, &str, &str, &str)] = &[
    ("co2", "ppm", "carbon_dioxide", "ppm"),
    ("co2Value", "ppm", "carbon_dioxide", "ppm"),
    ("coValue", "ppm", "carbon_monoxide", "ppm"),
    ("concentration", "ppm", "carbon_monoxide", "ppm"),
    ("covValue", "ppb", "volatile_organic_compounds_parts", "ppb"),
    ("particle10Value", "µg/m3", "pm10", "µg/m³"),
    ("particles10", "µg/m3", "pm10", "µg/m³"),
    ("particle2Value", "µg/m3", "pm25", "µg/m³"),
    ("particles25", "µg/m3", "pm25", "µg/m³"),
    ("particle1Value", "µg/m3", "pm1", "µg/m³"),
    ("particles1", "µg/m3", "pm1", "µg/m³"),
    ("humidity", "%", "humidity", "%"),
    ("hygrometryValue", "%", "humidity", "%"),
    ("batteryState", "%", "battery", "%"),
    ("batteryAutonomy", "%", "battery", "%"),
    ("energyStorage", "%", "battery", "%"),
    ("batteryVoltage", "V", "voltage", "V"),
];

/// Enumerated fields that are two-state: (key, device_class, value names meaning "on").
pub const BINARY: &[(&str, &str, &[&str])] = &[
    ("contact", "window", &["open"]),
    ("windowContact", "window", &["open", "windowOpen", "opened"]),
    ("doorContact", "door", &["open", "doorOpen", "opened"]),
    ("occupancy", "occupancy", &["occupied", "motionDetected"]),
    ("occupancyState", "occupancy", &["occupied"]),
    ("roomOccupancy", "occupancy", &["occupied"]),
    ("presence", "occupancy", &["present"]),
    (
        "pirStatus",
        "motion",
        &["pirOn", "on", "uncertainOfOccupancy"],
    ),
    ("waterSensor", "moisture", &["waterDetected", "leakage"]),
    ("smokeAlarm", "smoke", &["alarm", "smokeAlarm"]),
    (
        "powerFail",
        "problem",
        &["powerFailureDetected", "powerFail"],
    ),
];

/// Keys of fields that are not entities: teach-in flags and command selectors.
pub const SKIPPED: &[&str] = &["learn", "commandID", "lrnBit", "teachIn"];

/// Fields of rocker switches: each value name is a button (an `event` entity).
pub const ROCKER_KEYS: &[&str] = &["rocker1stAction", "rocker2ndAction"];
/// The rocker's energy bow: `pressed` / `released`.
pub const ENERGY_BOW: &str = "energybow";
/// The second action is valid when this field says `2ndActionValid`.
pub const SECOND_ACTION: &str = "secondAction";
/// Fields that only say how the buttons were pressed: part of the button events, not entities.
pub const BUTTON_DETAILS: &[&str] = &[
    ENERGY_BOW,
    SECOND_ACTION,
    "numberOfButtonsPressedSimultaneously",
];
/// A push button (F6-01-01): one `event` entity.
pub const PUSH_BUTTON: &str = "pushButton";

/// Actuators with more than one output channel and how many (the EEP type tables: D2-01
/// types 0x10 to 0x12 have two, 0x13 four, 0x14 eight; D2-05-05 is a 4-channel blind
/// actuator). Every other profile has one. Values a device reports for one channel are also
/// kept per channel ([`channel_state_key`]).
pub const CHANNELS: &[(&str, u8)] = &[
    ("D2-01-10", 2),
    ("D2-01-11", 2),
    ("D2-01-12", 2),
    ("D2-01-13", 4),
    ("D2-01-14", 8),
    ("D2-05-05", 4),
];

/// Request/response actuators whose tables mark no direction: the messages a controller sends
/// (commands and queries), by EEP prefix and words of the case title. They are not what the
/// device reports, so their fields are no entities; neither is the channel field, which only
/// addresses an output.
pub const CONTROLLER_CASES: &[(&str, &[&str])] = &[
    ("D2-01-", &["Set ", "Query"]),
    ("D2-05-", &["Set ", "Go to", "Goto", "Stop", "Query"]),
];

fn controller_words(profile: &Profile) -> Option<&'static [&'static str]> {
    let eep = profile.eep.to_string();
    CONTROLLER_CASES
        .iter()
        .find(|(prefix, _)| eep.starts_with(prefix))
        .map(|(_, words)| *words)
}

/// Whether `profile` is an actuator whose messages address its output channels (D2-01, D2-05).
pub fn addresses_channels(profile: &Profile) -> bool {
    controller_words(profile).is_some()
}

/// Whether `case` of `profile` is a message a controller sends to the device: marked so, or
/// named so in [`CONTROLLER_CASES`].
pub fn is_controller_case(profile: &Profile, case: &Case) -> bool {
    sent_by_controller(controller_words(profile), case)
}

/// [`is_controller_case`] with the profile's words looked up once.
fn sent_by_controller(words: Option<&[&str]>, case: &Case) -> bool {
    case.direction == Some(Direction::ToDevice)
        || words.is_some_and(|w| w.iter().any(|w| case.title.contains(w)))
}

/// The cases a device of `profile` sends.
fn device_cases(profile: &Profile) -> impl Iterator<Item = &Case> {
    let words = controller_words(profile);
    profile
        .cases
        .iter()
        .filter(move |c| !sent_by_controller(words, c))
}

/// The number of output channels of a device of `profile`.
pub fn channels(profile: &Profile) -> u8 {
    let eep = profile.eep.to_string();
    CHANNELS
        .iter()
        .find(|(e, _)| *e == eep)
        .map_or(1, |(_, n)| *n)
}

/// Whether a field selects the output channel (D2-01 `ioChannel`, D2-05 `channel`); the
/// command encoder uses the same rule.
pub fn is_channel_key(key: &str) -> bool {
    key.to_ascii_lowercase().ends_with("channel")
}

/// The state key of a value reported for one channel (`outputValue_ch1`).
pub fn channel_state_key(key: &str, channel: u8) -> String {
    format!("{key}_ch{channel}")
}

/// Event types of button entities.
pub const BUTTON_EVENTS: &[&str] = &["press", "release"];

/// The key of a field in the device's state object: its key, and for fields whose unit
/// changes with another field (meters reporting kWh or W) the unit too (`meterReading_kWh`).
pub fn state_key(key: &str, unit: Option<&str>, per_unit: bool) -> String {
    match unit.filter(|_| per_unit) {
        Some(u) => format!("{key}_{}", ascii_unit(u)),
        None => key.to_string(),
    }
}

/// A unit as plain ASCII letters and digits (`m³` → `m3`, `µg/m3` → `ug_m3`).
fn ascii_unit(unit: &str) -> String {
    unit.chars()
        .map(|c| match c {
            '³' => '3',
            '²' => '2',
            'µ' => 'u',
            '°' => 'd',
            c if c.is_ascii_alphanumeric() => c,
            _ => '_',
        })
        .collect()
}

/// Whether the profile reports `key` with a unit taken from another field.
/// Called per decoded field when the state topic is on: no units are collected.
pub fn is_per_unit(profile: &Profile, key: &str) -> bool {
    device_cases(profile)
        .flat_map(|c| &c.fields)
        .any(|f| f.key == key && f.unit_from.is_some())
}

/// The fields a device sends, with the units of the fields they take their unit from.
fn device_fields(profile: &Profile) -> impl Iterator<Item = (Vec<&'static str>, &FieldDef)> {
    device_fields_with_channel(profile).map(|(units, f, _)| (units, f))
}

/// As [`device_fields`], with whether the field's message names an output channel.
fn device_fields_with_channel(
    profile: &Profile,
) -> impl Iterator<Item = (Vec<&'static str>, &FieldDef, bool)> {
    device_cases(profile).flat_map(|c| {
        let per_channel = c.fields.iter().any(|f| is_channel_key(f.key));
        c.fields.iter().map(move |f| {
            let units = match f.unit_from {
                Some(i) => item_units(&c.fields[i]),
                None => linear_unit(f).into_iter().collect(),
            };
            (units, f, per_channel)
        })
    })
}

fn item_units(f: &FieldDef) -> Vec<&'static str> {
    f.items
        .iter()
        .filter_map(|i| match i {
            Item::Value { unit, .. } => *unit,
            _ => None,
        })
        .collect()
}

fn linear_unit(f: &FieldDef) -> Option<&'static str> {
    f.items.iter().find_map(|i| match i {
        Item::Linear(l) => l.unit,
        _ => None,
    })
}

fn is_numeric(f: &FieldDef) -> bool {
    f.items.iter().any(|i| matches!(i, Item::Linear(_)))
}

/// The entities of every field a device of `profile` sends, once per state key. On
/// multi-channel actuators the values of messages naming a channel give one entity per
/// channel.
pub fn entities(profile: &Profile) -> Vec<Entity> {
    let mut out: Vec<Entity> = Vec::new();
    let channels = channels(profile);
    for (units, f, per_channel) in device_fields_with_channel(profile) {
        let button = ROCKER_KEYS.contains(&f.key) || f.key == PUSH_BUTTON;
        if SKIPPED.contains(&f.key) || button || BUTTON_DETAILS.contains(&f.key) {
            continue;
        }
        if (channels > 1 || addresses_channels(profile)) && is_channel_key(f.key) {
            continue;
        }
        let per_unit = f.unit_from.is_some();
        let made: Vec<Entity> = if is_numeric(f) && per_unit {
            units.iter().map(|u| numeric(f, Some(u), true)).collect()
        } else if is_numeric(f) {
            vec![numeric(f, units.first().copied(), false)]
        } else {
            enumerated(f).into_iter().collect()
        };
        let made = if channels > 1 && per_channel {
            (0..channels)
                .flat_map(|ch| made.iter().map(move |e| e.for_channel(ch)))
                .collect()
        } else {
            made
        };
        for e in made {
            if !out.iter().any(|o| o.state_key == e.state_key) {
                out.push(e);
            }
        }
    }
    out
}

impl Entity {
    /// The same entity for the values of one output channel.
    fn for_channel(&self, channel: u8) -> Entity {
        Entity {
            state_key: channel_state_key(&self.state_key, channel),
            channel: Some(channel),
            ..self.clone()
        }
    }
}

/// A numeric field: key override, then unit class, then a plain sensor.
pub fn numeric(f: &FieldDef, unit: Option<&'static str>, per_unit: bool) -> Entity {
    let state_key = state_key(f.key, unit, per_unit);
    let mut e = Entity {
        component: Component::Sensor,
        state_key,
        name: f.name,
        device_class: None,
        state_class: Some(MEASUREMENT),
        unit,
        factor: 1.0,
        options: Vec::new(),
        channel: None,
    };
    let by_key = KEYS
        .iter()
        .find(|(k, u, _, _)| *k == f.key && (u.is_empty() || Some(*u) == unit));
    if let Some((_, _, class, ha_unit)) = by_key {
        e.device_class = Some(class);
        e.unit = Some(ha_unit);
    } else if let Some(u) = unit {
        if let Some((_, ha_unit, class, state, factor)) = UNITS.iter().find(|c| c.0 == u) {
            e.device_class = *class;
            e.unit = Some(*ha_unit).filter(|u| !u.is_empty());
            e.state_class = Some(state);
            e.factor = *factor;
        } else if u == "°" && looks_like_temperature(f.key) {
            // Some imported profiles lost the C of °C.
            e.device_class = Some("temperature");
            e.unit = Some("°C");
        }
    }
    e
}

fn looks_like_temperature(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k.contains("temperature") || k.contains("setpoint")
}

/// An enumerated field: a binary sensor where known, else an `enum` sensor.
pub fn enumerated(f: &FieldDef) -> Option<Entity> {
    let names = value_names(f);
    if names.is_empty() {
        return None;
    }
    let mut e = Entity {
        component: Component::Sensor,
        state_key: f.key.to_string(),
        name: f.name,
        device_class: Some("enum"),
        state_class: None,
        unit: None,
        factor: 1.0,
        options: names.clone(),
        channel: None,
    };
    if let Some((_, class, on)) = BINARY.iter().find(|(k, _, _)| *k == f.key) {
        let on: Vec<&'static str> = names.iter().copied().filter(|n| on.contains(n)).collect();
        if !on.is_empty() {
            e.component = Component::BinarySensor;
            e.device_class = Some(class);
            e.options = on;
        }
    }
    Some(e)
}

/// The names of an enumeration's values, reserved ones left out.
fn value_names(f: &FieldDef) -> Vec<&'static str> {
    let mut names: Vec<&'static str> = Vec::new();
    for item in &f.items {
        let name = match item {
            Item::Value { name, .. } | Item::Range { name, .. } | Item::Mask { name, .. } => *name,
            Item::Linear(_) => continue,
        };
        if !name.is_empty() && name != "reserved" && !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

/// The button names of a profile: values of its rocker fields, or `pushButton`.
pub fn buttons(profile: &Profile) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for (_, f) in device_fields(profile) {
        if f.key == PUSH_BUTTON && !out.contains(&PUSH_BUTTON) {
            out.push(PUSH_BUTTON);
        }
        if ROCKER_KEYS.contains(&f.key) {
            for n in value_names(f) {
                if !out.contains(&n) {
                    out.push(n);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eep::{self, Eep};

    fn profile(id: &str) -> &'static Profile {
        eep::profile(id.parse::<Eep>().unwrap()).unwrap()
    }

    fn by_key<'a>(es: &'a [Entity], key: &str) -> &'a Entity {
        es.iter().find(|e| e.state_key == key).unwrap_or_else(|| {
            panic!(
                "no {key} in {:?}",
                es.iter().map(|e| &e.state_key).collect::<Vec<_>>()
            )
        })
    }

    #[test]
    fn multisensor_fields() {
        let es = entities(profile("D2-14-41"));
        let t = by_key(&es, "temperature");
        assert_eq!(
            (t.component, t.device_class, t.unit, t.state_class),
            (
                Component::Sensor,
                Some("temperature"),
                Some("°C"),
                Some("measurement")
            )
        );
        assert_eq!(by_key(&es, "humidity").device_class, Some("humidity"));
        assert_eq!(
            by_key(&es, "illumination").device_class,
            Some("illuminance")
        );
        let c = by_key(&es, "contact");
        assert_eq!(c.component, Component::BinarySensor);
        assert_eq!(c.options, vec!["open"]);
        let acc = by_key(&es, "accelerationStatus");
        assert_eq!(acc.device_class, Some("enum"));
        assert!(acc.options.contains(&"heartbeat"));
        assert!(!acc.options.contains(&"reserved"));
    }

    #[test]
    fn meters_get_one_entity_per_unit() {
        let es = entities(profile("A5-12-01"));
        let energy = by_key(&es, "meterReading_kWh");
        assert_eq!(energy.device_class, Some("energy"));
        assert_eq!(energy.state_class, Some("total_increasing"));
        assert_eq!(by_key(&es, "meterReading_W").device_class, Some("power"));
        assert!(!es.iter().any(|e| e.state_key == "learn"));
    }

    #[test]
    fn substances_by_key() {
        let co2 = entities(profile("A5-09-04"));
        assert_eq!(by_key(&co2, "co2").device_class, Some("carbon_dioxide"));
        let voc = entities(profile("A5-09-05"));
        assert!(
            voc.iter()
                .any(|e| e.unit == Some("ppb") || e.unit == Some("ppm"))
        );
    }

    #[test]
    fn rockers_are_buttons() {
        assert_eq!(
            buttons(profile("F6-02-01")),
            vec!["buttonAI", "buttonA0", "buttonBI", "buttonB0"]
        );
        assert_eq!(buttons(profile("F6-01-01")), vec!["pushButton"]);
        let keys: Vec<String> = entities(profile("F6-02-01"))
            .into_iter()
            .map(|e| e.state_key)
            .collect();
        assert!(keys.is_empty(), "{keys:?}");
    }

    #[test]
    fn window_handle_is_an_enum_with_options() {
        let es = entities(profile("F6-10-00"));
        assert!(
            es.iter()
                .any(|e| e.device_class == Some("enum") && e.options.len() >= 3),
            "{es:?}"
        );
    }

    /// Units that Home Assistant has a device class for, as the profiles spell them: every
    /// field a device sends in one of these units must map to an entity with that class.
    const CLASSED_UNITS: &[&str] = &[
        "°C", "°F", "°K", "%RH", "%rH", "%rel", "lx", "klx", "V", "A", "mA", "W", "KW", "kWh",
        "KWh", "Wh", "Ws", "hPa", "dBm", "dB", "m/s", "mph", "m³", "m3/h", "liter/s", "Liter/s",
        "s", "ms", "min", "h", "day", "W/m2", "pH",
    ];

    #[test]
    fn multi_channel_actuators_get_entities_per_channel() {
        let es = entities(profile("D2-01-14"));
        for ch in 0..8 {
            let key = channel_state_key("outputValue", ch);
            let e = by_key(&es, &key);
            assert_eq!(e.channel, Some(ch));
        }
        assert!(!es.iter().any(|e| e.state_key == "outputValue"));
        assert!(!es.iter().any(|e| is_channel_key(&e.state_key)));
        assert_eq!(channels(profile("D2-01-00")), 1);
        let single = entities(profile("D2-01-00"));
        assert_eq!(by_key(&single, "outputValue").channel, None);
    }

    #[test]
    fn what_a_controller_sends_is_no_entity() {
        // D2-01: dim timers are only in Actuator Set Local; the status response stays.
        let es = entities(profile("D2-01-02"));
        assert!(!es.iter().any(|e| e.state_key == "dimTimer1"), "{es:?}");
        assert!(!es.iter().any(|e| e.state_key == "ioChannel"));
        by_key(&es, "errorLevel");
        // D2-05: Set parameters' rotation is a command; the reply's angle is reported.
        let es = entities(profile("D2-05-00"));
        assert!(!es.iter().any(|e| e.state_key == "setRotation"));
        by_key(&es, "angle");
    }

    #[test]
    fn every_profile_field_with_a_classed_unit_is_mapped() {
        let mut checked = 0;
        for p in eep::profiles() {
            let es = entities(p);
            for (units, f) in device_fields(p) {
                if SKIPPED.contains(&f.key) || !is_numeric(f) {
                    continue;
                }
                for u in units.iter().filter(|u| CLASSED_UNITS.contains(u)) {
                    let key = state_key(f.key, Some(u), f.unit_from.is_some());
                    let first_channel = channel_state_key(&key, 0);
                    let e = es
                        .iter()
                        .find(|e| e.state_key == key || e.state_key == first_channel);
                    let e = e.unwrap_or_else(|| panic!("{}: {key} has no entity", p.eep));
                    // The first field of a key decides; a later one with another unit is the
                    // same reading in another layout.
                    if e.unit.is_some() {
                        assert!(
                            e.device_class.is_some(),
                            "{} {key} ({u}) has no device class",
                            p.eep
                        );
                    }
                    checked += 1;
                }
            }
        }
        assert!(checked > 300, "only {checked} fields checked");
    }
}
