//! Commands to actuators (docs/control.md): the JSON body the MQTT command topic and the API
//! take, its encoding into a radio telegram with the device's EEP, and the entry of the
//! command stream the engine's control task reads.

use std::collections::HashMap;

use enocean::eep::{self, Direction, Eep, Input, Profile};
use enocean::telegram::BROADCAST;
use serde_json::Value;

/// Largest command body, in bytes (MQTT payload or API body).
pub const MAX_BODY: usize = 4096;
/// Most values one command may carry.
pub const MAX_VALUES: usize = 32;
/// Longest raw ERP1 payload (R-ORG and data, without sender and status), in bytes.
pub const MAX_RAW: usize = 15;

/// A command as the user wrote it.
#[derive(Debug, Clone, PartialEq)]
pub enum CommandBody {
    /// Field values in the telemetry's vocabulary.
    Values {
        values: Vec<(String, Value)>,
        channel: Option<i64>,
        command: Option<Value>,
    },
    /// R-ORG and data bytes, sent as they are.
    Raw(Vec<u8>),
}

/// Why a command cannot be sent.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CommandError {
    #[error("the command body is not valid: {0}")]
    Body(String),
    #[error("the device has no EEP this connector can encode ({0})")]
    NoProfile(String),
    #[error("{0}")]
    Encode(String),
}

/// A telegram ready to be sent, apart from its sender (the stick's base ID decides it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    pub rorg: u8,
    pub data: Vec<u8>,
    pub status: u8,
    pub destination: u32,
}

impl CommandBody {
    /// Reads a body: `[{"key":..,"value":..}]`, `{"values":[..],"channel":n,"command":..}`
    /// or `{"raw":"<hex>"}`.
    pub fn parse(bytes: &[u8]) -> Result<CommandBody, CommandError> {
        if bytes.len() > MAX_BODY {
            return Err(body(format!("longer than {MAX_BODY} bytes")));
        }
        let json: Value =
            serde_json::from_slice(bytes).map_err(|e| body(format!("not JSON: {e}")))?;
        match json {
            Value::Array(items) => Ok(CommandBody::Values {
                values: pairs(&items)?,
                channel: None,
                command: None,
            }),
            Value::Object(map) if map.contains_key("raw") => {
                let hex = map["raw"]
                    .as_str()
                    .ok_or_else(|| body("raw must be a hex string"))?;
                let bytes = hex::decode(hex.trim()).map_err(|_| body("raw is not hex"))?;
                if bytes.is_empty() || bytes.len() > MAX_RAW {
                    return Err(body(format!("raw must hold 1 to {MAX_RAW} bytes")));
                }
                Ok(CommandBody::Raw(bytes))
            }
            Value::Object(map) => {
                let items = match map.get("values") {
                    Some(Value::Array(items)) => items.as_slice(),
                    Some(_) => return Err(body("values must be an array")),
                    None => &[],
                };
                let channel = match map.get("channel") {
                    None | Some(Value::Null) => None,
                    Some(v) => Some(v.as_i64().ok_or_else(|| body("channel must be a number"))?),
                };
                let command = map.get("command").filter(|c| !c.is_null()).cloned();
                if items.is_empty() && command.is_none() {
                    return Err(body("give values or a command"));
                }
                Ok(CommandBody::Values {
                    values: pairs(items)?,
                    channel,
                    command,
                })
            }
            _ => Err(body("expected an array of {key, value} or an object")),
        }
    }

