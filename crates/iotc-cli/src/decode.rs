//! `iotc decode`: one ESP3 frame (hex) in, IoTC's telemetry JSON out.
//!
//! The telegram goes through the same steps as in the engine: ERP1/ERP2, addressing
//! encapsulation, chaining (a single part cannot complete a chain), then signal, teach-in or
//! EEP decoding. Secure telegrams are shown raw: decrypting them needs the device's key.

use anyhow::{Context, bail};
use enocean::chain::{ChainOutcome, Reassembler};
use enocean::eep::Direction;
use enocean::teach_in::{self, TeachIn, TeachInKind, UteRequest};
use enocean::telegram::Telegram;
use enocean::{Eep, Field, adt, eep, signal};
use serde::Serialize;

#[derive(clap::Args)]
pub struct Args {
    /// The ESP3 frame in hexadecimal (spaces and colons are ignored).
    pub hex: String,
    /// The device's EEP, e.g. A5-02-05.
    #[arg(long)]
    pub eep: Option<String>,
    /// Add EEP shortcuts and raw values.
    #[arg(long)]
    pub full: bool,
    /// 1: sent by the device (the default); 2: sent to the device by a controller (A5-20-xx,
    /// A5-38-08, D2-01 commands, ...).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=2))]
    pub direction: u8,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let direction = match args.direction {
        2 => Direction::ToDevice,
        _ => Direction::FromDevice,
    };
    let out = render_with(&args.hex, args.eep.as_deref(), args.full, direction)?;
    println!("{out}");
    Ok(())
}

/// The JSON printed for a frame sent by a device.
#[cfg(test)]
pub fn render(hex_text: &str, eep: Option<&str>, full: bool) -> anyhow::Result<String> {
    render_with(hex_text, eep, full, Direction::FromDevice)
}

/// The JSON printed for a frame of either direction.
pub fn render_with(
    hex_text: &str,
    eep: Option<&str>,
    full: bool,
    direction: Direction,
) -> anyhow::Result<String> {
    let eep: Option<Eep> = eep.map(str::parse).transpose()?;
    let bytes = parse_hex(hex_text)?;
    let received = Telegram::from_esp3(&bytes).context("invalid ESP3 frame")?;
    let telegram = match Reassembler::default().push(adt::unwrap(received.clone()), 0) {
        ChainOutcome::NotChained(t) | ChainOutcome::Complete(t) => t,
        ChainOutcome::Incomplete => {
            let note = "chained part: the message needs its other parts";
            return print(&received, &received, &[], &[], full, None, Some(note));
        }
        ChainOutcome::Rejected(e) => bail!("invalid chained telegram: {e}"),
    };

    let teach_in = teach_in::detect(&telegram);
    let mut data = Vec::new();
    let mut signals = Vec::new();
    let mut note = None;
    match telegram.rorg {
        signal::RORG_SIGNAL => {
            signals = signal::decode(&telegram.data).context("invalid signal telegram")?
        }
        0x30..=0x35 => note = Some("secure telegram: decrypting it needs the device's key"),
        // A teach-in telegram is also read with the given EEP: its LRN field says teach-in.
        _ => match eep {
            Some(eep) if teach_in.is_none() || telegram.rorg == eep.rorg => {
                let (rorg, status) = (telegram.rorg, telegram.status);
                data = eep::decode_with(eep, rorg, &telegram.data, status, direction)
                    .with_context(|| format!("cannot decode with {eep}"))?
            }
            _ if teach_in.is_some() => {}
            _ => note = Some("no EEP given (--eep): data not decoded"),
        },
    }
    print(&received, &telegram, &data, &signals, full, teach_in, note)
}

fn print(
    received: &Telegram,
    telegram: &Telegram,
    data: &[Field],
    signal: &[Field],
    full: bool,
    teach_in: Option<TeachIn>,
    note: Option<&'static str>,
) -> anyhow::Result<String> {
    let report = Report {
        telemetry: Telemetry {
            data: shown(data, full),
            signal: shown(signal, full),
        },
        raw: Raw::new(received, telegram),
        teach_in: teach_in.map(TeachInOut::from),
        note,
    };
    Ok(serde_json::to_string_pretty(&report)?)
}

fn parse_hex(text: &str) -> anyhow::Result<Vec<u8>> {
    let clean: String = text
        .trim()
        .trim_start_matches("0x")
        .chars()
        .filter(|c| !c.is_whitespace() && *c != ':')
        .collect();
    hex::decode(&clean).with_context(|| format!("invalid hex {text:?}"))
}

/// A field as printed: IoTC's entry, or with shortcut and raw value for `--full`.
struct Shown<'a> {
    field: &'a Field,
    full: bool,
}

impl Serialize for Shown<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.full {
            self.field.full().serialize(serializer)
        } else {
            self.field.serialize(serializer)
        }
    }
}

fn shown(list: &[Field], full: bool) -> Vec<Shown<'_>> {
    list.iter().map(|field| Shown { field, full }).collect()
}

