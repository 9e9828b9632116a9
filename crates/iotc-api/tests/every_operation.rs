//! Every operation of the OpenAPI document, run on an empty store and on a store of 10,000
//! devices (with gateways and statistics): no answer is a 5xx, and a collection that is empty
//! answers `[]`, not an error. The table is checked against the document, so an operation added
//! later without a row here fails the test.

mod common;

use std::collections::BTreeSet;

use common::{Api, Options, send};
use iotc_core::keys;
use iotc_core::model::{EnOceanSensor, GatewayRecord, UsbHealth};
use redis::AsyncCommands;
use reqwest::Method;
use serde_json::{Value, json};

const DEVICES: usize = 10_000;
const GATEWAYS: usize = 50;
/// A device that is onboarded in the full store.
const KNOWN: &str = "00000007";

/// One request: method, path with query, optional JSON body.
struct Call {
    method: Method,
    path: String,
    body: Option<Value>,
}

fn call(method: Method, path: &str, body: Option<Value>) -> Call {
    Call {
        method,
        path: path.to_string(),
        body,
    }
}

fn sensor(i: usize) -> EnOceanSensor {
    serde_json::from_value(json!({
        "sourceEurid": format!("{i:08x}"),
        "destinationEurid": "ffffffff",
        "friendlyID": format!("sensor {i}"),
        "location": "Level 2",
        "eep": "A5-04-05",
    }))
    .unwrap()
}

fn backup_body(devices: Vec<Value>) -> Value {
    json!({"APIVersion": "1.3.0", "ExportDate": "2026-05-18T09:25:33Z", "Connections": devices})
}

/// The requests for every operation: without parameters where allowed, with a known and an
/// unknown device, with IoTC's default destination, and the writes with valid bodies.
fn table(backup: &Value) -> Vec<Call> {
    use Method as M;
    let one = serde_json::to_value(sensor(0xa1b2c3d4)).unwrap();
    let mut calls = vec![
        call(M::GET, "/backup", None),
        call(M::GET, "/devices", None),
        call(M::GET, "/devices?destinationID=FFFFFFFF", None),
        call(M::GET, "/gateways", None),
        call(M::GET, "/gateways/metadata/statistics/telegrams", None),
        call(M::GET, "/gateways/metadata/health", None),
        call(M::GET, "/system/health", None),
        call(M::GET, "/devices/learn", None),
        call(M::GET, "/devices/availability", None),
        call(M::GET, "/devices/unknown", None),
        call(
            M::POST,
            &format!("/devices/teach-in?sourceID={KNOWN}"),
            None,
        ),
        call(M::POST, "/devices/teach-in?sourceID=fffffffe", None),
        call(M::GET, "/devices/queue?sourceID=a1b2c3d4", None),
        call(M::DELETE, "/devices/queue?sourceID=a1b2c3d4", None),
        call(M::GET, "/aps", None),
    ];
    for path in [
        "/devices",
        "/devices/metadata/statistics/telegrams",
        "/devices/telemetry/most-recent",
        "/devices/signals/most-recent",
    ] {
        for id in [KNOWN, "fffffffe"] {
            calls.push(call(M::GET, &format!("{path}?sourceID={id}"), None));
            calls.push(call(
                M::GET,
                &format!("{path}?sourceID={id}&destinationID=FFFFFFFF"),
                None,
            ));
        }
    }
    calls.extend([
        call(M::POST, "/devices", Some(one.clone())),
        call(M::PUT, "/devices?sourceID=a1b2c3d4", Some(one)),
        call(M::DELETE, "/devices?sourceID=a1b2c3d4", None),
        call(M::DELETE, "/devices?sourceID=a1b2c3d4", None),
        call(M::POST, "/devices/learn?sourceID=a1b2c3d4&seconds=60", None),
        call(M::POST, "/devices/learn", None),
        call(M::DELETE, "/devices/learn?sourceID=a1b2c3d4", None),
        call(M::DELETE, "/devices/learn", None),
        call(M::DELETE, "/devices/learn?seconds=0", None),
        call(
            M::PUT,
            "/devices/availability?sourceID=a1b2c3d4&seconds=600",
            None,
        ),
        call(
            M::PUT,
            "/devices/availability?sourceID=a1b2c3d4&seconds=0",
            None,
        ),
        call(M::DELETE, "/devices/availability?sourceID=a1b2c3d5", None),
        call(
            M::POST,
            &format!("/devices/command?sourceID={KNOWN}"),
            Some(json!([{"key": "outputValue", "value": 100}])),
        ),
        call(
            M::POST,
            "/devices/command?sourceID=fffffffe",
            Some(json!([{"key": "outputValue", "value": 100}])),
        ),
        call(
            M::POST,
            "/aps",
            Some(json!({"mac": "24:f2:7f:ca:1b:a4", "password": "Jk3x9-Qw7ZpL2mVt-long"})),
        ),
        call(M::DELETE, "/aps?mac=24f27fca1ba4", None),
        call(M::DELETE, "/aps?mac=24f27fca1ba4", None),
        call(M::PATCH, "/backup", Some(backup.clone())),
        call(M::POST, "/backup", Some(backup.clone())),
    ]);
    calls
}

