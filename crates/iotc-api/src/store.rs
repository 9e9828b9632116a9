//! Everything the API keeps or reads in Redis (names in `iotc_core::keys`).
//!
//! Every change of the device registry is followed, in the same MULTI/EXEC or script, by a
//! PUBLISH on `DEVICES_CHANGED` so the engines reload it at once.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;

use iotc_core::keys;
use iotc_core::model::{EnOceanSensor, GatewayRecord};
use iotc_core::redis::Redis;
use redis::{AsyncCommands, RedisError, Script};
use thiserror::Error;

use crate::list_cache::{ListCache, Version};

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("redis: {0}")]
    Redis(#[from] RedisError),
    #[error("stored device {field} is not a valid device: {source}")]
    Corrupt {
        field: String,
        source: serde_json::Error,
    },
}

impl StoreError {
    /// Redis is down or too slow (as opposed to a bad reply).
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Redis(e) => {
                e.is_io_error()
                    || e.is_timeout()
                    || e.is_connection_dropped()
                    || e.is_connection_refusal()
                    || e.is_unrecoverable_error()
            }
            StoreError::Corrupt { .. } => false,
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// What deleting a device found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deleted {
    NotFound,
    /// Removed; the EURID still has a registration with another destination.
    Removed,
    /// Removed the last registration of the EURID.
    RemovedLast,
}

/// Removes one device, announces it and tells whether the EURID has other registrations.
/// Returns -1 (not found), 1 (others remain) or 0 (that was the last one).
const DELETE_SCRIPT: &str = r"
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return -1 end
redis.call('INCR', KEYS[2])
redis.call('PUBLISH', ARGV[2], ARGV[1])
local cursor = '0'
repeat
  local r = redis.call('HSCAN', KEYS[1], cursor, 'MATCH', ARGV[3] .. '*', 'COUNT', 1000)
  cursor = r[1]
  if #r[2] > 0 then return 1 end
until cursor == '0'
return 0
";

/// A handle on Redis; cheap to clone, reconnects by itself.
#[derive(Clone)]
pub struct Store {
    conn: Redis,
    list: Arc<ListCache>,
}

impl Store {
    /// Connects lazily: the service starts while Redis is down and reports it on `/readyz`.
    pub fn connect(url: &str) -> StoreResult<Store> {
        let options = iotc_core::redis::Options {
            retries: 2,
            max_delay: Duration::from_millis(500),
            ..Default::default()
        };
        let conn = iotc_core::redis::connect(url, options)?;
        Ok(Store {
            conn,
            list: Arc::new(ListCache::default()),
        })
    }

    pub(crate) fn conn(&self) -> Redis {
        self.conn.clone()
    }

    /// A connection for modules that keep their own Redis operations (the AP register).
    pub fn redis(&self) -> Redis {
        self.conn.clone()
    }

    pub async fn ping(&self) -> StoreResult<()> {
        redis::cmd("PING")
            .query_async::<String>(&mut self.conn())
            .await?;
        Ok(())
    }

    pub async fn device(
        &self,
        source: &str,
        destination: &str,
    ) -> StoreResult<Option<EnOceanSensor>> {
        let field = keys::device_field(source, destination);
        let json: Option<String> = self.conn().hget(keys::DEVICES, &field).await?;
        json.map(|j| parse_device(&field, &j)).transpose()
    }

    pub async fn device_exists(&self, source: &str, destination: &str) -> StoreResult<bool> {
        let field = keys::device_field(source, destination);
        Ok(self.conn().hexists(keys::DEVICES, field).await?)
    }

    /// All devices, ordered by source and destination; unreadable entries are skipped.
    pub async fn devices(&self) -> StoreResult<Vec<EnOceanSensor>> {
        let all: Vec<(String, String)> = self.conn().hgetall(keys::DEVICES).await?;
        Ok(sorted_devices(all))
    }

    /// All devices as the JSON array `GET /devices` answers, from this instance's cache while
    /// the registry's version has not changed (docs/api.md).
    pub async fn devices_json(&self) -> StoreResult<Bytes> {
        let version = self.devices_version().await?;
        self.list.get_or_build(version, || self.build_list()).await
    }

    /// The version counter and the number of devices: a writer that forgot to bump the counter
    /// still changes the count when it adds or removes a device.
    async fn devices_version(&self) -> StoreResult<Version> {
        let (counter, len): (Option<u64>, u64) = redis::pipe()
            .get(keys::DEVICES_VERSION)
            .hlen(keys::DEVICES)
            .query_async(&mut self.conn())
            .await?;
        Ok(Version {
            counter: counter.unwrap_or(0),
            len,
        })
    }

