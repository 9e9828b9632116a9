//! The device counters (`keys::device_stats`) and first-time markers (`keys::device_seen`),
//! kept in memory by the engine that reads the device's partition.
//!
//! Only the holder of a partition's lease counts its devices, so this engine's copy is the
//! truth while it holds the lease. A device missing from the copy is read from Redis once
//! (`HMGET` + `EXISTS`, plain commands in one pipeline); each batch then writes the new
//! values as absolute numbers (`HSET`). An absolute write is idempotent, so a write retried
//! after a lost answer changes nothing, and no Lua runs per telegram: in Redis, a script's
//! per-call and per-`redis.call` overhead cost more than the commands themselves.
//!
//! The copy is dropped whenever it may be stale: when the partitions held change (another
//! engine may have counted meanwhile), when a device is changed or removed through the API,
//! and when it outgrows its bound (`IOTC_ENGINE_COUNTER_CACHE` devices).

use std::collections::HashMap;
use std::sync::Arc;

use iotc_core::keys::{self, stats};
use redis::aio::ConnectionLike;
use redis::{RedisResult, Value};

/// One device's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub total: u64,
    pub ok: u64,
    pub not_processed: u64,
    /// The first-time marker existed when the device was loaded, or was written since.
    pub seen: bool,
}

impl Counters {
    /// The numbers a telemetry message carries.
    pub fn telemetry(&self) -> crate::telemetry::Counts {
        crate::telemetry::Counts {
            total: self.total,
            ok: self.ok,
            not_processed: self.not_processed,
        }
    }

    fn count(&mut self, ok: bool) {
        self.total += 1;
        if ok {
            self.ok += 1;
        } else {
            self.not_processed += 1;
        }
    }
}

/// The copy: devices by EURID.
pub struct DeviceCounts {
    map: HashMap<u32, Counters>,
    cap: usize,
    partitions: Arc<Vec<String>>,
}

/// One batch's new values: per item its counters including it, and per device the values
/// to write.
#[derive(Debug, Default)]
pub struct Applied {
    pub items: Vec<Counters>,
    pub writes: Vec<(String, Counters)>,
}

