//! Every scaled field of every profile against the EnOcean Alliance's ranges.
//!
//! `tests/data/eep_scales.json` holds the raw and scaled range of every linear field of EEP 2.6.5
//! (facts copied from the Alliance's descriptions as published in data form by the CC0
//! enocean-js project), plus the ranges the source writes as text, read from the field's
//! description (`corrected`). Issue 15: A5-20-04's feed temperature read 10 °C for raw 255,
//! where the profile gives 80 °C.

use enocean::eep::{self, Item};
use serde::Deserialize;

#[derive(Deserialize)]
struct File {
    corrected: Vec<Range>,
    ranges: Vec<Range>,
}

#[derive(Deserialize)]
struct Range {
    eep: String,
    /// `offset:size` of the field, or `ref` for the range a selector field's value gives.
    bits: String,
    raw: [f64; 2],
    scaled: [f64; 2],
}

/// A mapping as our tables hold it: raw ends, scaled ends.
type Mapping = (f64, f64, f64, f64);

fn alliance() -> Vec<Range> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/eep_scales.json"
    ))
    .unwrap();
    let file: File = serde_json::from_str(&text).unwrap();
    let mut all = file.ranges;
    all.extend(file.corrected);
    all
}

/// Every linear mapping of a profile: linear items (without the placeholder of fields scaled
/// by a selector) and the ranges selector values give.
fn ours(profile: &eep::Profile) -> Vec<Mapping> {
    let mut out = Vec::new();
    for field in profile.cases.iter().flat_map(|c| c.fields.iter()) {
        for item in &field.items {
            match item {
                Item::Linear(l) if field.scale_from.is_none() => {
                    out.push((l.raw_min as f64, l.raw_max as f64, l.min, l.max))
                }
                Item::Value {
                    scale: Some((min, max)),
                    range: Some((rmin, rmax)),
                    ..
                } => out.push((*rmin as f64, *rmax as f64, *min, *max)),
                _ => {}
            }
        }
    }
    out
}

fn same(a: Mapping, r: &Range) -> bool {
    let close = |x: f64, y: f64| (x - y).abs() < 1e-9;
    close(a.0, r.raw[0])
        && close(a.1, r.raw[1])
        && close(a.2, r.scaled[0])
        && close(a.3, r.scaled[1])
}

/// Is `m` written in the text source as a text range we replaced (the source's own numbers)?
fn is_plain_number(m: Mapping) -> bool {
    m.0 == m.2 && m.1 == m.3
}

#[test]
fn every_alliance_range_is_in_our_tables() {
    let mut missing = Vec::new();
    for range in alliance() {
        let profile = eep::profile(range.eep.parse().unwrap()).unwrap();
        if !ours(profile).into_iter().any(|m| same(m, &range)) {
            missing.push(format!(
                "{} {}: {:?} -> {:?}",
                range.eep, range.bits, range.raw, range.scaled
            ));
        }
    }
    assert!(
        missing.is_empty(),
        "{} missing:\n{}",
        missing.len(),
        missing.join("\n")
    );
}

#[test]
fn every_scaled_field_has_an_alliance_range() {
    let alliance = alliance();
    let mut wrong = Vec::new();
    for profile in eep::profiles() {
        let eep = profile.eep.to_string();
        let theirs: Vec<&Range> = alliance.iter().filter(|r| r.eep == eep).collect();
        if theirs.is_empty() {
            continue; // a hand-written profile, or one sharing another's cases
        }
        for m in ours(profile) {
            if !is_plain_number(m) && !theirs.iter().any(|r| same(m, r)) {
                wrong.push(format!("{eep}: {m:?}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} not in the Alliance's ranges:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

#[test]
fn a5_20_04_feed_temperature_spans_20_to_80() {
    // A5-20-04 (EEP 2.6.5): FTS raw 0..255 = 20..80 °C when TS (DB0.1) = 0 (feed temperature),
    // 10..30 °C when TS = 1 (set point). DB0 = 0x08: LRN data, TS 0, FL 0.
    let eep = "A5-20-04".parse().unwrap();
    let value = |data: &[u8], key: &str| {
        let fields = eep::decode(eep, 0xA5, data, 0).unwrap();
        let field = fields.into_iter().find(|f| f.key == key).unwrap();
        (field.value, field.unit)
    };
    let fts = "feedTemperatureORTemperatureSetPoint";
    assert_eq!(
        value(&[0, 255, 0, 0x08], fts),
        (enocean::Value::Number(80.0), Some("°C"))
    );
    assert_eq!(
        value(&[0, 0, 0, 0x08], fts),
        (enocean::Value::Number(20.0), Some("°C"))
    );
    assert_eq!(
        value(&[0, 255, 0, 0x0A], fts),
        (enocean::Value::Number(30.0), Some("°C"))
    );
    // TMPFC: room temperature 10..30 °C when FL (DB0.0) = 0, a failure code when FL = 1.
    let tmpfc = "roomTemperatureORFailureCode";
    assert_eq!(
        value(&[0, 0, 255, 0x08], tmpfc).0,
        enocean::Value::Number(30.0)
    );
    assert_eq!(
        value(&[0, 0, 17, 0x09], tmpfc).0,
        enocean::Value::Text("measurementError".into())
    );
}
