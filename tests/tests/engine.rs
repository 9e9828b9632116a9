//! The engine alone against real redis-server and mosquitto: stream entries are XADDed the
//! way the ingress writes them, the published MQTT messages and the Redis counters are
//! checked.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use iotc_core::keys;
use iotc_e2e::{EngineProc, Mosquitto, Redis, Subscriber, radio, stream, temp_dir};
use redis::AsyncCommands;
use serde_json::{Value, json};

const MAC: [u8; 6] = [0x24, 0xf2, 0x7f, 0xca, 0x1b, 0xa4];
const MAC_HEX: &str = "24f27fca1ba4";
const WAIT: Duration = Duration::from_secs(15);

async fn onboard(redis: &mut redis::aio::MultiplexedConnection, device: Value) {
    let src = device["sourceEurid"].as_str().unwrap().to_string();
    let field = keys::device_field(&src, "ffffffff");
    let () = redis
        .hset(keys::DEVICES, field, device.to_string())
        .await
        .unwrap();
}

async fn stats(redis: &mut redis::aio::MultiplexedConnection, key: &str) -> HashMap<String, i64> {
    let raw: HashMap<String, String> = redis.hgetall(key).await.unwrap();
    raw.into_iter()
        .map(|(k, v)| (k, v.parse().unwrap_or(-1)))
        .collect()
}

async fn pending(redis: &mut redis::aio::MultiplexedConnection, stream: &str) -> i64 {
    let reply: Vec<redis::Value> = redis::cmd("XPENDING")
        .arg(stream)
        .arg(keys::ENGINE_GROUP)
        .query_async(redis)
        .await
        .unwrap();
    match &reply[0] {
        redis::Value::Int(n) => *n,
        other => panic!("XPENDING count: {other:?}"),
    }
}

