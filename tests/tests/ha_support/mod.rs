//! Checks a discovery config against Home Assistant's schema and evaluates its templates.

pub mod lists;

use serde_json::Value;

fn has(list: &[&str], s: &str) -> bool {
    list.contains(&s)
}

fn str_of<'a>(cfg: &'a Value, key: &str) -> Option<&'a str> {
    cfg.get(key).and_then(Value::as_str)
}

/// Every key is one the component's discovery schema accepts; classes, units and state
/// classes are valid for the component; the device block names the device.
pub fn check(component: &str, cfg: &Value) -> Result<(), String> {
    let obj = cfg.as_object().ok_or("config is not an object")?;
    let accepted = lists::COMPONENT_KEYS
        .iter()
        .find(|(c, _)| *c == component)
        .map(|(_, keys)| *keys)
        .ok_or_else(|| format!("unexpected component {component}"))?;
    for key in obj.keys() {
        if !has(accepted, key) {
            return Err(format!("{component} does not accept key {key}"));
        }
    }
    for key in ["name", "unique_id", "device", "availability"] {
        if !obj.contains_key(key) {
            return Err(format!("missing {key}"));
        }
    }
    check_device(&cfg["device"])?;
    for a in cfg["availability"]
        .as_array()
        .ok_or("availability is not a list")?
    {
        a["topic"].as_str().ok_or("availability without topic")?;
    }
    if let Some(c) = str_of(cfg, "entity_category")
        && !has(&["config", "diagnostic"], c)
    {
        return Err(format!("entity_category {c}"));
    }
    match component {
        "sensor" => check_sensor(cfg),
        "binary_sensor" => check_class(cfg, lists::BINARY_SENSOR_CLASSES),
        "event" => {
            if cfg["event_types"].as_array().is_none_or(|t| t.is_empty()) {
                return Err("event without event_types".into());
            }
            check_class(cfg, lists::EVENT_CLASSES)
        }
        "switch" | "light" | "cover" | "valve" => str_of(cfg, "command_topic")
            .map(|_| ())
            .ok_or_else(|| "actuator without command_topic".into()),
        "climate" => str_of(cfg, "temperature_command_topic")
            .map(|_| ())
            .ok_or_else(|| "climate without temperature_command_topic".into()),
        other => Err(format!("unexpected component {other}")),
    }
}

fn check_device(d: &Value) -> Result<(), String> {
    let obj = d.as_object().ok_or("device is not an object")?;
    for key in obj.keys() {
        if !has(lists::DEVICE_KEYS, key) && key != "via_device" {
            return Err(format!("unknown device key {key}"));
        }
    }
    if d["identifiers"].as_array().is_none_or(|i| i.is_empty()) {
        return Err("device without identifiers".into());
    }
    Ok(())
}

fn check_class(cfg: &Value, classes: &[&str]) -> Result<(), String> {
    match str_of(cfg, "device_class") {
        Some(c) if !has(classes, c) => Err(format!("device_class {c}")),
        _ => Ok(()),
    }
}

fn check_sensor(cfg: &Value) -> Result<(), String> {
    let unit = str_of(cfg, "unit_of_measurement");
    let state_class = str_of(cfg, "state_class");
    if let Some(s) = state_class
        && !has(lists::STATE_CLASSES, s)
    {
        return Err(format!("state_class {s}"));
    }
    let Some(class) = str_of(cfg, "device_class") else {
        return Ok(());
    };
    if class == "enum" {
        if cfg["options"].as_array().is_none_or(|o| o.is_empty()) || unit.is_some() {
            return Err("enum sensor needs options and no unit".into());
        }
        return Ok(());
    }
    let units = lists::SENSOR_UNITS
        .iter()
        .find(|(c, _)| *c == class)
        .map(|(_, u)| *u)
        .ok_or_else(|| format!("sensor device_class {class}"))?;
    if !units.contains(&unit) {
        return Err(format!("unit {unit:?} is not one of {class}'s"));
    }
    let states = lists::SENSOR_STATE_CLASSES
        .iter()
        .find(|(c, _)| *c == class)
        .map(|(_, s)| *s)
        .unwrap_or_default();
    match state_class {
        Some(s) if !states.contains(&s) => Err(format!("state_class {s} for {class}")),
        _ => Ok(()),
    }
}

/// Renders a value template as Home Assistant does: `value_json` is the parsed payload.
pub fn render(template: &str, payload: &Value) -> String {
    let env = minijinja::Environment::new();
    let ctx = minijinja::context! { value_json => minijinja::Value::from_serialize(payload) };
    env.render_str(template, ctx)
        .unwrap_or_else(|e| panic!("template {template} does not render: {e}"))
}

/// Renders a command template as Home Assistant does: `value` is what the entity sends,
/// `state_attr(entity_id, name)` reads `attributes[name]` of the entity, and `float(default)`
/// gives the default for what is not a number.
pub fn render_command(template: &str, value: &Value, attributes: &Value) -> String {
    let mut env = minijinja::Environment::new();
    let attrs = attributes.clone();
    env.add_function("state_attr", move |_entity: String, name: String| {
        minijinja::Value::from_serialize(&attrs[name.as_str()])
    });
    env.add_filter("float", |v: minijinja::Value, default: f64| {
        f64::try_from(v).unwrap_or(default)
    });
    let ctx = minijinja::context! {
        value => minijinja::Value::from_serialize(value),
        entity_id => "climate.test",
    };
    env.render_str(template, ctx)
        .unwrap_or_else(|e| panic!("template {template} does not render: {e}"))
}
