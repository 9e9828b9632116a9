//! Every controller message iotc sends: a command body in the telemetry's vocabulary, encoded
//! with the device's EEP, decodes (direction 2) back to the values given.

use enocean::eep::{self, Case, Direction, Eep, FieldDef, Item};
use enocean::field::Value as Decoded;
use iotc_core::command::CommandBody;
use proptest::prelude::*;
use serde_json::{Value, json};

/// (EEP, the case's title, or "" for the first case a controller sends).
const MESSAGES: &[(&str, &str)] = &[
    ("D2-01-12", "Actuator Set Output"),
    ("D2-01-12", "Actuator Status Query"),
    ("D2-01-12", "Actuator Set Local"),
    ("D2-05-00", "Go to Position and Angle"),
    ("D2-05-00", "Stop"),
    ("D2-05-00", "Query Position and Angle"),
    ("A5-38-08", "Switching"),
    ("A5-38-08", "Dimming"),
    ("A5-20-01", "Receive mode"),
    ("F6-02-01", ""),
];

fn case(eep: Eep, title: &str) -> &'static Case {
    let profile = eep::profile(eep).expect("profile");
    profile
        .cases
        .iter()
        .filter(|c| c.direction != Some(Direction::FromDevice))
        .find(|c| c.title.contains(title))
        .unwrap_or_else(|| panic!("{eep} has no case {title}"))
}

/// Fields a user sets: not the command selector, the LRN bit or scaled by another field.
fn settable(case: &Case) -> impl Iterator<Item = &FieldDef> {
    case.fields.iter().filter(|f| {
        let on_condition = case.conditions.iter().any(|c| f.bits == [c.bits]);
        !on_condition && f.shortcut != "LRNB" && f.scale_from.is_none() && f.unit_from.is_none()
    })
}

/// A value for `field` chosen by `r`: a name, a raw number, or a scaled value.
fn pick(field: &FieldDef, r: u32) -> Value {
    let items: Vec<&Item> = field.items.iter().collect();
    if items.is_empty() {
        return json!(r as u64 % (1u64 << field.size()));
    }
    match items[r as usize % items.len()] {
        Item::Value { name, .. } if r.is_multiple_of(2) => json!(name),
        Item::Value { raw, .. } => json!(raw),
        Item::Range { min, max, .. } => json!(min + (r as i64 % (max - min + 1))),
        Item::Mask { value, .. } => json!(value),
        Item::Linear(l) => {
            let (lo, hi) = (l.min.min(l.max), l.min.max(l.max));
            json!(lo + (hi - lo) * (r % 1001) as f64 / 1000.0)
        }
    }
}

fn check(which: usize, seeds: &[u32]) -> Result<(), TestCaseError> {
    let (eep_id, title) = MESSAGES[which];
    let eep: Eep = eep_id.parse().unwrap();
    let case = case(eep, title);
    let given: Vec<(&FieldDef, Value)> = settable(case)
        .zip(seeds)
        .map(|(f, r)| (f, pick(f, *r)))
        .collect();
    let values: Vec<Value> = given
        .iter()
        .map(|(f, v)| json!({"key": f.key, "value": v}))
        .collect();
    let cmd = case.conditions.iter().find(|c| {
        case.fields
            .iter()
            .any(|f| f.shortcut == "CMD" && f.bits == [c.bits])
    });
    let body = match cmd {
        Some(c) => json!({"values": values, "command": c.value}),
        None => json!(values),
    };
    let parsed = CommandBody::parse(body.to_string().as_bytes()).unwrap();
    let t = parsed
        .encode(eep_id, 0x0190_0001)
        .map_err(|e| TestCaseError::fail(format!("{body}: {e}")))?;
    let fields = eep::decode_with(eep, t.rorg, &t.data, t.status, Direction::ToDevice).unwrap();
    for (def, value) in &given {
        let Some(got) = fields.iter().find(|f| f.shortcut == def.shortcut) else {
            prop_assert!(
                def.omit.is_some(),
                "{} missing after decoding {body}",
                def.shortcut
            );
            continue;
        };
        match (value, &got.value) {
            (Value::String(name), Decoded::Text(text)) => {
                prop_assert_eq!(name.as_str(), text.as_ref(), "{}", body)
            }
            (Value::String(name), other) => {
                prop_assert!(false, "{}: {name} decoded as {other:?}", def.shortcut)
            }
            (v, Decoded::Number(n)) if v.is_f64() => {
                let step = def
                    .items
                    .iter()
                    .find_map(|i| match i {
                        Item::Linear(l) => Some(l.step()),
                        _ => None,
                    })
                    .unwrap_or(1.0);
                let v = v.as_f64().unwrap();
                // Decoded values are rounded to two decimals or more.
                prop_assert!(
                    (v - n).abs() <= step / 2.0 + 0.005 + 1e-9,
                    "{}: {v} → {n}",
                    def.shortcut
                );
            }
            (v, _) => prop_assert_eq!(
                v.as_i64().unwrap() as u64,
                got.raw,
                "{} {}",
                def.shortcut,
                body
            ),
        }
    }
    Ok(())
}

proptest! {
    #[test]
    fn command_encodes_and_decodes_back(
        which in 0..MESSAGES.len(),
        seeds in prop::collection::vec(any::<u32>(), 16),
    ) {
        check(which, &seeds)?;
    }
}

#[test]
fn every_message_has_its_case() {
    for (eep_id, title) in MESSAGES {
        case(eep_id.parse().unwrap(), title);
    }
}