fn events(msgs: &[iotc_e2e::Received], code: &str) -> usize {
    msgs.iter()
        .filter(|m| m.topic.starts_with("sensor/") && m.topic.ends_with("/meta/event"))
        .filter(|m| {
            let j = m.json();
            ["security", "health", "transcoding"].iter().any(|kind| {
                j["meta"]["events"][kind]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|e| e["code"] == code))
            })
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decodes_counts_publishes_and_acknowledges() {
    let dir = temp_dir();
    let redis = Redis::start(dir.path());
    let mqtt = Mosquitto::start(dir.path());
    let mut r = redis.conn().await;

    let sensor = 0x01a0_b0c0;
    onboard(
        &mut r,
        json!({"sourceEurid": "01A0B0C0", "friendlyID": "Room 221 temperature",
        "location": "Level 2", "eep": "A5-02-05", "customTag": "e2e"}),
    )
    .await;
    onboard(
        &mut r,
        json!({"sourceEurid": "01a0b0c1", "friendlyID": "switched off",
        "eep": "A5-02-05", "activeFlag": false}),
    )
    .await;
    onboard(
        &mut r,
        json!({"sourceEurid": "01a0b0c2", "friendlyID": "odd profile",
        "eep": "A5-FF-7F"}),
    )
    .await;
    onboard(
        &mut r,
        json!({"sourceEurid": "01a0b0c3", "friendlyID": "contact",
        "eep": "D5-00-01"}),
    )
    .await;

    // Most-recent lists as an earlier release kept them: gone with the rings' first messages.
    let old_lists = [
        keys::device_recent_telemetry_list("01a0b0c0"),
        keys::device_recent_signal_list("01a0b0c0"),
    ];
    for list in &old_lists {
        let () = r.lpush(list, r#"{"old":true}"#).await.unwrap();
    }

    let sub = Subscriber::start(mqtt.port, "#").await;
    let engine = EngineProc::start(dir.path(), &redis, &mqtt, &[]).await;

    let t0 = iotc_e2e::now_s() * 1000;
    let temperature = radio::eep_frame("A5-02-05", &[("TMP", 21.5)], sensor, -64);
    let signal = radio::frame(&radio::telegram(0xD0, vec![0x06, 0x38], sensor, 0x80, -64));
    let teach_in = radio::frame(&radio::telegram(
        0xA5,
        vec![0x08, 0x28, 0x46, 0x80],
        sensor,
        0,
        -60,
    ));
    let unknown = radio::eep_frame("A5-02-05", &[("TMP", 10.0)], 0x0bad_0001, -80);
    let mut broken = temperature.clone();
    *broken.last_mut().unwrap() ^= 0xFF;
    let inactive = radio::eep_frame("A5-02-05", &[("TMP", 10.0)], 0x01a0_b0c1, -70);
    let odd = radio::eep_frame("A5-02-05", &[("TMP", 10.0)], 0x01a0_b0c2, -70);
    let wrong_rorg = radio::eep_frame("A5-02-05", &[("TMP", 10.0)], 0x01a0_b0c3, -70);
    let frames = [
        temperature,
        signal,
        teach_in,
        unknown,
        broken,
        inactive,
        odd,
        wrong_rorg,
    ];
    let entries: Vec<_> = frames
        .into_iter()
        .enumerate()
        .map(|(i, f)| stream::entry(MAC, t0 + i as u64, f))
        .collect();
    stream::add(&mut r, &entries).await;

    let telemetry_topic = "sensor/01a0b0c0/telemetry";
    let got = sub.wait_for(telemetry_topic, 2, WAIT).await;
    assert_eq!(
        got.len(),
        2,
        "telemetry of the data and the signal telegram"
    );
    let data = got[0].json();
    assert_eq!(
        data["sensor"],
        json!({"friendlyID": "Room 221 temperature", "id": "01a0b0c0", "location": "Level 2",
               "eep": "a5-02-05", "customTag": "e2e"})
    );
    let fields = data["telemetry"]["data"].as_array().unwrap();
    let temp = fields
        .iter()
        .find(|f| f["key"] == "temperature")
        .expect("temperature");
    assert!(
        (temp["value"].as_f64().unwrap() - 21.5).abs() < 0.2,
        "{temp}"
    );
    assert_eq!(temp["unit"], "°C");
    assert_eq!(data["telemetry"]["signal"], json!([]));
    let raw = &data["raw"];
    assert_eq!(raw["sender"], "01a0b0c0");
    assert_eq!(raw["destination"], "ffffffff");
    assert_eq!(raw["rssi"], -64);
    assert_eq!(raw["subTelNum"], 1);
    assert_eq!(raw["securityLevel"], 0);
    assert_eq!(raw["timestamp"], (t0 / 1000).to_string());
    assert!(raw["data"].as_str().unwrap().starts_with("a5"));
    assert_eq!(raw["subtelegrams"], json!([]));
    let meta = &data["telemetry"]["meta"]["stats"][0];
    assert_eq!(meta["totalTelegramCount"], 1);
    assert_eq!(meta["succesfullyProcessed"], 1);
    assert_eq!(meta["notProcessed"], 0);

    let sig = got[1].json();
    assert_eq!(sig["telemetry"]["data"], json!([]));
    assert_eq!(sig["raw"]["data"], "d00638");
    assert_eq!(sig["raw"]["status"], 128);
    let signal = sig["telemetry"]["signal"].as_array().unwrap();
    assert_eq!(signal[0]["key"], "signalIdentifier");
    assert!(
        signal
            .iter()
            .any(|f| f["key"] == "energy" && f["value"] == 56.0),
        "{sig}"
    );
    assert_eq!(
        sig["telemetry"]["meta"]["stats"][0]["totalTelegramCount"],
        2
    );

    // Events: first-time send once per device that sent, EEP errors where IoTC has them.
    assert!(
        sub.wait_until(WAIT, |m| {
            events(m, "EEP_NOT_FOUND_ERROR") == 1 && events(m, "EEP_DECODE_ERROR") == 1
        })
        .await,
        "EEP events: {:?}",
        sub.all().iter().map(|m| &m.topic).collect::<Vec<_>>()
    );
    let ev = sub.on("sensor/01a0b0c2/meta/event");
    assert!(
        ev.iter()
            .any(|m| m.json()["meta"]["events"]["transcoding"][0]["code"] == "EEP_NOT_FOUND_ERROR")
    );
    let first = sub.on("sensor/01a0b0c0/meta/event");
    assert_eq!(events(&first, "FIRST_TIME_SEND"), 1);
    let first = first[0].json();
    assert_eq!(
        first["meta"]["events"]["health"][0]["message"],
        "First time send of device with id=01a0b0c0."
    );
    assert!(
        first["meta"]["stats"]["timestamp"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .is_ok()
    );
    assert!(
        sub.on("sensor/0bad0001/telemetry").is_empty(),
        "unknown device published"
    );
    assert!(
        sub.on("sensor/01a0b0c1/telemetry").is_empty(),
        "inactive device published"
    );

    // A second data telegram: counted on, no second FIRST_TIME_SEND.
    let again = radio::eep_frame("A5-02-05", &[("TMP", 30.0)], sensor, -60);
    stream::add(&mut r, &[stream::entry(MAC, t0 + 100, again)]).await;
    let got = sub.wait_for(telemetry_topic, 3, WAIT).await;
    assert_eq!(got.len(), 3);
    let meta = &got[2].json()["telemetry"]["meta"]["stats"][0];
    assert_eq!(
        meta["totalTelegramCount"], 4,
        "data, signal, teach-in, data"
    );
    assert_eq!(meta["succesfullyProcessed"], 3);
    assert_eq!(meta["notProcessed"], 1, "the teach-in");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        events(&sub.on("sensor/01a0b0c0/meta/event"), "FIRST_TIME_SEND"),
        1
    );

    // Counters in Redis.
    let dev = stats(&mut r, &keys::device_stats("01a0b0c0")).await;
    assert_eq!(dev["totalTelegramCount"], 4);
    assert_eq!(dev["succesfullyProcessed"], 3);
    assert_eq!(dev["notProcessed"], 1);
    assert!(dev["lastSeen"] >= (t0 / 1000) as i64);
    let inactive = stats(&mut r, &keys::device_stats("01a0b0c1")).await;
    assert_eq!(inactive["notProcessed"], 1);
    assert!(
        stats(&mut r, &keys::device_stats("0bad0001"))
            .await
            .is_empty()
    );
    let gw = stats(&mut r, &keys::gateway_stats(MAC_HEX)).await;
    assert_eq!(gw["succesfullyProcessed"], 3);
    // teach-in, unknown device, broken frame, inactive device, unknown EEP, wrong R-ORG.
    assert_eq!(gw["notProcessed"], 6);

    // Most recent messages, newest first; everything acknowledged.
    let ring: Vec<String> = r
        .hvals(keys::device_recent_telemetry("01a0b0c0"))
        .await
        .unwrap();
    let recent = iotc_core::recent::newest_first(ring);
    assert_eq!(recent.len(), 2);
    let newest: Value = serde_json::from_str(&recent[0]).unwrap();
    assert_eq!(newest["raw"]["uuid"], got[2].json()["raw"]["uuid"]);
    let signals: Vec<String> = r
        .hvals(keys::device_recent_signal("01a0b0c0"))
        .await
        .unwrap();
    assert_eq!(signals.len(), 1);
    let old_left: usize = r.exists(&old_lists).await.unwrap();
    assert_eq!(old_left, 0, "the lists of an earlier release are removed");
    assert_eq!(pending(&mut r, keys::TELEGRAM_STREAM).await, 0);

    // A gateway event goes out as it came in.
    let gw_event = json!({"gateway_info": {"mac": MAC_HEX, "softwareVersion": "8.8.0.0",
        "hardwareDescriptor": "AP-505"}, "stats": {"timestamp": "1639039720"},
        "usb_info": [{"usb_identifier": "ENOCEAN_USB:deb480d77718bbbe5253896b9300acfd",
                      "usb_health": "healthy"}]});
    let _: String = r
        .xadd(
            keys::GATEWAY_EVENT_STREAM,
            "*",
            &[("j", gw_event.to_string())],
        )
        .await
        .unwrap();
    let got = sub
        .wait_for(&format!("gateway/{MAC_HEX}/meta/event"), 1, WAIT)
        .await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].json(), gw_event);

    // Heartbeats and metrics.
    let hb: String = r.get(keys::heartbeat("engine")).await.unwrap();
    let hb: Value = serde_json::from_str(&hb).unwrap();
    assert_eq!(hb["status"], "running");
    let mut mqtt_hb = String::new();
    for _ in 0..30 {
        mqtt_hb = r.get(keys::heartbeat("mqtt")).await.unwrap();
        if mqtt_hb.contains("\"running\"") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(mqtt_hb.contains("\"running\""), "{mqtt_hb}");
    let (code, metrics) = engine.get("/metrics").await;
    assert_eq!(code, 200);
    assert!(metrics.contains("iotc_engine_telegrams_total"), "{metrics}");
    assert_eq!(engine.get("/healthz").await.0, 200);
}

/// Redis, mosquitto and an engine with default settings, a connection, and a subscriber to
/// `sensor/#`. The processes stop when the first part is dropped.
async fn engine_alone() -> (
    (EngineProc, Mosquitto, Redis, tempfile::TempDir),
    redis::aio::MultiplexedConnection,
    Subscriber,
) {
    let dir = temp_dir();
    let redis = Redis::start(dir.path());
    let mqtt = Mosquitto::start(dir.path());
    let r = redis.conn().await;
    let sub = Subscriber::start(mqtt.port, "sensor/#").await;
    let engine = EngineProc::start(dir.path(), &redis, &mqtt, &[]).await;
    ((engine, mqtt, redis, dir), r, sub)
}

/// A device onboarded after the engine started is used at once (DEVICES_CHANGED).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_changes_take_effect_at_once() {
    let (_parts, mut r, sub) = engine_alone().await;

    let sensor = 0x0190_0001;
    let frame = |t: f64| radio::eep_frame("A5-02-05", &[("TMP", t)], sensor, -60);
    let t0 = iotc_e2e::now_s() * 1000;
    stream::add(&mut r, &[stream::entry(MAC, t0, frame(5.0))]).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        sub.on("sensor/01900001/telemetry").is_empty(),
        "not onboarded yet"
    );

    onboard(
        &mut r,
        json!({"sourceEurid": "01900001", "friendlyID": "late", "eep": "A5-02-05"}),
    )
    .await;
    let _: i64 = r
        .publish(keys::DEVICES_CHANGED, "01900001:ffffffff")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    stream::add(&mut r, &[stream::entry(MAC, t0 + 1, frame(6.0))]).await;
    assert_eq!(
        sub.wait_for("sensor/01900001/telemetry", 1, WAIT)
            .await
            .len(),
        1
    );

    let _: i64 = r.hdel(keys::DEVICES, "01900001:ffffffff").await.unwrap();
    let _: i64 = r.publish(keys::DEVICES_CHANGED, "*").await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    stream::add(&mut r, &[stream::entry(MAC, t0 + 2, frame(7.0))]).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        sub.on("sensor/01900001/telemetry").len(),
        1,
        "removed device still published"
    );
}

