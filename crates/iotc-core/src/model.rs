//! The device and gateway model, with IoTC's JSON names (a compatibility contract).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Broadcast destination: the default `destinationEurid` of a device.
pub const BROADCAST: &str = "ffffffff";

/// An onboarded EnOcean device: IoTC's `EnOceanSensor`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnOceanSensor {
    /// EnOcean ID (32 bits in hexadecimal format), stored lower-case.
    #[serde(rename = "sourceEurid")]
    #[schema(pattern = "^[a-fA-F0-9]{8}$", example = "a1b2c3d4")]
    pub source_eurid: String,
    /// Destination ID (broadcast is FFFFFFFF).
    #[serde(
        rename = "destinationEurid",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(pattern = "^[a-fA-F0-9]{8}$", example = "ffffffff")]
    pub destination_eurid: Option<String>,
    #[serde(rename = "friendlyID")]
    #[schema(max_length = 64, example = "Room Panel 02")]
    pub friendly_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 64, example = "Level 2 / Room 221")]
    pub location: Option<String>,
    /// EnOcean Equipment Profile, `RR-FF-TT`.
    #[schema(
        pattern = "^([a-fA-F0-9]{2})-([a-fA-F0-9]{2})-([a-fA-F0-9]{2})$",
        example = "A5-04-05"
    )]
    pub eep: String,
    /// Traffic of inactive devices is dropped.
    #[serde(rename = "activeFlag", default = "default_true")]
    #[schema(default = true)]
    pub active_flag: bool,
    /// Security Level Format; only for encrypted communication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[a-fA-F0-9]{2}$", example = "f3")]
    pub slf: Option<String>,
    /// Only for encrypted communication using PTM modules.
    #[serde(rename = "isPTM", default)]
    #[schema(default = false)]
    pub is_ptm: bool,
    /// AES key for encrypted communication.
    #[serde(rename = "AESKey", default, skip_serializing_if = "Option::is_none")]
    #[schema(
        pattern = "^[a-fA-F0-9]{32}$",
        example = "3a0c1b30b0a822a17a28fd01d77abdae"
    )]
    pub aes_key: Option<String>,
    /// Forwarded as reference on egress.
    #[serde(rename = "customTag", default)]
    #[schema(default = "", max_length = 256)]
    pub custom_tag: String,
}

fn default_true() -> bool {
    true
}

impl EnOceanSensor {
    /// The destination, lower-case, broadcast when unset.
    pub fn destination(&self) -> &str {
        self.destination_eurid.as_deref().unwrap_or(BROADCAST)
    }

    /// A device with a key and an SLF is a secure device.
    pub fn is_secure(&self) -> bool {
        self.aes_key.is_some() && self.slf.is_some()
    }
}

/// USB stick health as reported by an AP.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UsbHealth {
    #[serde(rename = "usbIdentifier")]
    pub usb_identifier: String,
    #[serde(rename = "usbHealth")]
    pub usb_health: String,
}

/// What the registry keeps of a gateway (stored as JSON in [`crate::keys::GATEWAYS`]).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct GatewayRecord {
    pub mac: String,
    #[serde(rename = "hardwareDescriptor", default)]
    pub hardware_descriptor: String,
    #[serde(rename = "softwareVersion", default)]
    pub software_version: String,
    /// Unix seconds of the last message from the gateway.
    #[serde(rename = "lastSeen", default)]
    pub last_seen: u64,
    /// Unix seconds of the last health report.
    #[serde(rename = "healthTimestamp", default)]
    pub health_timestamp: u64,
    #[serde(rename = "apStatus", default)]
    pub ap_status: String,
    #[serde(default)]
    pub usb: Vec<UsbHealth>,
}
