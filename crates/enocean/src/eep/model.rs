//! The profile tables the interpreter reads: profiles, cases, fields and their value items.
//!
//! Text borrows from the compiled-in profile files, so every string is `&'static str`.

use super::Eep;

/// One EEP profile.
#[derive(Debug, Clone)]
pub struct Profile {
    pub eep: Eep,
    pub title: &'static str,
    /// The telegram layouts of the profile; decoding uses the first case whose conditions hold.
    pub cases: Vec<Case>,
}

/// Which way a telegram travels; some profiles lay out the two directions differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Sent by the sensor or actuator (EEP direction 1): what a receiver normally hears.
    FromDevice,
    /// Sent to the actuator by a controller (EEP direction 2).
    ToDevice,
}

/// One telegram layout of a profile.
#[derive(Debug, Clone)]
pub struct Case {
    pub title: &'static str,
    /// `None`: the case applies in both directions.
    pub direction: Option<Direction>,
    /// All must hold for the case to apply.
    pub conditions: Vec<Condition>,
    pub fields: Vec<FieldDef>,
    /// Data bytes the case needs: up to the last bit of its fields and data conditions.
    pub min_len: usize,
}

/// Where a condition reads its bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The data bytes (offsets from the first data byte's most significant bit).
    Data,
    /// The status byte (offset 0 is bit 7; T21 is offset 2, NU offset 3).
    Status,
}

/// A case selector: the bits at `bits` of `source` equal `value`.
#[derive(Debug, Clone)]
pub struct Condition {
    pub source: Source,
    pub bits: BitRange,
    pub value: u64,
    /// The status field's name (`T21`, `NU`); empty for data conditions.
    pub name: &'static str,
}

/// A run of bits, counted from the most significant bit of the first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BitRange {
    pub offset: u16,
    pub size: u8,
}

impl BitRange {
    pub fn end(&self) -> usize {
        self.offset as usize + self.size as usize
    }
}

/// One field of a case.
#[derive(Debug, Clone)]
pub struct FieldDef {
    /// The EEP shortcut (`TMP`).
    pub shortcut: &'static str,
    /// The output key (`temperature`).
    pub key: &'static str,
    /// The field's name in the EEP (`Temperature`).
    pub name: &'static str,
    /// One range, or several concatenated most significant part first.
    pub bits: Vec<BitRange>,
    /// Matched in order; the first item that covers the raw value gives its meaning.
    pub items: Vec<Item>,
    /// Decimals of scaled values, overriding the default derived from the resolution.
    pub decimals: Option<u8>,
    /// Index of the field whose current item gives this field's scale (a divisor field).
    pub scale_from: Option<usize>,
    /// Index of the field whose current item gives this field's unit.
    pub unit_from: Option<usize>,
    /// The field is left out of the output when its raw value equals this.
    pub omit: Option<i64>,
    /// The bits hold a two's complement number; items then list negative raw values.
    pub signed: bool,
}

impl FieldDef {
    pub fn size(&self) -> u32 {
        self.bits.iter().map(|b| b.size as u32).sum()
    }

    /// The raw value items are matched against: the bits, sign-extended for signed fields.
    pub fn value_of(&self, bits: u64) -> i64 {
        let size = self.size();
        if self.signed && size < 64 && bits >> (size - 1) & 1 == 1 {
            (bits | (u64::MAX << size)) as i64
        } else {
            bits as i64
        }
    }
}

/// What a raw value means.
#[derive(Debug, Clone)]
pub enum Item {
    /// One raw value with a name; `unit`, `scale` and `range` serve fields that refer to this one.
    Value {
        raw: i64,
        name: &'static str,
        meaning: &'static str,
        unit: Option<&'static str>,
        scale: Option<(f64, f64)>,
        range: Option<(i64, i64)>,
    },
    /// Raw values `min..=max` sharing a name.
    Range {
        min: i64,
        max: i64,
        name: &'static str,
        meaning: &'static str,
    },
    /// Raw values with `raw & mask == value`.
    Mask {
        mask: u64,
        value: u64,
        name: &'static str,
        meaning: &'static str,
    },
    /// A measured quantity: raw `raw_min..raw_max` maps linearly onto `min..max`.
    Linear(Linear),
}

/// A linear mapping from raw to scaled values; the raw ends may be reversed (255..0).
#[derive(Debug, Clone)]
pub struct Linear {
    pub raw_min: i64,
    pub raw_max: i64,
    pub min: f64,
    pub max: f64,
    pub unit: Option<&'static str>,
    pub meaning: &'static str,
    /// Decimals of decoded values: from the resolution, see [`default_decimals`].
    pub decimals: u8,
}

impl Linear {
    pub fn covers(&self, raw: i64) -> bool {
        raw >= self.raw_min.min(self.raw_max) && raw <= self.raw_min.max(self.raw_max)
    }

    /// The value one raw step stands for (always positive).
    pub fn step(&self) -> f64 {
        step(self.raw_min, self.raw_max, self.min, self.max)
    }
}

/// Resolution of a linear mapping; a one-point range counts as step 1.
pub fn step(raw_min: i64, raw_max: i64, min: f64, max: f64) -> f64 {
    let raw_span = raw_max.abs_diff(raw_min) as f64;
    if raw_span == 0.0 {
        1.0
    } else {
        (max - min).abs() / raw_span
    }
}

/// Decimals that show a step of `step`: at least 2 (IoTC prints `627.45` for a 7.8 ppm step),
/// more for finer steps (0.005 g shows 3), at most 6.
pub fn default_decimals(step: f64) -> u8 {
    if !(step.is_finite() && step > 0.0) {
        return 2;
    }
    (-step.log10() - 1e-9).ceil().clamp(2.0, 6.0) as u8
}

impl Item {
    /// Whether the item gives the meaning of `raw`.
    pub fn covers(&self, raw: i64) -> bool {
        match self {
            Item::Value { raw: r, .. } => *r == raw,
            Item::Range { min, max, .. } => (*min..=*max).contains(&raw),
            Item::Mask { mask, value, .. } => raw as u64 & mask == *value,
            Item::Linear(l) => l.covers(raw),
        }
    }

    /// The smallest raw value the item covers.
    pub fn first_raw(&self) -> i64 {
        match self {
            Item::Value { raw, .. } => *raw,
            Item::Range { min, .. } => *min,
            Item::Mask { value, .. } => *value as i64,
            Item::Linear(l) => l.raw_min.min(l.raw_max),
        }
    }
}
