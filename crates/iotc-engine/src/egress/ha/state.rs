//! The latest value of every key per device, kept in a Redis hash (`keys::device_state`) so a
//! restarted engine goes on from it, and published as one retained JSON object.
//!
//! One round trip per batch: the old hash of each device is read and the new values written in
//! one pipeline; the object is the old values overlaid with the new ones. Fields whose name
//! starts with `_` are bookkeeping (availability rhythm) and not published.

use std::collections::BTreeMap;

use enocean::eep::{self, Eep, ha};
use enocean::{Field, Value as FieldValue};
use iotc_core::keys;
use iotc_core::redis::Redis;
use serde_json::{Map, Value};

/// Most keys kept per device; the profiles have far fewer, so this only bounds bad data.
pub const MAX_KEYS: usize = 256;

/// Bookkeeping field: unix ms of the last telegram.
pub const LAST_MS: &str = "_lastMs";
/// Bookkeeping field: the learned interval between telegrams, ms.
pub const INTERVAL_MS: &str = "_intervalMs";

/// New values of one device in this batch, key → JSON.
pub type Updates = BTreeMap<String, Value>;

/// The state keys and values of decoded fields: the field key, with the unit for fields
/// whose unit changes (`meterReading_kWh`), and signal fields as `signal_<key>`. A message of
/// a multi-channel actuator that names a channel also sets `<key>_ch<channel>`.
pub fn updates(eep: &str, fields: &[Field], signal: bool, into: &mut Updates) {
    let profile = eep.parse::<Eep>().ok().and_then(eep::profile);
    let channel = profile.and_then(|p| reported_channel(p, fields));
    for f in fields {
        let key = if signal {
            format!("signal_{}", f.key)
        } else {
            let per_unit = profile.is_some_and(|p| ha::is_per_unit(p, &f.key));
            ha::state_key(&f.key, f.unit, per_unit)
        };
        let value = match &f.value {
            FieldValue::Number(n) => serde_json::Number::from_f64(*n)
                .map(Value::Number)
                .unwrap_or(Value::Null),
            FieldValue::Text(t) => Value::String(t.to_string()),
        };
        if let Some(ch) = channel.filter(|_| !signal && !ha::is_channel_key(&f.key)) {
            insert(into, ha::channel_state_key(&key, ch), value.clone());
        }
        insert(into, key, value);
    }
}

/// The output channel a message of a multi-channel actuator is about, if it names one.
fn reported_channel(profile: &eep::Profile, fields: &[Field]) -> Option<u8> {
    let channels = ha::channels(profile);
    let f = fields.iter().find(|f| ha::is_channel_key(&f.key))?;
    (channels > 1 && f.raw < u64::from(channels)).then_some(f.raw as u8)
}

fn insert(into: &mut Updates, key: String, value: Value) {
    if into.len() < MAX_KEYS || into.contains_key(&key) {
        into.insert(key, value);
    }
}

/// Writes the updates of each device and returns each device's whole hash as it was before.
pub async fn store(
    redis: &mut Redis,
    devices: &[(&str, &Updates)],
) -> redis::RedisResult<Vec<BTreeMap<String, String>>> {
    let mut pipe = redis::pipe();
    for (eurid, updates) in devices {
        let key = keys::device_state(eurid);
        pipe.hgetall(&key);
        let pairs: Vec<(&str, String)> = updates
            .iter()
            .map(|(k, v)| (k.as_str(), v.to_string()))
            .collect();
        if !pairs.is_empty() {
            pipe.hset_multiple(&key, &pairs).ignore();
        }
    }
    pipe.query_async(redis).await
}

/// The published object: the stored values overlaid with the new ones, bookkeeping left out.
pub fn object(old: &BTreeMap<String, String>, new: &Updates) -> Value {
    let mut out = Map::new();
    for (k, v) in old.iter().take(MAX_KEYS) {
        if !k.starts_with('_') {
            out.insert(k.clone(), serde_json::from_str(v).unwrap_or(Value::Null));
        }
    }
    for (k, v) in new {
        if !k.starts_with('_') {
            out.insert(k.clone(), v.clone());
        }
    }
    Value::Object(out)
}

/// A stored number (`_lastMs`).
pub fn number(old: &BTreeMap<String, String>, key: &str) -> Option<u64> {
    old.get(key)
        .and_then(|v| v.parse::<f64>().ok())
        .map(|v| v as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meters_keep_one_key_per_unit_and_signals_are_prefixed() {
        let id: Eep = "A5-12-01".parse().unwrap();
        let (_, data, status) = eep::encode(id, &[("MR", 1234.0), ("DT", 0.0)]).unwrap();
        let fields = eep::decode(id, 0xA5, &data, status).unwrap();
        let mut u = Updates::new();
        updates("A5-12-01", &fields, false, &mut u);
        assert_eq!(u["meterReading_kWh"], serde_json::json!(1234.0));
        let sig = enocean::signal::decode(&[0x06, 0x38]).unwrap();
        updates("A5-12-01", &sig, true, &mut u);
        assert_eq!(u["signal_energy"], serde_json::json!(56.0));
    }

    #[test]
    fn multi_channel_values_are_kept_per_channel() {
        // D2-01 CMD 4 Actuator Status Response, I/O channel 1, output value 100.
        let id: Eep = "D2-01-12".parse().unwrap();
        let fields = eep::decode(id, 0xD2, &[0x04, 0x01, 0x64], 0).unwrap();
        let mut u = Updates::new();
        updates("D2-01-12", &fields, false, &mut u);
        assert_eq!(u["outputValue_ch1"], serde_json::json!(100.0));
        assert_eq!(u["outputValue"], serde_json::json!(100.0));
        assert!(!u.contains_key("outputValue_ch0"));
        assert!(!u.contains_key("ioChannel_ch1"));
        // A single-channel type keeps the plain keys only.
        let mut single = Updates::new();
        updates("D2-01-00", &fields, false, &mut single);
        assert!(single.keys().all(|k| !k.contains("_ch")), "{single:?}");
    }

    #[test]
    fn object_overlays_new_values_and_hides_bookkeeping() {
        let old = BTreeMap::from([
            ("temperature".to_string(), "20.5".to_string()),
            ("humidity".to_string(), "40".to_string()),
            (LAST_MS.to_string(), "1000".to_string()),
        ]);
        let new = Updates::from([("temperature".to_string(), serde_json::json!(21.0))]);
        assert_eq!(
            object(&old, &new),
            serde_json::json!({"temperature": 21.0, "humidity": 40})
        );
        assert_eq!(number(&old, LAST_MS), Some(1000));
    }
}