/// The engine keeps a device's counters in memory; a device removed (its statistics deleted,
/// as the API does) and onboarded again counts from zero, not from the engine's old copy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_onboarded_again_counts_from_zero() {
    let (_parts, mut r, sub) = engine_alone().await;
    let field = "01900002:ffffffff";
    let device = json!({"sourceEurid": "01900002", "friendlyID": "again", "eep": "A5-02-05"});
    let announce = async |r: &mut redis::aio::MultiplexedConnection| {
        let _: i64 = r.publish(keys::DEVICES_CHANGED, field).await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    onboard(&mut r, device.clone()).await;
    announce(&mut r).await;

    let frame = |t: f64| radio::eep_frame("A5-02-05", &[("TMP", t)], 0x0190_0002, -60);
    let t0 = iotc_e2e::now_s() * 1000;
    let topic = "sensor/01900002/telemetry";
    let total = |m: &iotc_e2e::Received| {
        m.json()["telemetry"]["meta"]["stats"][0]["totalTelegramCount"].clone()
    };
    for (n, t) in [(1, 5.0), (2, 6.0)] {
        stream::add(&mut r, &[stream::entry(MAC, t0 + n, frame(t))]).await;
        let msgs = sub.wait_for(topic, n as usize, WAIT).await;
        assert_eq!(total(&msgs[n as usize - 1]), n);
    }

    let _: i64 = r.hdel(keys::DEVICES, field).await.unwrap();
    let _: i64 = r
        .del(&[
            keys::device_stats("01900002"),
            keys::device_seen("01900002"),
        ])
        .await
        .unwrap();
    announce(&mut r).await;
    onboard(&mut r, device).await;
    announce(&mut r).await;
    stream::add(&mut r, &[stream::entry(MAC, t0 + 3, frame(7.0))]).await;
    let msgs = sub.wait_for(topic, 3, WAIT).await;
    assert_eq!(total(&msgs[2]), 1, "counted from the engine's old copy");
    let dev = stats(&mut r, &keys::device_stats("01900002")).await;
    assert_eq!(dev["totalTelegramCount"], 1);
    assert_eq!(dev["succesfullyProcessed"], 1);
}

