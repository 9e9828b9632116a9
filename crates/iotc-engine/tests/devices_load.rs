//! The engine's compact device copy loads a large registry page by page from a real Redis,
//! skips entries that are not devices, and follows changes announced on `DEVICES_CHANGED`.

use std::time::Duration;

use iotc_core::keys;
use iotc_engine::devices::Devices;
use redis::AsyncCommands;
use serde_json::json;

const N: u32 = 2_500;

fn device_json(i: u32) -> String {
    json!({"sourceEurid": format!("{:08X}", 0x0500_0000 + i), "friendlyID": format!("Sensor {i}"),
           "eep": "A5-02-05", "location": "Floor 1", "customTag": "t"})
    .to_string()
}

#[tokio::test]
async fn loads_pages_skips_bad_entries_and_follows_changes() {
    let redis = test_support::Redis::start_temp();
    let mut conn = redis.conn().await;
    let entries: Vec<(String, String)> = (0..N)
        .map(|i| (format!("{:08x}:ffffffff", 0x0500_0000 + i), device_json(i)))
        .collect();
    let () = conn.hset_multiple(keys::DEVICES, &entries).await.unwrap();
    let bad = [
        ("not-a-field", device_json(1)),
        ("0a0b0c0d:ffffffff", "{not json".to_string()),
        ("+a0b0c0d:ffffffff", device_json(2)),
    ];
    let () = conn.hset_multiple(keys::DEVICES, &bad).await.unwrap();

    let devices = Devices::default();
    devices
        .load_all(&mut redis.manager().await.into())
        .await
        .unwrap();
    assert_eq!(devices.len(), N as usize);
    let last = devices
        .lookup("050009c3", "0a0b0c0d")
        .expect("broadcast entry");
    assert_eq!(
        (last.source_eurid.as_str(), last.friendly_id.as_str()),
        ("050009c3", "Sensor 2499")
    );
    assert_eq!(last.location.as_deref(), Some("Floor 1"));
    assert!(devices.lookup("050009c4", "ffffffff").is_none());
    assert!(devices.lookup("0a0b0c0d", "ffffffff").is_none());

    // A change announced while watching replaces the entry.
    tokio::spawn(
        devices
            .clone()
            .watch(redis.client(), redis.manager().await.into()),
    );
    let renamed = json!({"sourceEurid": "05000000", "friendlyID": "renamed", "eep": "F6-02-01"});
    for _ in 0..100 {
        // The watcher subscribes asynchronously: announce until it has taken the change.
        let () = conn
            .hset(keys::DEVICES, "05000000:ffffffff", renamed.to_string())
            .await
            .unwrap();
        let () = conn
            .publish(keys::DEVICES_CHANGED, "05000000:ffffffff")
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        if devices.lookup("05000000", "ffffffff").unwrap().friendly_id == "renamed" {
            break;
        }
    }
    let first = devices.lookup("05000000", "ffffffff").unwrap();
    assert_eq!(
        (first.friendly_id.as_str(), first.eep.as_str()),
        ("renamed", "F6-02-01")
    );
    assert_eq!(devices.len(), N as usize);
}
