//! IoTC's JSON output: sensor telemetry, sensor meta events and stats, gateway events and
//! stats. Field names and types follow IoTC's published payloads (a compatibility contract),
//! including its spelling (`succesfullyProcessed`). Timestamps are unix seconds as strings.

use std::collections::HashMap;

use enocean::Field;
use serde::{Deserialize, Serialize};

use crate::keys::stats as fields;
use crate::model::EnOceanSensor;

/// The `sensor` section: what was stored at onboarding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SensorInfo {
    #[serde(rename = "friendlyID")]
    pub friendly_id: String,
    /// EURID, 8 lower-case hex digits.
    pub id: String,
    pub location: String,
    /// EEP in lower case, `a5-02-05`.
    pub eep: String,
    #[serde(rename = "customTag")]
    pub custom_tag: String,
}

impl From<&EnOceanSensor> for SensorInfo {
    fn from(d: &EnOceanSensor) -> Self {
        SensorInfo {
            friendly_id: d.friendly_id.clone(),
            id: d.source_eurid.to_ascii_lowercase(),
            location: d.location.clone().unwrap_or_default(),
            eep: d.eep.to_ascii_lowercase(),
            custom_tag: d.custom_tag.clone(),
        }
    }
}

/// `sensor/<ID>/telemetry`. Borrows what the engine already holds: it is serialized once
/// per telegram and dropped.
#[derive(Debug, Clone, Serialize)]
pub struct Telemetry<'a> {
    pub sensor: &'a SensorInfo,
    pub telemetry: TelemetryBody<'a>,
    pub raw: Raw,
}

#[derive(Debug, Clone, Serialize)]
pub struct TelemetryBody<'a> {
    /// EEP data fields; empty for a signal telegram.
    pub data: &'a [Field],
    /// Signal telegram fields; empty for a data telegram.
    pub signal: &'a [Field],
    pub meta: TelemetryMeta,
}

#[derive(Debug, Clone, Serialize)]
pub struct TelemetryMeta {
    /// Always one element (IoTC's shape).
    pub stats: Vec<EgressStats>,
}

/// The device counters at the moment the message left, with the egress time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EgressStats {
    /// Unix seconds with microseconds, `"1638876910.137704"`.
    #[serde(rename = "egressTime")]
    pub egress_time: String,
    #[serde(rename = "notProcessed")]
    pub not_processed: u64,
    #[serde(rename = "succesfullyProcessed")]
    pub succesfully_processed: u64,
    #[serde(rename = "totalTelegramCount")]
    pub total_telegram_count: u64,
}

/// The `raw` section: the radio telegram as received.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Raw {
    /// Random UUID of this message.
    pub uuid: String,
    /// R-ORG and payload in lower-case hex (`d00638`).
    pub data: String,
    pub sender: String,
    pub status: u8,
    #[serde(rename = "subTelNum")]
    pub sub_tel_num: u8,
    pub destination: String,
    /// dBm, negative.
    pub rssi: i16,
    #[serde(rename = "securityLevel")]
    pub security_level: u8,
    /// Unix seconds of reception.
    pub timestamp: String,
    #[serde(rename = "subTimestamp")]
    pub sub_timestamp: u64,
    pub subtelegrams: Vec<serde_json::Value>,
}

/// The three event arrays of a sensor meta event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Security,
    Health,
    Transcoding,
}

/// IoTC's event codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventCode {
    MacValidationError,
    RlcReplay,
    DeviceSendNowUnsecure,
    FirstTimeSend,
    EepDecodeError,
    EepNotFoundError,
    /// A radio teach-in tried to set a device's key outside its learn window (our own code).
    SecureTeachInRefused,
    /// Our own codes for commands to actuators (docs/control.md), in the health array.
    CommandSent,
    CommandFailed,
    CommandExpired,
    DeviceTaughtIn,
}