/// Unique 4BS data per index: DB3/DB2 carry the index (unused by A5-02-05), DB1 a temperature.
fn numbered_frame(sender: u32, n: u16) -> Vec<u8> {
    let [hi, lo] = n.to_be_bytes();
    radio::frame(&radio::telegram(
        0xA5,
        vec![hi, lo, 0x80, 0x08],
        sender,
        0,
        -60,
    ))
}

fn raw_data_of(msgs: &[iotc_e2e::Received]) -> BTreeSet<String> {
    msgs.iter()
        .map(|m| m.json()["raw"]["data"].as_str().unwrap().to_string())
        .collect()
}

/// Killed mid-stream (SIGKILL) and restarted under another name: the new engine takes the
/// unacknowledged entries over; every telegram is published at least once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_lost_when_the_engine_crashes() {
    let dir = temp_dir();
    let redis = Redis::start(dir.path());
    let mqtt = Mosquitto::start(dir.path());
    let mut r = redis.conn().await;
    let sensor = 0x0190_00aa;
    onboard(
        &mut r,
        json!({"sourceEurid": "019000aa", "friendlyID": "counted", "eep": "A5-02-05"}),
    )
    .await;
    let sub = Subscriber::start(mqtt.port, "sensor/019000aa/telemetry").await;
    let settings = [
        ("IOTC_ENGINE_BATCH", "5"),
        ("IOTC_ENGINE_CLAIM_IDLE_MS", "1000"),
    ];
    let mut engine = EngineProc::start(dir.path(), &redis, &mqtt, &settings).await;

    const N: u16 = 3000;
    let t0 = iotc_e2e::now_s() * 1000;
    let entries: Vec<_> = (0..N)
        .map(|n| stream::entry(MAC, t0 + n as u64, numbered_frame(sensor, n)))
        .collect();
    stream::add(&mut r, &entries).await;
    let topic = "sensor/019000aa/telemetry";
    sub.wait_for(topic, 200, WAIT).await;
    engine.proc.kill();
    let before = sub.on(topic).len();
    assert!(
        before < N as usize,
        "the engine finished before it was killed; raise N"
    );

    let mut restarted = [("IOTC_ENGINE_CONSUMER", "e2e-engine-2")].to_vec();
    restarted.extend(settings);
    let _engine = EngineProc::start(dir.path(), &redis, &mqtt, &restarted).await;
    let all = sub
        .wait_until(Duration::from_secs(60), |m| {
            raw_data_of(m).len() == N as usize
        })
        .await;
    let got = raw_data_of(&sub.on(topic));
    assert!(
        all,
        "{} of {N} telegrams published after the crash",
        got.len()
    );
    // Everything acknowledged once published.
    let deadline = std::time::Instant::now() + WAIT;
    while pending(&mut r, keys::TELEGRAM_STREAM).await > 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(pending(&mut r, keys::TELEGRAM_STREAM).await, 0);
    println!(
        "killed after {before} messages; {} messages for {N} telegrams in all",
        sub.on(topic).len()
    );
}

