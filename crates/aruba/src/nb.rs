//! `aruba-iot-nb.proto` and `aruba-iot-nb-serial-data.proto`: AP → server.

use crate::{ApHealthUpdate, Meta, NbTopic};

/// The northbound root message: one per binary WebSocket frame.
///
/// Fields 3 to 10 (BLE, GATT, Wi-Fi, device count, status, Zigbee) are not declared and are
/// skipped when decoding.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Telemetry {
    #[prost(message, required, tag = "1")]
    pub meta: Meta,
    #[prost(message, required, tag = "2")]
    pub reporter: Reporter,
    /// Serial data (EnOcean: one ESP3 frame per entry).
    #[prost(message, repeated, tag = "11")]
    pub nb_s_data: Vec<NbSerialData>,
    #[prost(message, optional, tag = "12")]
    pub ap_health: Option<ApHealthUpdate>,
}

/// The AP that sends the message (behind a controller: the AP, not the controller).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Reporter {
    /// Instant APs default to the MAC address as text.
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
    /// The AP's Ethernet MAC, 6 bytes.
    #[prost(bytes = "vec", optional, tag = "2")]
    pub mac: Option<Vec<u8>>,
    #[prost(string, optional, tag = "3")]
    pub ipv4: Option<String>,
    #[prost(string, optional, tag = "4")]
    pub ipv6: Option<String>,
    /// Hardware type, e.g. `AP-515`.
    #[prost(string, optional, tag = "5")]
    pub hw_type: Option<String>,
    /// Software version, e.g. `8.8.0.0-8.8.0.0`.
    #[prost(string, optional, tag = "6")]
    pub sw_version: Option<String>,
    #[prost(string, optional, tag = "7")]
    pub sw_build: Option<String>,
    /// Unix seconds.
    #[prost(uint64, optional, tag = "8")]
    pub time: Option<u64>,
}

/// Bytes read from a third-party radio on the AP's USB port.
#[derive(Clone, PartialEq, prost::Message)]
pub struct NbSerialData {
    /// The bytes as read from the serial device (EnOcean: a complete ESP3 frame).
    #[prost(bytes = "vec", optional, tag = "1")]
    pub nb_serial_payload: Option<Vec<u8>>,
    /// The radio's identifier, e.g. `ENOCEAN_USB:<32 hex>`; southbound data must name it.
    #[prost(string, optional, tag = "2")]
    pub nb_device_id: Option<String>,
}

impl Reporter {
    /// The MAC as 6 bytes, `None` when absent or of another length.
    pub fn mac_bytes(&self) -> Option<[u8; 6]> {
        self.mac.as_deref().and_then(|m| m.try_into().ok())
    }

    /// The MAC as IoTC writes it: 12 lower-case hex digits.
    pub fn mac_hex(&self) -> Option<String> {
        self.mac_bytes()
            .map(|m| m.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// The software version without the build suffix: `8.8.0.0-8.8.0.0` → `8.8.0.0`.
    pub fn short_sw_version(&self) -> &str {
        let full = self.sw_version.as_deref().unwrap_or_default();
        full.split('-').next().unwrap_or(full)
    }
}

impl Telemetry {
    /// The access token of the message, if any.
    pub fn access_token(&self) -> Option<&str> {
        self.meta.access_token.as_deref()
    }

    /// A serial data message carrying one payload per frame, all from one stick.
    pub fn serial_data(token: &str, reporter: Reporter, device_id: &str, frames: &[&[u8]]) -> Self {
        let nb_s_data = frames
            .iter()
            .map(|f| NbSerialData {
                nb_serial_payload: Some(f.to_vec()),
                nb_device_id: Some(device_id.to_string()),
            })
            .collect();
        Telemetry {
            meta: Meta::northbound(token, NbTopic::SerialDataNb),
            reporter,
            nb_s_data,
            ap_health: None,
        }
    }

    /// A health update message.
    pub fn health(token: &str, reporter: Reporter, health: ApHealthUpdate) -> Self {
        Telemetry {
            meta: Meta::northbound(token, NbTopic::ApHealthUpdate),
            reporter,
            nb_s_data: Vec::new(),
            ap_health: Some(health),
        }
    }
}
