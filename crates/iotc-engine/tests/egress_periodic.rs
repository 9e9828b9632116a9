//! Periodic messages from Redis state: sensor and gateway stats, system health, retained
//! device metadata; real redis-server and mosquitto.

mod egress_common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use egress_common::*;
use iotc_core::keys;
use iotc_engine::periodic::spawn_periodic;
use redis::AsyncCommands;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(10);
const ID: &str = "a1b2c3d4";
const MAC: &str = "24f27fca1ba4";

async fn seed(redis: &mut redis::aio::ConnectionManager) {
    let device = json!({"sourceEurid": ID, "friendlyID": "Room Panel 02", "location": "Level 2 / Room 221",
        "eep": "A5-04-01", "AESKey": "3a0c1b30b0a822a17a28fd01d77abdae", "slf": "f3", "customTag": "t1"});
    let _: () = redis
        .hset(
            keys::DEVICES,
            keys::device_field(ID, "ffffffff"),
            device.to_string(),
        )
        .await
        .unwrap();
    let _: () = redis
        .hset_multiple(
            keys::device_stats(ID),
            &[
                (keys::stats::TOTAL, "12"),
                (keys::stats::OK, "10"),
                (keys::stats::NOT_PROCESSED, "2"),
                (keys::stats::LAST_SEEN, "1652865933"),
            ],
        )
        .await
        .unwrap();
    let gateway = json!({"mac": MAC, "hardwareDescriptor": "AP-305", "softwareVersion": "8.7.1.0",
        "lastSeen": 1652865900, "healthTimestamp": 1652865933, "apStatus": "healthy", "usb": []});
    let _: () = redis
        .hset(keys::GATEWAYS, MAC, gateway.to_string())
        .await
        .unwrap();
    let _: () = redis
        .hset_multiple(
            keys::gateway_stats(MAC),
            &[
                (keys::stats::TOTAL, "40"),
                (keys::stats::LAST_SEEN, "1652865950"),
            ],
        )
        .await
        .unwrap();
    // 10 telegrams into a stream bounded to 5 before any engine read: 5 are lost to trimming.
    let _: () = redis::cmd("XGROUP")
        .arg(&[
            "CREATE",
            keys::TELEGRAM_STREAM,
            keys::ENGINE_GROUP,
            "$",
            "MKSTREAM",
        ])
        .query_async(redis)
        .await
        .unwrap();
    for n in 0..10 {
        let _: String = redis::cmd("XADD")
            .arg(&[keys::TELEGRAM_STREAM, "MAXLEN", "5", "*", "t"])
            .arg(n)
            .query_async(redis)
            .await
            .unwrap();
    }
    let beat = json!({"status": "running", "timestamp": 1}).to_string();
    let _: () = redis.set(keys::heartbeat("ingress"), &beat).await.unwrap();
    let _: () = redis.set(keys::heartbeat("engine"), &beat).await.unwrap();
}

/// The first message on each of `topics`, whatever order they come in.
async fn first_on_each(sub: &mut Subscriber, topics: &[String]) -> HashMap<String, Received> {
    let mut got = HashMap::new();
    let until = Instant::now() + WAIT;
    while got.len() < topics.len() {
        let left = until.saturating_duration_since(Instant::now());
        let m = sub
            .next(left)
            .await
            .unwrap_or_else(|| panic!("only {:?} arrived", got.keys()));
        if topics.contains(&m.topic) {
            got.entry(m.topic.clone()).or_insert(m);
        }
    }
    got
}

fn json_of(m: &Received) -> Value {
    serde_json::from_slice(&m.payload).expect("JSON payload")
}

