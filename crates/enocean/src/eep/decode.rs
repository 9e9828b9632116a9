//! The interpreter: telegram bits to [`Field`]s, driven by a [`Profile`].

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};

use super::bits;
use super::error::DecodeError;
use super::model::{
    Case, Condition, Direction, FieldDef, Item, Linear, Profile, Source, default_decimals, step,
};
use crate::field::{Field, Value};

pub const RORG_RPS: u8 = 0xF6;
pub const RORG_1BS: u8 = 0xD5;
pub const RORG_4BS: u8 = 0xA5;

/// Data length of the fixed-length R-ORGs.
pub fn fixed_len(rorg: u8) -> Option<usize> {
    match rorg {
        RORG_4BS => Some(4),
        RORG_1BS | RORG_RPS => Some(1),
        _ => None,
    }
}

/// The LRN bit (DB0.3) of 4BS and 1BS telegrams: 0 means teach-in.
pub fn lrn_bit(rorg: u8) -> Option<super::model::BitRange> {
    let offset = match rorg {
        RORG_4BS => 28,
        RORG_1BS => 4,
        _ => return None,
    };
    Some(super::model::BitRange { offset, size: 1 })
}

pub fn decode(
    profile: &'static Profile,
    rorg: u8,
    data: &[u8],
    status: u8,
    direction: Direction,
) -> Result<Vec<Field>, DecodeError> {
    if rorg != profile.eep.rorg {
        return Err(DecodeError::WrongRorg {
            expected: profile.eep.rorg,
            got: rorg,
        });
    }
    match fixed_len(rorg) {
        Some(needed) if data.len() != needed => {
            return Err(DecodeError::Length {
                needed,
                got: data.len(),
            });
        }
        _ => {}
    }
    let case = profile
        .case_for(data, status, direction)
        .ok_or(DecodeError::NoMatchingCase)?;
    if data.len() < case.min_len {
        return Err(DecodeError::Length {
            needed: case.min_len,
            got: data.len(),
        });
    }
    let mut out = Vec::with_capacity(case.fields.len());
    for field in &case.fields {
        if let Some(decoded) = decode_field(case, field, data)? {
            out.push(decoded);
        }
    }
    Ok(out)
}

impl Profile {
    /// The case [`super::decode`] uses for these data and status bytes: the first one for
    /// `direction` whose conditions all hold.
    pub fn case_for(&self, data: &[u8], status: u8, direction: Direction) -> Option<&Case> {
        self.cases.iter().find(|case| {
            case.direction.is_none_or(|d| d == direction)
                && case.conditions.iter().all(|c| holds(c, data, status))
        })
    }
}

fn holds(condition: &Condition, data: &[u8], status: u8) -> bool {
    let bytes: &[u8] = match condition.source {
        Source::Data => data,
        Source::Status => std::slice::from_ref(&status),
    };
    bits::read(bytes, condition.bits) == Some(condition.value)
}

fn decode_field(
    case: &'static Case,
    field: &'static FieldDef,
    data: &[u8],
) -> Result<Option<Field>, DecodeError> {
    let raw = bits::read_parts(data, &field.bits).ok_or(DecodeError::Length {
        needed: case.min_len,
        got: data.len(),
    })?;
    let value = field.value_of(raw);
    if field.omit == Some(value) {
        return Ok(None);
    }
    let Some(item) = current_item(field, value) else {
        return Ok(Some(unlisted(field, raw, value)));
    };
    let (value, unit, meaning) = match item {
        Item::Value { name, meaning, .. }
        | Item::Range { name, meaning, .. }
        | Item::Mask { name, meaning, .. } => {
            (Value::Text(Cow::Borrowed(*name)), None, non_empty(meaning))
        }
        Item::Linear(linear) => {
            let (number, unit) = scaled(case, field, linear, value, data);
            (Value::Number(number), unit, None)
        }
    };
    Ok(Some(Field {
        key: Cow::Borrowed(field.key),
        shortcut: field.shortcut,
        raw,
        value,
        unit,
        meaning,
    }))
}

/// A raw value the profile does not list (reserved or undefined): reported as its number with
/// the meaning [`UNLISTED`], so that the telegram's other fields are kept.
fn unlisted(field: &'static FieldDef, raw: u64, value: i64) -> Field {
    UNLISTED_COUNT.fetch_add(1, Ordering::Relaxed);
    Field {
        key: Cow::Borrowed(field.key),
        shortcut: field.shortcut,
        raw,
        value: Value::Number(value as f64),
        unit: None,
        meaning: Some(Cow::Borrowed(UNLISTED)),
    }
}

/// The meaning of a raw value that no item of its field lists.
pub const UNLISTED: &str = "reserved";

