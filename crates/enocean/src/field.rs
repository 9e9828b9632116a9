//! One decoded value, shaped like an IoTC telemetry entry.
//!
//! IoTC publishes `{key, value, unit}` for measurements and `{key, value, meaning}` for
//! enumerations. Tools also want the EEP shortcut and the raw bit value, so both are kept
//! here and only written out by [`Field::full`].

use std::borrow::Cow;

use serde::ser::{Serialize, SerializeMap, Serializer};

/// A decoded value: a number (scaled, in `unit`) or a text (an enumeration's value name).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Number(f64),
    Text(Cow<'static, str>),
}

/// One decoded field.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// IoTC's key: lowerCamelCase of the field's meaning (`temperature`, `accelerationX`).
    pub key: Cow<'static, str>,
    /// The EEP shortcut (`TMP`, `HUM`), empty where the source has none.
    pub shortcut: &'static str,
    /// The raw value as read from the telegram bits.
    pub raw: u64,
    pub value: Value,
    /// Unit of a numeric value (`°C`, `%`), if any.
    pub unit: Option<&'static str>,
    /// Human meaning of an enumerated value (`Window opened`), if any.
    pub meaning: Option<Cow<'static, str>>,
}

impl Field {
    /// A view that serializes with the shortcut and raw value added (for `--full`).
    pub fn full(&self) -> FullField<'_> {
        FullField(self)
    }

    fn write_common<M: SerializeMap>(&self, map: &mut M) -> Result<(), M::Error> {
        map.serialize_entry("key", &self.key)?;
        match &self.value {
            Value::Number(n) => map.serialize_entry("value", n)?,
            Value::Text(t) => map.serialize_entry("value", t)?,
        }
        if let Some(unit) = self.unit {
            map.serialize_entry("unit", unit)?;
        }
        if let Some(meaning) = &self.meaning {
            map.serialize_entry("meaning", meaning)?;
        }
        Ok(())
    }
}

impl Serialize for Field {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        self.write_common(&mut map)?;
        map.end()
    }
}

/// Serializes a [`Field`] with `shortcut` and `raw` as well.
pub struct FullField<'a>(&'a Field);

impl Serialize for FullField<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        self.0.write_common(&mut map)?;
        map.serialize_entry("shortcut", self.0.shortcut)?;
        map.serialize_entry("raw", &self.0.raw)?;
        map.end()
    }
}