#[tokio::test]
async fn stats_health_and_metadata_arrive_in_iotc_shape() {
    let redis_server = Redis::start();
    let broker =
        Mosquitto::start(|_, port| format!("listener {port} 127.0.0.1\nallow_anonymous true\n"));
    let mut redis = redis::Client::open(redis_server.url())
        .unwrap()
        .get_connection_manager()
        .await
        .unwrap();
    seed(&mut redis).await;
    let mut sub = Subscriber::start(broker.sub_port, "#", false).await;
    let conn = format!("127.0.0.1:{}", broker.port);
    let args = egress_args(&[
        "--mqtt-connstring",
        &conn,
        "--sensor-stats-interval",
        "1",
        "--gateway-stats-interval",
        "1",
        "--health-publish-interval",
        "1",
        "--sensor-info-interval",
        "1",
        // The seeded gateway reported in 2022: not `offline` for this test.
        "--gateway-timeout-seconds",
        "4000000000",
    ]);
    let egress = Arc::new(iotc_engine::egress::Egress::start(&args).await.unwrap());
    egress
        .counters()
        .processed
        .fetch_add(7, std::sync::atomic::Ordering::Relaxed);
    let periodic = spawn_periodic(egress.clone(), redis.clone().into(), &args);

    let (stats_t, gw_t, info_t) = (
        format!("sensor/{ID}/meta/stats"),
        format!("gateway/{MAC}/meta/stats"),
        format!("sensor/{ID}/meta/info"),
    );
    let wanted = [
        stats_t.clone(),
        gw_t.clone(),
        info_t.clone(),
        "system/health".into(),
    ];
    let first = first_on_each(&mut sub, &wanted).await;
    let stats = &first[&stats_t];
    assert_eq!(
        json_of(stats),
        json!({"sensor": {"friendlyID": "Room Panel 02", "id": ID, "location": "Level 2 / Room 221",
                          "eep": "a5-04-01", "customTag": "t1"},
               "meta": {"stats": {"lastSeen": "1652865933", "notProcessed": 2,
                                  "succesfullyProcessed": 10, "totalTelegramCount": 12}}})
    );

    let gw = &first[&gw_t];
    assert_eq!(
        json_of(gw),
        json!({"gateway_info": {"mac": MAC, "softwareVersion": "8.7.1.0", "hardwareDescriptor": "AP-305"},
               "stats": {"lastSeen": "1652865950", "notProcessed": 0, "succesfullyProcessed": 0,
                         "totalTelegramCount": 40}})
    );

    let health = json_of(&first["system/health"]);
    assert_eq!(
        health["gateway_info"],
        json!([{"mac": MAC, "status": "healthy", "timestamp": "2022-05-18T09:25:33Z"}])
    );
    assert_eq!(
        health["system_health"],
        json!({"redis": "running", "ingress": "running", "api": "down", "mqtt": "running", "integration": "running"})
    );
    assert_eq!(health["engine"]["processed"], 7);
    assert_eq!(
        health["stream"],
        json!({"length": 5, "lag": 5, "trimmedUnread": 5})
    );
    assert!(health["engine"]["memoryRss"].as_u64().unwrap() > 1 << 20);
    assert!(health["engine"]["uptime"].is_u64());

    let info = &first[&info_t];
    // Kept by the broker for subscribers that come later.
    let mut late = Subscriber::start(broker.sub_port, "sensor/+/meta/info", false).await;
    let kept = late.next(WAIT).await.expect("retained metadata");
    assert!(kept.retain);
    assert_eq!(kept.payload, info.payload);
    assert_eq!(json_of(info)["sensor"]["friendlyID"], "Room Panel 02");
    assert!(
        !String::from_utf8_lossy(&info.payload).contains("3a0c1b30"),
        "no key published"
    );

    // Periodic: the next sensor stats come about one interval later, not in a burst.
    let t0 = Instant::now();
    sub.next_on(&format!("sensor/{ID}/meta/stats"), WAIT)
        .await
        .expect("again");
    let t1 = Instant::now();
    sub.next_on(&format!("sensor/{ID}/meta/stats"), WAIT)
        .await
        .expect("and again");
    let gap = t1.elapsed();
    println!("sensor stats: {:?} then {gap:?} apart", t1 - t0);
    assert!(
        gap >= Duration::from_millis(500),
        "one interval apart, got {gap:?}"
    );

    // Metadata is published on change only; a removed device's retained metadata is cleared.
    let _: () = redis
        .hdel(keys::DEVICES, keys::device_field(ID, "ffffffff"))
        .await
        .unwrap();
    let cleared = sub
        .next_on(&format!("sensor/{ID}/meta/info"), WAIT)
        .await
        .expect("cleared");
    assert!(cleared.payload.is_empty());
    periodic.abort();
    let mut late = Subscriber::start(broker.sub_port, "sensor/+/meta/info", false).await;
    assert_eq!(
        late.next(Duration::from_secs(1)).await,
        None,
        "nothing retained any more"
    );
}

#[tokio::test]
async fn intervals_of_zero_switch_reports_off() {
    let redis_server = Redis::start();
    let broker =
        Mosquitto::start(|_, port| format!("listener {port} 127.0.0.1\nallow_anonymous true\n"));
    let mut redis = redis::Client::open(redis_server.url())
        .unwrap()
        .get_connection_manager()
        .await
        .unwrap();
    seed(&mut redis).await;
    let mut sub = Subscriber::start(broker.sub_port, "#", false).await;
    let conn = format!("127.0.0.1:{}", broker.port);
    let args = egress_args(&[
        "--mqtt-connstring",
        &conn,
        "--health-publish-interval",
        "0",
        "--sensor-info-interval",
        "0",
        "--gateway-stats-interval",
        "1",
    ]);
    let egress = Arc::new(iotc_engine::egress::Egress::start(&args).await.unwrap());
    let _periodic = spawn_periodic(egress.clone(), redis.into(), &args);
    let mut topics = std::collections::BTreeSet::new();
    let until = Instant::now() + Duration::from_secs(3);
    while let Some(m) = sub
        .next(until.saturating_duration_since(Instant::now()))
        .await
    {
        topics.insert(m.topic);
    }
    let expected: std::collections::BTreeSet<String> = [
        "system/availability".to_string(),
        format!("gateway/{MAC}/meta/stats"),
    ]
    .into();
    assert_eq!(topics, expected);
}
