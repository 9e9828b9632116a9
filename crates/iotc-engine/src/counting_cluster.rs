//! The gateway counters on a Redis Cluster: one script may touch one slot only, so the batch's
//! gateways are grouped by the slot of their stats key and the counting script runs once per
//! group (side by side), each with its own idempotency marker in that slot.

use std::collections::BTreeMap;

use iotc_core::keys;
use iotc_core::redis::{Redis, slot};
use redis::RedisResult;

use crate::counting::{GatewayCounts, count};

/// As [`count`], on a cluster.
pub async fn count_by_slot(
    redis: &Redis,
    batch_key: &str,
    gateways: &GatewayCounts<'_>,
) -> RedisResult<()> {
    let calls = group(gateways).into_values().map(|(tag, part)| {
        let mut redis = redis.clone();
        let marker = format!("{batch_key}:{{{tag}}}");
        async move { count(&mut redis, &marker, &part).await }
    });
    for answer in futures_util::future::join_all(calls).await {
        answer?;
    }
    Ok(())
}

type Group<'a> = (String, Vec<(&'a str, &'static str, i64)>);

/// The increments by slot, each group with a hash tag of its slot for the marker.
fn group<'a>(gateways: &GatewayCounts<'a>) -> BTreeMap<u16, Group<'a>> {
    let mut groups: BTreeMap<u16, Group<'a>> = BTreeMap::new();
    for &g in gateways {
        let key = keys::gateway_stats(g.0);
        groups
            .entry(slot(key.as_bytes()))
            .or_insert_with(|| (key.clone(), Vec::new()))
            .1
            .push(g);
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_of_a_group_is_in_the_marker_slot() {
        let gateways = [
            ("24f27fca1ba4", "totalTelegramCount", 2),
            ("24f27fca1ba5", "notProcessed", 1),
            ("24f27fca1ba4", "notProcessed", 1),
        ];
        let groups = group(&gateways);
        let mut seen = 0;
        for (s, (tag, part)) in &groups {
            let marker = format!("iotc:batch:x:{{{tag}}}");
            assert_eq!(slot(marker.as_bytes()), *s);
            for (mac, _, _) in part {
                assert_eq!(slot(keys::gateway_stats(mac).as_bytes()), *s);
                seen += 1;
            }
        }
        assert_eq!(seen, 3);
    }
}
