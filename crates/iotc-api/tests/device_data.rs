//! Device statistics and most-recent telemetry/signals: 200, 204 (no data), 404 (unknown), 400.

mod common;

use common::{Api, assert_error, device};
use iotc_core::{keys, recent};
use serde_json::{Value, json};

async fn onboarded() -> Api {
    let api = Api::start().await;
    assert_eq!(
        api.post("/devices", &device("a1b2c3d4", "A5-04-05"))
            .await
            .0,
        200
    );
    api
}

async fn redis_cmd(api: &Api, args: &[&str]) {
    let mut conn = api.redis.conn().await;
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query_async::<()>(&mut conn).await.unwrap();
}

#[tokio::test]
async fn statistics_of_a_device() {
    let api = onboarded().await;
    let path = "/devices/metadata/statistics/telegrams?sourceID=A1B2C3D4&destinationID=FFFFFFFF";
    assert_eq!(api.get(path).await, (204, Value::Null), "no data yet");

    let key = keys::device_stats("a1b2c3d4");
    redis_cmd(
        &api,
        &[
            "HSET",
            &key,
            "totalTelegramCount",
            "1057",
            "succesfullyProcessed",
            "1050",
            "notProcessed",
            "7",
            "lastSeen",
            "1619210854",
        ],
    )
    .await;
    let (s, body) = api.get(path).await;
    assert_eq!(s, 200);
    assert_eq!(
        body[0]["meta"]["stats"],
        json!({"totalTelegramCount":1057,"succesfullyProcessed":1050,"notProcessed":7,"lastSeen":"1619210854"})
    );
    assert_eq!(body[0]["sensor"]["sourceEurid"], "a1b2c3d4");
    assert_eq!(body.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn statistics_errors() {
    let api = onboarded().await;
    let (s, b) = api
        .get("/devices/metadata/statistics/telegrams?sourceID=a1b2c3d5")
        .await;
    assert_error(s, &b, 404, "DEVICE_NOT_FOUND", "a1b2c3d5");
    let (s, b) = api
        .get("/devices/metadata/statistics/telegrams?sourceID=a1b2c3d4&destinationID=0")
        .await;
    assert_error(s, &b, 400, "INVALID_FIELD", "destinationID");
    let (s, b) = api.get("/devices/metadata/statistics/telegrams").await;
    assert_error(s, &b, 400, "INVALID_QUERY", "sourceID");
}

#[tokio::test]
async fn most_recent_telemetry_returns_at_most_five_newest_first() {
    let api = onboarded().await;
    let path = "/devices/telemetry/most-recent?sourceID=a1b2c3d4";
    assert_eq!(api.get(path).await, (204, Value::Null));

    // A list as an earlier release kept it is read while the device has no ring.
    let list = keys::device_recent_telemetry_list("a1b2c3d4");
    for i in 0..7 {
        let payload = json!({"sensor": {"id": "a1b2c3d4"}, "n": i}).to_string();
        redis_cmd(&api, &["LPUSH", &list, &payload]).await;
    }
    assert_eq!(
        numbers(&api.get(path).await),
        [6, 5, 4, 3, 2],
        "the old list"
    );

    // The ring as the engine writes it: message `seq` in field `seq % 5`.
    let ring = keys::device_recent_telemetry("a1b2c3d4");
    for seq in 11..=18 {
        let payload = json!({"sensor": {"id": "a1b2c3d4"}, "n": seq}).to_string();
        let value = String::from_utf8(recent::value(seq, payload.as_bytes())).unwrap();
        let field = recent::field(seq).to_string();
        redis_cmd(&api, &["HSET", &ring, &field, &value]).await;
    }
    assert_eq!(
        numbers(&api.get(path).await),
        [18, 17, 16, 15, 14],
        "newest first"
    );

    let (s, b) = api
        .get("/devices/telemetry/most-recent?sourceID=0badcafe")
        .await;
    assert_error(s, &b, 404, "DEVICE_NOT_FOUND", "0badcafe");
    let (s, b) = api
        .get("/devices/telemetry/most-recent?sourceID=0bad")
        .await;
    assert_error(s, &b, 400, "INVALID_FIELD", "sourceID");
}

/// The `n` of each message of a most-recent answer.
fn numbers((status, body): &(u16, Value)) -> Vec<u64> {
    assert_eq!(*status, 200, "{body}");
    let items = body.as_array().unwrap();
    let payload = |item: &Value| -> Value {
        serde_json::from_str(item["egressOutput"].as_str().unwrap()).unwrap()
    };
    items
        .iter()
        .map(|i| payload(i)["n"].as_u64().unwrap())
        .collect()
}

#[tokio::test]
async fn most_recent_signals_grouped_by_signal() {
    let api = onboarded().await;
    let path = "/devices/signals/most-recent?sourceID=a1b2c3d4";
    assert_eq!(api.get(path).await, (204, Value::Null));

    let key = keys::device_recent_signal("a1b2c3d4");
    let signal = |mid: &str, meaning: &str, value: u32| {
        json!({"telemetry": {"data": [], "signal": [
            {"key": "signalIdentifier", "value": mid, "meaning": meaning},
            {"key": "energy", "value": value, "unit": "%"}]}})
        .to_string()
    };
    let sent = [
        signal("0x6", "Energy status of device", 55),
        signal("0x1", "Reserved", 0),
        signal("0x6", "Energy status of device", 56),
    ];
    for (seq, payload) in (4..).zip(&sent) {
        let value = String::from_utf8(recent::value(seq, payload.as_bytes())).unwrap();
        let field = recent::field(seq).to_string();
        redis_cmd(&api, &["HSET", &key, &field, &value]).await;
    }
    let (s, body) = api.get(path).await;
    assert_eq!(s, 200, "{body}");
    let groups = body.as_array().unwrap();
    assert_eq!(groups.len(), 2);
    assert_eq!(groups[0]["signalKey"], "0x6");
    assert_eq!(groups[0]["signalMeaning"], "Energy status of device");
    assert_eq!(groups[0]["recentSignals"].as_array().unwrap().len(), 2);
    assert!(
        groups[0]["recentSignals"][0]["egressOutput"]
            .as_str()
            .unwrap()
            .contains("56")
    );
    assert_eq!(groups[1]["signalKey"], "0x1");

    let (s, b) = api
        .get("/devices/signals/most-recent?sourceID=0badcafe")
        .await;
    assert_error(s, &b, 404, "DEVICE_NOT_FOUND", "0badcafe");
    let (s, b) = api.get("/devices/signals/most-recent").await;
    assert_error(s, &b, 400, "INVALID_QUERY", "sourceID");
}
