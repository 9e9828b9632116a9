//! The in-memory copy of the onboarded devices (`keys::DEVICES`), kept current through the
//! `keys::DEVICES_CHANGED` channel. After a (re)subscription everything is reloaded, so a
//! change missed while Redis was away still takes effect.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures_util::StreamExt;
use iotc_core::keys;
use iotc_core::model::{BROADCAST, EnOceanSensor};
use iotc_core::redis::Redis;
use redis::AsyncCommands;
use tracing::{info, warn};

/// Onboarded devices by `device_field(source, destination)`.
#[derive(Clone, Default)]
pub struct Devices {
    map: Arc<RwLock<HashMap<String, Arc<EnOceanSensor>>>>,
}

impl Devices {
    /// The device a telegram from `sender` to `destination` belongs to: the exact pair first,
    /// then the device onboarded with the broadcast destination.
    pub fn lookup(&self, sender: &str, destination: &str) -> Option<Arc<EnOceanSensor>> {
        let map = self.map.read().unwrap_or_else(|e| e.into_inner());
        map.get(&keys::device_field(sender, destination))
            .or_else(|| map.get(&keys::device_field(sender, BROADCAST)))
            .cloned()
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

    fn replace_all(&self, entries: HashMap<String, String>) {
        let parsed = entries
            .into_iter()
            .filter_map(|(field, json)| {
                parse(&field, &json).map(|d| (field.to_ascii_lowercase(), Arc::new(d)))
            })
            .collect();
        *self.map.write().unwrap_or_else(|e| e.into_inner()) = parsed;
    }

    fn set(&self, field: &str, json: Option<String>) {
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        let key = field.to_ascii_lowercase();
        match json.and_then(|j| parse(field, &j)) {
            Some(d) => map.insert(key, Arc::new(d)),
            None => map.remove(&key),
        };
    }

    /// Reads every device from Redis.
    pub async fn load_all(&self, redis: &mut Redis) -> redis::RedisResult<()> {
        let all: HashMap<String, String> = redis.hgetall(keys::DEVICES).await?;
        self.replace_all(all);
        metrics::gauge!("iotc_engine_devices").set(self.len() as f64);
        Ok(())
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
            warn!(field, error = %e, "ignoring device entry that does not parse");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(src: &str, dst: Option<&str>, eep: &str) -> String {
        let mut v = serde_json::json!({"sourceEurid": src, "friendlyID": "x", "eep": eep});
        if let Some(d) = dst {
            v["destinationEurid"] = d.into();
        }
        v.to_string()
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
