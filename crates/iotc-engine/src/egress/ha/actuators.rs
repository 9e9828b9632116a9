//! Command entities of actuators, on the control topic (`sensor/<ID>/set`, body a JSON array
//! of `{key, value}` as the control egress reads it). Which profiles are which: data below.

use enocean::eep::Profile;
use serde_json::{Value, json};

use super::discovery::{Config, Ctx};

/// What kind of command entity a profile family gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// On/off through `outputValue` 0/100 (D2-01 without dimming).
    Switch,
    /// On/off and brightness through `outputValue` 0..100 (D2-01 dimmers).
    Light,
    /// Position through `position` (D2-05: 0 = open, 100 = closed).
    Cover,
    /// Valve position through the set point of A5-20-01 (0..100 %).
    Valve,
}

/// EEP prefixes and their kind, most specific first. D2-01 dimmers are types 02..05 and 09
/// of the EEP's type table; every other D2-01 type switches.
const KINDS: &[(&str, Kind)] = &[
    ("D2-01-02", Kind::Light),
    ("D2-01-03", Kind::Light),
    ("D2-01-04", Kind::Light),
    ("D2-01-05", Kind::Light),
    ("D2-01-09", Kind::Light),
    ("D2-01-", Kind::Switch),
    ("D2-05-", Kind::Cover),
    ("A5-20-01", Kind::Valve),
];

fn kind(profile: &Profile) -> Option<Kind> {
    let eep = profile.eep.to_string();
    KINDS
        .iter()
        .find(|(prefix, _)| eep.starts_with(prefix))
        .map(|(_, k)| *k)
}

/// The command body setting `key` to a value or to a template expression.
fn set(key: &str, value: &str) -> String {
    format!("[{{\"key\":\"{key}\",\"value\":{value}}}]")
}

/// The command entity of `profile`, if it is an actuator.
pub fn configs(profile: &Profile, ctx: &Ctx<'_>) -> Vec<Config> {
    let Some(kind) = kind(profile) else {
        return Vec::new();
    };
    let set_topic = ctx.topics.command(ctx.id);
    let state = ctx.topics.state(ctx.id);
    let (component, extra) = match kind {
        Kind::Switch | Kind::Light => {
            let on = "{{ none if value_json.outputValue is not number else ('ON' if value_json.outputValue > 0 else 'OFF') }}";
            let mut v = json!({
                "command_topic": set_topic, "payload_on": set("outputValue", "100"),
                "payload_off": set("outputValue", "0"), "state_topic": state,
            });
            if kind == Kind::Switch {
                v["value_template"] = on.into();
                v["state_on"] = "ON".into();
                v["state_off"] = "OFF".into();
                ("switch", v)
            } else {
                v["state_value_template"] = on.into();
                v["brightness_command_topic"] = set_topic.clone().into();
                v["brightness_command_template"] = set("outputValue", "{{ value }}").into();
                v["brightness_state_topic"] = state.clone().into();
                v["brightness_value_template"] = "{{ value_json.outputValue }}".into();
                v["brightness_scale"] = 100.into();
                v["on_command_type"] = "brightness".into();
                ("light", v)
            }
        }
        Kind::Cover => (
            "cover",
            json!({
                "command_topic": set_topic, "payload_open": set("position", "0"),
                "payload_close": set("position", "100"),
                "payload_stop": "{\"command\":\"stop\",\"values\":[]}",
                "set_position_topic": set_topic,
                "set_position_template": set("position", "{{ 100 - position }}"),
                "position_topic": state,
                "position_template": "{{ 100 - value_json.position }}",
            }),
        ),
        Kind::Valve => (
            "valve",
            json!({
                "command_topic": set_topic, "reports_position": true,
                "command_template": set("valvePositionOrTemperatureSetpoint", "{{ value }}"),
                "state_topic": state,
                "value_template": "{{ value_json.currentValue }}",
            }),
        ),
    };
    let mut m = ctx.base(component, "Output");
    if let Value::Object(e) = extra {
        m.extend(e);
    }
    vec![ctx.config(component, component, m)]
}
