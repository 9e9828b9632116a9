//! The device counters (`keys::device_stats`) and first-time markers (`keys::device_seen`),
//! kept in memory by the engine that reads the device's partition.
//!
//! Only the holder of a partition's lease counts its devices, so this engine's copy is the
//! truth while it holds the lease. A device not in the copy is counted by the batch's
//! counting script (`counting`), whose answer then seeds the copy; from then on each batch
//! writes the device's new values as absolute numbers (`HSET`). An absolute write is
//! idempotent, so a write retried after a lost answer changes nothing, and no Lua runs for
//! known devices: in Redis, a script's per-`redis.call` overhead costs more than the
//! commands themselves.
//!
//! The copy is dropped whenever it may be stale: when the partitions held change (another
//! engine may have counted meanwhile), when a device is changed or removed through the API,
//! and when it outgrows its bound (`IOTC_ENGINE_COUNTER_CACHE` devices).

use std::collections::HashMap;
use std::sync::Arc;

use iotc_core::keys::{self, stats};
use rustc_hash::FxHashMap;

use crate::devices::Changes;

/// One device's counters; the last three numbers of its telemetry messages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub total: u64,
    pub ok: u64,
    pub not_processed: u64,
    /// The first-time marker existed when the device was loaded, or was written since.
    pub seen: bool,
    /// Sequence numbers of the device's last telemetry and signal message in its
    /// most-recent rings (`iotc_core::recent`); 0 until one is counted here.
    pub telemetry_seq: u64,
    pub signal_seq: u64,
    /// This telegram's message is the first its ring numbered since the device was loaded:
    /// the list an earlier release kept for that kind goes with it.
    pub first_numbered: bool,
}

/// What became of one counted telegram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Telemetry,
    Signal,
    NotProcessed,
}

impl Outcome {
    pub fn ok(self) -> bool {
        self != Outcome::NotProcessed
    }
}

/// The next sequence number of a ring: one more than the last, or the device's telegram
/// count when this copy has not numbered one yet. A number never exceeds the count, so one
/// taken from the count after a reload is larger than any given before it.
fn next_seq(last: u64, total: u64) -> u64 {
    if last == 0 { total } else { last + 1 }
}

impl Counters {
    fn count(&mut self, outcome: Outcome) {
        self.total += 1;
        self.number(outcome);
        if outcome.ok() {
            self.ok += 1;
        } else {
            self.not_processed += 1;
        }
    }

    /// Numbers a published message in its ring (after `total` counted it).
    fn number(&mut self, outcome: Outcome) {
        let seq = match outcome {
            Outcome::Telemetry => &mut self.telemetry_seq,
            Outcome::Signal => &mut self.signal_seq,
            Outcome::NotProcessed => {
                self.first_numbered = false;
                return;
            }
        };
        self.first_numbered = *seq == 0;
        *seq = next_seq(*seq, self.total);
    }

    /// The ring sequence number of a message of this telegram's outcome.
    pub fn seq(&self, signal: bool) -> u64 {
        if signal {
            self.signal_seq
        } else {
            self.telemetry_seq
        }
    }
}

/// The copy: devices by EURID.
pub struct DeviceCounts {
    /// Only onboarded devices are counted, so the keys are chosen by operators, not by radio:
    /// a fast non-keyed hash is safe.
    map: FxHashMap<u32, Counters>,
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
            map: FxHashMap::default(),
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

    /// Called before each batch with the partitions held now and the device changes since
    /// the last call: drops what may be stale, and starts over when full (here, so that the
    /// batch's own devices stay in the copy).
    pub fn refresh(&mut self, held: Arc<Vec<String>>, changes: Changes) {
        self.follow_partitions(held);
        if changes.all {
            self.map.clear();
        }
        for source in &changes.sources {
            self.forget(source);
        }
        if self.map.len() >= self.cap {
            self.map.clear();
        }
    }