/// Fields decoded with a raw value their profile does not list, since start.
pub static UNLISTED_COUNT: AtomicU64 = AtomicU64::new(0);

/// The item that gives the meaning of `raw`.
pub fn current_item(field: &'static FieldDef, raw: i64) -> Option<&'static Item> {
    field.items.iter().find(|item| item.covers(raw))
}

/// The scaled, rounded value and its unit; divisor and unit fields are honoured.
fn scaled(
    case: &'static Case,
    field: &'static FieldDef,
    linear: &'static Linear,
    raw: i64,
    data: &[u8],
) -> (f64, Option<&'static str>) {
    let mapping = effective_mapping(case, field, linear, data);
    let decimals = field.decimals.unwrap_or(mapping.decimals);
    let unit = field
        .unit_from
        .and_then(|i| referenced_item(case, i, data))
        .and_then(|item| match item {
            Item::Value { unit, .. } => *unit,
            _ => None,
        })
        .or(linear.unit);
    (round(mapping.apply(raw), decimals), unit)
}

/// A linear mapping as used for one telegram.
pub struct Mapping {
    pub raw_min: i64,
    pub raw_max: i64,
    pub min: f64,
    pub max: f64,
    pub decimals: u8,
}

impl Mapping {
    pub fn apply(&self, raw: i64) -> f64 {
        if self.raw_max == self.raw_min {
            return self.min;
        }
        let fraction =
            (raw as f64 - self.raw_min as f64) / (self.raw_max as f64 - self.raw_min as f64);
        self.min + fraction * (self.max - self.min)
    }

    pub fn step(&self) -> f64 {
        step(self.raw_min, self.raw_max, self.min, self.max)
    }
}

/// The item's mapping, or the one a divisor field selects (its item's `scale` and `range`).
pub fn effective_mapping(
    case: &'static Case,
    field: &'static FieldDef,
    linear: &'static Linear,
    data: &[u8],
) -> Mapping {
    let base = Mapping {
        raw_min: linear.raw_min,
        raw_max: linear.raw_max,
        min: linear.min,
        max: linear.max,
        decimals: linear.decimals,
    };
    let Some(Item::Value {
        scale: Some((min, max)),
        range,
        ..
    }) = field
        .scale_from
        .and_then(|i| referenced_item(case, i, data))
    else {
        return base;
    };
    let (raw_min, raw_max) = range.unwrap_or((linear.raw_min, linear.raw_max));
    let decimals = default_decimals(step(raw_min, raw_max, *min, *max));
    Mapping {
        raw_min,
        raw_max,
        min: *min,
        max: *max,
        decimals,
    }
}

fn referenced_item(case: &'static Case, index: usize, data: &[u8]) -> Option<&'static Item> {
    let field = &case.fields[index];
    current_item(field, field.value_of(bits::read_parts(data, &field.bits)?))
}

fn non_empty(text: &'static str) -> Option<Cow<'static, str>> {
    (!text.is_empty()).then_some(Cow::Borrowed(text))
}

/// Rounds to `decimals`; an exact half (within float noise) goes toward zero, which is how
/// IoTC's published sample reads (0.085 g → 0.08, −0.975 g → −0.97).
pub fn round(value: f64, decimals: u8) -> f64 {
    const POWERS: [f64; 7] = [1.0, 10.0, 100.0, 1e3, 1e4, 1e5, 1e6];
    let power = POWERS
        .get(decimals as usize)
        .copied()
        .unwrap_or_else(|| 10f64.powi(decimals as i32));
    let scaled = value * power;
    let truncated = scaled.trunc();
    let rounded = if ((scaled - truncated).abs() - 0.5).abs() < 1e-7 {
        truncated
    } else {
        scaled.round()
    };
    let result = rounded / power;
    if result == 0.0 { 0.0 } else { result }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_matches_iotc_samples() {
        assert_eq!(round(0.085, 2), 0.08);
        assert_eq!(round(-0.975, 2), -0.97);
        assert_eq!(round(80.0 * 2000.0 / 255.0, 2), 627.45);
        assert_eq!(round(26.666_666, 2), 26.67);
        assert_eq!(round(-0.001, 2), 0.0);
        assert!(round(-0.001, 2).is_sign_positive());
    }

    #[test]
    fn decimals_follow_the_resolution() {
        assert_eq!(default_decimals(40.0 / 255.0), 2);
        assert_eq!(default_decimals(0.005), 3);
        assert_eq!(default_decimals(0.001), 3);
        assert_eq!(default_decimals(1e-9), 6);
        assert_eq!(default_decimals(7.84), 2);
    }
}
