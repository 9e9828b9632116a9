//! `GET /devices` answers from a per-instance cache: after any change made through any
//! instance, every instance lists the registry as it is now.

mod common;

use common::{Api, Instance, device};
use redis::AsyncCommands;
use reqwest::Method;
use serde_json::{Value, json};

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .expect("an array")
        .iter()
        .map(|d| {
            format!(
                "{}:{}",
                d["sourceEurid"].as_str().unwrap(),
                d["friendlyID"].as_str().unwrap()
            )
        })
        .collect()
}

/// Both instances list exactly `want` (`source:friendlyID`, sorted).
async fn assert_both(a: &Api, b: &Instance, want: &[&str]) {
    let want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
    for _ in 0..2 {
        // Twice: the second answer comes from the cache.
        let (s, list) = a.get("/devices").await;
        assert_eq!((s, ids(&list)), (200, want.clone()), "instance A");
        let (s, list) = b.get(&a.http, "/devices").await;
        assert_eq!((s, ids(&list)), (200, want.clone()), "instance B");
    }
}

fn backup(connections: Vec<Value>) -> Value {
    json!({"APIVersion": "1.3.0", "ExportDate": "2026-05-18T09:25:33Z", "Connections": connections})
}

fn named(source: &str, name: &str) -> Value {
    let mut d = device(source, "A5-02-05");
    d["friendlyID"] = json!(name);
    d
}

#[tokio::test]
async fn never_stale_across_two_instances() {
    let a = Api::start().await;
    let b = a.another_instance().await;
    assert_both(&a, &b, &[]).await;

    assert_eq!(a.post("/devices", &named("0000000a", "one")).await.0, 200);
    assert_both(&a, &b, &["0000000a:one"]).await;

    // A change of content only (same count), made through the other instance.
    let url = format!("{}/api.beta/v1/devices?sourceID=0000000a", b.base);
    let put = a.http.put(url).basic_auth(common::USER, Some(common::PASS));
    let (s, _) = common::send(put.json(&named("0000000a", "renamed"))).await;
    assert_eq!(s, 200);
    assert_both(&a, &b, &["0000000a:renamed"]).await;

    let (s, _) = a
        .send_json(
            Method::PATCH,
            "/backup",
            &backup(vec![named("0000000b", "two")]),
        )
        .await;
    assert_eq!(s, 200);
    assert_both(&a, &b, &["0000000a:renamed", "0000000b:two"]).await;

    let (s, _) = a
        .post("/backup", &backup(vec![named("0000000c", "three")]))
        .await;
    assert_eq!(s, 200);
    assert_both(&a, &b, &["0000000c:three"]).await;

    assert_eq!(a.delete("/devices?sourceID=0000000c").await.0, 200);
    assert_both(&a, &b, &[]).await;
}

/// A writer that bypasses the API and forgets the version counter is still seen when it adds
/// or removes a device (the count is part of the version).
#[tokio::test]
async fn a_direct_write_that_changes_the_count_is_seen() {
    let a = Api::start().await;
    let b = a.another_instance().await;
    assert_eq!(a.post("/devices", &named("0000000a", "one")).await.0, 200);
    assert_both(&a, &b, &["0000000a:one"]).await;
    let mut conn = a.redis.conn().await;
    let json = named("0000000d", "direct").to_string();
    let () = conn
        .hset(iotc_core::keys::DEVICES, "0000000d:ffffffff", json)
        .await
        .unwrap();
    assert_both(&a, &b, &["0000000a:one", "0000000d:direct"]).await;
}
