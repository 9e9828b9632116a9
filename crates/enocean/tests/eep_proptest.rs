//! Properties over every profile: encoding values and decoding them gives the values back (within
//! one resolution step), and decoding arbitrary bytes never panics.

use enocean::eep::{self, BitRange, Case, Direction, FieldDef, Input, Item, Profile, Source};
use enocean::{Field, Value};
use proptest::prelude::*;

/// A small deterministic generator: proptest supplies the seed, this spreads it over the choices.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn between(&mut self, low: i64, high: i64) -> i64 {
        low + (self.next() % ((high - low) as u64 + 1)) as i64
    }
}

/// One chosen value per field: the raw value, the item it falls in, and what encode is given.
struct Choice {
    field: &'static FieldDef,
    raw: i64,
    item: &'static Item,
    given: f64,
    /// Resolution of the scaled value (0 for enumerations).
    step: f64,
    decimals: u8,
}

fn lrn_bits(rorg: u8) -> Option<BitRange> {
    match rorg {
        0xA5 => Some(BitRange {
            offset: 28,
            size: 1,
        }),
        0xD5 => Some(BitRange { offset: 4, size: 1 }),
        _ => None,
    }
}

fn overlaps(a: &[BitRange], b: BitRange) -> bool {
    a.iter()
        .any(|p| p.offset < b.offset + b.size as u16 && b.offset < p.offset + p.size as u16)
}

/// Fields the test can set freely: not on condition bits or the LRN bit.
fn free_fields(profile: &Profile, case: &'static Case) -> Vec<(usize, &'static FieldDef)> {
    let fixed: Vec<BitRange> = case
        .conditions
        .iter()
        .filter(|c| c.source == Source::Data)
        .map(|c| c.bits)
        .chain(lrn_bits(profile.eep.rorg))
        .collect();
    case.fields
        .iter()
        .enumerate()
        .filter(|(_, f)| !fixed.iter().any(|b| overlaps(&f.bits, *b)))
        .collect()
}

fn pick_raw(item: &Item, rng: &mut Rng) -> i64 {
    match item {
        Item::Value { raw, .. } => *raw,
        Item::Range { min, max, .. } => rng.between(*min, *max),
        Item::Mask { value, .. } => *value as i64,
        Item::Linear(l) => rng.between(l.raw_min.min(l.raw_max), l.raw_min.max(l.raw_max)),
    }
}