    /// The telegram for a device of `eep` with ID `device`.
    pub fn encode(&self, eep: &str, device: u32) -> Result<Encoded, CommandError> {
        let (rorg, data, status) = match self {
            CommandBody::Raw(bytes) => (bytes[0], bytes[1..].to_vec(), 0),
            CommandBody::Values {
                values,
                channel,
                command,
            } => {
                let id: Eep = eep
                    .parse()
                    .map_err(|_| CommandError::NoProfile(eep.to_string()))?;
                let profile =
                    eep::profile(id).ok_or_else(|| CommandError::NoProfile(eep.to_string()))?;
                let inputs = inputs(profile, values, *channel, command.as_ref())?;
                let refs: Vec<(&str, Input<'_>)> =
                    inputs.iter().map(|(s, i)| (*s, i.as_input())).collect();
                eep::encode_inputs(id, &refs, Direction::ToDevice)
                    .map_err(|e| CommandError::Encode(format!("{id} cannot express this: {e}")))?
            }
        };
        Ok(Encoded {
            rorg,
            destination: destination(rorg, device),
            data,
            status,
        })
    }
}

/// RPS and 1BS telegrams (rocker emulation, contacts) are broadcast: the receivers taught to
/// the sender react; every other telegram is addressed to the device.
fn destination(rorg: u8, device: u32) -> u32 {
    match rorg {
        0xF6 | 0xD5 => BROADCAST,
        _ => device,
    }
}

fn body(msg: impl Into<String>) -> CommandError {
    CommandError::Body(msg.into())
}

fn pairs(items: &[Value]) -> Result<Vec<(String, Value)>, CommandError> {
    if items.len() > MAX_VALUES {
        return Err(body(format!("at most {MAX_VALUES} values")));
    }
    items
        .iter()
        .map(|item| {
            let key = item
                .get("key")
                .and_then(Value::as_str)
                .ok_or_else(|| body("every value needs a string key"))?;
            let value = item
                .get("value")
                .cloned()
                .ok_or_else(|| body(format!("{key}: value missing")))?;
            if !(value.is_number() || value.is_string()) {
                return Err(body(format!("{key}: value must be a number or a name")));
            }
            Ok((key.to_string(), value))
        })
        .collect()
}

/// An owned encoder input.
enum Owned {
    Value(f64),
    Raw(i64),
    Name(String),
}

impl Owned {
    fn as_input(&self) -> Input<'_> {
        match self {
            Owned::Value(v) => Input::Value(*v),
            Owned::Raw(r) => Input::Raw(*r),
            Owned::Name(n) => Input::Name(n),
        }
    }
}

/// Maps keys (or EEP shortcuts) to the profile's shortcuts; the channel goes to the first
/// field whose key names a channel, the command to the `CMD` field.
fn inputs(
    profile: &'static Profile,
    values: &[(String, Value)],
    channel: Option<i64>,
    command: Option<&Value>,
) -> Result<Vec<(&'static str, Owned)>, CommandError> {
    let shortcuts = shortcut_map(profile);
    let mut out = Vec::new();
    for (key, value) in values {
        let shortcut = shortcuts.get(key.as_str()).copied().ok_or_else(|| {
            CommandError::Encode(format!("{} has no field {key} to set", profile.eep))
        })?;
        let input = match value {
            Value::String(s) => Owned::Name(s.clone()),
            v => Owned::Value(v.as_f64().unwrap_or(f64::NAN)),
        };
        out.push((shortcut, input));
    }
    if let Some(channel) = channel {
        let shortcut = shortcuts
            .iter()
            .find(|(k, _)| enocean::eep::ha::is_channel_key(k))
            .map(|(_, s)| *s)
            .ok_or_else(|| CommandError::Encode(format!("{} has no channel", profile.eep)))?;
        out.push((shortcut, Owned::Raw(channel)));
    }
    if let Some(command) = command {
        out.push(("CMD", command_raw(profile, command)?));
    }
    Ok(out)
}

/// Key → shortcut, from the cases a controller may send; shortcuts map to themselves.
fn shortcut_map(profile: &'static Profile) -> HashMap<&'static str, &'static str> {
    let mut map = HashMap::new();
    let cases = profile
        .cases
        .iter()
        .filter(|c| c.direction != Some(Direction::FromDevice));
    for field in cases.flat_map(|c| &c.fields) {
        map.entry(field.key).or_insert(field.shortcut);
        map.entry(field.shortcut).or_insert(field.shortcut);
    }
    map
}

/// A command given as its number, or as (part of) the title of the case it selects.
fn command_raw(profile: &'static Profile, command: &Value) -> Result<Owned, CommandError> {
    if let Some(n) = command.as_i64() {
        return Ok(Owned::Raw(n));
    }
    let name = command.as_str().unwrap_or_default().to_ascii_lowercase();
    profile
        .cases
        .iter()
        .filter(|c| c.direction != Some(Direction::FromDevice))
        .filter(|c| !name.is_empty() && c.title.to_ascii_lowercase().contains(&name))
        .find_map(|c| {
            c.fields
                .iter()
                .find(|f| f.shortcut == "CMD")
                .and(c.conditions.first())
        })
        .map(|c| Owned::Raw(c.value as i64))
        .ok_or_else(|| CommandError::Encode(format!("{} has no command {command}", profile.eep)))
}