    /// Reads the registry and its version in one transaction, and serialises the list.
    async fn build_list(&self) -> StoreResult<(Version, Bytes)> {
        let (counter, all): (Option<u64>, Vec<(String, String)>) = redis::pipe()
            .atomic()
            .get(keys::DEVICES_VERSION)
            .hgetall(keys::DEVICES)
            .query_async(&mut self.conn())
            .await?;
        let version = Version {
            counter: counter.unwrap_or(0),
            len: all.len() as u64,
        };
        let devices = sorted_devices(all);
        let json = serde_json::to_vec(&devices).expect("devices serialise");
        Ok((version, Bytes::from(json)))
    }

    /// Tells the engines a device changed. Its own command after the change, not in one
    /// transaction with it: on a Redis Cluster a transaction may not mix a key and PUBLISH.
    async fn announce(&self, field: &str) -> StoreResult<()> {
        self.conn()
            .publish::<_, _, ()>(keys::DEVICES_CHANGED, field)
            .await?;
        Ok(())
    }

    /// Adds or replaces one (normalised) device.
    pub async fn put_device(&self, dev: &EnOceanSensor) -> StoreResult<()> {
        let field = field_of(dev);
        let json = serde_json::to_string(dev).expect("a device serialises");
        redis::pipe()
            .atomic()
            .hset(keys::DEVICES, &field, json)
            .ignore()
            .incr(keys::DEVICES_VERSION, 1)
            .ignore()
            .query_async::<()>(&mut self.conn())
            .await?;
        self.announce(&field).await
    }

    /// Removes one device; after its EURID's last registration also its statistics, recent
    /// telegrams, first-send marker and rolling code, so a re-onboarded device starts afresh.
    pub async fn delete_device(&self, source: &str, destination: &str) -> StoreResult<Deleted> {
        let field = keys::device_field(source, destination);
        let outcome: i64 = Script::new(DELETE_SCRIPT)
            .key(keys::DEVICES)
            .key(keys::DEVICES_VERSION)
            .arg(&field)
            .arg(keys::DEVICES_CHANGED)
            .arg(format!("{source}:"))
            .invoke_async(&mut self.conn())
            .await?;
        match outcome {
            -1 => Ok(Deleted::NotFound),
            1 => Ok(Deleted::Removed),
            _ => {
                let per_device = [
                    keys::device_stats(source),
                    keys::device_recent_telemetry(source),
                    keys::device_recent_signal(source),
                    keys::device_recent_telemetry_list(source),
                    keys::device_recent_signal_list(source),
                    keys::device_seen(source),
                    keys::device_rlc(source),
                    keys::device_learn(source),
                    keys::device_manufacturer(source),
                ];
                self.conn().del::<_, ()>(&per_device).await?;
                Ok(Deleted::RemovedLast)
            }
        }
    }

    /// Replaces the whole registry (`replace`) or adds to it, in one MULTI/EXEC: all or nothing.
    pub async fn import(&self, devices: &[EnOceanSensor], replace: bool) -> StoreResult<()> {
        let entries: Vec<(String, String)> = devices
            .iter()
            .map(|d| {
                (
                    field_of(d),
                    serde_json::to_string(d).expect("a device serialises"),
                )
            })
            .collect();
        let mut pipe = redis::pipe();
        pipe.atomic();
        if replace {
            pipe.del(keys::DEVICES).ignore();
        }
        if !entries.is_empty() {
            pipe.hset_multiple(keys::DEVICES, &entries).ignore();
        }
        pipe.incr(keys::DEVICES_VERSION, 1).ignore();
        pipe.query_async::<()>(&mut self.conn()).await?;
        self.announce("*").await?;
        Ok(())
    }

    /// Opens (or extends) a learn window: `key` exists for `seconds`.
    pub async fn open_window(&self, key: &str, seconds: u64) -> StoreResult<()> {
        self.conn().set_ex::<_, _, ()>(key, 1, seconds).await?;
        Ok(())
    }

    pub async fn close_window(&self, key: &str) -> StoreResult<()> {
        self.conn().del::<_, ()>(key).await?;
        Ok(())
    }

