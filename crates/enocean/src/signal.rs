//! Signal telegrams (R-ORG 0xD0): MID 0x01..0x12 decoded into IoTC's signal entries.
//!
//! The first entry is always `signalIdentifier` (value `"0x"` + the MID in lower-case hex,
//! meaning the MID's name); the MID's content follows. Keys are listed in docs/protocol.md.

use std::borrow::Cow;

use crate::field::{Field, Value};

/// R-ORG of a signal telegram.
pub const RORG_SIGNAL: u8 = 0xD0;

/// Why signal data cannot be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignalError {
    #[error("empty signal telegram")]
    Empty,
    #[error("unknown signal MID {0:#04x}")]
    UnknownMid(u8),
    #[error("signal MID {mid:#04x} needs {needed} data bytes, got {got}")]
    TooShort { mid: u8, needed: usize, got: usize },
}

/// The name of a MID, as IoTC's `meaning` of `signalIdentifier`.
pub const fn mid_meaning(mid: u8) -> Option<&'static str> {
    Some(match mid {
        0x01 => "Smart Ack: mailbox empty",
        0x02 => "Smart Ack: mailbox does not exist",
        0x03 => "Smart Ack: reset",
        0x04 => "Trigger signal telegram",
        0x05 => "Device acknowledge",
        0x06 => "Energy status of device",
        0x07 => "Revision of device",
        0x08 => "Heartbeat",
        0x09 => "RX window open",
        0x0A => "RX channel quality",
        0x0B => "Duty cycle status",
        0x0C => "Device changed",
        0x0D => "Harvester status",
        0x0E => "TX mode off",
        0x0F => "TX mode on",
        0x10 => "Backup battery status",
        0x11 => "Learn mode status",
        0x12 => "Product ID",
        _ => return None,
    })
}

/// Payload bytes each MID needs after the MID byte.
const fn payload_len(mid: u8) -> usize {
    match mid {
        0x04 | 0x06 | 0x0B | 0x0D | 0x10 => 1,
        0x07 => 8,
        0x0A => 7,
        0x11 => 9,
        0x12 => 6,
        _ => 0,
    }
}

/// Decodes signal data starting at the MID (the byte after R-ORG 0xD0).
pub fn decode(data: &[u8]) -> Result<Vec<Field>, SignalError> {
    let (&mid, payload) = data.split_first().ok_or(SignalError::Empty)?;
    let meaning = mid_meaning(mid).ok_or(SignalError::UnknownMid(mid))?;
    let needed = payload_len(mid);
    if payload.len() < needed {
        return Err(SignalError::TooShort {
            mid,
            needed,
            got: payload.len(),
        });
    }
    let mut fields = Vec::with_capacity(4);
    fields.push(text(
        "signalIdentifier",
        "MID",
        mid as u64,
        format!("{mid:#x}"),
        Some(meaning.into()),
    ));
    content(mid, payload, &mut fields);
    Ok(fields)
}

fn content(mid: u8, p: &[u8], out: &mut Vec<Field>) {
    match mid {
        0x04 => out.push(requested_signal(p[0])),
        0x06 => out.push(number(
            "energy",
            "ENERGY",
            p[0] as u64,
            p[0] as f64,
            Some("%"),
        )),
        0x07 => {
            out.push(version("softwareVersion", "SW", &p[0..4]));
            out.push(version("hardwareVersion", "HW", &p[4..8]));
        }
        0x0A => rx_channel_quality(p, out),
        0x0B => out.push(duty_cycle(p[0])),
        0x0D => out.push(harvester(p[0])),
        0x10 => out.push(backup_battery(p[0])),
        0x11 => learn_mode_status(p, out),
        0x12 => product_id(p, out),
        _ => {}
    }
}

fn requested_signal(code: u8) -> Field {
    let mid = match code {
        1 => 0x06,
        2 => 0x07,
        3 => 0x0A,
        4 => 0x0D,
        _ => return number_meaning("requestedSignal", "REQ", code, "Reserved"),
    };
    let meaning = mid_meaning(mid).unwrap_or_default();
    text(
        "requestedSignal",
        "REQ",
        code as u64,
        format!("{mid:#x}"),
        Some(meaning.into()),
    )
}

fn rx_channel_quality(p: &[u8], out: &mut Vec<Field>) {
    let id = u32::from_be_bytes([p[0], p[1], p[2], p[3]]);
    out.push(text(
        "bestReceiverId",
        "ID",
        id as u64,
        format!("{id:08x}"),
        None,
    ));
    out.push(number(
        "rssiMax",
        "RSSIMAX",
        p[4] as u64,
        -(p[4] as f64),
        Some("dBm"),
    ));
    out.push(number(
        "rssiMin",
        "RSSIMIN",
        p[5] as u64,
        -(p[5] as f64),
        Some("dBm"),
    ));
    out.push(number(
        "subTelegramCount",
        "SUBTEL",
        (p[6] >> 4) as u64,
        (p[6] >> 4) as f64,
        None,
    ));
    out.push(number(
        "repeaterCount",
        "RC",
        (p[6] & 0x0F) as u64,
        (p[6] & 0x0F) as f64,
        None,
    ));
}

