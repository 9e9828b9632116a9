//! The in-memory copy of the onboarded devices (`keys::DEVICES`), kept current through the
//! `keys::DEVICES_CHANGED` channel. After a (re)subscription everything is reloaded, so a
//! change missed while Redis was away still takes effect.
//!
//! Compact, for registries of millions of devices: the key is the source and destination IDs in
//! one `u64`, the value the device packed into one small block (`device_pack`); a lookup
//! unpacks it. Loading reads the hash in pages (`HSCAN`), never the whole registry at once.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures_util::StreamExt;
use iotc_core::keys;
use iotc_core::model::{BROADCAST, EnOceanSensor};
use iotc_core::redis::Redis;
use redis::AsyncCommands;
use tracing::{info, warn};

use crate::device_pack::{pack, unpack};

/// Entries one `HSCAN` page asks for while loading.
const PAGE: usize = 1000;

/// Keys are onboarded devices (set by operators), so a fast non-keyed hash is safe here.
type Map = rustc_hash::FxHashMap<u64, Box<[u8]>>;

/// Source EURIDs changed one by one that are kept before [`Changes::all`] is said instead.
const CHANGES_KEPT: usize = 10_000;

/// What changed since the last [`Devices::take_changes`]: for copies of per-device state.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// Everything may have changed (a reload).
    pub all: bool,
    /// Source EURIDs of devices added, changed or removed.
    pub sources: Vec<String>,
}

/// Onboarded devices by source and destination.
#[derive(Clone, Default)]
pub struct Devices {
    map: Arc<RwLock<Map>>,
    changes: Arc<Mutex<Changes>>,
}

impl Devices {
    /// The device a telegram from `sender` to `destination` belongs to: the exact pair first,
    /// then the device onboarded with the broadcast destination.
    pub fn lookup(&self, sender: &str, destination: &str) -> Option<Arc<EnOceanSensor>> {
        let source = eurid(sender)?;
        let exact = pair(source, eurid(destination)?);
        let broadcast = pair(source, eurid(BROADCAST)?);
        let map = self.map.read().unwrap_or_else(|e| e.into_inner());
        let packed = map.get(&exact).or_else(|| map.get(&broadcast))?;
        unpack(packed).map(Arc::new)
    }

