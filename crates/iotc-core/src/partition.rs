//! The telegram stream's partitions: how many, which one a sender's telegrams go to, and
//! the keys of each (docs/scaling.md).
//!
//! With one partition on a single Redis the stream is as it always was (`iotc:telegrams`).
//! Otherwise each partition's keys carry one hash tag so that its stream and its lease sit
//! in one cluster slot: partition `i` of `P > 1` is `iotc:telegrams:{i}` and its lease
//! `iotc:lease:{i}`.

use crate::keys;

/// Most partitions; a few per engine is plenty (each costs one lease and one stream).
pub const MAX_PARTITIONS: u16 = 1024;

/// Name of the key both services compare their partition count with at start.
pub const PARTITIONS_KEY: &str = "iotc:partitions";

/// Records the partition count in Redis the first time ([`PARTITIONS_KEY`]) and compares:
/// `Some(n)` when Redis already holds another count `n`. Every ingress and engine must agree,
/// or telegrams would go to partitions no engine reads. Deleting the key (after draining every
/// partition) allows a new count.
pub async fn disagreement(
    redis: &mut crate::redis::Redis,
    partitions: u16,
) -> redis::RedisResult<Option<u16>> {
    let _: Option<String> = redis::cmd("SET")
        .arg(PARTITIONS_KEY)
        .arg(partitions)
        .arg("NX")
        .query_async(redis)
        .await?;
    let held: Option<u16> = redis::cmd("GET")
        .arg(PARTITIONS_KEY)
        .query_async(redis)
        .await?;
    Ok(held.filter(|&n| n != partitions))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    partitions: u16,
    /// Tagged keys: on a cluster, or with more than one partition.
    tagged: bool,
}

impl Layout {
    /// `partitions` is clamped to 1..=[`MAX_PARTITIONS`].
    pub fn new(partitions: u16, cluster: bool) -> Layout {
        let partitions = partitions.clamp(1, MAX_PARTITIONS);
        Layout {
            partitions,
            tagged: cluster || partitions > 1,
        }
    }

    pub fn partitions(&self) -> u16 {
        self.partitions
    }

    /// The partition of a sender: its EURID modulo the count (EURIDs of one installation
    /// are mostly consecutive, so this spreads them evenly).
    pub fn of_sender(&self, eurid: u32) -> u16 {
        (eurid % u32::from(self.partitions)) as u16
    }

    /// The hash tag of a partition's keys (without braces).
    fn tag(&self, p: u16) -> String {
        if self.partitions == 1 {
            // Hashes like the untagged stream name itself: one slot with `iotc:telegrams`.
            keys::TELEGRAM_STREAM.to_string()
        } else {
            p.to_string()
        }
    }

    /// The stream of partition `p`.
    pub fn stream(&self, p: u16) -> String {
        if self.partitions == 1 {
            keys::TELEGRAM_STREAM.to_string()
        } else {
            format!("{}:{{{p}}}", keys::TELEGRAM_STREAM)
        }
    }

    /// Every partition's stream, in partition order.
    pub fn streams(&self) -> Vec<String> {
        (0..self.partitions).map(|p| self.stream(p)).collect()
    }

    /// The partition of a stream key, if it is one of ours.
    pub fn partition_of_stream(&self, key: &str) -> Option<u16> {
        (0..self.partitions).find(|&p| self.stream(p) == key)
    }

    /// The lease of partition `p`: the consumer name of the engine that reads it.
    pub fn lease(&self, p: u16) -> String {
        format!("iotc:lease:{{{}}}", self.tag(p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redis::slot;

    #[test]
    fn one_partition_on_one_redis_keeps_the_keys() {
        let l = Layout::new(1, false);
        assert_eq!(l.stream(0), "iotc:telegrams");
        assert_eq!(l.of_sender(0xdead_beef), 0);
        assert_eq!(l.streams(), vec!["iotc:telegrams"]);
    }

    #[test]
    fn keys_of_a_partition_share_a_slot() {
        for l in [
            Layout::new(1, true),
            Layout::new(8, false),
            Layout::new(8, true),
        ] {
            for p in 0..l.partitions() {
                let s = slot(l.stream(p).as_bytes());
                assert_eq!(slot(l.lease(p).as_bytes()), s);
                assert_eq!(l.partition_of_stream(&l.stream(p)), Some(p));
            }
        }
        assert_eq!(Layout::new(8, false).stream(3), "iotc:telegrams:{3}");
    }

    #[test]
    fn senders_spread_over_partitions() {
        let l = Layout::new(4, false);
        let mut seen = [0; 4];
        for eurid in 0x0100_0000..0x0100_0100u32 {
            seen[l.of_sender(eurid) as usize] += 1;
        }
        assert_eq!(seen, [64; 4]);
        assert_eq!(Layout::new(0, false).partitions(), 1);
        assert_eq!(Layout::new(60_000, false).partitions(), MAX_PARTITIONS);
    }
}
