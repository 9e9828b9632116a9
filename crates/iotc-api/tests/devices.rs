//! `/devices`: GET, PUT, POST, DELETE and their error paths, against a real redis-server.

mod common;

use common::{Api, Options, assert_error, device, send};
use futures_util::StreamExt;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn post_stores_lower_case_and_get_reads_it() {
    let api = Api::start().await;
    let (status, body) = api.post("/devices", &device("A1B2C3D4", "a5-04-05")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["sourceEurid"], "a1b2c3d4");
    assert_eq!(body["destinationEurid"], "ffffffff");
    assert_eq!(
        body["eep"], "a5-04-05",
        "the EEP is kept as sent, as IoTC does"
    );
    assert_eq!(body["activeFlag"], true);
    assert_eq!(body["isPTM"], false);
    assert_eq!(body["customTag"], "");

    let stored = api
        .stored("a1b2c3d4:ffffffff")
        .await
        .expect("stored under source:destination");
    assert_eq!(stored["friendlyID"], "dev A1B2C3D4");

    let (status, got) = api.get("/devices?sourceID=A1B2C3D4").await;
    assert_eq!(status, 200);
    assert_eq!(got, body);
    let (status, got) = api
        .get("/devices?sourceID=a1b2c3d4&destinationID=FFFFFFFF")
        .await;
    assert_eq!((status, got), (200, body));
}

