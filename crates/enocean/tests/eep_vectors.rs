//! Published EEP vectors (tests/data/eep_vectors.json): every decode and encode case of the
//! collected vectors, each with its source and license, checked through `check`, our reading of
//! the source's expectation in the crate's terms.

use enocean::eep::{self, Direction, EepError};
use enocean::telegram::Telegram;
use enocean::{Field, Value};
use serde::Deserialize;

#[derive(Deserialize)]
struct VectorFile {
    cases: Vec<Vector>,
}

#[derive(Deserialize)]
struct Vector {
    source: String,
    license: String,
    kind: String,
    esp3_hex: Option<String>,
    check: Check,
}

#[derive(Deserialize)]
struct Check {
    eep: String,
    direction: Option<u8>,
    input: Option<Input>,
    #[serde(default)]
    fields: Vec<Expect>,
    #[serde(default)]
    absent: Vec<String>,
    error: Option<String>,
    #[serde(default)]
    set_lrn: bool,
    order: Option<Vec<String>>,
    values: Option<Vec<(String, f64)>>,
    expect_data: Option<String>,
}

#[derive(Deserialize)]
struct Input {
    rorg: String,
    data: String,
    status: u8,
}

#[derive(Deserialize)]
struct Expect {
    shortcut: String,
    raw: Option<u64>,
    number: Option<f64>,
    tolerance: Option<f64>,
    unit: Option<String>,
    text: Option<String>,
    meaning: Option<String>,
}

fn load() -> Vec<Vector> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/eep_vectors.json"
    ))
    .unwrap();
    serde_json::from_str::<VectorFile>(&text).unwrap().cases
}

fn direction(check: &Check) -> Direction {
    match check.direction {
        Some(2) => Direction::ToDevice,
        _ => Direction::FromDevice,
    }
}

/// R-ORG, data and status of the vector's telegram.
fn telegram(vector: &Vector) -> Result<(u8, Vec<u8>, u8), String> {
    if let Some(input) = &vector.check.input {
        let rorg = u8::from_str_radix(&input.rorg, 16).map_err(|e| e.to_string())?;
        return Ok((
            rorg,
            hex::decode(&input.data).map_err(|e| e.to_string())?,
            input.status,
        ));
    }
    let frame =
        hex::decode(vector.esp3_hex.as_deref().ok_or("no telegram")?).map_err(|e| e.to_string())?;
    let t = Telegram::from_esp3(&frame).map_err(|e| e.to_string())?;
    Ok((t.rorg, t.data, t.status))
}

fn check_fields(check: &Check, fields: &[Field]) -> Result<(), String> {
    for expect in &check.fields {
        let field = fields
            .iter()
            .find(|f| f.shortcut == expect.shortcut)
            .ok_or_else(|| format!("no field {} in {fields:?}", expect.shortcut))?;
        let at = &expect.shortcut;
        if let Some(raw) = expect.raw
            && field.raw != raw
        {
            return Err(format!("{at}: raw {} != {raw}", field.raw));
        }
        if let Some(number) = expect.number {
            let tolerance = expect.tolerance.unwrap_or(0.005);
            match field.value {
                Value::Number(n) if (n - number).abs() <= tolerance => {}
                ref other => return Err(format!("{at}: {other:?} is not {number} ± {tolerance}")),
            }
        }
        if let Some(text) = &expect.text
            && field.value != Value::Text(text.clone().into())
        {
            return Err(format!("{at}: {:?} is not {text:?}", field.value));
        }
        if let Some(meaning) = &expect.meaning
            && field.meaning.as_deref() != Some(meaning.as_str())
        {
            return Err(format!(
                "{at}: meaning {:?} is not {meaning:?}",
                field.meaning
            ));
        }
        if let Some(unit) = &expect.unit
            && field.unit != Some(unit.as_str())
        {
            return Err(format!("{at}: unit {:?} is not {unit:?}", field.unit));
        }
    }
    for absent in &check.absent {
        if fields.iter().any(|f| f.shortcut == absent) {
            return Err(format!("{absent} should be absent: {fields:?}"));
        }
    }
    if let Some(order) = &check.order {
        let got: Vec<&str> = fields.iter().map(|f| f.shortcut).collect();
        if got != *order {
            return Err(format!("field order {got:?} is not {order:?}"));
        }
    }
    Ok(())
}

fn run_decode(vector: &Vector) -> Result<(), String> {
    let check = &vector.check;
    let eep = check.eep.parse().map_err(|e| format!("{e}"))?;
    let (rorg, mut data, status) = telegram(vector)?;
    if check.set_lrn {
        // A teach-in telegram is read with the profile's layout; its LRN field says so.
        let teach_in = eep::decode_with(eep, rorg, &data, status, direction(check))
            .map_err(|e| format!("teach-in telegram: {e}"))?;
        if !teach_in
            .iter()
            .any(|f| f.key == "learn" && f.value == Value::Text("pressed".into()))
        {
            return Err(format!("LRN bit 0 should read learn=pressed: {teach_in:?}"));
        }
        data[3] |= 0x08;
    }
    let result = eep::decode_with(eep, rorg, &data, status, direction(check));
    match (&check.error, result) {
        (Some(expected), Err(EepError::Decode(e)))
            if format!("{e:?}").starts_with(expected.as_str()) =>
        {
            Ok(())
        }
        (Some(expected), other) => Err(format!("expected error {expected}, got {other:?}")),
        (None, Ok(fields)) => check_fields(check, &fields),
        (None, Err(e)) => Err(format!("decode failed: {e}")),
    }
}

fn run_encode(vector: &Vector) -> Result<(), String> {
    let check = &vector.check;
    let eep = check.eep.parse().map_err(|e| format!("{e}"))?;
    let values: Vec<(&str, f64)> = check
        .values
        .as_ref()
        .ok_or("no values")?
        .iter()
        .map(|(s, v)| (s.as_str(), *v))
        .collect();
    let (rorg, data, status) =
        eep::encode_with(eep, &values, direction(check)).map_err(|e| e.to_string())?;
    let expected = match &check.expect_data {
        Some(hex) => (eep.rorg, hex::decode(hex).unwrap(), 0),
        None => telegram(vector)?,
    };
    if (rorg, &data, status) != (expected.0, &expected.1, expected.2) {
        return Err(format!(
            "encoded {rorg:02X} {} {status:02X}, expected {:02X} {} {:02X}",
            hex::encode(&data),
            expected.0,
            hex::encode(&expected.1),
            expected.2
        ));
    }
    if !check.fields.is_empty() {
        let fields = eep::decode_with(eep, rorg, &data, status, direction(check))
            .map_err(|e| e.to_string())?;
        check_fields(check, &fields)?;
    }
    Ok(())
}

#[test]
fn every_published_vector_passes() {
    let vectors = load();
    assert_eq!(vectors.len(), 93);
    let mut failures = Vec::new();
    for (i, vector) in vectors.iter().enumerate() {
        assert!(!vector.license.is_empty() && !vector.source.is_empty());
        let result = match vector.kind.as_str() {
            "eep_decode" | "eep_decode_msc" => run_decode(vector),
            "eep_encode" => run_encode(vector),
            other => Err(format!("unexpected kind {other}")),
        };
        if let Err(e) = result {
            failures.push(format!(
                "#{i} {} ({}): {e}",
                vector.check.eep, vector.source
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failing:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn vectors_cover_every_kind() {
    let vectors = load();
    for kind in ["eep_decode", "eep_encode", "eep_decode_msc"] {
        assert!(vectors.iter().any(|v| v.kind == kind), "no {kind} case");
    }
}
