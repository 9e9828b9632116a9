//! The stream reader against a real Redis: after a failed read, entries Redis delivered to
//! this consumer without the reply arriving are read before any newer entry; a reader taking
//! a partition on learns the de-duplication window before it.

use std::time::Duration;

use iotc_core::keys;
use iotc_core::partition::Layout;
use iotc_engine::lease::Held;
use iotc_engine::stream::{Reader, Settings};

fn settings() -> Settings {
    Settings {
        consumer: "engine-1".into(),
        count: 10,
        block_ms: 100,
        claim_idle_ms: 60_000,
        claim_every: Duration::from_secs(30),
        layout: Layout::new(1, false),
        partitions: Held::fixed(vec![keys::TELEGRAM_STREAM.to_string()]),
    }
}

async fn add(conn: &mut redis::aio::MultiplexedConnection, payload: &str) -> String {
    add_together(conn, &[payload]).await.remove(0)
}

#[tokio::test]
async fn entries_of_a_lost_reply_come_before_newer_ones() {
    let redis = test_support::Redis::start_temp();
    let mut conn = redis.conn().await;
    let dedup = iotc_engine::dedup::Dedup::new(500, iotc_engine::dedup::MAX_KEYS);
    let mut reader = Reader::new(redis.manager().await.into(), settings(), dedup);
    reader.ensure_groups().await.unwrap();

    let a = add(&mut conn, "a").await;
    let first = reader.next_batch().await.unwrap();
    assert_eq!(first.iter().map(|e| &e.id).collect::<Vec<_>>(), [&a]);

    // Redis delivers B to this consumer, but the reply never reaches the reader.
    let b = add(&mut conn, "b").await;
    let _: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg(keys::ENGINE_GROUP)
        .arg("engine-1")
        .arg("STREAMS")
        .arg(keys::TELEGRAM_STREAM)
        .arg(">")
        .query_async(&mut conn)
        .await
        .unwrap();
    let c = add(&mut conn, "c").await;

    // A read fails: Redis refuses the command for a moment.
    let acl = |rule: &'static str| {
        let mut conn = conn.clone();
        async move {
            let _: () = redis::cmd("ACL")
                .arg("SETUSER")
                .arg("default")
                .arg(rule)
                .query_async(&mut conn)
                .await
                .unwrap();
        }
    };
    acl("-xreadgroup").await;
    assert!(reader.next_batch().await.is_err(), "the read must fail");
    acl("+xreadgroup").await;

    // What follows: own pending entries (A, still being handled by the caller, and B), then C.
    let mut order = Vec::new();
    for _ in 0..5 {
        order.extend(reader.next_batch().await.unwrap().into_iter().map(|e| e.id));
        if order.contains(&c) {
            break;
        }
    }
    let at = |id: &String| order.iter().position(|x| x == id);
    assert!(at(&b).is_some(), "B was never read again: {order:?}");
    assert!(at(&b) < at(&c), "B must come before the newer C: {order:?}");
    assert_eq!(
        at(&a),
        Some(0),
        "own pending entries are read from the start: {order:?}"
    );
}

/// A telegram entry (`TelegramEntry`) carrying an RPS frame of sender 002e3d4d, heard by `ap`.
fn telegram(ap: u8, data: u8) -> Vec<u8> {
    let frame = enocean::esp3::encode_frame(
        1,
        &[0xf6, data, 0x00, 0x2e, 0x3d, 0x4d, 0x30],
        &[0x01, 0xff, 0xff, 0xff, 0xff, 0x4c, 0x00],
    );
    iotc_core::bus::TelegramEntry {
        gateway_mac: [2, 0, 0, 0, 0, ap],
        received_ms: 1,
        dbm: -76,
        usb_id: String::new(),
        esp3: frame,
    }
    .encode()
}

async fn add_bytes(conn: &mut redis::aio::MultiplexedConnection, entry: &[u8]) -> String {
    redis::cmd("XADD")
        .arg(keys::TELEGRAM_STREAM)
        .arg("*")
        .arg(iotc_core::bus::FIELD)
        .arg(entry)
        .query_async(conn)
        .await
        .unwrap()
}

