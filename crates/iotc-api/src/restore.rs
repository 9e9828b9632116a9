//! What `POST` / `PATCH /backup` read: a backup as IoTC wrote it. IoTC's exports carry booleans
//! as strings (`"activeFlag": "true"`), `null` for unset values, lower-case EEPs and fields this
//! API does not know; all of that is accepted (unknown fields are logged and counted, not
//! stored). What is really invalid (bad IDs, EEPs, versions, dates) is still refused by
//! [`crate::backup::checked`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use iotc_core::model::EnOceanSensor;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

/// The string spellings of a boolean that IoTC's exports and Python write.
const TRUE: [&str; 4] = ["true", "True", "TRUE", "1"];
const FALSE: [&str; 4] = ["false", "False", "FALSE", "0"];
/// How many unknown field names one import logs (the count covers all of them).
const MAX_LOGGED_NAMES: usize = 20;

/// A boolean, or one of its string spellings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LenientBool(pub bool);

impl<'de> Deserialize<'de> for LenientBool {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(LenientBoolVisitor)
    }
}

struct LenientBoolVisitor;

impl Visitor<'_> for LenientBoolVisitor {
    type Value = LenientBool;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("true, false or one of \"true\", \"false\", \"True\", \"False\", \"1\", \"0\"")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<LenientBool, E> {
        Ok(LenientBool(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<LenientBool, E> {
        if TRUE.contains(&v) {
            Ok(LenientBool(true))
        } else if FALSE.contains(&v) {
            Ok(LenientBool(false))
        } else {
            Err(E::invalid_value(de::Unexpected::Str(v), &self))
        }
    }
}

impl PartialSchema for LenientBool {
    fn schema() -> RefOr<Schema> {
        // A pattern, not an enum: generators make enum names by upper-casing the values, and
        // `true` / `True` / `TRUE` would collide.
        let words: Vec<&str> = TRUE.iter().chain(FALSE.iter()).copied().collect();
        let pattern = format!("^({})$", words.join("|"));
        OneOfBuilder::new()
            .item(ObjectBuilder::new().schema_type(Type::Boolean))
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(pattern)),
            )
            .description(Some("A boolean; IoTC's exports write it as a string."))
            .into()
    }
}

impl ToSchema for LenientBool {}

/// One device of a backup being restored: IoTC's `EnOceanSensor` as IoTC exported it.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SensorImport {
    #[serde(rename = "sourceEurid")]
    #[schema(pattern = "^[a-fA-F0-9]{8}$", example = "a1b2c3d4")]
    pub source_eurid: String,
    #[serde(rename = "destinationEurid", default)]
    #[schema(pattern = "^[a-fA-F0-9]{8}$", example = "ffffffff")]
    pub destination_eurid: Option<String>,
    #[serde(rename = "friendlyID")]
    #[schema(max_length = 64, example = "Room Panel 02")]
    pub friendly_id: String,
    #[serde(default)]
    #[schema(max_length = 64)]
    pub location: Option<String>,
    /// `RR-FF-TT`, any case.
    #[schema(pattern = "^([a-fA-F0-9]{2})-([a-fA-F0-9]{2})-([a-fA-F0-9]{2})$")]
    pub eep: String,
    /// Default true.
    #[serde(rename = "activeFlag", default)]
    pub active_flag: Option<LenientBool>,
    #[serde(default)]
    #[schema(pattern = "^[a-fA-F0-9]{2}$")]
    pub slf: Option<String>,
    /// Default false.
    #[serde(rename = "isPTM", default)]
    pub is_ptm: Option<LenientBool>,
    #[serde(rename = "AESKey", default)]
    #[schema(pattern = "^[a-fA-F0-9]{32}$")]
    pub aes_key: Option<String>,
    #[serde(rename = "customTag", default)]
    #[schema(max_length = 256)]
    pub custom_tag: Option<String>,
    /// Fields this API does not know: ignored, logged.
    #[serde(flatten)]
    #[schema(ignore)]
    pub unknown: BTreeMap<String, Value>,
}

impl SensorImport {
    /// The device, not yet validated; unset values take IoTC's defaults.
    pub fn into_sensor(self) -> EnOceanSensor {
        EnOceanSensor {
            source_eurid: self.source_eurid,
            destination_eurid: self.destination_eurid,
            friendly_id: self.friendly_id,
            location: self.location,
            eep: self.eep,
            active_flag: self.active_flag.is_none_or(|b| b.0),
            slf: self.slf,
            is_ptm: self.is_ptm.is_some_and(|b| b.0),
            aes_key: self.aes_key,
            custom_tag: self.custom_tag.unwrap_or_default(),
        }
    }
}

