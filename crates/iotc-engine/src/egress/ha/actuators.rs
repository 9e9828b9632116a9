//! Command entities of actuators, on the control topic (`sensor/<ID>/set`, body as the control
//! egress reads it: `[{key, value}]`, or `{"values": [..], "channel": n, "command": ..}`).
//! Which profiles are which: data below. Multi-channel actuators get one entity per channel
//! (`ha::channels`), reading the values the device reported for that channel.

use enocean::eep::{Profile, ha};
use serde_json::{Value, json};

use super::discovery::{Config, Ctx};

/// What kind of command entity a profile family gets.
#[derive(Clone, Copy)]
enum Kind {
    /// On/off through `outputValue` 0/100 (D2-01 without dimming).
    Switch,
    /// On/off and brightness through `outputValue` 0..100 (D2-01 dimmers).
    Light,
    /// Position through `position` (D2-05: 0 = open, 100 = closed).
    Cover,
    /// Battery valves ([`VALVES`]): a valve (position 0..100 %) and a thermostat (set point
    /// 0..40 °C).
    Valve(&'static Valve),
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
];

/// The keys of a battery valve's profile.
struct Valve {
    eep: &'static str,
    /// The set point sent to the valve: a position or, with `setPointSelection` 1, a
    /// temperature.
    set_point: &'static str,
    /// The room temperature sent with a temperature set point.
    room: &'static str,
    /// What the valve reports: its position (%) and its temperature (°C).
    position: &'static str,
    temperature: &'static str,
}

/// Set point selection value meaning "temperature set point" in both profiles.
const SPS_TEMPERATURE: &str = "1";

const VALVES: &[Valve] = &[
    Valve {
        eep: "A5-20-01",
        set_point: "valvePositionOrTemperatureSetpoint",
        room: "temperatureFromRcu",
        position: "currentValue",
        temperature: "temperature",
    },
    Valve {
        eep: "A5-20-06",
        set_point: "setpoint",
        room: "roomTemperatureFromControlUnit",
        position: "currentValue",
        temperature: "temperature",
    },
];

fn kind(profile: &Profile) -> Option<Kind> {
    let eep = profile.eep.to_string();
    if let Some(v) = VALVES.iter().find(|v| v.eep == eep) {
        return Some(Kind::Valve(v));
    }
    KINDS
        .iter()
        .find(|(prefix, _)| eep.starts_with(prefix))
        .map(|(_, k)| *k)
}

/// The command entities of `profile`, if it is an actuator.
pub fn configs(profile: &Profile, ctx: &Ctx<'_>) -> Vec<Config> {
    let Some(kind) = kind(profile) else {
        return Vec::new();
    };
    let mut out = match ha::channels(profile) {
        1 => vec![output(kind, ctx, None)],
        n => (0..n).map(|ch| output(kind, ctx, Some(ch))).collect(),
    };
    if let Kind::Valve(v) = kind {
        out.push(thermostat(v, ctx));
    }
    out
}

/// A command body: the values (key, value or template expression), the channel and the
/// command when given. Without channel or command, the short list form.
fn body(values: &[(&str, &str)], channel: Option<u8>, command: Option<&str>) -> String {
    let list: Vec<String> = values
        .iter()
        .map(|(k, v)| format!("{{\"key\":\"{k}\",\"value\":{v}}}"))
        .collect();
    let list = format!("[{}]", list.join(","));
    if channel.is_none() && command.is_none() {
        return list;
    }
    let mut out = format!("{{\"values\":{list}");
    if let Some(c) = command {
        out.push_str(&format!(",\"command\":\"{c}\""));
    }
    if let Some(ch) = channel {
        out.push_str(&format!(",\"channel\":{ch}"));
    }
    out.push('}');
    out
}

/// The command entity of one output (of channel `channel` on multi-channel actuators).
fn output(kind: Kind, ctx: &Ctx<'_>, channel: Option<u8>) -> Config {
    let set_topic = ctx.topics.command(ctx.id);
    let state = ctx.topics.state(ctx.id);
    let key = |k: &str| match channel {
        Some(ch) => ha::channel_state_key(k, ch),
        None => k.to_string(),
    };
    let set = |k: &str, v: &str| body(&[(k, v)], channel, None);
    let (component, extra) = match kind {
        Kind::Switch | Kind::Light => {
            let v = format!("value_json['{}']", key("outputValue"));
            let (payload_on, payload_off) = (set("outputValue", "100"), set("outputValue", "0"));
            // A switch compares the rendered state with state_on/off; a light has no such keys
            // and compares it with its payloads.
            let (on, off) = match kind {
                Kind::Switch => ("ON", "OFF"),
                _ => (payload_on.as_str(), payload_off.as_str()),
            };
            let state_template = format!(
                "{{{{ none if {v} is not number else ('{on}' if {v} > 0 else '{off}') }}}}"
            );
            let mut m = json!({
                "command_topic": set_topic, "payload_on": payload_on,
                "payload_off": payload_off, "state_topic": state,
            });
            if matches!(kind, Kind::Switch) {
                m["value_template"] = state_template.into();
                m["state_on"] = on.into();
                m["state_off"] = off.into();
                ("switch", m)
            } else {
                m["state_value_template"] = state_template.into();
                m["brightness_command_topic"] = set_topic.clone().into();
                m["brightness_command_template"] = set("outputValue", "{{ value }}").into();
                m["brightness_state_topic"] = state.clone().into();
                m["brightness_value_template"] = format!("{{{{ {v} }}}}").into();
                m["brightness_scale"] = 100.into();
                m["on_command_type"] = "brightness".into();
                ("light", m)
            }
        }
        Kind::Cover => (
            "cover",
            json!({
                "command_topic": set_topic, "payload_open": set("position", "0"),
                "payload_close": set("position", "100"),
                "payload_stop": body(&[], channel, Some("stop")),
                "set_position_topic": set_topic,
                "set_position_template": set("position", "{{ 100 - position }}"),
                "position_topic": state,
                "position_template": format!(
                    "{{{{ (100 - {v}) if {v} is number else none }}}}",
                    v = format!("value_json['{}']", key("position"))
                ),
            }),
        ),
        Kind::Valve(v) => (
            "valve",
            json!({
                "command_topic": set_topic, "reports_position": true,
                "command_template": set(v.set_point, "{{ value }}"),
                "state_topic": state,
                "value_template": format!("{{{{ value_json['{}'] }}}}", v.position),
            }),
        ),
    };
    let (object, name) = match channel {
        Some(ch) => (
            format!("{component}_ch{ch}"),
            format!("Output {}", u16::from(ch) + 1),
        ),
        None => (component.to_string(), "Output".to_string()),
    };
    with_base(ctx, component, &object, &name, extra)
}

/// A valve run on its own temperature control: a `climate` entity whose target temperature is
/// sent as the set point with `setPointSelection` 1 (0..40 °C). The valve regulates against
/// the room temperature the command carries: the valve's own last reported temperature,
/// which is the entity's current temperature (20 °C before the first).
fn thermostat(v: &Valve, ctx: &Ctx<'_>) -> Config {
    let set_topic = ctx.topics.command(ctx.id);
    let state = ctx.topics.state(ctx.id);
    let room = "{{ state_attr(entity_id, 'current_temperature') | float(20) }}";
    let command = body(
        &[
            (v.set_point, "{{ value }}"),
            ("setPointSelection", SPS_TEMPERATURE),
            (v.room, room),
        ],
        None,
        None,
    );
    let (t, p) = (
        format!("value_json['{}']", v.temperature),
        format!("value_json['{}']", v.position),
    );
    let extra = json!({
        "temperature_command_topic": set_topic,
        "temperature_command_template": command,
        "current_temperature_topic": state,
        "current_temperature_template": format!("{{{{ {t} if {t} is number else none }}}}"),
        "action_topic": state,
        "action_template":
            format!("{{{{ none if {p} is not number else ('heating' if {p} > 0 else 'idle') }}}}"),
        "mode_state_topic": state,
        "mode_state_template": "heat",
        "modes": ["heat"],
        "min_temp": 0, "max_temp": 40, "temp_step": 0.5, "precision": 0.1,
        "temperature_unit": "C",
    });
    with_base(ctx, "climate", "climate", "Thermostat", extra)
}

fn with_base(ctx: &Ctx<'_>, component: &str, object: &str, name: &str, extra: Value) -> Config {
    let mut m = ctx.base(object, name);
    if let Value::Object(e) = extra {
        m.extend(e);
    }
    ctx.config(component, object, m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_keep_the_short_form_without_channel() {
        assert_eq!(
            body(&[("outputValue", "100")], None, None),
            r#"[{"key":"outputValue","value":100}]"#
        );
        assert_eq!(
            body(&[("outputValue", "0")], Some(1), None),
            r#"{"values":[{"key":"outputValue","value":0}],"channel":1}"#
        );
        assert_eq!(
            body(&[], Some(3), Some("stop")),
            r#"{"values":[],"command":"stop","channel":3}"#
        );
    }
}