#[derive(Serialize)]
struct Report<'a> {
    telemetry: Telemetry<'a>,
    raw: Raw,
    #[serde(rename = "teachIn", skip_serializing_if = "Option::is_none")]
    teach_in: Option<TeachInOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<&'static str>,
}

#[derive(Serialize)]
struct Telemetry<'a> {
    data: Vec<Shown<'a>>,
    signal: Vec<Shown<'a>>,
}

/// IoTC's `raw` object.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    data: String,
    sender: String,
    status: u8,
    sub_tel_num: Option<u8>,
    destination: String,
    rssi: Option<i16>,
    security_level: Option<u8>,
}

impl Raw {
    /// The telegram as received; the destination after addressing encapsulation is unwrapped.
    fn new(received: &Telegram, telegram: &Telegram) -> Raw {
        Raw {
            data: received.data_hex(),
            sender: received.sender_hex(),
            status: received.status,
            sub_tel_num: received.sub_tel_num,
            destination: telegram.destination_hex(),
            rssi: received.dbm,
            security_level: received.security_level,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TeachInOut {
    kind: &'static str,
    eep: Option<String>,
    manufacturer: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bidirectional: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_expected: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    channels: Option<u8>,
}

impl From<TeachIn> for TeachInOut {
    fn from(t: TeachIn) -> Self {
        let mut out = TeachInOut {
            kind: match t.kind {
                TeachInKind::OneBs => "1BS",
                TeachInKind::FourBs { .. } => "4BS",
                TeachInKind::Ute { .. } => "UTE",
            },
            eep: t.eep.map(|e| e.to_string()),
            manufacturer: t.manufacturer,
            bidirectional: None,
            response_expected: None,
            request: None,
            channels: None,
        };
        if let TeachInKind::Ute {
            bidirectional,
            response_expected,
            request,
            channels,
        } = t.kind
        {
            out.bidirectional = Some(bidirectional);
            out.response_expected = Some(response_expected);
            out.request = Some(match request {
                UteRequest::TeachIn => "teachIn",
                UteRequest::Deletion => "deletion",
                UteRequest::Either => "teachInOrDeletion",
                UteRequest::Reserved => "reserved",
            });
            out.channels = Some(channels);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    fn render(hex_text: &str, eep: Option<&str>, full: bool) -> anyhow::Result<Value> {
        Ok(serde_json::from_str(&super::render(hex_text, eep, full)?)?)
    }

    #[test]
    fn eep_data_is_decoded_in_iotc_order() {
        // kipe test_temperature: A5-02-05, TMP raw 85 = 26.7 °C.
        let frame = "55000A0701EBA5000055080181B7440001FFFFFFFF2D0075";
        let text = super::render(frame, Some("A5-02-05"), false).unwrap();
        assert!(text.find("\"telemetry\"") < text.find("\"raw\""), "{text}");
        let out: Value = serde_json::from_str(&text).unwrap();
        let data = out["telemetry"]["data"].as_array().unwrap();
        let tmp = data.iter().find(|f| f["key"] == "temperature").unwrap();
        assert!(
            (tmp["value"].as_f64().unwrap() - 26.7).abs() < 0.05,
            "{tmp}"
        );
        assert_eq!(tmp["unit"], "°C");
        assert!(tmp.get("raw").is_none());
        let full = render(frame, Some("A5-02-05"), true).unwrap();
        let tmp = full["telemetry"]["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["key"] == "temperature")
            .unwrap()
            .clone();
        assert_eq!(
            (tmp["shortcut"].clone(), tmp["raw"].clone()),
            (json!("TMP"), json!(85))
        );
    }

    /// An ERP1 frame from sender 01020304 with `rorg_and_data` and status 0.
    fn erp1(rorg_and_data: &[u8]) -> String {
        let mut erp1 = rorg_and_data.to_vec();
        erp1.extend_from_slice(&[0x01, 0x02, 0x03, 0x04, 0x00]);
        let optional = [0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0x40, 0x00];
        hex::encode(enocean::esp3::encode_frame(1, &erp1, &optional))
    }

    fn value_of(out: &Value, key: &str) -> Value {
        let data = out["telemetry"]["data"].as_array().unwrap();
        let field = data.iter().find(|f| f["key"] == key);
        field.unwrap_or_else(|| panic!("no {key} in {out}"))["value"].clone()
    }

    #[test]
    fn direction_two_decodes_the_controller_message() {
        // A5-20-01 receive mode (EEP 2.6.5, direction 2): DB3 set point 0x32 = 50 % (SPS 0),
        // DB2 RCU temperature 0x80 = 40 - 128 * 40 / 255 = 19.92 °C, DB0 LRN bit set.
        let frame = erp1(&[0xA5, 0x32, 0x80, 0x00, 0x08]);
        let to_device =
            super::render_with(&frame, Some("A5-20-01"), true, super::Direction::ToDevice).unwrap();
        let out: Value = serde_json::from_str(&to_device).unwrap();
        assert_eq!(
            value_of(&out, "valvePositionOrTemperatureSetpoint"),
            json!(50.0)
        );
        assert_eq!(value_of(&out, "temperatureFromRcu"), json!(19.92));
        // The same bytes from the device are the actuator's status: current value 50 %.
        let out = render(&frame, Some("A5-20-01"), false).unwrap();
        assert_eq!(value_of(&out, "currentValue"), json!(50.0));
    }

    #[test]
    fn teach_in_telegrams_are_decoded_with_the_given_eep() {
        // A5-14-09 (Alliance description): LRN bit 0 = "Teach-in telegram"; the CLI reports the
        // teach-in and the profile's fields (SVC 250 = 5.0 V, CT 0b11 = open).
        let out = render(
            &erp1(&[0xA5, 0xFA, 0x00, 0x00, 0x06]),
            Some("A5-14-09"),
            true,
        )
        .unwrap();
        assert_eq!(out["teachIn"]["kind"], "4BS");
        assert_eq!(value_of(&out, "learn"), json!("pressed"));
        assert_eq!(value_of(&out, "supplyVoltage"), json!(5.0));
        assert_eq!(value_of(&out, "contact"), json!("open"));
    }

    #[test]
    fn full_output_uses_the_alliance_shortcuts() {
        // A5-10-19 "TMP Sp" (EEP 2.6.5): the shortcut holds a space; the key stays camelCase.
        let out = render(
            &erp1(&[0xA5, 0x7D, 0x7D, 0x7D, 0x08]),
            Some("A5-10-19"),
            true,
        )
        .unwrap();
        let data = out["telemetry"]["data"].as_array().unwrap();
        let setpoint = data.iter().find(|f| f["shortcut"] == "TMP Sp").unwrap();
        assert_eq!(setpoint["key"], "tempSetpoint");
    }

    #[test]
    fn signal_telegram_matches_iotc() {
        let frame = enocean::esp3::encode_frame(
            1,
            &[0xD0, 0x06, 0x38, 0x04, 0x13, 0xD7, 0x59, 0x80],
            &[0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0x40, 0x00],
        );
        let out = render(&hex::encode(frame), None, false).unwrap();
        assert_eq!(
            out["telemetry"]["signal"],
            json!([
                {"key": "signalIdentifier", "value": "0x6", "meaning": "Energy status of device"},
                {"key": "energy", "value": 56.0, "unit": "%"}
            ])
        );
        assert_eq!(
            out["raw"],
            json!({"data": "d00638", "sender": "0413d759", "status": 128, "subTelNum": 1,
                   "destination": "ffffffff", "rssi": -64, "securityLevel": 0})
        );
    }

    #[test]
    fn four_bs_teach_in_is_reported() {
        let out = render(
            "55000A0701EBA508284680018A7B300001FFFFFFFF490026",
            None,
            false,
        )
        .unwrap();
        assert_eq!(out["teachIn"]["kind"], "4BS");
        assert_eq!(out["teachIn"]["eep"], "A5-02-05");
        assert_eq!(out["teachIn"]["manufacturer"], 0x46);
        assert_eq!(out["telemetry"]["data"], json!([]));
    }

    #[test]
    fn ute_teach_in_is_reported() {
        let out = render(
            "55000D0701FDD4A0FF3E000101D20194E3B90001FFFFFFFF4000AB",
            Some("D2-01-01"),
            false,
        )
        .unwrap();
        assert_eq!(out["teachIn"]["kind"], "UTE");
        assert_eq!(out["teachIn"]["eep"], "D2-01-01");
        assert_eq!(out["teachIn"]["request"], "teachInOrDeletion");
    }

    #[test]
    fn without_eep_the_raw_telegram_is_reported() {
        let out = render(
            "55 00 0A 07 01 EB A5 00 00 55 08 01 81 B7 44 00 01 FF FF FF FF 2D 00 75",
            None,
            false,
        )
        .unwrap();
        assert_eq!(out["raw"]["data"], "a500005508");
        assert_eq!(out["raw"]["sender"], "0181b744");
        assert_eq!(out["raw"]["rssi"], -45);
        assert_eq!(out["telemetry"]["data"], json!([]));
    }

    #[test]
    fn bad_input_is_an_error() {
        assert!(
            render("55zz", None, false)
                .unwrap_err()
                .to_string()
                .contains("invalid hex")
        );
        let broken = render(
            "55000A0701EBA5000055080181B7440001FFFFFFFF2D0076",
            None,
            false,
        )
        .unwrap_err();
        assert!(format!("{broken:#}").contains("data CRC"), "{broken:#}");
        assert!(
            render("5500010005700838", None, false).is_err(),
            "not a radio telegram"
        );
        assert!(
            render("5500010005700838", Some("A5-02"), false).is_err(),
            "bad EEP"
        );
    }
}