impl EventCode {
    pub fn as_str(self) -> &'static str {
        match self {
            EventCode::MacValidationError => "MAC_VALIDATION_ERROR",
            EventCode::RlcReplay => "RLC_REPLAY",
            EventCode::DeviceSendNowUnsecure => "DEVICE_SEND_NOW_UNSECURE",
            EventCode::FirstTimeSend => "FIRST_TIME_SEND",
            EventCode::EepDecodeError => "EEP_DECODE_ERROR",
            EventCode::EepNotFoundError => "EEP_NOT_FOUND_ERROR",
            EventCode::SecureTeachInRefused => "SECURE_TEACH_IN_REFUSED",
            EventCode::CommandSent => "COMMAND_SENT",
            EventCode::CommandFailed => "COMMAND_FAILED",
            EventCode::CommandExpired => "COMMAND_EXPIRED",
            EventCode::DeviceTaughtIn => "DEVICE_TAUGHT_IN",
        }
    }

    pub fn kind(self) -> EventKind {
        match self {
            EventCode::MacValidationError
            | EventCode::RlcReplay
            | EventCode::DeviceSendNowUnsecure
            | EventCode::SecureTeachInRefused => EventKind::Security,
            EventCode::FirstTimeSend
            | EventCode::CommandSent
            | EventCode::CommandFailed
            | EventCode::CommandExpired
            | EventCode::DeviceTaughtIn => EventKind::Health,
            EventCode::EepDecodeError | EventCode::EepNotFoundError => EventKind::Transcoding,
        }
    }
}

/// One entry of an event array.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub code: String,
    pub message: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Events {
    pub security: Vec<Event>,
    pub health: Vec<Event>,
    pub transcoding: Vec<Event>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timestamp {
    pub timestamp: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventMeta {
    pub events: Events,
    pub stats: Timestamp,
}

/// `sensor/<ID>/meta/event`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SensorEvent {
    pub sensor: SensorInfo,
    pub meta: EventMeta,
}

impl SensorEvent {
    /// An event message carrying one event.
    pub fn new(sensor: SensorInfo, code: EventCode, message: String, unix_s: u64) -> Self {
        let mut events = Events::default();
        let event = Event {
            code: code.as_str().to_string(),
            message,
        };
        match code.kind() {
            EventKind::Security => events.security.push(event),
            EventKind::Health => events.health.push(event),
            EventKind::Transcoding => events.transcoding.push(event),
        }
        SensorEvent {
            sensor,
            meta: EventMeta {
                events,
                stats: Timestamp {
                    timestamp: unix_s.to_string(),
                },
            },
        }
    }
}

/// Telegram counters of a device or gateway (IoTC's `TelegramStatistics`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TelegramStats {
    /// Unix seconds of the last valid telegram, as a string.
    #[serde(rename = "lastSeen")]
    pub last_seen: String,
    #[serde(rename = "notProcessed")]
    pub not_processed: u64,
    #[serde(rename = "succesfullyProcessed")]
    pub succesfully_processed: u64,
    #[serde(rename = "totalTelegramCount")]
    pub total_telegram_count: u64,
}

impl TelegramStats {
    /// Reads a stats hash (`keys::device_stats` / `keys::gateway_stats`); missing fields are 0.
    pub fn from_hash(hash: &HashMap<String, String>) -> Self {
        let num = |f: &str| hash.get(f).and_then(|v| v.parse().ok()).unwrap_or(0);
        TelegramStats {
            last_seen: hash.get(fields::LAST_SEEN).cloned().unwrap_or_default(),
            not_processed: num(fields::NOT_PROCESSED),
            succesfully_processed: num(fields::OK),
            total_telegram_count: num(fields::TOTAL),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatsMeta {
    pub stats: TelegramStats,
}

/// `sensor/<ID>/meta/stats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SensorStats {
    pub sensor: SensorInfo,
    pub meta: StatsMeta,
}

/// The `gateway_info` section.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GatewayInfo {
    pub mac: String,
    #[serde(rename = "softwareVersion", default)]
    pub software_version: String,
    #[serde(rename = "hardwareDescriptor", default)]
    pub hardware_descriptor: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsbInfo {
    pub usb_identifier: String,
    pub usb_health: String,
}

/// `gateway/<MAC>/meta/event` (AP health).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GatewayEvent {
    pub gateway_info: GatewayInfo,
    pub stats: Timestamp,
    #[serde(default)]
    pub usb_info: Vec<UsbInfo>,
}

/// `gateway/<MAC>/meta/stats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GatewayStats {
    pub gateway_info: GatewayInfo,
    pub stats: TelegramStats,
}

