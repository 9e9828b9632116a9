//! One bad message does not stall the others: an AP health update with a 300 KB string, whose
//! gateway event is still over the broker's packet limit after the ingress cut it, is put in the
//! dead-letter stream with its reason and acknowledged; the 2,000 telegrams sent right after it
//! all arrive, each exactly once (nothing confirmed is published again).

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::SinkExt;
use iotc_e2e::{Mosquitto, Received, Stack, Subscriber, ap, free_port, radio};
use prost::Message as _;
use redis::AsyncCommands;
use serde_json::json;

const AP: [u8; 6] = [0x02, 0x1a, 0x1e, 0x00, 0x00, 0x0d];
const DEVICES: [u32; 4] = [0x0190_0d01, 0x0190_0d02, 0x0190_0d03, 0x0190_0d04];
const TELEGRAMS: usize = 2000;
/// The broker's limit: telemetry (about 600 bytes) fits, the cut health event does not.
const BROKER_MAX_PACKET: usize = 1500;

/// A health update with a 300 KB USB identifier in three-byte characters, and more sticks
/// (with long identifiers) than the ingress keeps.
fn huge_health(token: &str) -> Vec<u8> {
    let huge = format!("ENOCEAN_USB:{}", "€".repeat(100_000));
    let long = format!("ENOCEAN_USB:{}", "é".repeat(120));
    let usb = std::iter::once(huge)
        .chain(std::iter::repeat_n(long, 11))
        .map(|id| aruba::UsbDevice::new(&id, aruba::HealthStatus::Healthy))
        .collect();
    let health = aruba::ApHealthUpdate {
        ap_status: Some(aruba::HealthStatus::Healthy as i32),
        radio: Vec::new(),
        usb,
    };
    aruba::Telemetry::health(token, ap::reporter(AP), health).encode_to_vec()
}

/// Telegram `n` of a device: DB3/DB2 carry the number so that none is a duplicate.
fn numbered(sender: u32, n: u16) -> ((String, String), Vec<u8>) {
    let [hi, lo] = n.to_be_bytes();
    let t = radio::telegram(0xA5, vec![hi, lo, 0x80, 0x08], sender, 0, -60);
    ((t.sender_hex(), t.data_hex()), radio::frame(&t))
}

fn key_of(m: &Received) -> (String, String) {
    let json = m.json();
    let sender = json["raw"]["sender"].as_str().expect("raw.sender");
    let data = json["raw"]["data"].as_str().expect("raw.data");
    (sender.to_string(), data.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_message_is_dead_lettered_and_the_rest_arrive_once() {
    let env = [("MQTT_VERSION", "5")];
    let mut stack = Stack::start_with(&env).await;
    let port = free_port();
    let conf = format!(
        "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n\
         max_packet_size {BROKER_MAX_PACKET}"
    );
    stack.mqtt = Mosquitto::start_conf(stack.dir.path(), &conf, &[port]);
    stack.restart_engine(&env).await;
    let sub = Subscriber::start(stack.mqtt.port, "#").await;
    for (i, id) in DEVICES.iter().enumerate() {
        stack
            .onboard(&json!({"sourceEurid": format!("{id:08x}"),
                "friendlyID": format!("dead letter {i}"), "eep": "A5-02-05"}))
            .await;
    }
    let token = stack.ap_token().await;
    let mut ws = stack.ap_socket().await;

    let health = huge_health(&token);
    assert!(health.len() > 300_000, "the AP sends a 300 KB string");
    ws.send(tokio_tungstenite::tungstenite::Message::Binary(
        health.into(),
    ))
    .await
    .expect("send health");
    let mut sent = BTreeMap::new();
    for n in 0..TELEGRAMS {
        let device = DEVICES[n % DEVICES.len()];
        let (key, frame) = numbered(device, (n / DEVICES.len()) as u16);
        ap::send(&mut ws, &token, AP, &[&frame]).await;
        sent.insert(key, 0usize);
    }
    assert_eq!(sent.len(), TELEGRAMS);

    let telemetry = |m: &Received| m.topic.ends_with("/telemetry");
    let all_there = sub
        .wait_until(Duration::from_secs(60), |got| {
            got.iter().filter(|m| telemetry(m)).count() >= TELEGRAMS
        })
        .await;
    assert!(
        all_there,
        "telemetry did not all arrive:\n{}",
        stack.engine.proc.log_tail(20)
    );
    // Time for a republished copy to show up before counting.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for m in sub.all().iter().filter(|m| telemetry(m)) {
        *sent.get_mut(&key_of(m)).expect("a telegram that was sent") += 1;
    }
    assert!(
        sent.values().all(|&n| n == 1),
        "every telegram exactly once"
    );

    // The gateway event is not published but kept, with its reason, and acknowledged.
    let gateway_topic = format!("gateway/{}/meta/event", hex::encode(AP));
    assert!(sub.all().iter().all(|m| m.topic != gateway_topic));
    let mut redis = stack.redis.conn().await;
    let dead: redis::streams::StreamRangeReply =
        redis.xrange_all("iotc:dead-letters").await.unwrap();
    assert_eq!(dead.ids.len(), 1, "one dead letter");
    let field = |name: &str| -> String {
        redis::from_redis_value(dead.ids[0].map.get(name).expect(name).clone()).unwrap()
    };
    assert_eq!(field("topic"), gateway_topic);
    assert_eq!(field("egress"), "mqtt");
    assert!(
        field("reason").starts_with("PacketTooLarge"),
        "{}",
        field("reason")
    );
    let size: usize = field("size").parse().unwrap();
    assert!(
        size > BROKER_MAX_PACKET && size < 8 * 1024,
        "cut by the ingress: {size}"
    );
    // The kept payload is the event with the identifiers cut on character boundaries.
    let payload: Vec<u8> =
        redis::from_redis_value(dead.ids[0].map.get("payload").unwrap().clone()).unwrap();
    let event: serde_json::Value = serde_json::from_slice(&payload).expect("valid UTF-8 JSON");
    let id = event["usb_info"][0]["usb_identifier"].as_str().unwrap();
    assert_eq!(
        id,
        format!("ENOCEAN_USB:{}", "€".repeat(81)),
        "cut at 255 bytes"
    );
    assert!(id.ends_with('€'));
    assert_eq!(
        event["usb_info"].as_array().unwrap().len(),
        8,
        "sticks kept per report"
    );
    let pending: redis::streams::StreamPendingReply = redis
        .xpending("iotc:gateway-events", "engine")
        .await
        .unwrap();
    assert_eq!(pending.count(), 0, "the refused event is acknowledged");
    let (_, metrics) = stack.engine.get("/metrics").await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("iotc_engine_dead_letters_total")
                && l.contains("PacketTooLarge")
                && l.ends_with(" 1")),
        "dead letter counted"
    );
}
