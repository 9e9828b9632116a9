//! Builds telegram data from field values: the reverse of [`super::decode`].

use super::bits;
use super::decode::{current_item, effective_mapping, fixed_len, lrn_bit};
use super::error::EncodeError;
use super::model::{Case, Condition, Direction, FieldDef, Item, Profile, Source};

/// `(rorg, data, status)` for `values` (shortcut, scaled value or raw enumeration value).
pub fn encode(
    profile: &'static Profile,
    values: &[(&str, f64)],
    direction: Direction,
) -> Result<(u8, Vec<u8>, u8), EncodeError> {
    let case = choose_case(profile, values, direction)?;
    let rorg = profile.eep.rorg;
    let mut data = vec![0u8; fixed_len(rorg).unwrap_or(case.min_len.max(1))];
    let mut status = 0u8;
    for condition in &case.conditions {
        match condition.source {
            Source::Data => bits::write(&mut data, condition.bits, condition.value),
            Source::Status => bits::write(
                std::slice::from_mut(&mut status),
                condition.bits,
                condition.value,
            ),
        }
    }
    let lrn = lrn_bit(rorg);
    if let Some(lrn) = lrn {
        bits::write(&mut data, lrn, 1);
    }
    // Divisor and unit fields first: the fields they scale read them from the data.
    for scaled_pass in [false, true] {
        for field in case
            .fields
            .iter()
            .filter(|f| f.scale_from.is_some() == scaled_pass)
        {
            let given = values
                .iter()
                .find(|(s, _)| *s == field.shortcut)
                .map(|(_, v)| *v);
            let raw = match given {
                Some(value) => to_raw(case, field, value, &data)?,
                None if is_fixed(case, field, lrn) => continue,
                None => default_raw(field),
            };
            bits::write_parts(&mut data, &field.bits, raw as u64);
        }
    }
    Ok((rorg, data, status))
}

/// The first case for `direction` that has every given shortcut (a field or a status condition
/// name) and whose conditions agree with the given values.
fn choose_case(
    profile: &'static Profile,
    values: &[(&str, f64)],
    direction: Direction,
) -> Result<&'static Case, EncodeError> {
    let known = |case: &Case, name: &str| {
        case.fields.iter().any(|f| f.shortcut == name)
            || case.conditions.iter().any(|c| c.name == name)
    };
    if let Some((name, _)) = values
        .iter()
        .find(|(n, _)| !profile.cases.iter().any(|c| known(c, n)))
    {
        return Err(EncodeError::UnknownField(name.to_string()));
    }
    profile
        .cases
        .iter()
        .filter(|case| case.direction.is_none_or(|d| d == direction))
        .find(|case| {
            values.iter().all(|(name, value)| {
                known(case, name)
                    && case
                        .conditions
                        .iter()
                        .all(|c| agrees(case, c, name, *value))
            })
        })
        .ok_or(EncodeError::NoCase)
}

/// Whether a given value leaves condition `c` true.
fn agrees(case: &Case, c: &Condition, name: &str, value: f64) -> bool {
    let on_condition = match c.source {
        Source::Status => c.name == name,
        Source::Data => case
            .fields
            .iter()
            .any(|f| f.shortcut == name && f.bits == [c.bits]),
    };
    !on_condition || value == c.value as f64
}

/// Fields whose bits a condition or the LRN bit already set.
fn is_fixed(case: &Case, field: &FieldDef, lrn: Option<super::model::BitRange>) -> bool {
    let on_condition = case
        .conditions
        .iter()
        .any(|c| c.source == Source::Data && field.bits == [c.bits]);
    on_condition || lrn.is_some_and(|lrn| field.bits == [lrn])
}

/// Raw 0 when it means something, else the smallest raw value an item covers.
pub fn default_raw(field: &FieldDef) -> i64 {
    if field.items.is_empty() || field.items.iter().any(|i| i.covers(0)) {
        return 0;
    }
    field.items.iter().map(Item::first_raw).min().unwrap_or(0)
}

/// A scaled value inside a linear item's range, else an enumerated raw value.
fn to_raw(
    case: &'static Case,
    field: &'static FieldDef,
    value: f64,
    data: &[u8],
) -> Result<i64, EncodeError> {
    let out_of_range = EncodeError::OutOfRange {
        shortcut: field.shortcut,
        value,
    };
    if !value.is_finite() {
        return Err(out_of_range);
    }
    for item in &field.items {
        let Item::Linear(linear) = item else { continue };
        let mapping = effective_mapping(case, field, linear, data);
        let (lo, hi) = (mapping.min.min(mapping.max), mapping.min.max(mapping.max));
        let half = mapping.step() / 2.0;
        if value < lo - half || value > hi + half {
            continue;
        }
        if mapping.max == mapping.min {
            return Ok(mapping.raw_min);
        }
        let fraction = (value - mapping.min) / (mapping.max - mapping.min);
        let raw =
            mapping.raw_min as f64 + fraction * (mapping.raw_max as f64 - mapping.raw_min as f64);
        let (raw_lo, raw_hi) = (
            mapping.raw_min.min(mapping.raw_max),
            mapping.raw_min.max(mapping.raw_max),
        );
        return Ok((raw.round() as i64).clamp(raw_lo, raw_hi));
    }
    let limit = 2f64.powi(field.size() as i32);
    let low = if field.signed { -limit / 2.0 } else { 0.0 };
    let fits = value >= low && value.fract() == 0.0 && value < limit;
    let raw = value as i64;
    if fits && current_item(field, raw).is_some_and(|i| !matches!(i, Item::Linear(_))) {
        return Ok(raw);
    }
    Err(out_of_range)
}
