//! Batch counters against a real redis-server: gateway increments of a batch that reaches
//! Redis twice (retried after its answer was lost) count once; device counters are read
//! once, then written as absolute values, so a repeated write changes nothing.

mod secure_support;

use std::collections::HashMap;

use iotc_core::keys::{self, stats};
use iotc_engine::counting;
use iotc_engine::device_counts::{self, DeviceCounts};
use redis::AsyncCommands;
use secure_support::Redis;

const A: &str = "0190e2e1";
const B: &str = "0190e2e2";
const GW: &str = "aabbccddeeff";

async fn stats_of(r: &mut redis::aio::ConnectionManager, key: String) -> HashMap<String, i64> {
    let mut all: HashMap<String, i64> = r.hgetall(key).await.unwrap();
    all.remove(stats::LAST_SEEN);
    all
}

#[tokio::test]
async fn a_retried_batch_counts_its_gateways_once() {
    let redis = Redis::start();
    let mut r = redis.manager().await;
    let key = counting::batch_key(["1-0", "2-0", "3-0"]);
    let gateways = [(GW, stats::OK, 2), (GW, stats::NOT_PROCESSED, 1)];

    assert!(counting::count(&mut r, &key, &gateways).await.unwrap());
    // The second run changes nothing.
    assert!(!counting::count(&mut r, &key, &gateways).await.unwrap());
    let gw = stats_of(&mut r, keys::gateway_stats(GW)).await;
    assert_eq!(gw[stats::OK], 2);
    assert_eq!(gw[stats::NOT_PROCESSED], 1);
    let ttl: i64 = r.ttl(&key).await.unwrap();
    assert!(ttl > 0 && ttl <= counting::BATCH_MARKER_TTL_SECS as i64);

    // Another batch counts again.
    let other = counting::batch_key(["4-0"]);
    assert!(
        counting::count(&mut r, &other, &gateways[..1])
            .await
            .unwrap()
    );
    let gw = stats_of(&mut r, keys::gateway_stats(GW)).await;
    assert_eq!(gw[stats::OK], 4);
}

/// One batch as the engine counts it: read the missing devices, apply, write, keep.
async fn count_batch(
    r: &mut redis::aio::ConnectionManager,
    copy: &mut DeviceCounts,
    items: &[(&str, bool)],
) -> Vec<(u64, u64, u64, bool)> {
    let missing = copy.missing(items.iter().map(|(e, _)| *e));
    let loaded = device_counts::load(r, &missing).await.unwrap();
    let applied = copy.apply(items, &loaded);
    let mut pipe = redis::pipe();
    device_counts::add_writes(&mut pipe, &applied.writes, 1_700_000_000);
    // Written twice, as a retry after a lost answer would: absolute values, no change.
    let () = pipe.query_async(r).await.unwrap();
    let () = pipe.query_async(r).await.unwrap();
    copy.store(&applied.writes);
    applied
        .items
        .iter()
        .map(|c| (c.total, c.ok, c.not_processed, c.seen))
        .collect()
}

#[tokio::test]
async fn device_counters_continue_from_redis_and_survive_a_fresh_copy() {
    let redis = Redis::start();
    let mut r = redis.manager().await;
    // Counters an earlier engine (or IoTC's data) left, and B's first-time marker.
    let () = r
        .hset_multiple(
            keys::device_stats(A),
            &[
                (stats::TOTAL, 10),
                (stats::OK, 9),
                (stats::NOT_PROCESSED, 1),
            ],
        )
        .await
        .unwrap();
    let () = r.set(keys::device_seen(B), 1).await.unwrap();

    let mut copy = DeviceCounts::new(100);
    let first = count_batch(&mut r, &mut copy, &[(A, true), (B, false), (A, false)]).await;
    assert_eq!(
        first,
        [(11, 10, 1, false), (1, 0, 1, true), (12, 10, 2, false)]
    );
    let a = stats_of(&mut r, keys::device_stats(A)).await;
    assert_eq!(
        (a[stats::TOTAL], a[stats::OK], a[stats::NOT_PROCESSED]),
        (12, 10, 2)
    );
    let last_seen: u64 = r
        .hget(keys::device_stats(A), stats::LAST_SEEN)
        .await
        .unwrap();
    assert_eq!(last_seen, 1_700_000_000);

    // Nothing read again for known devices: a change made behind the copy's back is not seen
    // (only this engine counts its partitions' devices)...
    let () = r
        .hset(keys::device_stats(B), stats::TOTAL, 100)
        .await
        .unwrap();
    let second = count_batch(&mut r, &mut copy, &[(B, true)]).await;
    assert_eq!(second, [(2, 1, 1, true)]);
    // ...until the copy is dropped (partitions changed, device changed): then Redis counts.
    copy.forget(B);
    let () = r
        .hset(keys::device_stats(B), stats::TOTAL, 100)
        .await
        .unwrap();
    let third = count_batch(&mut r, &mut copy, &[(B, true)]).await;
    assert_eq!(third, [(101, 2, 1, true)]);
    let b = stats_of(&mut r, keys::device_stats(B)).await;
    assert_eq!(b[stats::TOTAL], 101);
}