/// An engine taking a partition on learns the copies the engine before it handled: the
/// second AP's copy of a telegram the previous holder read and acknowledged is still a copy.
#[tokio::test]
async fn a_new_holder_recalls_the_window_before_it_took_over() {
    let redis = test_support::Redis::start_temp();
    let mut conn = redis.conn().await;
    let dedup = || iotc_engine::dedup::Dedup::new(60_000, iotc_engine::dedup::MAX_KEYS);
    let mut before = Reader::new(redis.manager().await.into(), settings(), dedup());
    before.ensure_groups().await.unwrap();

    // The previous holder reads the first AP's copy (and the engine acknowledges it).
    let first = add_bytes(&mut conn, &telegram(1, 0x50)).await;
    let read = before.next_batch().await.unwrap();
    assert_eq!(read.len(), 1);
    let _: i64 = redis::cmd("XACK")
        .arg(keys::TELEGRAM_STREAM)
        .arg(keys::ENGINE_GROUP)
        .arg(&first)
        .query_async(&mut conn)
        .await
        .unwrap();
    drop(before);

    // The second AP's copy and another telegram arrive; a new engine reads them.
    let copy = add_bytes(&mut conn, &telegram(2, 0x50)).await;
    let other = add_bytes(&mut conn, &telegram(2, 0x70)).await;
    let mut after = Reader::new(redis.manager().await.into(), settings(), dedup());
    let read = after.next_batch().await.unwrap();
    let ids: Vec<&str> = read.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, [copy.as_str(), other.as_str()]);
    let mut verdicts = Vec::new();
    for e in &read {
        let parsed = iotc_core::bus::TelegramEntry::decode(e.payload.as_ref().unwrap()).unwrap();
        verdicts.push(iotc_engine::stream::lock(&after.dedup).is_copy(
            keys::TELEGRAM_STREAM,
            &e.id,
            &parsed.esp3,
        ));
    }
    assert_eq!(
        verdicts,
        [true, false],
        "the copy is known, the other telegram is new"
    );
}

/// The ids of the next batch of the read stage.
async fn next(batches: &mut iotc_engine::pipeline::read::Batches) -> Vec<String> {
    let batch = tokio::time::timeout(Duration::from_secs(10), batches.recv())
        .await
        .expect("a batch")
        .expect("the stage runs");
    batch.into_iter().map(|e| e.id).collect()
}

/// Entries appended in one transaction, so one read returns all or none of them.
async fn add_together(
    conn: &mut redis::aio::MultiplexedConnection,
    payloads: &[&str],
) -> Vec<String> {
    let mut pipe = redis::pipe();
    pipe.atomic();
    for payload in payloads {
        pipe.cmd("XADD")
            .arg(keys::TELEGRAM_STREAM)
            .arg("*")
            .arg(iotc_core::bus::FIELD)
            .arg(payload);
    }
    pipe.query_async(conn).await.unwrap()
}

/// Entries delivered to the engine's consumer and not yet acknowledged.
async fn pending(conn: &mut redis::aio::MultiplexedConnection) -> usize {
    let summary: redis::Value = redis::cmd("XPENDING")
        .arg(keys::TELEGRAM_STREAM)
        .arg(keys::ENGINE_GROUP)
        .query_async(conn)
        .await
        .unwrap();
    match summary {
        redis::Value::Array(parts) => match parts.first() {
            Some(redis::Value::Int(n)) => *n as usize,
            other => panic!("XPENDING count: {other:?}"),
        },
        other => panic!("XPENDING: {other:?}"),
    }
}

#[tokio::test]
async fn the_read_stage_reads_ahead_and_keeps_the_order() {
    let redis = test_support::Redis::start_temp();
    let mut conn = redis.conn().await;
    let dedup = iotc_engine::dedup::Dedup::new(500, iotc_engine::dedup::MAX_KEYS);
    let mut reader = Reader::new(redis.manager().await.into(), settings(), dedup);
    reader.ensure_groups().await.unwrap();
    let mut ids = Vec::new();
    for i in 0..50 {
        ids.push(add(&mut conn, &format!("t{i}")).await);
    }
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let (mut batches, task) = iotc_engine::pipeline::read::spawn(reader, shutdown);

    // Nothing taken yet: one batch waits in the channel, the next is read and held.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let count = settings().count;
    while pending(&mut conn).await < 2 * count && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        pending(&mut conn).await,
        (1 + iotc_engine::pipeline::read::READ_AHEAD) * count,
        "read ahead by one batch and the one held, no more"
    );

    let mut got = Vec::new();
    while got.len() < ids.len() {
        got.extend(next(&mut batches).await);
        batches.prepared();
    }
    assert_eq!(got, ids, "every entry once, in stream order");

    // No backlog: after a batch smaller than the read size, the next read waits until the
    // prepare stage is done with it, so entries gather instead of coming one by one.
    let before = pending(&mut conn).await;
    let small = add_together(&mut conn, &["s0", "s1", "s2"]).await;
    let batch = loop {
        let b = next(&mut batches).await;
        if !b.is_empty() {
            break b;
        }
        batches.prepared();
    };
    assert_eq!(batch, small);
    let later = add_together(&mut conn, &["s3", "s4", "s5"]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        pending(&mut conn).await,
        before + 3,
        "nothing read while the small batch is being prepared"
    );
    batches.prepared();
    let mut got = Vec::new();
    while got.len() < later.len() {
        got.extend(next(&mut batches).await);
        batches.prepared();
    }
    assert_eq!(got, later);

    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("the stage stops on shutdown")
        .unwrap();
}
