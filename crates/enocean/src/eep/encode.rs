//! Builds telegram data from field values: the reverse of [`super::decode`].

use super::bits;
use super::decode::{current_item, effective_mapping, fixed_len, lrn_bit};
use super::error::EncodeError;
use super::model::{BitRange, Case, Condition, Direction, FieldDef, Item, Profile, Source};

/// A value for one field.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Input<'a> {
    /// A scaled value of a measured field (`21.5` °C); for an enumerated field its raw value.
    /// Where both readings are possible the scaled one wins.
    Value(f64),
    /// The raw bits' value.
    Raw(i64),
    /// An enumerated value by name (`open`).
    Name(&'a str),
}

/// `(rorg, data, status)` for `inputs` given by shortcut (or status condition name).
pub fn encode(
    profile: &'static Profile,
    inputs: &[(&str, Input<'_>)],
    direction: Direction,
) -> Result<(u8, Vec<u8>, u8), EncodeError> {
    let case = choose_case(profile, inputs, direction)?;
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
            let given = inputs
                .iter()
                .find(|(s, _)| *s == field.shortcut)
                .map(|(_, v)| *v);
            let raw = match given {
                Some(input) => to_raw(case, field, input, &data)?,
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
    inputs: &[(&str, Input<'_>)],
    direction: Direction,
) -> Result<&'static Case, EncodeError> {
    let known = |case: &Case, name: &str| {
        case.fields.iter().any(|f| f.shortcut == name)
            || case.conditions.iter().any(|c| c.name == name)
    };
    if let Some((name, _)) = inputs
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
            inputs.iter().all(|(name, input)| {
                known(case, name)
                    && case
                        .conditions
                        .iter()
                        .all(|c| agrees(case, c, name, *input))
            })
        })
        .ok_or(EncodeError::NoCase)
}

/// Whether a given input leaves condition `c` true.
fn agrees(case: &Case, c: &Condition, name: &str, input: Input<'_>) -> bool {
    let raw = match c.source {
        Source::Status if c.name == name => plain_raw(input),
        Source::Data => match case
            .fields
            .iter()
            .find(|f| f.shortcut == name && f.bits == [c.bits])
        {
            Some(field) => match input {
                Input::Name(n) => named_raw(field, n),
                other => plain_raw(other),
            },
            None => return true,
        },
        _ => return true,
    };
    raw == Some(c.value as i64)
}

fn plain_raw(input: Input<'_>) -> Option<i64> {
    match input {
        Input::Raw(r) => Some(r),
        Input::Value(v) if v.fract() == 0.0 => Some(v as i64),
        _ => None,
    }
}

fn named_raw(field: &FieldDef, name: &str) -> Option<i64> {
    field.items.iter().find_map(|item| match item {
        Item::Value { raw, name: n, .. } if *n == name => Some(*raw),
        Item::Range { min, name: n, .. } if *n == name => Some(*min),
        Item::Mask { value, name: n, .. } if *n == name => Some(*value as i64),
        _ => None,
    })
}

/// Fields whose bits a condition or the LRN bit already set.
fn is_fixed(case: &Case, field: &FieldDef, lrn: Option<BitRange>) -> bool {
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

fn to_raw(
    case: &'static Case,
    field: &'static FieldDef,
    input: Input<'_>,
    data: &[u8],
) -> Result<i64, EncodeError> {
    let out_of_range = |value: f64| EncodeError::OutOfRange {
        shortcut: field.shortcut,
        value,
    };
    match input {
        Input::Name(name) => named_raw(field, name).ok_or_else(|| EncodeError::UnknownValue {
            shortcut: field.shortcut,
            name: name.to_string(),
        }),
        Input::Raw(raw) if fits(field, raw) => Ok(raw),
        Input::Raw(raw) => Err(out_of_range(raw as f64)),
        Input::Value(value) => scaled_to_raw(case, field, value, data)
            .or_else(|| enumerated_raw(field, value))
            .ok_or_else(|| out_of_range(value)),
    }
}

/// The raw value of a scaled value inside a linear item's range.
fn scaled_to_raw(
    case: &'static Case,
    field: &'static FieldDef,
    value: f64,
    data: &[u8],
) -> Option<i64> {
    if !value.is_finite() {
        return None;
    }
    field.items.iter().find_map(|item| {
        let Item::Linear(linear) = item else {
            return None;
        };
        let mapping = effective_mapping(case, field, linear, data);
        let (lo, hi) = (mapping.min.min(mapping.max), mapping.min.max(mapping.max));
        let half = mapping.step() / 2.0;
        if value < lo - half || value > hi + half {
            return None;
        }
        if mapping.max == mapping.min {
            return Some(mapping.raw_min);
        }
        let fraction = (value - mapping.min) / (mapping.max - mapping.min);
        let raw = mapping.raw_min as f64 + fraction * (mapping.raw_max - mapping.raw_min) as f64;
        let (raw_lo, raw_hi) = (
            mapping.raw_min.min(mapping.raw_max),
            mapping.raw_min.max(mapping.raw_max),
        );
        Some((raw.round() as i64).clamp(raw_lo, raw_hi))
    })
}

/// A whole number naming an enumerated (not linear) item.
fn enumerated_raw(field: &'static FieldDef, value: f64) -> Option<i64> {
    if value.fract() != 0.0 || !fits(field, value as i64) {
        return None;
    }
    let raw = value as i64;
    current_item(field, raw)
        .filter(|i| !matches!(i, Item::Linear(_)))
        .map(|_| raw)
}

/// Whether `raw` fits the field's bits (two's complement for signed fields).
fn fits(field: &FieldDef, raw: i64) -> bool {
    let size = field.size();
    if field.signed {
        let half = 1i64 << (size - 1);
        (-half..half).contains(&raw)
    } else {
        (0..(1i64 << size)).contains(&raw)
    }
}