fn duty_cycle(b: u8) -> Field {
    let released = b & 0x0F;
    let (value, meaning) = match released {
        1 => ("released", "Duty cycle limit released"),
        0 => ("reached", "Duty cycle limit reached"),
        _ => ("reserved", "Reserved"),
    };
    text(
        "dutyCycle",
        "DC",
        released as u64,
        value.to_string(),
        Some(meaning.into()),
    )
}

fn harvester(b: u8) -> Field {
    let level = b & 0x0F;
    let (value, meaning) = match level {
        0 => ("veryGood", "Very good"),
        1 => ("good", "Good"),
        2 => ("average", "Average"),
        3 => ("bad", "Bad"),
        4 => ("veryBad", "Very bad"),
        _ => ("reserved", "Reserved"),
    };
    text(
        "harvesterStatus",
        "HS",
        level as u64,
        value.to_string(),
        Some(meaning.into()),
    )
}

fn backup_battery(b: u8) -> Field {
    if b <= 100 {
        number("backupBattery", "BB", b as u64, b as f64, Some("%"))
    } else {
        number_meaning("backupBattery", "BB", b, "Not available")
    }
}

fn learn_mode_status(p: &[u8], out: &mut Vec<Field>) {
    let b0 = p[0];
    out.push(flag("linkTableFull", "LTF", b0 & 0x80 != 0));
    out.push(flag("teachRequestReceived", "TRR", b0 & 0x40 != 0));
    out.push(number(
        "learnModeType",
        "LMT",
        ((b0 >> 4) & 0x03) as u64,
        ((b0 >> 4) & 0x03) as f64,
        None,
    ));
    out.push(number(
        "teachResult",
        "TR",
        (b0 & 0x0F) as u64,
        (b0 & 0x0F) as f64,
        None,
    ));
    out.push(number(
        "learnModeTimeout",
        "LMTO",
        p[1] as u64,
        p[1] as f64,
        None,
    ));
    let id = u32::from_be_bytes([p[2], p[3], p[4], p[5]]);
    out.push(text("deviceId", "ID", id as u64, format!("{id:08x}"), None));
    let eep = u32::from_be_bytes([0, p[6], p[7], p[8]]);
    out.push(text(
        "eep",
        "EEP",
        eep as u64,
        format!("{:02X}-{:02X}-{:02X}", p[6], p[7], p[8]),
        None,
    ));
}

fn product_id(p: &[u8], out: &mut Vec<Field>) {
    let manufacturer = u16::from_be_bytes([p[0], p[1]]);
    out.push(number(
        "manufacturerId",
        "MID",
        manufacturer as u64,
        manufacturer as f64,
        None,
    ));
    let product = u32::from_be_bytes([p[2], p[3], p[4], p[5]]);
    out.push(text(
        "productId",
        "PID",
        product as u64,
        format!("{product:08x}"),
        None,
    ));
}

fn version(key: &'static str, shortcut: &'static str, b: &[u8]) -> Field {
    let raw = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as u64;
    text(
        key,
        shortcut,
        raw,
        format!("{}.{}.{}.{}", b[0], b[1], b[2], b[3]),
        None,
    )
}

fn flag(key: &'static str, shortcut: &'static str, on: bool) -> Field {
    let value = if on { "true" } else { "false" };
    text(key, shortcut, on as u64, value.to_string(), None)
}

fn number(
    key: &'static str,
    shortcut: &'static str,
    raw: u64,
    value: f64,
    unit: Option<&'static str>,
) -> Field {
    Field {
        key: Cow::Borrowed(key),
        shortcut,
        raw,
        value: Value::Number(value),
        unit,
        meaning: None,
    }
}

fn number_meaning(
    key: &'static str,
    shortcut: &'static str,
    raw: u8,
    meaning: &'static str,
) -> Field {
    Field {
        key: Cow::Borrowed(key),
        shortcut,
        raw: raw as u64,
        value: Value::Number(raw as f64),
        unit: None,
        meaning: Some(Cow::Borrowed(meaning)),
    }
}

fn text(
    key: &'static str,
    shortcut: &'static str,
    raw: u64,
    value: String,
    meaning: Option<Cow<'static, str>>,
) -> Field {
    Field {
        key: Cow::Borrowed(key),
        shortcut,
        raw,
        value: Value::Text(Cow::Owned(value)),
        unit: None,
        meaning,
    }
}
