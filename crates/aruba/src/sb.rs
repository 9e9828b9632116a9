//! `aruba-iot-sb.proto` and its parts: server → AP.

use crate::{Meta, SbTopic};

/// The southbound root message: one per binary WebSocket frame.
///
/// Fields 3 (BLE actions) and 6 (Zigbee) are not declared.
#[derive(Clone, PartialEq, prost::Message)]
pub struct IotSbMessage {
    #[prost(message, required, tag = "1")]
    pub meta: Meta,
    #[prost(message, optional, tag = "2")]
    pub receiver: Option<Receiver>,
    #[prost(message, optional, tag = "4")]
    pub config: Option<TransportConfig>,
    #[prost(message, optional, tag = "5")]
    pub status: Option<ConnectStatus>,
    /// Bytes to write to a USB stick (EnOcean: an ESP3 frame).
    #[prost(message, repeated, tag = "7")]
    pub sb_s_data: Vec<SbSerialData>,
}

/// Which AP(s) the message is for.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Receiver {
    #[prost(bool, optional, tag = "1")]
    pub all: Option<bool>,
    #[prost(bytes = "vec", optional, tag = "2")]
    pub ap_mac: Option<Vec<u8>>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct TransportConfig {
    #[prost(uint32, optional, tag = "1")]
    pub reporting_period: Option<u32>,
    #[prost(uint32, optional, tag = "2")]
    pub cell_size: Option<u32>,
}

/// Lets the server tell the AP why it refuses the connection.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ConnectStatus {
    #[prost(enumeration = "ConnectCode", optional, tag = "1")]
    pub connect_code: Option<i32>,
    #[prost(string, optional, tag = "2")]
    pub connect_description: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum ConnectCode {
    StatusOk = 0,
    TokenExpire = 1,
}

/// Bytes for a USB stick. Note the field order: the reverse of `NbSerialData`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SbSerialData {
    /// The stick's identifier exactly as the AP reported it.
    #[prost(string, optional, tag = "1")]
    pub sb_device_id: Option<String>,
    #[prost(bytes = "vec", optional, tag = "2")]
    pub sb_serial_payload: Option<Vec<u8>>,
}

impl IotSbMessage {
    /// Serial data for one stick of one AP.
    pub fn serial_data(
        token: Option<&str>,
        ap_mac: [u8; 6],
        device_id: &str,
        payload: &[u8],
    ) -> Self {
        IotSbMessage {
            meta: Meta::southbound(token, SbTopic::SerialDataSb),
            receiver: Some(Receiver {
                all: Some(false),
                ap_mac: Some(ap_mac.to_vec()),
            }),
            config: None,
            status: None,
            sb_s_data: vec![SbSerialData {
                sb_device_id: Some(device_id.to_string()),
                sb_serial_payload: Some(payload.to_vec()),
            }],
        }
    }

    /// A status message telling the AP its token expired.
    pub fn token_expired(description: &str) -> Self {
        IotSbMessage {
            meta: Meta::southbound(None, SbTopic::SbStatus),
            receiver: None,
            config: None,
            status: Some(ConnectStatus {
                connect_code: Some(ConnectCode::TokenExpire as i32),
                connect_description: Some(description.to_string()),
            }),
            sb_s_data: Vec::new(),
        }
    }
}