/// Restarted under the same name, the engine first re-reads its own unacknowledged entries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_under_the_same_name_replays_own_pending_entries() {
    let dir = temp_dir();
    let redis = Redis::start(dir.path());
    let mqtt = Mosquitto::start(dir.path());
    let mut r = redis.conn().await;
    let sensor = 0x0190_00bb;
    onboard(
        &mut r,
        json!({"sourceEurid": "019000bb", "friendlyID": "counted", "eep": "A5-02-05"}),
    )
    .await;
    let sub = Subscriber::start(mqtt.port, "sensor/019000bb/telemetry").await;
    // A claim idle time far beyond the test: only the own-pending path can recover.
    let settings = [
        ("IOTC_ENGINE_BATCH", "5"),
        ("IOTC_ENGINE_CLAIM_IDLE_MS", "3600000"),
    ];
    let mut engine = EngineProc::start(dir.path(), &redis, &mqtt, &settings).await;

    const N: u16 = 2000;
    let t0 = iotc_e2e::now_s() * 1000;
    let entries: Vec<_> = (0..N)
        .map(|n| stream::entry(MAC, t0 + n as u64, numbered_frame(sensor, n)))
        .collect();
    stream::add(&mut r, &entries).await;
    let topic = "sensor/019000bb/telemetry";
    sub.wait_for(topic, 100, WAIT).await;
    engine.proc.kill();
    let _engine = EngineProc::start(dir.path(), &redis, &mqtt, &settings).await;
    let all = sub
        .wait_until(Duration::from_secs(60), |m| {
            raw_data_of(m).len() == N as usize
        })
        .await;
    assert!(
        all,
        "{} of {N} telegrams published",
        raw_data_of(&sub.on(topic)).len()
    );
}