#[tokio::test]
async fn get_without_source_lists_all_devices_in_order() {
    let api = Api::start().await;
    let (status, body) = api.get("/devices").await;
    assert_eq!((status, body), (200, json!([])));
    for id in ["0000000b", "0000000a"] {
        assert_eq!(api.post("/devices", &device(id, "A5-02-05")).await.0, 200);
    }
    let mut to_one = device("0000000a", "A5-02-05");
    to_one["destinationEurid"] = json!("01020304");
    assert_eq!(api.post("/devices", &to_one).await.0, 200);

    let (status, body) = api.get("/devices").await;
    assert_eq!(status, 200);
    // IoTC's spec gives destinationID a default, so generated clients send it: same list.
    for query in ["?destinationID=FFFFFFFF", "?destinationID=01020304"] {
        let (s, listed) = api.get(&format!("/devices{query}")).await;
        assert_eq!((s, &listed), (200, &body), "{query}");
    }
    let ids: Vec<String> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            format!(
                "{}:{}",
                d["sourceEurid"].as_str().unwrap(),
                d["destinationEurid"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        ids,
        [
            "0000000a:01020304",
            "0000000a:ffffffff",
            "0000000b:ffffffff"
        ]
    );
}

#[tokio::test]
async fn get_errors() {
    let api = Api::start().await;
    let (s, b) = api.get("/devices?sourceID=a1b2c3d4").await;
    assert_error(s, &b, 404, "DEVICE_NOT_FOUND", "a1b2c3d4");
    let (s, b) = api.get("/devices?sourceID=a1b2").await;
    assert_error(s, &b, 400, "INVALID_FIELD", "sourceID");
    let (s, b) = api
        .get("/devices?sourceID=a1b2c3d4&destinationID=xyz")
        .await;
    assert_error(s, &b, 400, "INVALID_FIELD", "destinationID");
    let (s, b) = api.get("/devices?destinationID=ffffff").await;
    assert_error(s, &b, 400, "INVALID_FIELD", "destinationID");
    let (s, b) = api.get("/devices?sourceid=a1b2c3d4").await;
    assert_error(s, &b, 400, "INVALID_QUERY", "sourceid");
    let (s, b) = api
        .get("/devices?sourceID=a1b2c3d4&sourceID=a1b2c3d5")
        .await;
    assert_error(s, &b, 400, "INVALID_QUERY", "sourceID");
}

#[tokio::test]
async fn post_rejects_every_kind_of_bad_input() {
    let api = Api::start().await;
    let cases = [
        (
            json!({"eep":"A5-04-05","friendlyID":"x","sourceEurid":"a1b2c3"}),
            "INVALID_FIELD",
            "sourceEurid",
        ),
        (
            json!({"eep":"A5-04-05","friendlyID":"x","sourceEurid":"g1b2c3d4"}),
            "INVALID_FIELD",
            "sourceEurid",
        ),
        (
            json!({"eep":"A5-04-05","friendlyID":"x","sourceEurid":"a1b2c3d4","destinationEurid":"1"}),
            "INVALID_FIELD",
            "destinationEurid",
        ),
        (
            json!({"eep":"A5-04","friendlyID":"x","sourceEurid":"a1b2c3d4"}),
            "INVALID_FIELD",
            "eep",
        ),
        (
            json!({"eep":"A5-04-05","friendlyID":"x".repeat(65),"sourceEurid":"a1b2c3d4"}),
            "INVALID_FIELD",
            "friendlyID",
        ),
        (
            json!({"eep":"A5-04-05","friendlyID":"x","location":"y".repeat(65),"sourceEurid":"a1b2c3d4"}),
            "INVALID_FIELD",
            "location",
        ),
        (
            json!({"eep":"A5-04-05","friendlyID":"x","customTag":"z".repeat(257),"sourceEurid":"a1b2c3d4"}),
            "INVALID_FIELD",
            "customTag",
        ),
        (
            json!({"eep":"A5-04-05","friendlyID":"x","sourceEurid":"a1b2c3d4","slf":"f"}),
            "INVALID_FIELD",
            "slf",
        ),
        (
            json!({"eep":"A5-04-05","friendlyID":"x","sourceEurid":"a1b2c3d4","AESKey":"00"}),
            "INVALID_FIELD",
            "AESKey",
        ),
        (
            json!({"eep":"A5-04-05","friendlyID":"x","sourceEurid":"a1b2c3d4","color":"red"}),
            "INVALID_BODY",
            "unknown field `color`",
        ),
        (
            json!({"eep":"A5-04-05","sourceEurid":"a1b2c3d4"}),
            "INVALID_BODY",
            "friendlyID",
        ),
        (
            json!({"eep":"A5-04-05","friendlyID":"x","sourceEurid":"a1b2c3d4","activeFlag":"true"}),
            "INVALID_BODY",
            "activeFlag",
        ),
        (
            json!(["not", "an", "object"]),
            "INVALID_BODY",
            "JSON object",
        ),
    ];
    for (body, code, needle) in cases {
        let (s, b) = api.post("/devices", &body).await;
        assert_error(s, &b, 400, code, needle);
    }
    let raw = |body: &'static str, content_type: &'static str| {
        api.req(Method::POST, "/devices")
            .header("content-type", content_type)
            .body(body)
    };
    let (s, b) = send(raw(r#"{"eep":"A5-04-05","#, "application/json")).await;
    assert_error(s, &b, 400, "MALFORMED_JSON", "parse");
    let (s, b) = send(raw("", "application/json")).await;
    assert_error(s, &b, 400, "MALFORMED_JSON", "EOF");
    let valid = r#"{"eep":"A5-04-05","friendlyID":"x","sourceEurid":"a1b2c3d4"}"#;
    let (s, b) = send(raw(valid, "text/plain")).await;
    assert_error(s, &b, 400, "UNSUPPORTED_CONTENT_TYPE", "application/json");
    let (s, b) = send(api.req(Method::POST, "/devices").body(valid)).await;
    assert_error(s, &b, 400, "UNSUPPORTED_CONTENT_TYPE", "application/json");
    assert_eq!(api.get("/devices").await.1, json!([]), "nothing was stored");
}

#[tokio::test]
async fn oversized_body_is_413_json() {
    let api = Api::start_with(Options {
        max_body_bytes: 4096,
        ..Options::default()
    })
    .await;
    let mut body = device("a1b2c3d4", "A5-04-05");
    body["customTag"] = json!("x".repeat(5000));
    let (s, b) = api.post("/devices", &body).await;
    assert_error(s, &b, 413, "BODY_TOO_LARGE", "length limit");
}

#[tokio::test]
async fn put_overwrites_and_creates() {
    let api = Api::start().await;
    assert_eq!(
        api.post("/devices", &device("a1b2c3d4", "A5-04-05"))
            .await
            .0,
        200
    );
    let mut changed = device("A1B2C3D4", "D2-14-41");
    changed["activeFlag"] = json!(false);
    changed["AESKey"] = json!("3A0C1B30B0A822A17A28FD01D77ABDAE");
    changed["slf"] = json!("F3");
    let (s, b) = api
        .send_json(Method::PUT, "/devices?sourceID=a1b2c3d4", &changed)
        .await;
    assert_eq!(s, 200, "{b}");
    let stored = api.stored("a1b2c3d4:ffffffff").await.unwrap();
    assert_eq!(stored["eep"], "D2-14-41");
    assert_eq!(stored["activeFlag"], false);
    assert_eq!(stored["AESKey"], "3a0c1b30b0a822a17a28fd01d77abdae");
    assert_eq!(stored["slf"], "f3");

    // The destination comes from the query when the body has none.
    let (s, _) = api
        .send_json(
            Method::PUT,
            "/devices?sourceID=0badcafe&destinationID=01020304",
            &device("0badcafe", "F6-02-01"),
        )
        .await;
    assert_eq!(s, 200);
    assert!(api.stored("0badcafe:01020304").await.is_some());
}

#[tokio::test]
async fn put_errors() {
    let api = Api::start().await;
    let (s, b) = api
        .send_json(
            Method::PUT,
            "/devices?sourceID=a1b2c3d4",
            &device("a1b2c3d5", "A5-04-05"),
        )
        .await;
    assert_error(s, &b, 400, "ID_MISMATCH", "a1b2c3d5");
    let mut other_dest = device("a1b2c3d4", "A5-04-05");
    other_dest["destinationEurid"] = json!("01020304");
    let (s, b) = api
        .send_json(Method::PUT, "/devices?sourceID=a1b2c3d4", &other_dest)
        .await;
    assert_error(s, &b, 400, "ID_MISMATCH", "01020304");
    let (s, b) = api
        .send_json(Method::PUT, "/devices", &device("a1b2c3d4", "A5-04-05"))
        .await;
    assert_error(s, &b, 400, "INVALID_QUERY", "sourceID");
    let (s, b) = api
        .send_json(
            Method::PUT,
            "/devices?sourceID=a1b2c3d4",
            &device("a1b2c3d4", "A5-4-05"),
        )
        .await;
    assert_error(s, &b, 400, "INVALID_FIELD", "eep");
    assert!(api.stored("a1b2c3d4:ffffffff").await.is_none());
}

#[tokio::test]
async fn delete_removes_the_device_and_its_data_after_the_last_registration() {
    let api = Api::start().await;
    let mut conn = api.redis.conn().await;
    assert_eq!(
        api.post("/devices", &device("a1b2c3d4", "A5-04-05"))
            .await
            .0,
        200
    );
    let mut directed = device("a1b2c3d4", "A5-04-05");
    directed["destinationEurid"] = json!("01020304");
    assert_eq!(api.post("/devices", &directed).await.0, 200);
    let stats = iotc_core::keys::device_stats("a1b2c3d4");
    redis::cmd("HSET")
        .arg(&stats)
        .arg("totalTelegramCount")
        .arg(3)
        .query_async::<()>(&mut conn)
        .await
        .unwrap();

    let (s, b) = api.delete("/devices?sourceID=A1B2C3D4").await;
    assert_eq!((s, b), (200, serde_json::Value::Null));
    assert!(api.stored("a1b2c3d4:ffffffff").await.is_none());
    let exists: bool = redis::cmd("EXISTS")
        .arg(&stats)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(
        exists,
        "another registration of the EURID remains: keep its statistics"
    );

    let (s, _) = api
        .delete("/devices?sourceID=a1b2c3d4&destinationID=01020304")
        .await;
    assert_eq!(s, 200);
    let exists: bool = redis::cmd("EXISTS")
        .arg(&stats)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(!exists, "statistics go with the last registration");

    let (s, b) = api.delete("/devices?sourceID=a1b2c3d4").await;
    assert_error(s, &b, 404, "DEVICE_NOT_FOUND", "a1b2c3d4");
    let (s, b) = api.delete("/devices?sourceID=zzzzzzzz").await;
    assert_error(s, &b, 400, "INVALID_FIELD", "sourceID");
    let (s, b) = api.delete("/devices").await;
    assert_error(s, &b, 400, "INVALID_QUERY", "sourceID");
}

#[tokio::test]
async fn only_secure_devices_accepts_only_devices_with_key_and_slf() {
    let api = Api::start_with(Options {
        only_secure: true,
        ..Options::default()
    })
    .await;
    let (s, b) = api.post("/devices", &device("a1b2c3d4", "D2-14-41")).await;
    assert_error(s, &b, 400, "INSECURE_DEVICE", "AESKey");
    let mut key_only = device("a1b2c3d4", "D2-14-41");
    key_only["AESKey"] = json!("3a0c1b30b0a822a17a28fd01d77abdae");
    let (s, b) = api.post("/devices", &key_only).await;
    assert_error(s, &b, 400, "INSECURE_DEVICE", "slf");
    let mut secure = key_only.clone();
    secure["slf"] = json!("f3");
    assert_eq!(api.post("/devices", &secure).await.0, 200);
}

/// Every change is announced on DEVICES_CHANGED so the engines reload at once.
#[tokio::test]
async fn changes_are_published_on_devices_changed() {
    let api = Api::start().await;
    let client = redis::Client::open(api.redis.url()).unwrap();
    let mut pubsub = client.get_async_pubsub().await.unwrap();
    pubsub
        .subscribe(iotc_core::keys::DEVICES_CHANGED)
        .await
        .unwrap();
    let mut messages = pubsub.into_on_message();
    let mut next = async || {
        let msg = tokio::time::timeout(std::time::Duration::from_secs(5), messages.next())
            .await
            .expect("a DEVICES_CHANGED message")
            .unwrap();
        msg.get_payload::<String>().unwrap()
    };

    assert_eq!(
        api.post("/devices", &device("A1B2C3D4", "A5-04-05"))
            .await
            .0,
        200
    );
    assert_eq!(next().await, "a1b2c3d4:ffffffff");
    let (s, _) = api
        .send_json(
            Method::PUT,
            "/devices?sourceID=a1b2c3d4",
            &device("a1b2c3d4", "A5-04-06"),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(next().await, "a1b2c3d4:ffffffff");
    assert_eq!(api.delete("/devices?sourceID=a1b2c3d4").await.0, 200);
    assert_eq!(next().await, "a1b2c3d4:ffffffff");
    let backup = json!({"APIVersion":"1.3.0","ExportDate":"2026-01-01T00:00:00Z","Connections":[]});
    assert_eq!(api.post("/backup", &backup).await.0, 200);
    assert_eq!(next().await, "*");
    assert_eq!(
        api.send_json(Method::PATCH, "/backup", &backup).await.0,
        200
    );
    assert_eq!(next().await, "*");
}