    /// Clears the copy when the partitions held are no longer those it was built for.
    fn follow_partitions(&mut self, held: Arc<Vec<String>>) {
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

    /// Whether the device is in the copy.
    pub fn knows(&self, eurid: &str) -> bool {
        key(eurid).is_some_and(|k| self.map.contains_key(&k))
    }

    /// Counts device telegrams (EURID, processed) of devices in the copy. The copy itself
    /// changes only in [`DeviceCounts::store`], once the writes are in Redis.
    pub fn apply(&self, items: &[(&str, Outcome)]) -> Applied {
        let mut current: HashMap<&str, Counters> = HashMap::new();
        let counted: Vec<Counters> = items
            .iter()
            .map(|&(eurid, outcome)| {
                let c = current.entry(eurid).or_insert_with(|| {
                    key(eurid)
                        .and_then(|k| self.map.get(&k).copied())
                        .unwrap_or_default()
                });
                c.count(outcome);
                *c
            })
            .collect();
        Applied {
            writes: last_values(items, &counted),
            items: counted,
        }
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

/// EURIDs are 8 hex digits; anything else is never kept (counted by the script every time).
fn key(eurid: &str) -> Option<u32> {
    crate::devices::eurid(eurid)
}

/// Each device's last counters among a batch's items, in the order of first appearance.
fn last_values(items: &[(&str, Outcome)], counted: &[Counters]) -> Vec<(String, Counters)> {
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut out: Vec<(String, Counters)> = Vec::new();
    for (&(eurid, _), c) in items.iter().zip(counted) {
        match index.get(eurid) {
            Some(&i) => out[i].1 = *c,
            None => {
                index.insert(eurid, out.len());
                out.push((eurid.to_string(), *c));
            }
        }
    }
    out
}

/// The counting script's answer (four numbers per device telegram: total, successful, not
/// processed, seen) as counters per item, and each device's last values for the copy. A
/// device's first message here takes its ring number from its count, the next ones follow.
pub fn from_script(items: &[(&str, Outcome)], answer: &[i64]) -> Applied {
    let number = |n: i64| u64::try_from(n).unwrap_or(0);
    let mut last: HashMap<&str, Counters> = HashMap::new();
    let counted: Vec<Counters> = answer
        .chunks_exact(4)
        .zip(items)
        .map(|(a, &(eurid, outcome))| {
            let before = last.get(eurid).copied().unwrap_or_default();
            let mut c = Counters {
                total: number(a[0]),
                ok: number(a[1]),
                not_processed: number(a[2]),
                seen: a[3] != 0,
                telemetry_seq: before.telemetry_seq,
                signal_seq: before.signal_seq,
                first_numbered: false,
            };
            c.number(outcome);
            last.insert(eurid, c);
            c
        })
        .collect();
    Applied {
        writes: last_values(items, &counted),
        items: counted,
    }
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

    const T: Outcome = Outcome::Telemetry;
    const S: Outcome = Outcome::Signal;
    const N: Outcome = Outcome::NotProcessed;

    fn seed(counts: &mut DeviceCounts, eurid: &str, total: u64, ok: u64, seen: bool) {
        let c = Counters {
            total,
            ok,
            not_processed: total - ok,
            seen,
            ..Counters::default()
        };
        counts.store(&[(eurid.to_string(), c)]);
    }

    #[test]
    fn a_device_twice_in_a_batch_counts_on() {
        let mut counts = DeviceCounts::new(10);
        seed(&mut counts, "0000000a", 5, 4, true);
        seed(&mut counts, "0000000b", 0, 0, false);
        let applied = counts.apply(&[("0000000a", T), ("0000000b", N), ("0000000a", N)]);
        let totals: Vec<_> = applied
            .items
            .iter()
            .map(|c| (c.total, c.ok, c.not_processed, c.seen))
            .collect();
        assert_eq!(totals, [(6, 5, 1, true), (1, 0, 1, false), (7, 5, 2, true)]);
        assert_eq!(applied.writes.len(), 2);
        assert_eq!(applied.writes[0].1.total, 7);
        assert_eq!(
            counts.apply(&[("0000000a", T)]).items[0].total,
            6,
            "not stored yet"
        );
        counts.store(&applied.writes);
        assert_eq!(counts.apply(&[("0000000a", T)]).items[0].total, 8);
    }

    #[test]
    fn the_script_answer_seeds_the_copy_with_each_device_last_values() {
        let items = [("0000000a", T), ("0000000b", N), ("0000000a", T)];
        let answer = [3, 3, 0, 1, 1, 0, 1, 0, 4, 4, 0, 1];
        let counted = from_script(&items, &answer);
        assert_eq!(counted.items.len(), 3);
        assert_eq!(counted.items[1].not_processed, 1);
        assert!(!counted.items[1].seen);
        let last: Vec<_> = counted
            .writes
            .iter()
            .map(|(e, c)| (e.as_str(), c.total))
            .collect();
        assert_eq!(last, [("0000000a", 4), ("0000000b", 1)]);
    }

    #[test]
    fn the_copy_is_dropped_when_partitions_or_devices_change_or_it_is_full() {
        let mut counts = DeviceCounts::new(2);
        counts.follow_partitions(Arc::new(vec!["p0".into()]));
        seed(&mut counts, "0000000a", 1, 1, true);
        counts.follow_partitions(Arc::new(vec!["p0".into()]));
        assert!(counts.knows("0000000a"), "same partitions: kept");
        counts.follow_partitions(Arc::new(vec!["p0".into(), "p1".into()]));
        assert!(counts.is_empty(), "partitions changed: dropped");

        let held = Arc::new(vec!["p0".into(), "p1".into()]);
        seed(&mut counts, "0000000a", 1, 1, true);
        counts.refresh(held.clone(), Changes::default());
        assert_eq!(counts.len(), 1, "room left: kept");
        seed(&mut counts, "0000000b", 1, 1, true);
        counts.refresh(held.clone(), Changes::default());
        assert!(counts.is_empty(), "full: cleared before the batch");

        seed(&mut counts, "0000000a", 1, 1, true);
        let one = Changes {
            all: false,
            sources: vec!["0000000A".into()],
        };
        counts.refresh(held.clone(), one);
        assert!(!counts.knows("0000000a"), "a changed device: dropped");
        seed(&mut counts, "0000000a", 1, 1, true);
        let all = Changes {
            all: true,
            sources: Vec::new(),
        };
        counts.refresh(held, all);
        assert!(counts.is_empty(), "a reload: all dropped");
    }

    #[test]
    fn forgotten_and_unusual_ids_are_not_known() {
        let mut counts = DeviceCounts::new(10);
        seed(&mut counts, "0000000a", 1, 1, false);
        seed(&mut counts, "x", 1, 1, false);
        assert!(counts.knows("0000000a"));
        assert!(!counts.knows("x"));
        counts.mark_seen("0000000a");
        assert!(counts.apply(&[("0000000a", T)]).items[0].seen);
        counts.forget("0000000A");
        assert!(!counts.knows("0000000a"));
    }

    #[test]
    fn ring_numbers_follow_each_kind_and_grow_across_a_reload() {
        let mut counts = DeviceCounts::new(10);
        let items = [("0000000a", T), ("0000000a", S)];
        let first = from_script(&items, &[7, 7, 0, 1, 8, 8, 0, 1]);
        let seqs: Vec<_> = first
            .items
            .iter()
            .map(|c| (c.seq(false), c.seq(true)))
            .collect();
        assert_eq!(seqs, [(7, 0), (7, 8)], "numbered from their count");
        let fresh: Vec<_> = first.items.iter().map(|c| c.first_numbered).collect();
        assert_eq!(fresh, [true, true], "the first of each kind");
        counts.store(&first.writes);
        let next = counts.apply(&[
            ("0000000a", T),
            ("0000000a", N),
            ("0000000a", T),
            ("0000000a", S),
        ]);
        let seqs: Vec<_> = next
            .items
            .iter()
            .map(|c| (c.seq(false), c.seq(true)))
            .collect();
        assert_eq!(
            seqs,
            [(8, 8), (8, 8), (9, 8), (9, 9)],
            "one more per message of a kind"
        );
        assert!(next.items.iter().all(|c| !c.first_numbered));
        let last = next.writes[0].1;
        assert!(last.telemetry_seq <= last.total && last.signal_seq <= last.total);

        // A reload (another engine, a restart) numbers from the count: above every earlier
        // number, though a field may be replaced before its turn.
        let reloaded = from_script(&[("0000000a", T)], &[13, 12, 1, 1]);
        assert_eq!(reloaded.items[0].telemetry_seq, 13);
        assert!(reloaded.items[0].first_numbered);
        assert!(reloaded.items[0].telemetry_seq > last.telemetry_seq);
    }
}
