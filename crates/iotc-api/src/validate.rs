//! Checks and normalises API input the way IoTC's schema declares it: EURIDs are 8 hexadecimal
//! digits (stored lower-case), EEPs `RR-FF-TT` (stored as sent), strings bounded.

use iotc_core::model::{BROADCAST, EnOceanSensor};

use crate::error::ApiError;

/// Longest `friendlyID` and `location` (IoTC's `maxLength`).
pub const MAX_NAME: usize = 64;
/// Longest `customTag` (IoTC declares none; bounded so a device stays small).
pub const MAX_TAG: usize = 256;

fn is_hex(value: &str, len: usize) -> bool {
    value.len() == len && value.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A value quoted for an error message, cut short so a huge input is not echoed back.
pub fn shown(value: &str) -> String {
    const MAX: usize = 40;
    match value.char_indices().nth(MAX) {
        Some((end, _)) => format!("{:?}...", &value[..end]),
        None => format!("{value:?}"),
    }
}

fn hex_field(field: &str, value: &str, len: usize) -> Result<String, ApiError> {
    if is_hex(value, len) {
        Ok(value.to_ascii_lowercase())
    } else {
        Err(ApiError::invalid(
            field,
            format!("{} is not {len} hexadecimal digits", shown(value)),
        ))
    }
}

/// A EURID (`sourceID`, `sourceEurid`, ...), lower-case.
pub fn eurid(field: &str, value: &str) -> Result<String, ApiError> {
    hex_field(field, value, 8)
}

/// An optional destination EURID; broadcast when absent.
pub fn destination(field: &str, value: Option<&str>) -> Result<String, ApiError> {
    value.map_or(Ok(BROADCAST.to_string()), |v| eurid(field, v))
}

/// An EEP `RR-FF-TT`, kept in the case the user wrote it: IoTC stores and returns it as sent
/// (its examples write `d2-14-41`, its schema `A5-04-05`); MQTT always carries it lower-case.
pub fn eep(field: &str, value: &str) -> Result<String, ApiError> {
    let parts: Vec<&str> = value.split('-').collect();
    if parts.len() == 3 && parts.iter().all(|p| is_hex(p, 2)) {
        Ok(value.to_string())
    } else {
        Err(ApiError::invalid(
            field,
            format!(
                "{} is not an EEP of the form RR-FF-TT, e.g. A5-04-05",
                shown(value)
            ),
        ))
    }
}

fn bounded(field: &str, value: &str, max: usize) -> Result<(), ApiError> {
    let len = value.chars().count();
    if len > max {
        return Err(ApiError::invalid(
            field,
            format!("{len} characters, at most {max} allowed"),
        ));
    }
    Ok(())
}

/// Checks a device and returns it normalised: lower-case EURIDs, key and SLF, explicit
/// broadcast destination; the EEP as sent. `at` prefixes field names (`Connections[2].`).
pub fn sensor(dev: EnOceanSensor, only_secure: bool, at: &str) -> Result<EnOceanSensor, ApiError> {
    let name = |field: &str| format!("{at}{field}");
    bounded(&name("friendlyID"), &dev.friendly_id, MAX_NAME)?;
    if let Some(location) = &dev.location {
        bounded(&name("location"), location, MAX_NAME)?;
    }
    bounded(&name("customTag"), &dev.custom_tag, MAX_TAG)?;
    let slf = dev
        .slf
        .as_deref()
        .map(|v| hex_field(&name("slf"), v, 2))
        .transpose()?;
    let aes_key = dev
        .aes_key
        .as_deref()
        .map(|v| hex_field(&name("AESKey"), v, 32))
        .transpose()?;
    if only_secure && (slf.is_none() || aes_key.is_none()) {
        return Err(ApiError::bad_request(
            "INSECURE_DEVICE",
            format!(
                "ONLY_SECURE_DEVICES is set: {} needs both AESKey and slf",
                if at.is_empty() {
                    "the device"
                } else {
                    at.trim_end_matches('.')
                }
            ),
        ));
    }
    Ok(EnOceanSensor {
        source_eurid: eurid(&name("sourceEurid"), &dev.source_eurid)?,
        destination_eurid: Some(destination(
            &name("destinationEurid"),
            dev.destination_eurid.as_deref(),
        )?),
        eep: eep(&name("eep"), &dev.eep)?,
        slf,
        aes_key,
        ..dev
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device() -> EnOceanSensor {
        serde_json::from_str(
            r#"{"eep":"a5-04-05","friendlyID":"Room Panel 02","sourceEurid":"A1B2C3D4"}"#,
        )
        .unwrap()
    }

    #[test]
    fn normalises() {
        let dev = sensor(device(), false, "").unwrap();
        assert_eq!(dev.source_eurid, "a1b2c3d4");
        assert_eq!(dev.destination_eurid.as_deref(), Some("ffffffff"));
        assert_eq!(dev.eep, "a5-04-05", "as sent");
        assert!(dev.active_flag);
    }

    #[test]
    fn rejects_bad_values_naming_the_field() {
        let mut dev = device();
        dev.source_eurid = "a1b2c3".into();
        let err = sensor(dev, false, "Connections[1].").unwrap_err();
        assert!(
            err.message.starts_with("Connections[1].sourceEurid"),
            "{err:?}"
        );

        let mut dev = device();
        dev.eep = "A5-04".into();
        assert!(
            sensor(dev, false, "")
                .unwrap_err()
                .message
                .starts_with("eep")
        );

        let mut dev = device();
        dev.eep = "+5-04-05".into();
        assert!(sensor(dev, false, "").is_err());

        let mut dev = device();
        dev.friendly_id = "x".repeat(65);
        assert!(
            sensor(dev, false, "")
                .unwrap_err()
                .message
                .contains("at most 64")
        );

        let mut dev = device();
        dev.source_eurid = "x".repeat(100_000);
        assert!(sensor(dev, false, "").unwrap_err().message.len() < 100);

        let mut dev = device();
        dev.friendly_id = "é".repeat(64);
        assert!(sensor(dev, false, "").is_ok());
    }

    #[test]
    fn only_secure_needs_key_and_slf() {
        let err = sensor(device(), true, "").unwrap_err();
        assert_eq!(err.code, "INSECURE_DEVICE");
        let mut dev = device();
        dev.aes_key = Some("3A0C1B30B0A822A17A28FD01D77ABDAE".into());
        dev.slf = Some("F3".into());
        let dev = sensor(dev, true, "").unwrap();
        assert_eq!(
            dev.aes_key.as_deref(),
            Some("3a0c1b30b0a822a17a28fd01d77abdae")
        );
        assert_eq!(dev.slf.as_deref(), Some("f3"));
    }
}
