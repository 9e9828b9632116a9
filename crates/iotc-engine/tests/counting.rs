//! Batch counters against a real redis-server: a counting call that reaches Redis twice
//! (retried after its answer was lost) counts once and answers the same counters; a device
//! the engine holds in memory is then written as absolute values, so a repeated write
//! changes nothing.

mod secure_support;

use std::collections::HashMap;

use iotc_core::keys::{self, stats};
use iotc_engine::counting::{self, Counts};
use iotc_engine::device_counts::{self, DeviceCounts, Outcome};
use redis::AsyncCommands;
use secure_support::Redis;

const A: &str = "0190e2e1";
const B: &str = "0190e2e2";
const GW: &str = "aabbccddeeff";

fn counts() -> Counts<'static> {
    Counts {
        devices: vec![
            (A, Outcome::Telemetry),
            (B, Outcome::NotProcessed),
            (A, Outcome::Telemetry),
        ],
        gateways: vec![(GW, stats::OK, 2), (GW, stats::NOT_PROCESSED, 1)],
    }
}

async fn stats_of(r: &mut redis::aio::ConnectionManager, key: String) -> HashMap<String, i64> {
    let mut all: HashMap<String, i64> = r.hgetall(key).await.unwrap();
    all.remove(stats::LAST_SEEN);
    all
}

#[tokio::test]
async fn a_retried_batch_counts_once() {
    let redis = Redis::start();
    let mut r = redis.manager().await;
    let () = r.set(keys::device_seen(B), 1).await.unwrap();
    let key = counting::batch_key(["1-0", "2-0", "3-0"]);

    let first = counting::count(&mut r, &key, &counts(), 1_700_000_000)
        .await
        .unwrap();
    assert_eq!(first, vec![1, 1, 0, 0, 1, 0, 1, 1, 2, 2, 0, 0]);
    let again = counting::count(&mut r, &key, &counts(), 1_700_000_001)
        .await
        .unwrap();
    // The second run changes nothing and tells the counters as they stand.
    assert_eq!(again, vec![2, 2, 0, 0, 1, 0, 1, 1, 2, 2, 0, 0]);

    let a = stats_of(&mut r, keys::device_stats(A)).await;
    assert_eq!(a[stats::TOTAL], 2);
    assert_eq!(a[stats::OK], 2);
    let b = stats_of(&mut r, keys::device_stats(B)).await;
    assert_eq!(b[stats::TOTAL], 1);
    assert_eq!(b[stats::NOT_PROCESSED], 1);
    let gw = stats_of(&mut r, keys::gateway_stats(GW)).await;
    assert_eq!(gw[stats::OK], 2);
    assert_eq!(gw[stats::NOT_PROCESSED], 1);
    let ttl: i64 = r.ttl(&key).await.unwrap();
    assert!(ttl > 0 && ttl <= counting::BATCH_MARKER_TTL_SECS as i64);

    // Another batch counts again.
    let other = counting::batch_key(["4-0"]);
    let more = Counts {
        devices: vec![(A, Outcome::NotProcessed)],
        gateways: Vec::new(),
    };
    let third = counting::count(&mut r, &other, &more, 1_700_000_002)
        .await
        .unwrap();
    assert_eq!(third, vec![3, 2, 1, 0]);
}

/// A batch of devices in the copy, written twice (as a retry after a lost answer would).
async fn write_known(
    r: &mut redis::aio::ConnectionManager,
    copy: &mut DeviceCounts,
    items: &[(&str, Outcome)],
) -> Vec<u64> {
    let applied = copy.apply(items);
    let mut pipe = redis::pipe();
    device_counts::add_writes(&mut pipe, &applied.writes, 1_700_000_100);
    let () = pipe.query_async(r).await.unwrap();
    let () = pipe.query_async(r).await.unwrap();
    copy.store(&applied.writes);
    applied.items.iter().map(|c| c.total).collect()
}

#[tokio::test]
async fn a_device_in_the_copy_continues_from_the_script_answer() {
    let redis = Redis::start();
    let mut r = redis.manager().await;
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
    let mut copy = DeviceCounts::new(100);
    let first = Counts {
        devices: vec![(A, Outcome::Telemetry)],
        gateways: Vec::new(),
    };
    let key = counting::batch_key(["1-0"]);
    let answer = counting::count(&mut r, &key, &first, 1_700_000_000)
        .await
        .unwrap();
    copy.store(&device_counts::from_script(&first.devices, &answer).writes);
    assert!(copy.knows(A));

    assert_eq!(
        write_known(
            &mut r,
            &mut copy,
            &[(A, Outcome::NotProcessed), (A, Outcome::Telemetry)]
        )
        .await,
        [12, 13]
    );
    let a = stats_of(&mut r, keys::device_stats(A)).await;
    assert_eq!(
        (a[stats::TOTAL], a[stats::OK], a[stats::NOT_PROCESSED]),
        (13, 11, 2)
    );
    let last_seen: u64 = r
        .hget(keys::device_stats(A), stats::LAST_SEEN)
        .await
        .unwrap();
    assert_eq!(last_seen, 1_700_000_100);

    // Forgotten (the device changed, or the partitions): the script counts from Redis again.
    copy.forget(A);
    let () = r
        .hset(keys::device_stats(A), stats::TOTAL, 100)
        .await
        .unwrap();
    let key = counting::batch_key(["2-0"]);
    let answer = counting::count(&mut r, &key, &first, 1_700_000_200)
        .await
        .unwrap();
    assert_eq!(answer[..3], [101, 12, 2]);
}
