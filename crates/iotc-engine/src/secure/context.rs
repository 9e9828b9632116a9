//! A device's security settings as the engine uses them, including the ones a teach-in just
//! wrote while the in-memory device copy has not been reloaded yet.

use std::collections::HashMap;

use enocean::secure::{SecureContext, SecureError};
use iotc_core::model::EnOceanSensor;

/// The security fields of a device JSON, compared to tell whether the copy changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Fields {
    key: Option<String>,
    slf: Option<String>,
    is_ptm: bool,
}

impl Fields {
    pub(super) fn of(device: &EnOceanSensor) -> Fields {
        let lower = |v: &Option<String>| v.as_ref().map(|s| s.trim().to_ascii_lowercase());
        Fields {
            key: lower(&device.aes_key),
            slf: lower(&device.slf),
            is_ptm: device.is_ptm,
        }
    }

    /// Same key and SLF (the PTM flag aside).
    pub(super) fn same_key(&self, other: &Fields) -> bool {
        self.key == other.key && self.slf == other.slf
    }

    /// The device's context; `None` for a device without key or SLF.
    fn context(&self) -> Result<Option<SecureContext>, SecureError> {
        match (&self.key, &self.slf) {
            (Some(key), Some(slf)) => SecureContext::from_hex(key, slf, self.is_ptm).map(Some),
            _ => Ok(None),
        }
    }
}

/// Settings written by a teach-in, used while the device copy still shows `before`.
struct Taught {
    before: Fields,
    ctx: SecureContext,
}

/// Contexts of devices, with teach-in results ahead of the device copy.
#[derive(Default)]
pub(super) struct Contexts {
    taught: HashMap<String, Taught>,
}

impl Contexts {
    /// The context to verify `device`'s telegrams with.
    pub(super) fn get(
        &mut self,
        eurid: &str,
        device: &EnOceanSensor,
    ) -> Result<Option<SecureContext>, SecureError> {
        let fields = Fields::of(device);
        if let Some(t) = self.taught.get(eurid) {
            if t.before == fields {
                return Ok(Some(t.ctx.clone()));
            }
            // The copy changed (reloaded after the teach-in, or changed since): it rules.
            self.taught.remove(eurid);
        }
        fields.context()
    }

    /// A teach-in replaced settings `before` with `ctx`.
    pub(super) fn taught(&mut self, eurid: &str, before: Fields, ctx: SecureContext) {
        self.taught
            .insert(eurid.to_string(), Taught { before, ctx });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(key: Option<&str>, slf: Option<&str>) -> EnOceanSensor {
        EnOceanSensor {
            source_eurid: "0190e2e1".into(),
            destination_eurid: None,
            friendly_id: "x".into(),
            location: None,
            eep: "A5-02-05".into(),
            active_flag: true,
            slf: slf.map(String::from),
            is_ptm: false,
            aes_key: key.map(String::from),
            custom_tag: String::new(),
        }
    }

    const KEY_A: &str = "000102030405060708090A0B0C0D0E0F";
    const KEY_B: &str = "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";

    #[test]
    fn teach_in_result_applies_until_the_copy_changes() {
        let mut contexts = Contexts::default();
        let plain = device(None, None);
        assert_eq!(contexts.get("0190e2e1", &plain).unwrap(), None);
        let taught = SecureContext::from_hex(KEY_B, "f3", false).unwrap();
        contexts.taught("0190e2e1", Fields::of(&plain), taught.clone());
        assert_eq!(
            contexts.get("0190e2e1", &plain).unwrap(),
            Some(taught.clone())
        );
        // The reloaded copy carries the taught key; later changes (API) rule too.
        let reloaded = device(Some(KEY_B), Some("F3"));
        assert_eq!(contexts.get("0190e2e1", &reloaded).unwrap(), Some(taught));
        let changed = device(Some(KEY_A), Some("f3"));
        assert_eq!(
            contexts.get("0190e2e1", &changed).unwrap().unwrap().key[1],
            1
        );
        assert_eq!(contexts.get("0190e2e1", &plain).unwrap(), None);
    }

    #[test]
    fn unusable_settings_are_an_error() {
        let mut contexts = Contexts::default();
        assert!(contexts.get("x", &device(Some(KEY_A), Some("00"))).is_err());
        assert!(contexts.get("x", &device(Some("abc"), Some("f3"))).is_err());
    }
}