impl DeviceCounts {
    /// A copy of at most `cap` devices (it is cleared when a batch finds it full).
    pub fn new(cap: usize) -> Self {
        DeviceCounts {
            map: HashMap::new(),
            cap: cap.max(1),
            partitions: Arc::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn clear(&mut self) {
        self.map.clear();
    }

    /// Clears the copy when the partitions held are no longer those it was built for.
    pub fn follow_partitions(&mut self, held: Arc<Vec<String>>) {
        if held != self.partitions {
            self.map.clear();
            self.partitions = held;
        }
    }

    /// Forgets one device (changed or removed): its counters are read again when it sends.
    pub fn forget(&mut self, eurid: &str) {
        if let Some(k) = key(eurid) {
            self.map.remove(&k);
        }
    }

    /// The device's first-time marker is now written.
    pub fn mark_seen(&mut self, eurid: &str) {
        if let Some(c) = key(eurid).and_then(|k| self.map.get_mut(&k)) {
            c.seen = true;
        }
    }

    /// Devices among `eurids` that must be read from Redis first, each once. A full copy is
    /// cleared here, before the batch, so the batch's own devices stay loaded.
    pub fn missing<'a>(&mut self, eurids: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
        if self.map.len() >= self.cap {
            self.map.clear();
        }
        let mut out: Vec<&str> = Vec::new();
        for e in eurids {
            let cached = key(e).is_some_and(|k| self.map.contains_key(&k));
            if !cached && !out.contains(&e) {
                out.push(e);
            }
        }
        out
    }

    /// Counts a batch's device telegrams (EURID, processed) on top of the copy and `loaded`
    /// (what [`load`] read for the missing ones). The copy itself changes only in
    /// [`DeviceCounts::store`], once the writes are in Redis.
    pub fn apply(&self, items: &[(&str, bool)], loaded: &HashMap<String, Counters>) -> Applied {
        let mut current: HashMap<&str, Counters> = HashMap::new();
        let mut order: Vec<&str> = Vec::new();
        let mut out = Applied::default();
        for &(eurid, ok) in items {
            let c = current.entry(eurid).or_insert_with(|| {
                order.push(eurid);
                loaded
                    .get(eurid)
                    .copied()
                    .or_else(|| key(eurid).and_then(|k| self.map.get(&k).copied()))
                    .unwrap_or_default()
            });
            c.count(ok);
            out.items.push(*c);
        }
        out.writes = order
            .into_iter()
            .map(|e| (e.to_string(), current[e]))
            .collect();
        out
    }

    /// Takes a batch's written values into the copy.
    pub fn store(&mut self, writes: &[(String, Counters)]) {
        for (eurid, c) in writes {
            if let Some(k) = key(eurid) {
                self.map.insert(k, *c);
            }
        }
    }
}

/// EURIDs are 8 hex digits; anything else is never kept (read again every time).
fn key(eurid: &str) -> Option<u32> {
    if eurid.len() != 8 {
        return None;
    }
    u32::from_str_radix(eurid, 16).ok()
}

/// Reads the counters and first-time markers of `eurids` in one pipeline.
pub async fn load<C: ConnectionLike>(
    redis: &mut C,
    eurids: &[&str],
) -> RedisResult<HashMap<String, Counters>> {
    if eurids.is_empty() {
        return Ok(HashMap::new());
    }
    let mut pipe = redis::pipe();
    for e in eurids {
        pipe.cmd("HMGET")
            .arg(keys::device_stats(e))
            .arg(stats::TOTAL)
            .arg(stats::OK)
            .arg(stats::NOT_PROCESSED)
            .exists(keys::device_seen(e));
    }
    let replies: Vec<Value> = pipe.query_async(redis).await?;
    let mut out = HashMap::with_capacity(eurids.len());
    let mut replies = replies.into_iter();
    for e in eurids {
        let (Some(numbers), Some(exists)) = (replies.next(), replies.next()) else {
            let short = (redis::ErrorKind::Parse, "fewer replies than commands");
            return Err(short.into());
        };
        let (total, ok, not_processed): (Option<u64>, Option<u64>, Option<u64>) =
            redis::from_redis_value(numbers)?;
        let seen: bool = redis::from_redis_value(exists)?;
        out.insert(
            e.to_string(),
            Counters {
                total: total.unwrap_or(0),
                ok: ok.unwrap_or(0),
                not_processed: not_processed.unwrap_or(0),
                seen,
            },
        );
    }
    Ok(out)
}

/// Adds the absolute writes of `writes` (with `lastSeen` = `now_s`) to a pipeline.
pub fn add_writes(pipe: &mut redis::Pipeline, writes: &[(String, Counters)], now_s: u64) {
    for (eurid, c) in writes {
        pipe.hset_multiple(
            keys::device_stats(eurid),
            &[
                (stats::TOTAL, c.total),
                (stats::OK, c.ok),
                (stats::NOT_PROCESSED, c.not_processed),
                (stats::LAST_SEEN, now_s),
            ],
        )
        .ignore();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loaded(eurid: &str, total: u64, ok: u64, seen: bool) -> HashMap<String, Counters> {
        HashMap::from([(
            eurid.to_string(),
            Counters {
                total,
                ok,
                not_processed: total - ok,
                seen,
            },
        )])
    }

    #[test]
    fn a_device_twice_in_a_batch_counts_on() {
        let mut counts = DeviceCounts::new(10);
        let from_redis = loaded("0000000a", 5, 4, true);
        let applied = counts.apply(
            &[("0000000a", true), ("0000000b", false), ("0000000a", false)],
            &from_redis,
        );
        let totals: Vec<_> = applied
            .items
            .iter()
            .map(|c| (c.total, c.ok, c.not_processed, c.seen))
            .collect();
        assert_eq!(totals, [(6, 5, 1, true), (1, 0, 1, false), (7, 5, 2, true)]);
        assert_eq!(applied.writes.len(), 2);
        assert_eq!(applied.writes[0].1.total, 7);
        counts.store(&applied.writes);
        assert!(counts.missing(["0000000a", "0000000b"]).is_empty());
        let next = counts.apply(&[("0000000a", true)], &HashMap::new());
        assert_eq!(next.items[0].total, 8);
    }

    #[test]
    fn the_copy_is_dropped_when_partitions_change_or_it_is_full() {
        let mut counts = DeviceCounts::new(2);
        counts.follow_partitions(Arc::new(vec!["p0".into()]));
        let applied = counts.apply(&[("0000000a", true)], &HashMap::new());
        counts.store(&applied.writes);
        counts.follow_partitions(Arc::new(vec!["p0".into()]));
        assert_eq!(counts.len(), 1, "same partitions: kept");
        counts.follow_partitions(Arc::new(vec!["p0".into(), "p1".into()]));
        assert!(counts.is_empty(), "partitions changed: dropped");

        let applied = counts.apply(&[("0000000a", true), ("0000000b", true)], &HashMap::new());
        counts.store(&applied.writes);
        assert_eq!(
            counts.missing(["0000000a", "0000000c", "0000000c"]),
            ["0000000a", "0000000c"]
        );
        assert!(counts.is_empty(), "full: cleared before the batch");
    }

    #[test]
    fn forgotten_and_unusual_ids_are_read_again() {
        let mut counts = DeviceCounts::new(10);
        let applied = counts.apply(&[("0000000a", true), ("x", true)], &HashMap::new());
        counts.store(&applied.writes);
        assert_eq!(counts.missing(["0000000a", "x"]), ["x"]);
        counts.mark_seen("0000000a");
        assert!(counts.apply(&[("0000000a", true)], &HashMap::new()).items[0].seen);
        counts.forget("0000000a");
        assert_eq!(counts.missing(["0000000a"]), ["0000000a"]);
    }
}