/// A backup being restored: IoTC's `Backup` as IoTC exported it.
#[derive(Debug, Deserialize, ToSchema)]
pub struct BackupImport {
    /// Version of the API that wrote the dump; this API reads 1.x.y.
    #[serde(rename = "APIVersion")]
    #[schema(
        pattern = r"^([0-9]{1,4})\.([0-9]{1,4})\.([0-9]{1,4})$",
        example = "1.3.0"
    )]
    pub api_version: String,
    #[serde(rename = "APPVersion", default)]
    #[schema(pattern = r"^([0-9]{1,4})\.([0-9]{1,4})\.([0-9]{1,4})$")]
    pub app_version: Option<String>,
    /// When the dump was written; without an offset it is read as UTC.
    #[serde(rename = "ExportDate")]
    #[schema(format = DateTime, example = "2026-05-18T09:25:33Z")]
    pub export_date: String,
    #[serde(rename = "Connections", default)]
    pub connections: Option<Vec<SensorImport>>,
    /// The register of access points (`/aps`), hashes only; absent in IoTC's dumps, and then
    /// the register is left as it is.
    #[serde(rename = "AccessPoints", default)]
    pub access_points: Option<Vec<iotc_core::aps::ApRecord>>,
    /// Fields this API does not know: ignored, logged.
    #[serde(flatten)]
    #[schema(ignore)]
    pub unknown: BTreeMap<String, Value>,
}

impl BackupImport {
    /// Names of the unknown fields (`Connections[3].rlc` as `Connections[].rlc`), and how many
    /// there were in all.
    pub fn unknown_fields(&self) -> (BTreeSet<String>, usize) {
        let mut names: BTreeSet<String> = self.unknown.keys().cloned().collect();
        let mut count = self.unknown.len();
        for dev in self.connections.iter().flatten() {
            count += dev.unknown.len();
            for name in dev.unknown.keys() {
                names.insert(format!("Connections[].{name}"));
            }
        }
        (names, count)
    }

    /// Logs and counts the fields that are ignored.
    pub fn report_unknown_fields(&self) {
        let (names, count) = self.unknown_fields();
        report_unknown(&names, count);
    }
}

/// Logs (some of) the names and counts all of the fields a backup carried that are ignored.
pub fn report_unknown(names: &BTreeSet<String>, count: usize) {
    if count == 0 {
        return;
    }
    metrics::counter!("iotc_api_backup_unknown_fields_total").increment(count as u64);
    let shown: Vec<&str> = names
        .iter()
        .take(MAX_LOGGED_NAMES)
        .map(String::as_str)
        .collect();
    tracing::warn!(
        count,
        fields = %shown.join(", "),
        "backup: ignoring fields this API does not know"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_iotc_export_forms() {
        let b: BackupImport = serde_json::from_value(serde_json::json!({
            "APIVersion": "1.2.0", "ExportDate": "2022-05-18T09:25:33", "Extra": {"a": 1},
            "Connections": [
                {"sourceEurid": "A1B2C3D4", "friendlyID": "x", "eep": "a5-04-05",
                 "activeFlag": "False", "isPTM": "true", "customTag": null, "location": null,
                 "rlc": "00"},
                {"sourceEurid": "a1b2c3d5", "friendlyID": "y", "eep": "A5-04-05", "activeFlag": "1"},
                {"sourceEurid": "a1b2c3d6", "friendlyID": "z", "eep": "A5-04-05"}
            ]
        }))
        .unwrap();
        let (names, count) = b.unknown_fields();
        assert_eq!(count, 2);
        assert_eq!(
            names.into_iter().collect::<Vec<_>>(),
            ["Connections[].rlc", "Extra"]
        );
        let devs: Vec<EnOceanSensor> = b
            .connections
            .unwrap()
            .into_iter()
            .map(SensorImport::into_sensor)
            .collect();
        assert!(!devs[0].active_flag && devs[0].is_ptm && devs[0].custom_tag.is_empty());
        assert!(devs[1].active_flag && !devs[1].is_ptm);
        assert!(devs[2].active_flag, "IoTC's default");
    }

    #[test]
    fn refuses_what_is_not_a_boolean() {
        for bad in [r#""yes""#, r#""tRue""#, "2", "null"] {
            let json = format!(
                r#"{{"sourceEurid":"a1b2c3d4","friendlyID":"x","eep":"A5-04-05","activeFlag":{bad}}}"#
            );
            let got = serde_json::from_str::<SensorImport>(&json);
            // `null` is an unset value: IoTC's default.
            assert_eq!(got.is_ok(), bad == "null", "{bad}");
        }
    }
}
