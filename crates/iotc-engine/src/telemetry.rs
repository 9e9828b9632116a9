//! IoTC's `sensor/<ID>/telemetry` message of one decoded telegram.

use enocean::Field;
use enocean::telegram::Telegram;
use iotc_core::payload::{
    EgressStats, Raw, SensorInfo, Telemetry, TelemetryBody, TelemetryMeta, egress_time,
};

use crate::device_counts::Counters;

/// Reception details from the stream entry.
#[derive(Debug, Clone, Copy)]
pub struct Radio {
    pub received_ms: u64,
    /// The gateway's RSSI, 0 when unknown; used when the frame carries none.
    pub entry_dbm: i8,
}

/// Room reserved for one telemetry message: most are 600 to 1,000 bytes, so the text is
/// written without growing its buffer again and again. Just under 1 KiB: glibc serves a
/// request of 1,024 bytes or more from its large bins, and such a request first merges
/// every small chunk freed meanwhile (`malloc_consolidate`).
const TYPICAL_BYTES: usize = 1000;

/// The JSON text of the telemetry message.
pub fn build(
    sensor: &SensorInfo,
    telegram: &Telegram,
    fields: &[Field],
    signal: bool,
    counts: &Counters,
    radio: Radio,
) -> Vec<u8> {
    let (data, signal) = if signal {
        (&[][..], fields)
    } else {
        (fields, &[][..])
    };
    let msg = Telemetry {
        sensor,
        telemetry: TelemetryBody {
            data,
            signal,
            meta: TelemetryMeta {
                stats: vec![EgressStats {
                    egress_time: egress_time(unix_micros()),
                    not_processed: counts.not_processed,
                    succesfully_processed: counts.ok,
                    total_telegram_count: counts.total,
                }],
            },
        },
        raw: raw(telegram, radio),
    };
    let mut out = Vec::with_capacity(TYPICAL_BYTES);
    serde_json::to_writer(&mut out, &msg).expect("telemetry serializes");
    out
}

fn raw(t: &Telegram, radio: Radio) -> Raw {
    Raw {
        uuid: uuid::Uuid::new_v4().to_string(),
        data: t.data_hex(),
        sender: t.sender_hex(),
        status: t.status,
        sub_tel_num: t.sub_tel_num.unwrap_or(0),
        destination: t.destination_hex(),
        rssi: rssi(t.dbm, radio.entry_dbm),
        security_level: t.security_level.unwrap_or(0),
        timestamp: (radio.received_ms / 1000).to_string(),
        sub_timestamp: 0,
        subtelegrams: Vec::new(),
    }
}

/// dBm from the frame's optional data; 0xFF there means unknown, then the gateway's value.
pub fn rssi(frame_dbm: Option<i16>, entry_dbm: i8) -> i16 {
    match frame_dbm {
        Some(d) if d > -255 && d != 0 => d,
        _ => entry_dbm as i16,
    }
}

fn unix_micros() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use enocean::signal;
    use serde_json::Value;

    fn sensor() -> SensorInfo {
        SensorInfo {
            friendly_id: "Multisensor".into(),
            id: "0413d759".into(),
            location: "Office 265".into(),
            eep: "d2-14-41".into(),
            custom_tag: "tag".into(),
        }
    }

    /// The signal example of IoTC's documentation: `d00638`, energy 56 %.
    #[test]
    fn signal_telegram_fills_signal_not_data() {
        let t = Telegram {
            rorg: 0xD0,
            data: vec![0x06, 0x38],
            sender: 0x0413_d759,
            destination: 0xFFFF_FFFF,
            status: 0x80,
            sub_tel_num: Some(1),
            dbm: Some(-64),
            security_level: Some(0),
        };
        let fields = signal::decode(&t.data).unwrap();
        let counts = Counters {
            total: 6,
            ok: 6,
            not_processed: 0,
            seen: true,
            ..Counters::default()
        };
        let radio = Radio {
            received_ms: 1_638_876_903_512,
            entry_dbm: -70,
        };
        let json: Value =
            serde_json::from_slice(&build(&sensor(), &t, &fields, true, &counts, radio)).unwrap();
        assert_eq!(json["telemetry"]["data"], serde_json::json!([]));
        let signal = json["telemetry"]["signal"].as_array().unwrap();
        assert_eq!(signal[0]["key"], "signalIdentifier");
        assert_eq!(signal[0]["value"], "0x6");
        assert!(
            signal
                .iter()
                .any(|f| f["key"] == "energy" && f["value"] == 56.0)
        );
        let raw = &json["raw"];
        assert_eq!(raw["data"], "d00638");
        assert_eq!(raw["sender"], "0413d759");
        assert_eq!(raw["status"], 128);
        assert_eq!(raw["subTelNum"], 1);
        assert_eq!(raw["destination"], "ffffffff");
        assert_eq!(raw["rssi"], -64);
        assert_eq!(raw["timestamp"], "1638876903");
        assert_eq!(raw["subtelegrams"], serde_json::json!([]));
        assert_eq!(raw["uuid"].as_str().unwrap().len(), 36);
        let stats = &json["telemetry"]["meta"]["stats"][0];
        assert_eq!(stats["totalTelegramCount"], 6);
        assert_eq!(stats["succesfullyProcessed"], 6);
        assert!(stats["egressTime"].as_str().unwrap().contains('.'));
        assert_eq!(json["sensor"]["customTag"], "tag");
    }

    #[test]
    fn rssi_falls_back_to_gateway_value() {
        assert_eq!(rssi(Some(-64), -70), -64);
        assert_eq!(rssi(Some(-255), -70), -70);
        assert_eq!(rssi(None, -70), -70);
    }
}