/// One entry of [`crate::keys::COMMAND_STREAM`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandEntry {
    /// Unique per command; events and replies carry it.
    pub id: String,
    /// The device's EURID (lower-case hex).
    pub device: String,
    pub telegram: Encoded,
    /// `api` or `mqtt`.
    pub origin: String,
}

impl CommandEntry {
    /// Stream fields.
    pub fn fields(&self) -> Vec<(&'static str, String)> {
        let t = &self.telegram;
        vec![
            ("id", self.id.clone()),
            ("device", self.device.clone()),
            ("rorg", format!("{:02x}", t.rorg)),
            ("data", hex::encode(&t.data)),
            ("status", format!("{:02x}", t.status)),
            ("destination", format!("{:08x}", t.destination)),
            ("origin", self.origin.clone()),
        ]
    }

    /// Reads stream fields back; `None` when one is missing or malformed.
    pub fn from_fields(map: &HashMap<String, String>) -> Option<CommandEntry> {
        let byte = |k: &str| u8::from_str_radix(map.get(k)?, 16).ok();
        Some(CommandEntry {
            id: map.get("id")?.clone(),
            device: map.get("device")?.clone(),
            telegram: Encoded {
                rorg: byte("rorg")?,
                data: hex::decode(map.get("data")?).ok()?,
                status: byte("status")?,
                destination: u32::from_str_radix(map.get("destination")?, 16).ok()?,
            },
            origin: map.get("origin").cloned().unwrap_or_default(),
        })
    }
}

/// A new command ID: time in milliseconds and a random part, sortable.
pub fn new_id() -> String {
    format!(
        "{:x}-{:08x}",
        crate::ops::unix_millis(),
        rand::random::<u32>()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn d2_01_output_value_is_the_set_output_command() {
        let body = CommandBody::parse(br#"[{"key":"outputValue","value":100}]"#).unwrap();
        let t = body.encode("D2-01-12", 0x0190_0001).unwrap();
        // CMD 1, dim value 0, I/O channel 0, output value 100 (EEP 2.6.5 D2-01 CMD 0x1).
        assert_eq!((t.rorg, t.data.as_slice()), (0xD2, &[0x01, 0x00, 0x64][..]));
        assert_eq!(t.destination, 0x0190_0001);
    }

    #[test]
    fn channel_and_object_form() {
        let body = br#"{"values":[{"key":"outputValue","value":0}],"channel":1}"#;
        let t = CommandBody::parse(body)
            .unwrap()
            .encode("D2-01-12", 1)
            .unwrap();
        assert_eq!(t.data, vec![0x01, 0x01, 0x00]);
    }

    #[test]
    fn refusals_are_clear() {
        let unknown = CommandBody::parse(br#"[{"key":"colour","value":1}]"#).unwrap();
        assert!(matches!(
            unknown.encode("D2-01-12", 1),
            Err(CommandError::Encode(_))
        ));
        let too_big = CommandBody::parse(br#"[{"key":"outputValue","value":200}]"#).unwrap();
        assert!(matches!(
            too_big.encode("D2-01-12", 1),
            Err(CommandError::Encode(_))
        ));
        assert!(CommandBody::parse(b"{}").is_err());
        assert!(CommandBody::parse(br#"{"raw":"zz"}"#).is_err());
        assert!(matches!(
            too_big.encode("ZZ-01-01", 1),
            Err(CommandError::NoProfile(_))
        ));
    }

    #[test]
    fn raw_and_entry_round_trip() {
        let raw = CommandBody::parse(br#"{"raw":"d2010064"}"#).unwrap();
        let t = raw.encode("", 0x0190_0001).unwrap();
        let entry = CommandEntry {
            id: new_id(),
            device: "01900001".into(),
            telegram: t,
            origin: "api".into(),
        };
        let map = entry
            .fields()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        assert_eq!(CommandEntry::from_fields(&map), Some(entry));
    }
}