/// `METHOD path` of every operation the API documents.
async fn documented(api: &Api) -> BTreeSet<String> {
    let (status, doc) = api.get("/openapi.json").await;
    assert_eq!(status, 200);
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if method != "parameters" {
                ops.insert(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    ops
}

/// Runs the table; returns each answer by `METHOD path?query`, failing on any 5xx.
async fn run(api: &Api, calls: &[Call]) -> Vec<(String, u16, Value)> {
    let mut answers = Vec::new();
    for c in calls {
        let mut req = api.req(c.method.clone(), &c.path);
        if let Some(body) = &c.body {
            req = req.json(body);
        }
        let (status, body) = send(req).await;
        let name = format!("{} {}", c.method, c.path);
        assert!(status < 500, "{name} answered {status}: {body}");
        answers.push((name, status, body));
    }
    answers
}

fn answer<'a>(answers: &'a [(String, u16, Value)], name: &str) -> (u16, &'a Value) {
    let (_, status, body) = answers
        .iter()
        .find(|(n, _, _)| n == name)
        .unwrap_or_else(|| panic!("{name} was run"));
    (*status, body)
}

async fn seed_full_store(api: &Api, now: u64) -> Vec<Value> {
    let mut conn = api.redis.conn().await;
    let devices: Vec<EnOceanSensor> = (0..DEVICES).map(sensor).collect();
    let entries: Vec<(String, String)> = devices
        .iter()
        .map(|d| {
            (
                keys::device_field(&d.source_eurid, d.destination()),
                serde_json::to_string(d).unwrap(),
            )
        })
        .collect();
    conn.hset_multiple::<_, _, _, ()>(keys::DEVICES, &entries)
        .await
        .unwrap();
    for g in 0..GATEWAYS {
        let mac = format!("24f27f{g:06x}");
        let record = GatewayRecord {
            mac: mac.clone(),
            hardware_descriptor: "AP-305".into(),
            software_version: "8.7.1.0".into(),
            last_seen: now,
            health_timestamp: now,
            ap_status: String::new(),
            usb: vec![UsbHealth {
                usb_identifier: "ENOCEAN_USB:1".into(),
                usb_health: "healthy".into(),
            }],
        };
        conn.hset::<_, _, _, ()>(
            keys::GATEWAYS,
            &mac,
            serde_json::to_string(&record).unwrap(),
        )
        .await
        .unwrap();
        // Half of them have statistics, the others were only heard in a health report.
        if g % 2 == 0 {
            conn.hset::<_, _, _, ()>(keys::gateway_stats(&mac), keys::stats::TOTAL, 5)
                .await
                .unwrap();
        }
    }
    conn.hset::<_, _, _, ()>(keys::device_stats(KNOWN), keys::stats::TOTAL, 3)
        .await
        .unwrap();
    let message = iotc_core::recent::value(1, br#"{"sensor":{}}"#);
    conn.hset::<_, _, _, ()>(keys::device_recent_telemetry(KNOWN), 1, message)
        .await
        .unwrap();
    devices
        .iter()
        .map(|d| serde_json::to_value(d).unwrap())
        .collect()
}

fn names(calls: &[Call]) -> BTreeSet<String> {
    calls
        .iter()
        .map(|c| format!("{} {}", c.method, c.path.split('?').next().unwrap()))
        .collect()
}

#[tokio::test]
async fn empty_store_answers_every_operation_without_5xx() {
    let api = Api::start().await;
    let calls = table(&backup_body(Vec::new()));
    assert_eq!(names(&calls), documented(&api).await, "a row per operation");
    let answers = run(&api, &calls).await;

    for empty in [
        "GET /devices",
        "GET /devices?destinationID=FFFFFFFF",
        "GET /gateways",
        "GET /gateways/metadata/statistics/telegrams",
        "GET /gateways/metadata/health",
        "GET /devices/learn",
        "GET /devices/unknown",
        "GET /aps",
    ] {
        assert_eq!(answer(&answers, empty), (200, &json!([])), "{empty}");
    }
    let (status, backup) = answer(&answers, "GET /backup");
    assert_eq!((status, &backup["Connections"]), (200, &json!([])));
    let (status, health) = answer(&answers, "GET /system/health");
    assert_eq!((status, &health["gateway_info"]), (200, &json!([])));
    let (status, _) = answer(
        &answers,
        "GET /devices/telemetry/most-recent?sourceID=00000007",
    );
    assert_eq!(status, 404, "no device: not found");
    let (status, _) = answer(&answers, "POST /backup");
    assert_eq!(status, 200, "an empty backup restores");
    let (status, _) = answer(&answers, "DELETE /devices/learn?seconds=0");
    assert_eq!(status, 400, "a value the document forbids is refused");
    let (status, _) = answer(
        &answers,
        "PUT /devices/availability?sourceID=a1b2c3d4&seconds=0",
    );
    assert_eq!(status, 400, "a timeout of 0 is refused");
    let (status, v30) = api.get("/openapi-3.0.json").await;
    assert_eq!(
        (status, &v30["openapi"]),
        (200, &json!("3.0.3")),
        "the 3.0 copy"
    );
}

#[tokio::test]
async fn ten_thousand_devices_answer_every_operation_without_5xx() {
    let api = Api::start_with(Options {
        max_body_bytes: 32 * 1024 * 1024,
        ..Options::default()
    })
    .await;
    let now = iotc_core::ops::unix_seconds();
    let devices = seed_full_store(&api, now).await;
    let calls = table(&backup_body(devices));
    let answers = run(&api, &calls).await;

    let (status, all) = answer(&answers, "GET /devices");
    assert_eq!(status, 200);
    assert_eq!(all.as_array().unwrap().len(), DEVICES);
    assert_eq!(
        answer(&answers, "GET /devices?destinationID=FFFFFFFF").1,
        all
    );
    let (_, backup) = answer(&answers, "GET /backup");
    assert_eq!(backup["Connections"].as_array().unwrap().len(), DEVICES);
    let (status, stats) = answer(&answers, "GET /gateways/metadata/statistics/telegrams");
    assert_eq!(status, 200);
    let stats = stats.as_array().unwrap();
    assert_eq!(
        stats.len(),
        GATEWAYS,
        "gateways without statistics count zero"
    );
    assert_eq!(stats[0]["stats"]["totalTelegramCount"], 5);
    assert_eq!(stats[1]["stats"]["totalTelegramCount"], 0);
    let (_, health) = answer(&answers, "GET /gateways/metadata/health");
    assert_eq!(health.as_array().unwrap().len(), GATEWAYS);
    assert_eq!(
        answer(
            &answers,
            "GET /devices/metadata/statistics/telegrams?sourceID=00000007"
        )
        .0,
        200
    );
    assert_eq!(
        answer(
            &answers,
            "GET /devices/signals/most-recent?sourceID=00000007"
        )
        .0,
        204,
        "known device without signals"
    );
    // The restore of the 10,000-device dump kept every device.
    assert_eq!(
        api.get("/devices").await.1.as_array().unwrap().len(),
        DEVICES
    );
}
