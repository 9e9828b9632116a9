//! `iotc decode`: one ESP3 frame (hex) in, IoTC's telemetry JSON out.
//!
//! The telegram goes through the same steps as in the engine: ERP1/ERP2, addressing
//! encapsulation, chaining (a single part cannot complete a chain), then signal, teach-in or
//! EEP decoding. Secure telegrams are shown raw: decrypting them needs the device's key.

use anyhow::{Context, bail};
use enocean::chain::{ChainOutcome, Reassembler};
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
}

pub fn run(args: Args) -> anyhow::Result<()> {
    println!("{}", render(&args.hex, args.eep.as_deref(), args.full)?);
    Ok(())
}

/// The JSON printed for a frame.
pub fn render(hex_text: &str, eep: Option<&str>, full: bool) -> anyhow::Result<String> {
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
        _ if teach_in.is_some() => {}
        _ => match eep {
            Some(eep) => {
                data = eep::decode(eep, telegram.rorg, &telegram.data, telegram.status)
                    .with_context(|| format!("cannot decode with {eep}"))?
            }
            None => note = Some("no EEP given (--eep): data not decoded"),
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
