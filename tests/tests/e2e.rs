//! The whole connector: APs on WebSockets → ingress → Redis → engine → mosquitto, devices
//! onboarded through the API. Every part is the real binary; Redis and the broker are real.

use std::time::Duration;

use futures_util::StreamExt;
use iotc_core::keys;
use iotc_e2e::{Stack, Subscriber, ap, radio};
use redis::AsyncCommands;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

const AP1: [u8; 6] = [0x02, 0x1a, 0x1e, 0x00, 0x00, 0x01];
const AP2: [u8; 6] = [0x02, 0x1a, 0x1e, 0x00, 0x00, 0x02];
const WAIT: Duration = Duration::from_secs(15);

async fn hget(r: &mut redis::aio::MultiplexedConnection, key: &str, field: &str) -> i64 {
    let v: Option<String> = r.hget(key, field).await.unwrap();
    v.and_then(|v| v.parse().ok()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_telegram_heard_by_two_aps_is_published_once() {
    let stack = Stack::start().await;
    let mut r = stack.redis.conn().await;
    let sub = Subscriber::start(stack.mqtt.port, "#").await;

    stack
        .onboard(
            &json!({"sourceEurid": "0190e2e1", "friendlyID": "Room 3 temperature",
            "location": "Floor 1", "eep": "A5-02-05", "customTag": "room-3"}),
        )
        .await;

    let token = stack.ap_token().await;
    let mut ws1 = stack.ap_socket().await;
    let mut ws2 = stack.ap_socket().await;
    let frame = radio::eep_frame("A5-02-05", &[("TMP", 22.0)], 0x0190_e2e1, -61);
    ap::send(&mut ws1, &token, AP1, &[&frame]).await;
    ap::send(&mut ws2, &token, AP2, &[&frame]).await;

    let topic = "sensor/0190e2e1/telemetry";
    let got = sub.wait_for(topic, 1, WAIT).await;
    assert_eq!(got.len(), 1, "telemetry published");
    // Give a duplicate time to show up.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        sub.on(topic).len(),
        1,
        "the second AP's copy was published too"
    );

    let msg = got[0].json();
    assert_eq!(
        msg["sensor"],
        json!({"friendlyID": "Room 3 temperature", "id": "0190e2e1", "location": "Floor 1",
               "eep": "a5-02-05", "customTag": "room-3"})
    );
    let temp = msg["telemetry"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["key"] == "temperature")
        .cloned()
        .expect("temperature");
    assert!(
        (temp["value"].as_f64().unwrap() - 22.0).abs() < 0.2,
        "{temp}"
    );
    assert_eq!(temp["unit"], "°C");
    assert_eq!(msg["raw"]["sender"], "0190e2e1");
    assert_eq!(msg["raw"]["rssi"], -61);
    assert_eq!(
        msg["telemetry"]["meta"]["stats"][0]["totalTelegramCount"],
        1
    );

    let first = sub.on("sensor/0190e2e1/meta/event");
    assert_eq!(first.len(), 1, "FIRST_TIME_SEND once");
    assert_eq!(
        first[0].json()["meta"]["events"]["health"][0]["code"],
        "FIRST_TIME_SEND"
    );

    // Counters: the device once, each AP heard it, one of them delivered it.
    let dev = keys::device_stats("0190e2e1");
    assert_eq!(hget(&mut r, &dev, "totalTelegramCount").await, 1);
    assert_eq!(hget(&mut r, &dev, "succesfullyProcessed").await, 1);
    let (gw1, gw2) = (
        keys::gateway_stats("021a1e000001"),
        keys::gateway_stats("021a1e000002"),
    );
    assert_eq!(hget(&mut r, &gw1, "totalTelegramCount").await, 1);
    assert_eq!(hget(&mut r, &gw2, "totalTelegramCount").await, 1);
    let ok = hget(&mut r, &gw1, "succesfullyProcessed").await
        + hget(&mut r, &gw2, "succesfullyProcessed").await;
    assert_eq!(ok, 1);

    // The same through the API.
    let (status, body) = stack
        .api_get("/devices/metadata/statistics/telegrams?sourceID=0190e2e1&destinationID=ffffffff")
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.to_string().contains("\"totalTelegramCount\":1"),
        "{body}"
    );

    // An unknown device: dropped and counted for the gateway that delivered it.
    let unknown = radio::eep_frame("A5-02-05", &[("TMP", 5.0)], 0x0bad_beef, -70);
    ap::send(&mut ws1, &token, AP1, &[&unknown]).await;
    // A broken frame (CRC): counted by the ingress.
    let mut broken = radio::eep_frame("A5-02-05", &[("TMP", 6.0)], 0x0190_e2e1, -70);
    *broken.last_mut().unwrap() ^= 0x55;
    ap::send(&mut ws1, &token, AP1, &[&broken]).await;
    let deadline = std::time::Instant::now() + WAIT;
    while hget(&mut r, &gw1, "notProcessed").await < 2 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        hget(&mut r, &gw1, "notProcessed").await,
        2,
        "unknown device and broken frame"
    );
    assert!(sub.on("sensor/0badbeef/telemetry").is_empty());
    assert_eq!(
        hget(&mut r, &dev, "totalTelegramCount").await,
        1,
        "broken frame counted for the device"
    );

    // An AP health update becomes IoTC's gateway meta event.
    stack.ap_health(&mut ws2, &token, AP2).await;
    let got = sub
        .wait_for("gateway/021a1e000002/meta/event", 1, WAIT)
        .await;
    assert_eq!(got.len(), 1, "gateway event published");
    let ev = got[0].json();
    assert_eq!(ev["gateway_info"]["mac"], "021a1e000002");
    assert_eq!(ev["gateway_info"]["hardwareDescriptor"], "AP-505");
    assert_eq!(ev["usb_info"][0]["usb_identifier"], ap::STICK);
    assert_eq!(ev["usb_info"][0]["usb_health"], "healthy");
    assert!(
        ev["stats"]["timestamp"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .is_ok()
    );

    // A token the ingress never issued: closed with 1008.
    let mut bad = stack.ap_socket().await;
    ap::send(&mut bad, "not-a-token", AP2, &[&frame]).await;
    let close = tokio::time::timeout(WAIT, async {
        while let Some(msg) = bad.next().await {
            match msg {
                Ok(Message::Close(frame)) => return frame.map(|f| u16::from(f.code)),
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
        None
    })
    .await
    .expect("the ingress closes the socket");
    assert_eq!(close, Some(1008));
}

/// The engine is killed (SIGKILL) while telegrams stream in from an AP and started again:
/// every telegram is still published.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_killed_mid_stream_loses_nothing() {
    let env = [("IOTC_ENGINE_BATCH", "5")];
    let mut stack = Stack::start_with(&env).await;
    let sub = Subscriber::start(stack.mqtt.port, "sensor/0190e2e2/telemetry").await;
    stack
        .onboard(&json!({"sourceEurid": "0190e2e2", "friendlyID": "counted", "eep": "A5-02-05"}))
        .await;
    let token = stack.ap_token().await;
    let mut ws = stack.ap_socket().await;

    // Unique telegrams: DB3/DB2 (unused by A5-02-05) carry a number.
    const N: u16 = 1500;
    let frames: Vec<Vec<u8>> = (0..N)
        .map(|n| {
            let [hi, lo] = n.to_be_bytes();
            let t = radio::telegram(0xA5, vec![hi, lo, 0x80, 0x08], 0x0190_e2e2, 0, -60);
            radio::frame(&t)
        })
        .collect();
    let topic = "sensor/0190e2e2/telemetry";
    let unique = |m: &[iotc_e2e::Received]| {
        m.iter()
            .map(|m| m.json()["raw"]["data"].as_str().unwrap().to_string())
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    };
    let (first, rest) = frames.split_at(N as usize / 2);
    for chunk in first.chunks(10) {
        let refs: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
        ap::send(&mut ws, &token, AP1, &refs).await;
    }
    sub.wait_for(topic, 50, WAIT).await;
    stack.engine.proc.kill();
    let at_kill = sub.on(topic).len();
    println!("engine killed after {at_kill} of {N} messages");
    stack.restart_engine(&env).await;
    for chunk in rest.chunks(10) {
        let refs: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
        ap::send(&mut ws, &token, AP1, &refs).await;
    }
    let all = sub
        .wait_until(Duration::from_secs(90), |m| unique(m) == N as usize)
        .await;
    assert!(all, "{} of {N} telegrams published", unique(&sub.on(topic)));
}