/// The first item covering `raw`, as decode sees it.
fn covering(field: &'static FieldDef, raw: i64) -> Option<&'static Item> {
    field.items.iter().find(|i| i.covers(raw))
}

/// Scale, raw range and decimals of a linear item, honouring a divisor field's choice.
fn mapping(
    case: &Case,
    field: &FieldDef,
    item: &Item,
    raws: &[Option<i64>],
) -> (i64, i64, f64, f64, u8) {
    let Item::Linear(l) = item else {
        unreachable!()
    };
    let mut m = (l.raw_min, l.raw_max, l.min, l.max, l.decimals);
    if let Some(i) = field.scale_from {
        let divisor = &case.fields[i];
        let raw = raws[i].unwrap_or(0);
        if let Some(Item::Value {
            scale: Some((min, max)),
            range,
            ..
        }) = divisor.items.iter().find(|it| it.covers(raw))
        {
            let (raw_min, raw_max) = range.unwrap_or((l.raw_min, l.raw_max));
            let step = (max - min).abs() / raw_max.abs_diff(raw_min).max(1) as f64;
            let decimals = (-step.log10() - 1e-9).ceil().clamp(2.0, 6.0) as u8;
            m = (raw_min, raw_max, *min, *max, decimals);
        }
    }
    m
}

/// Chooses a value for every free field; divisor fields first so scaled fields know their scale.
fn choose(profile: &Profile, case: &'static Case, rng: &mut Rng) -> Vec<Choice> {
    let free = free_fields(profile, case);
    let mut raws: Vec<Option<i64>> = vec![None; case.fields.len()];
    // Divisor fields first: a scaled field's raw range may depend on them.
    for scaled_pass in [false, true] {
        for &(i, field) in free
            .iter()
            .filter(|(_, f)| f.scale_from.is_some() == scaled_pass)
        {
            let item = &field.items[(rng.next() % field.items.len() as u64) as usize];
            let raw = match item {
                Item::Linear(_) if scaled_pass => {
                    let (raw_min, raw_max, ..) = mapping(case, field, item, &raws);
                    rng.between(raw_min.min(raw_max), raw_min.max(raw_max))
                }
                _ => pick_raw(item, rng),
            };
            raws[i] = Some(raw);
        }
    }
    let mut choices = Vec::new();
    for &(i, field) in &free {
        let raw = raws[i].unwrap();
        let item = covering(field, raw).expect("chosen raw is covered");
        let (given, step, decimals) = match item {
            Item::Linear(_) => {
                let (raw_min, raw_max, min, max, decimals) = mapping(case, field, item, &raws);
                let span = (raw_max - raw_min) as f64;
                let value = if span == 0.0 {
                    min
                } else {
                    min + (raw - raw_min) as f64 / span * (max - min)
                };
                let step = if span == 0.0 {
                    0.0
                } else {
                    ((max - min) / span).abs()
                };
                (value, step, field.decimals.unwrap_or(decimals))
            }
            _ => (raw as f64, 0.0, 0),
        };
        choices.push(Choice {
            field,
            raw,
            item,
            given,
            step,
            decimals,
        });
    }
    choices
}

/// Values that pick the case in encode: command fields on condition bits, status bit names.
fn selectors(case: &'static Case) -> Vec<(&'static str, f64)> {
    case.conditions
        .iter()
        .filter_map(|c| match c.source {
            Source::Status => Some((c.name, c.value as f64)),
            Source::Data => case
                .fields
                .iter()
                .find(|f| f.bits == [c.bits])
                .map(|f| (f.shortcut, c.value as f64)),
        })
        .filter(|(name, _)| !name.is_empty())
        .collect()
}

fn direction_of(case: &Case) -> Direction {
    case.direction.unwrap_or(Direction::FromDevice)
}

/// Encodes the choices, decodes the result and compares; `Ok(false)` when the telegram lands in
/// another case (profiles whose cases the data cannot tell apart).
fn round_trip(
    profile: &'static Profile,
    case: &'static Case,
    choices: &[Choice],
) -> Result<bool, String> {
    // Scaled values for measured fields, raw values for enumerations (a raw value could also
    // read as a scaled one).
    let mut values: Vec<(&str, Input<'_>)> = choices
        .iter()
        .map(|c| match c.item {
            Item::Linear(_) => (c.field.shortcut, Input::Value(c.given)),
            _ => (c.field.shortcut, Input::Raw(c.raw)),
        })
        .collect();
    values.extend(
        selectors(case)
            .into_iter()
            .map(|(s, v)| (s, Input::Raw(v as i64))),
    );
    let direction = direction_of(case);
    let (rorg, data, status) = eep::encode_inputs(profile.eep, &values, direction)
        .map_err(|e| format!("encode {values:?}: {e}"))?;
    let landed = profile
        .case_for(&data, status, direction)
        .ok_or("no case for the encoded telegram")?;
    if !std::ptr::eq(landed, case) {
        return Ok(false);
    }
    let fields = eep::decode_with(profile.eep, rorg, &data, status, direction)
        .map_err(|e| format!("decode {} {values:?} -> {data:02X?}: {e}", profile.eep))?;
    for choice in choices {
        check(choice, &fields)
            .map_err(|e| format!("{} {values:?} -> {data:02X?}: {e}", profile.eep))?;
    }
    Ok(true)
}

fn check(choice: &Choice, fields: &[Field]) -> Result<(), String> {
    let field = fields.iter().find(|f| f.shortcut == choice.field.shortcut);
    let Some(field) = field else {
        return if choice.field.omit == Some(choice.raw) {
            Ok(())
        } else {
            Err(format!("{} missing", choice.field.shortcut))
        };
    };
    match (choice.item, &field.value) {
        (Item::Linear(_), Value::Number(n)) => {
            let tolerance = choice.step + 0.5 * 10f64.powi(-(choice.decimals as i32)) + 1e-9;
            if (n - choice.given).abs() > tolerance {
                return Err(format!(
                    "{}: {n} is not {} ± {tolerance}",
                    field.shortcut, choice.given
                ));
            }
        }
        (Item::Mask { mask, value, .. }, Value::Text(_)) => {
            if choice.field.value_of(field.raw) as u64 & mask != *value {
                return Err(format!(
                    "{}: raw {} outside mask",
                    field.shortcut, field.raw
                ));
            }
        }
        (_, Value::Text(_)) => {
            if choice.field.value_of(field.raw) != choice.raw {
                return Err(format!(
                    "{}: raw {} is not {}",
                    field.shortcut, field.raw, choice.raw
                ));
            }
        }
        (_, other) => return Err(format!("{}: unexpected {other:?}", field.shortcut)),
    }
    Ok(())
}

fn all_cases() -> Vec<(&'static Profile, &'static Case)> {
    eep::profiles()
        .flat_map(|p| p.cases.iter().map(move |c| (p, c)))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn encode_then_decode_gives_the_values_back(seed in any::<u64>()) {
        let mut failures = Vec::new();
        let mut checked = 0;
        for (i, (profile, case)) in all_cases().into_iter().enumerate() {
            let mut rng = Rng(seed ^ (i as u64).wrapping_mul(0x2545_F491_4F6C_DD1D));
            let choices = choose(profile, case, &mut rng);
            match round_trip(profile, case, &choices) {
                Ok(true) => checked += 1,
                Ok(false) => {}
                Err(e) => failures.push(e),
            }
        }
        prop_assert!(failures.is_empty(), "{} failures, first: {}", failures.len(), failures[0]);
        prop_assert!(checked > 300, "only {checked} cases checked");
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(
        index in 0usize..1000,
        own_rorg in any::<bool>(),
        rorg in any::<u8>(),
        data in proptest::collection::vec(any::<u8>(), 0..32),
        status in any::<u8>(),
        to_device in any::<bool>(),
    ) {
        let profiles: Vec<&Profile> = eep::profiles().collect();
        let profile = profiles[index % profiles.len()];
        let rorg = if own_rorg { profile.eep.rorg } else { rorg };
        let direction = if to_device { Direction::ToDevice } else { Direction::FromDevice };
        if let Ok(fields) = eep::decode_with(profile.eep, rorg, &data, status, direction) {
            for field in fields {
                prop_assert!(!field.key.is_empty());
                if let Value::Number(n) = field.value {
                    prop_assert!(n.is_finite());
                }
            }
        }
    }
}

proptest! {
    #[test]
    fn encoding_arbitrary_values_never_panics(
        index in 0usize..1000,
        picks in proptest::collection::vec((0usize..64, any::<f64>()), 0..6),
        to_device in any::<bool>(),
    ) {
        let profiles: Vec<&Profile> = eep::profiles().collect();
        let profile = profiles[index % profiles.len()];
        let shortcuts: Vec<&str> = profile.cases.iter().flat_map(|c| c.fields.iter().map(|f| f.shortcut)).collect();
        prop_assume!(!shortcuts.is_empty());
        let values: Vec<(&str, f64)> = picks.iter().map(|(i, v)| (shortcuts[i % shortcuts.len()], *v)).collect();
        let direction = if to_device { Direction::ToDevice } else { Direction::FromDevice };
        if let Ok((rorg, data, _)) = eep::encode_with(profile.eep, &values, direction) {
            prop_assert_eq!(rorg, profile.eep.rorg);
            prop_assert!(!data.is_empty());
        }
    }
}

/// Every case is reachable: a telegram built for it decodes with it.
#[test]
fn cases_are_reachable() {
    let mut unreachable = Vec::new();
    for (i, (profile, case)) in all_cases().into_iter().enumerate() {
        let mut last = Ok(false);
        for attempt in 0..20u64 {
            let mut rng = Rng(attempt * 7919 + i as u64);
            let choices = choose(profile, case, &mut rng);
            last = round_trip(profile, case, &choices);
            if matches!(last, Ok(true)) {
                break;
            }
        }
        if !matches!(last, Ok(true)) {
            unreachable.push(format!("{} {:?}: {last:?}", profile.eep, case.title));
        }
    }
    assert!(
        unreachable.is_empty(),
        "unreachable cases:\n{}",
        unreachable.join("\n")
    );
}
