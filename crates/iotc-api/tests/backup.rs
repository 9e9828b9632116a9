//! `/backup`: dump (GET), replace (POST), merge (PATCH); all-or-nothing imports.

mod common;

use common::{Api, Options, assert_error, device, send};
use redis::AsyncCommands;
use reqwest::Method;
use serde_json::{Value, json};

fn backup(connections: Vec<Value>) -> Value {
    json!({"APIVersion": "1.3.0", "APPVersion": "1.3.1", "ExportDate": "2026-05-18T09:25:33Z", "Connections": connections})
}

fn ids(body: &Value) -> Vec<String> {
    body["Connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["sourceEurid"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn get_dumps_every_device() {
    let api = Api::start().await;
    let (status, body) = api.get("/backup").await;
    assert_eq!(status, 200);
    assert_eq!(body["APIVersion"], "1.3.0");
    assert_eq!(body["Connections"], json!([]));
    let date = body["ExportDate"].as_str().unwrap();
    assert!(date.parse::<jiff::Timestamp>().is_ok(), "{date}");

    for id in ["0000000b", "0000000a"] {
        assert_eq!(api.post("/devices", &device(id, "A5-02-05")).await.0, 200);
    }
    let (_, body) = api.get("/backup").await;
    assert_eq!(ids(&body), ["0000000a", "0000000b"]);
    assert_eq!(body["Connections"][0]["friendlyID"], "dev 0000000a");
}

#[tokio::test]
async fn post_replaces_everything_and_round_trips() {
    let api = Api::start().await;
    assert_eq!(
        api.post("/devices", &device("0000000a", "A5-02-05"))
            .await
            .0,
        200
    );
    let (s, b) = api
        .post(
            "/backup",
            &backup(vec![
                device("0000000B", "A5-04-05"),
                device("0000000c", "F6-02-01"),
            ]),
        )
        .await;
    assert_eq!((s, b), (200, Value::Null));
    let (_, dump) = api.get("/backup").await;
    assert_eq!(
        ids(&dump),
        ["0000000b", "0000000c"],
        "the old device is gone"
    );

    // A dump restores into an empty installation as it was.
    let other = Api::start().await;
    assert_eq!(other.post("/backup", &dump).await.0, 200);
    let (_, again) = other.get("/backup").await;
    assert_eq!(again["Connections"], dump["Connections"]);
}

#[tokio::test]
async fn patch_merges() {
    let api = Api::start().await;
    assert_eq!(
        api.post("/devices", &device("0000000a", "A5-02-05"))
            .await
            .0,
        200
    );
    assert_eq!(
        api.post("/devices", &device("0000000b", "A5-02-05"))
            .await
            .0,
        200
    );
    let (s, _) = api
        .send_json(
            Method::PATCH,
            "/backup",
            &backup(vec![
                device("0000000b", "D2-14-41"),
                device("0000000c", "F6-02-01"),
            ]),
        )
        .await;
    assert_eq!(s, 200);
    let (_, dump) = api.get("/backup").await;
    assert_eq!(ids(&dump), ["0000000a", "0000000b", "0000000c"]);
    assert_eq!(
        dump["Connections"][1]["eep"], "D2-14-41",
        "an existing device is updated"
    );
}

#[tokio::test]
async fn invalid_backups_change_nothing() {
    let api = Api::start().await;
    assert_eq!(
        api.post("/devices", &device("0000000a", "A5-02-05"))
            .await
            .0,
        200
    );
    let mut wrong_version = backup(vec![device("0000000b", "A5-02-05")]);
    wrong_version["APIVersion"] = json!("2.0.0");
    let mut bad_version = wrong_version.clone();
    bad_version["APIVersion"] = json!("v1");
    let mut no_version = wrong_version.clone();
    no_version.as_object_mut().unwrap().remove("APIVersion");
    let mut bad_date = backup(vec![]);
    bad_date["ExportDate"] = json!("last tuesday");
    let mut not_a_bool = device("0000000c", "A5-02-05");
    not_a_bool["activeFlag"] = json!("yes");
    let mut no_name = device("0000000c", "A5-02-05");
    no_name.as_object_mut().unwrap().remove("friendlyID");
    let cases = [
        (wrong_version, "UNSUPPORTED_API_VERSION", "2.0.0"),
        (bad_version, "INVALID_FIELD", "APIVersion"),
        (no_version, "INVALID_BODY", "APIVersion"),
        (bad_date, "INVALID_FIELD", "ExportDate"),
        (
            backup(vec![device("0000000b", "A5-02-05"), not_a_bool]),
            "INVALID_BODY",
            "Connections[1].activeFlag",
        ),
        (
            backup(vec![device("0000000b", "A5-02-05"), no_name]),
            "INVALID_BODY",
            "friendlyID",
        ),
        (
            backup(vec![
                device("0000000b", "A5-02-05"),
                device("0000000c", "A5-02"),
            ]),
            "INVALID_FIELD",
            "Connections[1].eep",
        ),
        (
            backup(vec![
                device("0000000b", "A5-02-05"),
                device("0000000B", "A5-02-05"),
            ]),
            "DUPLICATE_DEVICE",
            "0000000b:ffffffff",
        ),
    ];
    for (body, code, needle) in cases {
        for method in [Method::POST, Method::PATCH] {
            let (s, b) = api.send_json(method, "/backup", &body).await;
            assert_error(s, &b, 400, code, needle);
        }
    }
    let (_, dump) = api.get("/backup").await;
    assert_eq!(ids(&dump), ["0000000a"]);
}

#[tokio::test]
async fn only_secure_devices_applies_to_backups() {
    let api = Api::start_with(Options {
        only_secure: true,
        ..Options::default()
    })
    .await;
    let mut secure = device("0000000a", "D2-14-41");
    secure["AESKey"] = json!("3a0c1b30b0a822a17a28fd01d77abdae");
    secure["slf"] = json!("f3");
    let (s, b) = api
        .post(
            "/backup",
            &backup(vec![secure.clone(), device("0000000b", "A5-02-05")]),
        )
        .await;
    assert_error(s, &b, 400, "INSECURE_DEVICE", "Connections[1]");
    assert_eq!(api.get("/backup").await.1["Connections"], json!([]));
    assert_eq!(api.post("/backup", &backup(vec![secure])).await.0, 200);
}

/// A restore is one MULTI/EXEC: a reader sees the old registry or the new one, never a mix.
#[tokio::test]
async fn restore_is_atomic_for_readers() {
    let api = Api::start().await;
    let old: Vec<Value> = (0..3)
        .map(|i| device(&format!("{i:08x}"), "A5-02-05"))
        .collect();
    assert_eq!(api.post("/backup", &backup(old)).await.0, 200);
    let new: Vec<Value> = (0..3000)
        .map(|i| device(&format!("{:08x}", 0x1000_0000 + i), "A5-02-05"))
        .collect();

    let mut conn = api.redis.conn().await;
    let watcher = tokio::spawn(async move {
        let mut seen = Vec::new();
        for _ in 0..100_000 {
            let n: usize = conn.hlen(iotc_core::keys::DEVICES).await.unwrap();
            seen.push(n);
            if n == 3000 {
                break;
            }
        }
        seen
    });
    assert_eq!(api.post("/backup", &backup(new)).await.0, 200);
    let seen = watcher.await.unwrap();
    assert!(
        seen.iter().all(|&n| n == 3 || n == 3000),
        "a partial registry was visible: {seen:?}"
    );
    assert_eq!(*seen.last().unwrap(), 3000);
}

/// What IoTC (Python) wrote in its exports: booleans as strings, `null` for unset values,
/// lower-case EEPs and upper-case IDs, a date without offset, fields this API does not keep.
/// Source: IoTC's how-to guide shows `"activeFlag":"true"`; its API is Python (None is null).
#[tokio::test]
async fn restores_what_iotc_wrote() {
    let api = Api::start().await;
    let dump = json!({
        "APIVersion": "1.2.0", "APPVersion": "1.3.1", "ExportDate": "2022-05-18T09:25:33.123456",
        "ExportedBy": "iotc-api",
        "Connections": [
            {"sourceEurid": "0413D759", "destinationEurid": "FFFFFFFF", "friendlyID": "Multisensor",
             "location": null, "eep": "d2-14-41", "activeFlag": "true", "isPTM": "false",
             "slf": null, "AESKey": null, "customTag": null, "rlc": "0000", "licensed": true},
            {"sourceEurid": "0000000b", "friendlyID": "Off", "eep": "a5-02-05",
             "activeFlag": "False", "isPTM": "0"}
        ]
    });
    for method in [Method::POST, Method::PATCH] {
        let (s, b) = api.send_json(method, "/backup", &dump).await;
        assert_eq!(s, 200, "{b}");
    }
    let (_, one) = api.get("/devices?sourceID=0413d759").await;
    assert_eq!(
        one,
        json!({"sourceEurid": "0413d759", "destinationEurid": "ffffffff",
            "friendlyID": "Multisensor", "eep": "d2-14-41", "activeFlag": true, "isPTM": false,
            "customTag": ""})
    );
    let (_, off) = api.get("/devices?sourceID=0000000b").await;
    assert_eq!(
        (&off["activeFlag"], &off["eep"]),
        (&json!(false), &json!("a5-02-05"))
    );
    // Ignored fields are counted.
    let metrics = api
        .http
        .get(api.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("iotc_api_backup_unknown_fields_total"),
        "{metrics}"
    );
}

/// Keys left behind by restores (staging hashes).
async fn staging_keys(api: &Api) -> Vec<String> {
    let mut conn = api.redis.conn().await;
    let pattern = format!("{}:restore:*", iotc_core::keys::DEVICES);
    conn.keys(pattern).await.unwrap()
}

fn many(n: usize, base: u32) -> Vec<Value> {
    (0..n)
        .map(|i| device(&format!("{:08x}", base + i as u32), "A5-02-05"))
        .collect()
}

/// A restore is read as it arrives and staged in batches: a bad device after several batches
/// were staged, or a body over the backup limit, still changes nothing and leaves no staging.
#[tokio::test]
async fn streamed_restore_rejects_late_errors_atomically() {
    let api = Api::start_with(Options {
        max_backup_bytes: 3 * 1024 * 1024,
        ..Options::default()
    })
    .await;
    assert_eq!(api.post("/backup", &backup(many(3, 0))).await.0, 200);

    // Larger than the 1 MiB limit of other bodies: backups have their own.
    let big = many(12_000, 0x1000_0000);
    assert!(backup(big.clone()).to_string().len() > 1024 * 1024);
    let mut late_bad = big.clone();
    late_bad.push(device("1000002a", "A5-02-05"));
    let mut late_invalid = big.clone();
    late_invalid.push(device("2000002a", "A5-02"));
    for method in [Method::POST, Method::PATCH] {
        let (s, b) = api
            .send_json(method.clone(), "/backup", &backup(late_bad.clone()))
            .await;
        assert_error(s, &b, 400, "DUPLICATE_DEVICE", "Connections[12000]");
        let (s, b) = api
            .send_json(method, "/backup", &backup(late_invalid.clone()))
            .await;
        assert_error(s, &b, 400, "INVALID_FIELD", "Connections[12000].eep");
    }
    let mut truncated = backup(big.clone()).to_string();
    truncated.truncate(truncated.len() - 10);
    let (s, b) = send(
        api.req(Method::POST, "/backup")
            .header("content-type", "application/json")
            .body(truncated),
    )
    .await;
    assert_error(s, &b, 400, "MALFORMED_JSON", "EOF");
    let (s, b) = api
        .post("/backup", &backup(many(40_000, 0x2000_0000)))
        .await;
    assert_error(s, &b, 413, "BODY_TOO_LARGE", "length limit");
    assert_eq!(
        ids(&api.get("/backup").await.1),
        ["00000000", "00000001", "00000002"]
    );
    assert_eq!(staging_keys(&api).await, Vec::<String>::new());

    // The same large backup, valid: merged, then replacing.
    let (s, _) = api
        .send_json(Method::PATCH, "/backup", &backup(big.clone()))
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        api.get("/devices").await.1.as_array().unwrap().len(),
        12_003
    );
    assert_eq!(api.post("/backup", &backup(big)).await.0, 200);
    let (_, all) = api.get("/devices").await;
    assert_eq!(all.as_array().unwrap().len(), 12_000);
    assert_eq!(all[0]["sourceEurid"], "10000000");
    assert_eq!(staging_keys(&api).await, Vec::<String>::new());
}
