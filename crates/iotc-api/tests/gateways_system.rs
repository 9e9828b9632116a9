//! `/gateways`, its statistics and health, and `/system/health`, from what ingress and the
//! engine write to Redis.

mod common;

use common::Api;
use iotc_core::keys;
use iotc_core::model::{GatewayRecord, UsbHealth};
use redis::AsyncCommands;
use serde_json::json;

async fn seed_gateways(api: &Api, now: u64) {
    let mut conn = api.redis.conn().await;
    let records = [
        GatewayRecord {
            mac: "d01546c204a2".into(),
            hardware_descriptor: "AP-305".into(),
            software_version: "8.7.1.1-8.7.1.1".into(),
            last_seen: now - 10,
            health_timestamp: now - 20,
            ap_status: String::new(),
            usb: vec![UsbHealth {
                usb_identifier: "ENOCEAN_USB:deb480d77718bbbe5253896b9300acfd".into(),
                usb_health: "healthy".into(),
            }],
        },
        GatewayRecord {
            mac: "24f27f551bf4".into(),
            hardware_descriptor: "AP-305".into(),
            software_version: "8.7.1.0-8.7.1.0".into(),
            last_seen: now - 4000,
            ..Default::default()
        },
    ];
    for r in &records {
        conn.hset::<_, _, _, ()>(keys::GATEWAYS, &r.mac, serde_json::to_string(r).unwrap())
            .await
            .unwrap();
    }
    conn.hset::<_, _, _, ()>(keys::GATEWAYS, "ffffffffffff", "{not json")
        .await
        .unwrap();
    let stats = keys::gateway_stats("d01546c204a2");
    let fields = [
        ("totalTelegramCount", "78662"),
        ("succesfullyProcessed", "78660"),
        ("notProcessed", "2"),
        ("lastSeen", "1619210924"),
    ];
    conn.hset_multiple::<_, _, _, ()>(&stats, &fields)
        .await
        .unwrap();
}

#[tokio::test]
async fn gateways_list_statistics_and_health() {
    let api = Api::start().await;
    assert_eq!(api.get("/gateways").await, (200, json!([])));
    let now = iotc_core::ops::unix_seconds();
    seed_gateways(&api, now).await;

    let (s, body) = api.get("/gateways").await;
    assert_eq!(s, 200);
    assert_eq!(
        body,
        json!([
            {"mac":"24f27f551bf4","hardwareDescriptor":"AP-305","softwareVersion":"8.7.1.0-8.7.1.0","lastSeen":(now-4000).to_string()},
            {"mac":"d01546c204a2","hardwareDescriptor":"AP-305","softwareVersion":"8.7.1.1-8.7.1.1","lastSeen":(now-10).to_string()},
        ]),
        "sorted by MAC, the unreadable record skipped"
    );

    let (s, body) = api.get("/gateways/metadata/statistics/telegrams").await;
    assert_eq!(s, 200);
    assert_eq!(
        body[0]["stats"],
        json!({"totalTelegramCount":0,"succesfullyProcessed":0,"notProcessed":0})
    );
    assert_eq!(body[1]["gatewayInfo"]["mac"], "d01546c204a2");
    assert_eq!(
        body[1]["stats"],
        json!({"totalTelegramCount":78662,"succesfullyProcessed":78660,"notProcessed":2,"lastSeen":"1619210924"})
    );

    let (s, body) = api.get("/gateways/metadata/health").await;
    assert_eq!(s, 200);
    assert_eq!(body[1]["gatewayInfo"]["mac"], "d01546c204a2");
    assert_eq!(body[1]["stats"]["timestamp"], (now - 20).to_string());
    assert_eq!(
        body[1]["usbInfo"],
        json!([{"usbHealth":"healthy","usbIdentifier":"ENOCEAN_USB:deb480d77718bbbe5253896b9300acfd"}])
    );
    assert_eq!(body[0]["usbInfo"], json!([]));
}

#[tokio::test]
async fn system_health_reads_heartbeats_and_gateways() {
    let api = Api::start().await;
    let (s, body) = api.get("/system/health").await;
    assert_eq!(s, 200);
    assert_eq!(
        body["system_health"],
        json!({"redis":"running","ingress":"down","api":"running","mqtt":"down","integration":"down","engine":"down"})
    );
    assert_eq!(body["gateway_info"], json!([]));

    let now = iotc_core::ops::unix_seconds();
    let mut conn = api.redis.conn().await;
    let beat = |status: &str| json!({"status": status, "timestamp": now}).to_string();
    conn.set_ex::<_, _, ()>(keys::heartbeat("ingress"), beat("running"), 30)
        .await
        .unwrap();
    conn.set_ex::<_, _, ()>(keys::heartbeat("engine"), beat("running"), 30)
        .await
        .unwrap();
    conn.set_ex::<_, _, ()>(keys::heartbeat("mqtt"), beat("disconnected"), 30)
        .await
        .unwrap();
    seed_gateways(&api, now).await;

    let (s, body) = api.get("/system/health").await;
    assert_eq!(s, 200);
    assert_eq!(
        body["system_health"],
        json!({"redis":"running","ingress":"running","api":"running","mqtt":"disconnected","integration":"running","engine":"running"})
    );
    let gws = body["gateway_info"].as_array().unwrap();
    assert_eq!(gws[0]["mac"], "24f27f551bf4");
    assert_eq!(gws[0]["status"], "offline");
    assert_eq!(gws[1]["status"], "healthy");
    assert!(
        gws[1]["timestamp"]
            .as_str()
            .unwrap()
            .parse::<jiff::Timestamp>()
            .is_ok()
    );
}

#[tokio::test]
async fn system_health_answers_when_redis_is_down() {
    let mut api = Api::start().await;
    api.redis.stop();
    let (s, body) = api.get("/system/health").await;
    assert_eq!(s, 200);
    assert_eq!(body["system_health"]["redis"], "down");
    assert_eq!(body["system_health"]["api"], "running");
    assert_eq!(body["system_health"]["ingress"], "unknown");
}