    /// Open learn windows: (device, seconds left); the device is `None` for all devices.
    pub async fn open_windows(&self) -> StoreResult<Vec<(Option<String>, u64)>> {
        let mut conn = self.conn();
        let mut found: Vec<String> = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(keys::device_learn("*"))
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await?;
            found.extend(batch);
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        found.sort_unstable();
        found.insert(0, keys::LEARN_ALL.to_string());
        let mut pipe = redis::pipe();
        for key in &found {
            pipe.ttl(key);
        }
        let ttls: Vec<i64> = pipe.query_async(&mut conn).await?;
        Ok(found
            .iter()
            .zip(ttls)
            .filter(|(_, ttl)| *ttl > 0)
            .map(|(key, ttl)| (learn_device(key), ttl as u64))
            .collect())
    }

    /// A statistics hash (`keys::device_stats` / `keys::gateway_stats`).
    pub async fn stats(&self, key: &str) -> StoreResult<HashMap<String, String>> {
        Ok(self.conn().hgetall(key).await?)
    }

    /// Up to five most recent messages of a device's ring, newest first; from the list of an
    /// earlier release while the device has no ring yet.
    pub async fn recent(&self, ring: &str, list: &str) -> StoreResult<Vec<String>> {
        let values: Vec<String> = self.conn().hvals(ring).await?;
        if values.is_empty() {
            return Ok(self.conn().lrange(list, 0, 4).await?);
        }
        Ok(iotc_core::recent::newest_first(values))
    }

    /// All gateway records, ordered by MAC; unreadable entries are skipped.
    pub async fn gateways(&self) -> StoreResult<Vec<GatewayRecord>> {
        let all: Vec<(String, String)> = self.conn().hgetall(keys::GATEWAYS).await?;
        let mut records: Vec<GatewayRecord> = all
            .into_iter()
            .filter_map(
                |(mac, json)| match serde_json::from_str::<GatewayRecord>(&json) {
                    Ok(mut record) => {
                        if record.mac.is_empty() {
                            record.mac = mac;
                        }
                        Some(record)
                    }
                    Err(e) => {
                        metrics::counter!("iotc_api_corrupt_records_total").increment(1);
                        tracing::warn!(%mac, error = %e, "skipping unreadable gateway record");
                        None
                    }
                },
            )
            .collect();
        records.sort_unstable_by(|a, b| a.mac.cmp(&b.mac));
        Ok(records)
    }

    /// Statistics hashes of several gateways in one round trip.
    pub async fn gateway_stats(&self, macs: &[&str]) -> StoreResult<Vec<HashMap<String, String>>> {
        // Redis refuses an empty pipeline ("empty command"): no gateway, no statistics.
        if macs.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for mac in macs {
            pipe.hgetall(keys::gateway_stats(mac));
        }
        Ok(pipe.query_async(&mut self.conn()).await?)
    }

    /// The heartbeat values of the given services (`None` when expired or never written).
    pub async fn heartbeats(&self, services: &[&str]) -> StoreResult<Vec<Option<String>>> {
        if services.is_empty() {
            return Ok(Vec::new());
        }
        let names: Vec<String> = services.iter().map(|s| keys::heartbeat(s)).collect();
        Ok(redis::cmd("MGET")
            .arg(&names)
            .query_async(&mut self.conn())
            .await?)
    }

    /// Writes this service's heartbeat, valid for `ttl_secs`.
    pub async fn write_heartbeat(&self, service: &str, now: u64, ttl_secs: u64) -> StoreResult<()> {
        let value = serde_json::json!({"status": "running", "timestamp": now}).to_string();
        self.conn()
            .set_ex::<_, _, ()>(keys::heartbeat(service), value, ttl_secs)
            .await?;
        Ok(())
    }
}

/// Parsed devices ordered by source and destination; unreadable entries are skipped.
fn sorted_devices(all: Vec<(String, String)>) -> Vec<EnOceanSensor> {
    let mut all: Vec<_> = all
        .into_iter()
        .filter_map(|(field, json)| match parse_device(&field, &json) {
            Ok(dev) => Some((field, dev)),
            Err(e) => {
                metrics::counter!("iotc_api_corrupt_records_total").increment(1);
                tracing::warn!(error = %e, "skipping unreadable device");
                None
            }
        })
        .collect();
    all.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    all.into_iter().map(|(_, dev)| dev).collect()
}

fn field_of(dev: &EnOceanSensor) -> String {
    keys::device_field(&dev.source_eurid, dev.destination())
}

fn parse_device(field: &str, json: &str) -> StoreResult<EnOceanSensor> {
    serde_json::from_str(json).map_err(|source| StoreError::Corrupt {
        field: field.to_string(),
        source,
    })
}

/// The device of a learn window key (`None` for the window of all devices).
fn learn_device(key: &str) -> Option<String> {
    let start = key.find('{')? + 1;
    let end = key[start..].find('}')? + start;
    Some(key[start..end].to_string())
}
