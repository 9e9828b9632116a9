//! The live console's feed against a real redis-server: nothing is written while no console
//! watches; once the API's watcher key exists, published messages land in the capped stream
//! with the gateway whose copy was kept.

mod secure_support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use iotc_core::keys;
use iotc_engine::egress::OutMessage;
use iotc_engine::live;
use redis::AsyncCommands;
use redis::streams::StreamRangeReply;
use secure_support::Redis;

const DEVICE: &str = "0190e2e1";
const GATEWAY: &str = "021a1e000001";

fn telemetry(n: u32) -> OutMessage {
    let json = format!(r#"{{"sensor":{{"id":"{DEVICE}"}},"telemetry":{{"n":{n}}}}}"#);
    OutMessage::new(format!("sensor/{DEVICE}/telemetry"), json)
}

fn text(map: &HashMap<String, redis::Value>, field: &str) -> String {
    match &map[field] {
        redis::Value::BulkString(b) => String::from_utf8(b.clone()).unwrap(),
        other => panic!("{field}: {other:?}"),
    }
}

#[tokio::test]
async fn writes_only_while_a_console_watches() {
    let redis = Redis::start();
    let mut r: iotc_core::redis::Redis = redis.manager().await.into();
    let heard = [(DEVICE, GATEWAY)];

    live::after_publish(&r, &[telemetry(0)], heard).await;
    let len: usize = r.xlen(keys::LIVE_STREAM).await.unwrap();
    assert_eq!(len, 0, "written although nobody watches");

    // A console connects: within the check interval the engine starts writing.
    let () = r.set_ex(keys::LIVE_WATCHERS, 1, 30).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut n = 1;
    loop {
        let big = OutMessage::new("big", vec![b'x'; live::PAYLOAD_MAX + 1]);
        let gateway_event = OutMessage::new("gateway/x/meta/event", r#"{"gateway_info":{}}"#);
        let batch = [telemetry(n), big, gateway_event];
        live::after_publish(&r, &batch, heard).await;
        let len: usize = r.xlen(keys::LIVE_STREAM).await.unwrap();
        if len > 0 {
            assert_eq!(len, 2, "the oversized payload is skipped");
            break;
        }
        assert!(Instant::now() < deadline, "never written while watched");
        n += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let entries: StreamRangeReply = r.xrange_all(keys::LIVE_STREAM).await.unwrap();
    let first = &entries.ids[0].map;
    assert_eq!(text(first, "topic"), format!("sensor/{DEVICE}/telemetry"));
    assert_eq!(
        text(first, "payload"),
        format!(r#"{{"sensor":{{"id":"{DEVICE}"}},"telemetry":{{"n":{n}}}}}"#)
    );
    assert_eq!(text(first, "gateway"), GATEWAY);
    assert!(text(first, "time").parse::<u64>().unwrap() > 1_700_000_000_000);
    let second = &entries.ids[1].map;
    assert_eq!(text(second, "topic"), "gateway/x/meta/event");
    assert_eq!(text(second, "gateway"), "", "no device, no gateway");

    // The console left: writing stops once the key is gone and the gate read it again.
    let () = r.del(keys::LIVE_WATCHERS).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut before: usize = r.xlen(keys::LIVE_STREAM).await.unwrap();
    loop {
        live::after_publish(&r, &[telemetry(0)], heard).await;
        let len: usize = r.xlen(keys::LIVE_STREAM).await.unwrap();
        if len == before {
            break;
        }
        before = len;
        assert!(
            Instant::now() < deadline,
            "still written after the console left"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Stays so: a second call within the interval writes nothing either.
    live::after_publish(&r, &[telemetry(0)], heard).await;
    let len: usize = r.xlen(keys::LIVE_STREAM).await.unwrap();
    assert_eq!(len, before);
}
