//! The whole connector under steady load while the MQTT broker is down for 30 s: an AP keeps
//! sending through the ingress, the engine holds what it cannot publish and sends it once the
//! broker is back. Every telegram arrives; none more often than the documented bound (once per
//! connection loss it lived through, plus the original: at most twice here).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use iotc_e2e::{Mosquitto, Received, Stack, Subscriber, ap, radio};
use serde_json::json;

const AP: [u8; 6] = [0x02, 0x1a, 0x1e, 0x00, 0x00, 0x07];
/// Distinct devices, sent to in turn.
const DEVICES: [u32; 5] = [
    0x0190_0b01,
    0x0190_0b02,
    0x0190_0b03,
    0x0190_0b04,
    0x0190_0b05,
];
/// One telegram every 40 ms: 25 telegrams/s.
const PERIOD: Duration = Duration::from_millis(40);
const BEFORE: Duration = Duration::from_secs(3);
const OUTAGE: Duration = Duration::from_secs(30);
const AFTER: Duration = Duration::from_secs(3);

/// A telegram as the engine reports it: `raw.sender`, `raw.data`.
type Key = (String, String);

/// Telegram `n` of `sender`: DB3/DB2 (unused by A5-02-05) carry the number, so every
/// telegram is distinct and the ingress' duplicate filter keeps them all.
fn numbered(sender: u32, n: u16) -> (Key, Vec<u8>) {
    let [hi, lo] = n.to_be_bytes();
    let t = radio::telegram(0xA5, vec![hi, lo, 0x80, 0x08], sender, 0, -60);
    ((t.sender_hex(), t.data_hex()), radio::frame(&t))
}

fn key_of(m: &Received) -> Key {
    let json = m.json();
    let sender = json["raw"]["sender"].as_str().expect("raw.sender");
    assert_eq!(m.topic, format!("sensor/{sender}/telemetry"), "topic");
    let data = json["raw"]["data"].as_str().expect("raw.data");
    (sender.to_string(), data.to_string())
}

fn copies(msgs: &[Received]) -> BTreeMap<Key, usize> {
    let mut counts = BTreeMap::new();
    for m in msgs {
        *counts.entry(key_of(m)).or_insert(0) += 1;
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_telegram_arrives_after_a_broker_outage() {
    // A quick reconnect back-off keeps the test short. Publish calls time out every 7 s, so
    // the engine retries several times while the broker is down (those retries must not add
    // copies), and no timeout falls on the moment the broker returns (30 s), when a retry
    // could legitimately add one more copy.
    let env = [("MQTT_RECONNECT_MAX", "2"), ("MQTT_PUBLISH_TIMEOUT", "7")];
    let mut stack = Stack::start_with(&env).await;
    // A broker that keeps the subscriber's session across the outage, so what the engine
    // publishes while the subscriber reconnects is queued for it, not lost.
    stack.mqtt = Mosquitto::start_persistent(stack.dir.path());
    let sub = Subscriber::start_persistent(stack.mqtt.port, "sensor/+/telemetry").await;
    stack.restart_engine(&env).await;

    for (i, id) in DEVICES.iter().enumerate() {
        stack
            .onboard(&json!({"sourceEurid": format!("{id:08x}"),
                "friendlyID": format!("outage {i}"), "eep": "A5-02-05"}))
            .await;
    }
    let token = stack.ap_token().await;
    let mut ws = stack.ap_socket().await;

    // The AP sends steadily for the whole scenario; the broker goes down meanwhile.
    let sent: Arc<Mutex<Vec<Key>>> = Arc::default();
    let total = BEFORE + OUTAGE + AFTER;
    let sender = {
        let sent = sent.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(PERIOD);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let start = Instant::now();
            let mut n: u32 = 0;
            while start.elapsed() < total {
                tick.tick().await;
                let device = DEVICES[n as usize % DEVICES.len()];
                let (key, frame) = numbered(device, (n / DEVICES.len() as u32) as u16);
                ap::send(&mut ws, &token, AP, &[&frame]).await;
                sent.lock().unwrap().push(key);
                n += 1;
            }
            ws
        })
    };

    tokio::time::sleep(BEFORE).await;
    assert!(!sub.all().is_empty(), "nothing published before the outage");
    stack.mqtt.stop();
    let stopped = sent.lock().unwrap().len();
    tokio::time::sleep(OUTAGE).await;
    stack.mqtt.start_again();
    let restarted = sent.lock().unwrap().len();
    let _ws = sender.await.expect("sender task");

    let sent: BTreeSet<Key> = sent.lock().unwrap().iter().cloned().collect();
    let arrived = sub
        .wait_until(Duration::from_secs(20), |m| {
            let got: BTreeSet<Key> = m.iter().map(key_of).collect();
            sent.is_subset(&got)
        })
        .await;
    // Give late duplicates time to show up before counting.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let received = sub.all();
    let counts = copies(&received);
    let twice = counts.values().filter(|&&c| c == 2).count();
    let most = counts.values().copied().max().unwrap_or(0);
    println!(
        "sent {} telegrams ({} before the outage, {} while the broker was down); \
         received {} messages, {} distinct, {} twice, at most {} copies",
        sent.len(),
        stopped,
        restarted - stopped,
        received.len(),
        counts.len(),
        twice,
        most
    );
    let missing: Vec<&Key> = sent.iter().filter(|k| !counts.contains_key(*k)).collect();
    assert!(
        arrived && missing.is_empty(),
        "{} of {} telegrams missing, e.g. {:?}",
        missing.len(),
        sent.len(),
        missing.iter().take(5).collect::<Vec<_>>()
    );
    let extra: Vec<&Key> = counts.keys().filter(|k| !sent.contains(*k)).collect();
    assert!(extra.is_empty(), "telegrams never sent: {extra:?}");
    assert!(
        most <= 2,
        "a telegram arrived {most} times after one connection loss"
    );
    assert!(
        restarted > stopped,
        "nothing was sent while the broker was down"
    );
}