/// Unix seconds with microseconds, as IoTC writes `egressTime`.
pub fn egress_time(unix_micros: u128) -> String {
    format!("{}.{:06}", unix_micros / 1_000_000, unix_micros % 1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use enocean::Value;
    use serde_json::json;

    fn sensor() -> SensorInfo {
        SensorInfo {
            friendly_id: "0413D759 D2-14-41 SIMU Multisensor".into(),
            id: "0413d759".into(),
            location: "Office 265".into(),
            eep: "d2-14-41".into(),
            custom_tag: String::new(),
        }
    }

    #[test]
    fn signal_telemetry_matches_iotc_example() {
        let energy = Field {
            key: "energy".into(),
            shortcut: "",
            raw: 56,
            value: Value::Number(56.0),
            unit: Some("%"),
            meaning: None,
        };
        let sensor = sensor();
        let signal = [energy];
        let msg = Telemetry {
            sensor: &sensor,
            telemetry: TelemetryBody {
                data: &[],
                signal: &signal,
                meta: TelemetryMeta {
                    stats: vec![EgressStats {
                        egress_time: egress_time(1_638_876_910_137_704),
                        not_processed: 0,
                        succesfully_processed: 6,
                        total_telegram_count: 6,
                    }],
                },
            },
            raw: Raw {
                uuid: "f521f37c-3a82-42cb-b1cc-c889e946cef3".into(),
                data: "d00638".into(),
                sender: "0413d759".into(),
                status: 128,
                sub_tel_num: 1,
                destination: "ffffffff".into(),
                rssi: -64,
                security_level: 0,
                timestamp: "1638876903".into(),
                sub_timestamp: 0,
                subtelegrams: vec![],
            },
        };
        let expected = json!({
            "sensor": {"friendlyID": "0413D759 D2-14-41 SIMU Multisensor", "id": "0413d759",
                       "location": "Office 265", "eep": "d2-14-41", "customTag": ""},
            "telemetry": {"data": [], "signal": [{"key": "energy", "value": 56.0, "unit": "%"}],
                          "meta": {"stats": [{"egressTime": "1638876910.137704", "notProcessed": 0,
                                              "succesfullyProcessed": 6, "totalTelegramCount": 6}]}},
            "raw": {"uuid": "f521f37c-3a82-42cb-b1cc-c889e946cef3", "data": "d00638",
                    "sender": "0413d759", "status": 128, "subTelNum": 1, "destination": "ffffffff",
                    "rssi": -64, "securityLevel": 0, "timestamp": "1638876903", "subTimestamp": 0,
                    "subtelegrams": []}
        });
        assert_eq!(serde_json::to_value(&msg).unwrap(), expected);
    }

    #[test]
    fn first_time_send_matches_iotc_example() {
        let mut s = sensor();
        s.id = "04138d23".into();
        let ev = SensorEvent::new(
            s,
            EventCode::FirstTimeSend,
            "First time send of device with id=04138d23.".into(),
            1_637_770_981,
        );
        let v = serde_json::to_value(&ev).unwrap();
        assert_eq!(
            v["meta"],
            json!({"events": {"security": [], "health": [{"code": "FIRST_TIME_SEND",
                   "message": "First time send of device with id=04138d23."}], "transcoding": []},
                   "stats": {"timestamp": "1637770981"}})
        );
        assert_eq!(serde_json::from_value::<SensorEvent>(v).unwrap(), ev);
    }

    #[test]
    fn mqtt_carries_the_eep_lower_case_whatever_the_api_stored() {
        let dev: EnOceanSensor = serde_json::from_value(serde_json::json!({
            "sourceEurid": "0413D759", "friendlyID": "x", "eep": "D2-14-41"
        }))
        .unwrap();
        let info = SensorInfo::from(&dev);
        assert_eq!(
            (info.id.as_str(), info.eep.as_str()),
            ("0413d759", "d2-14-41")
        );
    }

    #[test]
    fn event_codes_land_in_their_array() {
        let ev = SensorEvent::new(sensor(), EventCode::EepNotFoundError, "x".into(), 1);
        assert_eq!(ev.meta.events.transcoding[0].code, "EEP_NOT_FOUND_ERROR");
        let ev = SensorEvent::new(sensor(), EventCode::RlcReplay, "x".into(), 1);
        assert_eq!(ev.meta.events.security[0].code, "RLC_REPLAY");
    }

    #[test]
    fn stats_from_hash() {
        let hash: HashMap<String, String> = [
            ("totalTelegramCount", "7"),
            ("succesfullyProcessed", "6"),
            ("lastSeen", "1637827538"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let s = TelegramStats::from_hash(&hash);
        assert_eq!(
            serde_json::to_value(&s).unwrap(),
            json!({"lastSeen": "1637827538", "notProcessed": 0, "succesfullyProcessed": 6,
                   "totalTelegramCount": 7})
        );
    }

    #[test]
    fn egress_time_pads_micros() {
        assert_eq!(egress_time(1_000_000_000_000_042), "1000000000.000042");
    }
}
