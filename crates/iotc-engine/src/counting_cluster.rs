//! The batch counters on a Redis Cluster: one script may touch one slot only, so the batch's
//! devices and gateways are grouped by the slot of their keys and the counting script runs
//! once per group (side by side), each with its own idempotency marker in that slot. The
//! answers are put back in the batch's order.

use std::collections::BTreeMap;

use iotc_core::keys;
use iotc_core::redis::{Redis, slot};
use redis::RedisResult;

use crate::counting::{Counts, count};

/// One slot's share of a batch: indexes into `Counts::devices` and `Counts::gateways`.
#[derive(Default)]
struct Group {
    devices: Vec<usize>,
    gateways: Vec<usize>,
    /// Hash tag of this slot's marker key.
    tag: String,
}

/// As [`count`], on a cluster.
pub async fn count_by_slot(
    redis: &Redis,
    batch_key: &str,
    counts: &Counts<'_>,
    now_s: u64,
) -> RedisResult<Vec<i64>> {
    let groups = group(counts);
    let calls = groups.values().map(|g| {
        let mut redis = redis.clone();
        let part = Counts {
            devices: g.devices.iter().map(|&i| counts.devices[i]).collect(),
            gateways: g.gateways.iter().map(|&i| counts.gateways[i]).collect(),
        };
        let marker = format!("{batch_key}:{{{}}}", g.tag);
        async move { count(&mut redis, &marker, &part, now_s).await }
    });
    let answers = futures_util::future::join_all(calls).await;
    let mut out = vec![0i64; counts.devices.len() * 4];
    for (g, answer) in groups.values().zip(answers) {
        let answer = answer?;
        for (k, &i) in g.devices.iter().enumerate() {
            out[i * 4..i * 4 + 4].copy_from_slice(&answer[k * 4..k * 4 + 4]);
        }
    }
    Ok(out)
}

fn group(counts: &Counts<'_>) -> BTreeMap<u16, Group> {
    let mut groups: BTreeMap<u16, Group> = BTreeMap::new();
    for (i, (eurid, _)) in counts.devices.iter().enumerate() {
        let g = groups
            .entry(slot(eurid.as_bytes()))
            .or_insert_with(|| Group {
                tag: eurid.to_string(),
                ..Group::default()
            });
        g.devices.push(i);
    }
    for (i, (mac, _, _)) in counts.gateways.iter().enumerate() {
        let key = keys::gateway_stats(mac);
        let g = groups.entry(slot(key.as_bytes())).or_insert_with(|| Group {
            tag: key.clone(),
            ..Group::default()
        });
        g.gateways.push(i);
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device_counts::Outcome;

    #[test]
    fn every_key_of_a_group_is_in_the_marker_slot() {
        let counts = Counts {
            devices: vec![
                ("0000000a", Outcome::Telemetry),
                ("0000000b", Outcome::NotProcessed),
                ("0000000a", Outcome::Signal),
            ],
            gateways: vec![("24f27fca1ba4", "totalTelegramCount", 2)],
        };
        let groups = group(&counts);
        let mut seen = 0;
        for (s, g) in &groups {
            let marker = format!("iotc:batch:x:{{{}}}", g.tag);
            assert_eq!(slot(marker.as_bytes()), *s);
            for &i in &g.devices {
                assert_eq!(slot(keys::device_stats(counts.devices[i].0).as_bytes()), *s);
                assert_eq!(slot(keys::device_seen(counts.devices[i].0).as_bytes()), *s);
                seen += 1;
            }
            for &i in &g.gateways {
                assert_eq!(
                    slot(keys::gateway_stats(counts.gateways[i].0).as_bytes()),
                    *s
                );
                seen += 1;
            }
        }
        assert_eq!(seen, 4);
        assert_eq!(groups.values().map(|g| g.devices.len()).sum::<usize>(), 3);
    }
}