    pub fn len(&self) -> usize {
        self.map.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds or replaces one device (what a `DEVICES_CHANGED` reload does).
    pub fn insert(&self, device: EnOceanSensor) {
        let field = keys::device_field(&device.source_eurid, device.destination());
        let json = serde_json::to_string(&device).expect("device serializes");
        self.set(&field, Some(json));
    }

    #[cfg(test)]
    fn replace_all(&self, entries: std::collections::HashMap<String, String>) {
        *self.write() = entries
            .iter()
            .filter_map(|(field, json)| entry(field, json))
            .collect();
    }

    /// What changed since the last call.
    pub fn take_changes(&self) -> Changes {
        std::mem::take(&mut *self.changes.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn changed(&self, source: Option<&str>) {
        let mut c = self.changes.lock().unwrap_or_else(|e| e.into_inner());
        match source {
            Some(s) if !c.all && c.sources.len() < CHANGES_KEPT => c.sources.push(s.to_string()),
            _ => {
                c.all = true;
                c.sources.clear();
            }
        }
    }

    fn set(&self, field: &str, json: Option<String>) {
        let Some(key) = field_key(field) else {
            return;
        };
        self.changed(field.split_once(':').map(|(s, _)| s));
        let packed = json.and_then(|j| parse(field, &j)).map(|d| pack(&d));
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        match packed {
            Some(p) => map.insert(key, p),
            None => map.remove(&key),
        };
    }

    /// Reads every device from Redis a page at a time, updating the copy in place, then drops
    /// the devices that are gone. In place rather than a second copy swapped in: a reload of
    /// 1,000,000 devices costs a set of their keys (about 18 MB), not a second map. Meanwhile a
    /// lookup sees each device either as before or as now.
    pub async fn load_all(&self, redis: &mut Redis) -> redis::RedisResult<()> {
        let len: usize = redis.hlen(keys::DEVICES).await?;
        {
            // Grown once up front: growing by doubling holds two tables at a time.
            let mut map = self.write();
            let more = len.saturating_sub(map.len());
            map.reserve(more);
        }
        let mut seen: HashSet<u64> = HashSet::with_capacity(len);
        let mut cursor: u64 = 0;
        loop {
            let (next, page): (u64, Vec<(String, String)>) = redis::cmd("HSCAN")
                .arg(keys::DEVICES)
                .arg(cursor)
                .arg("COUNT")
                .arg(PAGE)
                .query_async(redis)
                .await?;
            // Parsed outside the lock, so lookups wait only for the inserts.
            let parsed: Vec<(u64, Box<[u8]>)> =
                page.iter().filter_map(|(f, j)| entry(f, j)).collect();
            let mut map = self.write();
            for (key, packed) in parsed {
                seen.insert(key);
                // An unchanged device keeps its block: no churn of the allocator's memory.
                if map.get(&key) != Some(&packed) {
                    map.insert(key, packed);
                }
            }
            drop(map);
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        self.write().retain(|key, _| seen.contains(key));
        self.changed(None);
        metrics::gauge!("iotc_engine_devices").set(self.len() as f64);
        Ok(())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Map> {
        self.map.write().unwrap_or_else(|e| e.into_inner())
    }

    async fn reload(&self, redis: &mut Redis, field: &str) -> redis::RedisResult<()> {
        if field == "*" {
            return self.load_all(redis).await;
        }
        let json: Option<String> = redis.hget(keys::DEVICES, field).await?;
        self.set(field, json);
        metrics::gauge!("iotc_engine_devices").set(self.len() as f64);
        Ok(())
    }

    /// Follows `DEVICES_CHANGED` for ever, resubscribing and reloading after connection loss.
    pub async fn watch(self, client: redis::Client, mut redis: Redis) {
        loop {
            if let Err(e) = self.follow(&client, &mut redis).await {
                warn!(error = %e, "device change subscription lost; retrying");
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    async fn follow(&self, client: &redis::Client, redis: &mut Redis) -> redis::RedisResult<()> {
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe(keys::DEVICES_CHANGED).await?;
        // Subscribed first, then loaded: no change can fall between the two.
        self.load_all(redis).await?;
        info!(devices = self.len(), "devices loaded");
        let mut messages = pubsub.on_message();
        while let Some(msg) = messages.next().await {
            let field: String = msg.get_payload()?;
            self.reload(redis, field.trim()).await?;
        }
        Err(redis::RedisError::from((
            redis::ErrorKind::Io,
            "subscription closed",
        )))
    }
}

/// One registry entry as key and packed device; one whose field or JSON does not parse is
/// left out (and logged).
fn entry(field: &str, json: &str) -> Option<(u64, Box<[u8]>)> {
    Some((field_key(field)?, pack(&parse(field, json)?)))
}

/// An 8-hex-digit ID (any case) as a number.
pub(crate) fn eurid(hex: &str) -> Option<u32> {
    if hex.len() != 8 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(hex, 16).ok()
}

fn pair(source: u32, destination: u32) -> u64 {
    (u64::from(source) << 32) | u64::from(destination)
}

/// The key of a registry field `<source>:<destination>`.
fn field_key(field: &str) -> Option<u64> {
    let key = field
        .split_once(':')
        .and_then(|(s, d)| Some(pair(eurid(s)?, eurid(d)?)));
    if key.is_none() {
        metrics::counter!("iotc_engine_device_entries_skipped_total").increment(1);
        warn!(
            field,
            "ignoring device entry whose field is not <source>:<destination>"
        );
    }
    key
}

/// A device entry; a field whose JSON does not parse is left out (and logged), not fatal.
fn parse(field: &str, json: &str) -> Option<EnOceanSensor> {
    match serde_json::from_str::<EnOceanSensor>(json) {
        Ok(mut d) => {
            d.source_eurid.make_ascii_lowercase();
            if let Some(dest) = d.destination_eurid.as_mut() {
                dest.make_ascii_lowercase();
            }
            Some(d)
        }
        Err(e) => {
            metrics::counter!("iotc_engine_device_entries_skipped_total").increment(1);
            warn!(field, error = %e, "ignoring device entry that does not parse");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn device(src: &str, dst: Option<&str>, eep: &str) -> String {
        let mut v = serde_json::json!({"sourceEurid": src, "friendlyID": "x", "eep": eep});
        if let Some(d) = dst {
            v["destinationEurid"] = d.into();
        }
        v.to_string()
    }

    #[test]
    fn changes_name_each_source_until_there_are_too_many() {
        let devices = Devices::default();
        devices.set(
            "01020304:ffffffff",
            Some(device("01020304", None, "a5-02-05")),
        );
        devices.set("0a0b0c0d:ffffffff", None);
        let changes = devices.take_changes();
        assert_eq!(changes.sources, ["01020304", "0a0b0c0d"]);
        assert!(!changes.all);
        assert_eq!(devices.take_changes(), Changes::default());
        for _ in 0..=CHANGES_KEPT {
            devices.set("01020304:ffffffff", None);
        }
        let changes = devices.take_changes();
        assert!(changes.all && changes.sources.is_empty());
    }

    #[test]
    fn exact_pair_wins_over_broadcast() {
        let devices = Devices::default();
        devices.replace_all(HashMap::from([
            (
                "01020304:ffffffff".into(),
                device("01020304", None, "A5-02-05"),
            ),
            (
                "01020304:0a0b0c0d".into(),
                device("01020304", Some("0A0B0C0D"), "D2-01-12"),
            ),
            ("bad:ffffffff".into(), "{not json".into()),
            (
                "0A0B0C0E:FFFFFFFF".into(),
                device("0A0B0C0E", None, "F6-02-01"),
            ),
        ]));
        assert_eq!(devices.len(), 3);
        assert_eq!(
            devices.lookup("0a0b0c0e", "ffffffff").unwrap().source_eurid,
            "0a0b0c0e"
        );
        assert_eq!(
            devices.lookup("01020304", "0a0b0c0d").unwrap().eep,
            "D2-01-12"
        );
        assert_eq!(
            devices.lookup("01020304", "ffffffff").unwrap().eep,
            "A5-02-05"
        );
        assert_eq!(
            devices.lookup("01020304", "11111111").unwrap().eep,
            "A5-02-05"
        );
        assert!(devices.lookup("05060708", "ffffffff").is_none());
    }

    #[test]
    fn set_replaces_and_removes() {
        let devices = Devices::default();
        devices.set(
            "01020304:ffffffff",
            Some(device("01020304", None, "A5-02-05")),
        );
        assert!(devices.lookup("01020304", "ffffffff").is_some());
        devices.set("01020304:ffffffff", None);
        assert!(devices.lookup("01020304", "ffffffff").is_none());
    }
}