/// Redis restarts empty: the engine reconnects by itself, recreates its group and reloads
/// the devices.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_a_redis_restart() {
    let dir = temp_dir();
    let mut redis = Redis::start(dir.path());
    let mqtt = Mosquitto::start(dir.path());
    let device = json!({"sourceEurid": "019000cc", "friendlyID": "r", "eep": "A5-02-05"});
    let mut r = redis.conn().await;
    onboard(&mut r, device.clone()).await;
    let sub = Subscriber::start(mqtt.port, "sensor/019000cc/telemetry").await;
    let _engine = EngineProc::start(dir.path(), &redis, &mqtt, &[]).await;
    let t0 = iotc_e2e::now_s() * 1000;
    let frame = |n| numbered_frame(0x0190_00cc, n);
    stream::add(&mut r, &[stream::entry(MAC, t0, frame(1))]).await;
    assert_eq!(
        sub.wait_for("sensor/019000cc/telemetry", 1, WAIT)
            .await
            .len(),
        1
    );

    redis.restart();
    let mut r = redis.conn().await;
    onboard(&mut r, device).await;
    // The engine reloads everything when it resubscribes; keep sending until it is back.
    let mut n = 2;
    let ok = loop {
        stream::add(&mut r, &[stream::entry(MAC, t0 + n as u64, frame(n))]).await;
        if sub
            .wait_for("sensor/019000cc/telemetry", 2, Duration::from_secs(1))
            .await
            .len()
            >= 2
        {
            break true;
        }
        n += 1;
        if n > 30 {
            break false;
        }
    };
    assert!(ok, "nothing published after the Redis restart");
}

#[test]
fn bad_configuration_is_one_line_naming_the_variable() {
    let out = std::process::Command::new(iotc_e2e::bin("iotc-engine"))
        .env("IOTC_ENGINE_BATCH", "lots")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("IOTC_ENGINE_BATCH"), "{err}");

    let out = std::process::Command::new(iotc_e2e::bin("iotc-engine"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for var in [
        "REDIS_URL",
        "IOTC_ENGINE_HTTP_PORT",
        "MQTT_CONNSTRING",
        "IOTC_ENGINE_CONSUMER",
    ] {
        assert!(help.contains(var), "--help lacks {var}");
    }
}

/// The broker goes away while telegrams arrive: they stay unacknowledged until the broker is
/// back and confirmed them; every one is published.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_lost_while_the_broker_is_down() {
    let dir = temp_dir();
    let redis = Redis::start(dir.path());
    let mut mqtt = Mosquitto::start_persistent(dir.path());
    let mut r = redis.conn().await;
    let sensor = 0x0190_00dd;
    onboard(
        &mut r,
        json!({"sourceEurid": "019000dd", "friendlyID": "b", "eep": "A5-02-05"}),
    )
    .await;
    let topic = "sensor/019000dd/telemetry";
    let sub = Subscriber::start_persistent(mqtt.port, topic).await;
    let settings = [("MQTT_PUBLISH_TIMEOUT", "2")];
    let _engine = EngineProc::start(dir.path(), &redis, &mqtt, &settings).await;
    let t0 = iotc_e2e::now_s() * 1000;
    stream::add(&mut r, &[stream::entry(MAC, t0, numbered_frame(sensor, 0))]).await;
    assert_eq!(sub.wait_for(topic, 1, WAIT).await.len(), 1);

    mqtt.stop();
    const N: u16 = 50;
    let entries: Vec<_> = (1..=N)
        .map(|n| stream::entry(MAC, t0 + n as u64, numbered_frame(sensor, n)))
        .collect();
    stream::add(&mut r, &entries).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        pending(&mut r, keys::TELEGRAM_STREAM).await > 0,
        "entries acknowledged without a broker"
    );

    mqtt.start_again();
    let all = sub
        .wait_until(Duration::from_secs(60), |m| {
            raw_data_of(m).len() == N as usize + 1
        })
        .await;
    assert!(
        all,
        "{} of {} telegrams published",
        raw_data_of(&sub.on(topic)).len(),
        N + 1
    );
    let deadline = std::time::Instant::now() + WAIT;
    while pending(&mut r, keys::TELEGRAM_STREAM).await > 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(pending(&mut r, keys::TELEGRAM_STREAM).await, 0);
}
