//! Secure EnOcean devices through the whole connector: onboarded through the API with
//! `AESKey` and `slf`, their telegrams sent by an AP over the WebSocket, verified and
//! decrypted by the engine, published to mosquitto; tampered, replayed and plain telegrams
//! become IoTC's security events, also after an engine restart; a secure teach-in changes
//! the key; `iotc simulate --secure` runs end to end. Every part is the real binary.

use std::process::Command;
use std::time::Duration;

use enocean::secure::{self, SecureContext, SecureTeachIn, Slf, TeachInInfo};
use enocean::telegram::Telegram;
use enocean::{Eep, eep};
use iotc_core::keys;
use iotc_e2e::{
    API_PASSWORD, API_USER, EngineProc, Proc, Received, Stack, Subscriber, ap, bin, radio,
    spawn_api,
};
use redis::AsyncCommands;
use serde_json::{Value, json};

const AP1: [u8; 6] = [0x02, 0x5e, 0xc0, 0x00, 0x00, 0x01];
const WAIT: Duration = Duration::from_secs(15);
/// Longer than the engine's de-duplication window (500 ms): a replay is not a duplicate.
const AFTER_DEDUP: Duration = Duration::from_millis(800);

const SENSOR: u32 = 0x05ec_0001;
const SENSOR_ID: &str = "05ec0001";
const MULTI: u32 = 0x05ec_0002;
const MULTI_ID: &str = "05ec0002";
const PLAIN: u32 = 0x05ec_0003;
const PLAIN_ID: &str = "05ec0003";
const KEY: &str = "8a3f11c0d2e94b7765a1f0e2c3b4d5a6";
const NEW_KEY: &str = "00112233445566778899aabbccddeeff";
/// The engine's IOT_SECURE_PSK after the restart.
const PSK: &str = "3410de8f1aba3eff9f5a117172eacabd";

fn ctx(key: &str) -> SecureContext {
    SecureContext::from_hex(key, "f3", false).unwrap()
}

/// The ESP3 frame of a secure A5-02-05 telegram with code `rlc`.
fn temperature(ctx: &SecureContext, rlc: u32, celsius: f64) -> Vec<u8> {
    let (rorg, data, _) = eep::encode("A5-02-05".parse().unwrap(), &[("TMP", celsius)]).unwrap();
    let payload = secure::encrypt_sec_r(ctx, rlc, rorg, &data).unwrap();
    radio::frame(&radio::telegram(secure::SEC_R, payload, SENSOR, 0, -58))
}

fn telegram_of(frame: &[u8]) -> Telegram {
    Telegram::from_esp3(frame).unwrap()
}

/// The number of security events with `code` on `topic`.
fn security_events(msgs: &[Received], topic: &str, code: &str) -> usize {
    msgs.iter()
        .filter(|m| m.topic == topic)
        .filter(|m| {
            m.json()["meta"]["events"]["security"]
                .as_array()
                .is_some_and(|a| a.iter().any(|e| e["code"] == code))
        })
        .count()
}

fn temperature_of(msg: &Received) -> f64 {
    let json = msg.json();
    json["telemetry"]["data"]
        .as_array()
        .and_then(|d| d.iter().find(|f| f["key"] == "temperature"))
        .and_then(|f| f["value"].as_f64())
        .unwrap_or_else(|| panic!("no temperature in {json}"))
}

/// An API started with `ONLY_SECURE_DEVICES=1` next to the stack's own.
fn only_secure_api(stack: &Stack) -> (Proc, u16) {
    spawn_api(
        stack.dir.path(),
        &stack.redis,
        &[("ONLY_SECURE_DEVICES", "1")],
    )
}

async fn post_device(port: u16, device: &Value) -> (u16, Value) {
    let res = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/api.beta/v1/devices"))
        .basic_auth(API_USER, Some(API_PASSWORD))
        .json(device)
        .send()
        .await
        .expect("POST /devices");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// The key the API shows for a device, lower-case.
async fn api_key(stack: &Stack, id: &str) -> String {
    let (status, device) = stack.api_get(&format!("/devices?sourceID={id}")).await;
    assert_eq!(status, 200, "{device}");
    device["AESKey"]
        .as_str()
        .unwrap_or_default()
        .to_ascii_lowercase()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secure_devices_end_to_end() {
    let mut stack = Stack::start().await;
    let sub = Subscriber::start(stack.mqtt.port, "sensor/#").await;
    let telemetry = format!("sensor/{SENSOR_ID}/telemetry");
    let events = format!("sensor/{SENSOR_ID}/meta/event");

    // ONLY_SECURE_DEVICES: a plain device is refused, the secure one onboarded.
    let (_only_secure, port) = only_secure_api(&stack);
    let plain = json!({"sourceEurid": SENSOR_ID, "friendlyID": "plain", "eep": "A5-02-05"});
    let (status, body) = post_device(port, &plain).await;
    assert_eq!(status, 400, "plain device with ONLY_SECURE_DEVICES: {body}");
    let device = json!({"sourceEurid": SENSOR_ID, "friendlyID": "Secure room sensor",
        "location": "Lab", "eep": "A5-02-05", "AESKey": KEY.to_ascii_uppercase(), "slf": "F3"});
    let (status, body) = post_device(port, &device).await;
    assert!(
        (200..300).contains(&status),
        "secure device refused: {body}"
    );
    stack
        .onboard(
            &json!({"sourceEurid": MULTI_ID, "friendlyID": "Secure multisensor",
            "eep": "D2-14-41", "AESKey": KEY, "slf": "f3"}),
        )
        .await;
    stack
        .onboard(
            &json!({"sourceEurid": PLAIN_ID, "friendlyID": "Plain sensor",
            "eep": "A5-02-05"}),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let token = stack.ap_token().await;
    let mut ws = stack.ap_socket().await;
    let old = ctx(KEY);

    // A secure telegram is decoded; raw shows the verified inner telegram.
    let first = temperature(&old, 1, 21.5);
    ap::send(&mut ws, &token, AP1, &[&first]).await;
    let got = sub.wait_for(&telemetry, 1, WAIT).await;
    assert_eq!(got.len(), 1, "telemetry of the secure telegram");
    assert!((temperature_of(&got[0]) - 21.5).abs() < 0.2);
    let raw = &got[0].json()["raw"];
    assert_eq!(raw["securityLevel"], 4, "{raw}");
    assert!(raw["data"].as_str().unwrap().starts_with("a5"), "{raw}");
    assert_eq!(raw["sender"], SENSOR_ID);

    // Tampered: one bit of the encrypted data flipped.
    let mut tampered = telegram_of(&temperature(&old, 2, 22.0));
    tampered.data[2] ^= 0x01;
    ap::send(&mut ws, &token, AP1, &[&radio::frame(&tampered)]).await;
    // A plain telegram of the secure device.
    let plain_frame = radio::eep_frame("A5-02-05", &[("TMP", 35.0)], SENSOR, -58);
    ap::send(&mut ws, &token, AP1, &[&plain_frame]).await;
    // The first telegram again, after the de-duplication window.
    tokio::time::sleep(AFTER_DEDUP).await;
    ap::send(&mut ws, &token, AP1, &[&first]).await;
    assert!(
        sub.wait_until(WAIT, |m| {
            security_events(m, &events, "MAC_VALIDATION_ERROR") == 1
                && security_events(m, &events, "DEVICE_SEND_NOW_UNSECURE") == 1
                && security_events(m, &events, "RLC_REPLAY") == 1
        })
        .await,
        "security events: {:?}",
        sub.on(&events)
            .iter()
            .map(Received::json)
            .collect::<Vec<_>>()
    );
    let mac = sub
        .on(&events)
        .into_iter()
        .map(|m| m.json())
        .find(|j| j["meta"]["events"]["security"][0]["code"] == "MAC_VALIDATION_ERROR")
        .unwrap();
    assert_eq!(
        mac["meta"]["events"]["security"][0]["message"],
        format!("CMAC verification failed id={SENSOR_ID}.")
    );
    assert_eq!(mac["sensor"]["id"], SENSOR_ID);
    assert_eq!(mac["meta"]["events"]["transcoding"], json!([]));
    assert_eq!(sub.on(&telemetry).len(), 1, "nothing refused was published");

    // Counted as not processed.
    let mut r = stack.redis.conn().await;
    let stats: std::collections::HashMap<String, i64> =
        r.hgetall(keys::device_stats(SENSOR_ID)).await.unwrap();
    assert_eq!(stats.get(keys::stats::OK), Some(&1), "{stats:?}");
    assert_eq!(stats.get(keys::stats::NOT_PROCESSED), Some(&3), "{stats:?}");

    // The next genuine telegram decodes.
    let second = temperature(&old, 2, 22.0);
    ap::send(&mut ws, &token, AP1, &[&second]).await;
    assert_eq!(sub.wait_for(&telemetry, 2, WAIT).await.len(), 2);

    // A chained secure telegram (0x33) of the multisensor.
    let eep_id: Eep = "D2-14-41".parse().unwrap();
    let (rorg, data, _) = eep::encode(eep_id, &[("TMP10", 19.0), ("HUM", 55.0)]).unwrap();
    let payload = secure::encrypt_sec_r(&old, 7, rorg, &data).unwrap();
    let parts: Vec<Vec<u8>> = secure::sec_cdm_parts(1, &payload)
        .unwrap()
        .into_iter()
        .map(|p| radio::frame(&radio::telegram(secure::SEC_CDM, p, MULTI, 0, -66)))
        .collect();
    assert!(parts.len() > 1);
    let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
    ap::send(&mut ws, &token, AP1, &refs).await;
    let multi = sub
        .wait_for(&format!("sensor/{MULTI_ID}/telemetry"), 1, WAIT)
        .await;
    assert_eq!(multi.len(), 1, "chained secure telegram decoded");
    let multi = multi[0].json();
    let humidity = multi["telemetry"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["key"] == "humidity")
        .cloned()
        .unwrap_or_else(|| panic!("no humidity in {multi}"));
    assert!((humidity["value"].as_f64().unwrap() - 55.0).abs() < 1.0);
    assert_eq!(multi["raw"]["securityLevel"], 4);

    // A plain device is published while the engine accepts plain devices.
    let plain_topic = format!("sensor/{PLAIN_ID}/telemetry");
    let plain_frame = radio::eep_frame("A5-02-05", &[("TMP", 18.0)], PLAIN, -70);
    ap::send(&mut ws, &token, AP1, &[&plain_frame]).await;
    assert_eq!(sub.wait_for(&plain_topic, 1, WAIT).await.len(), 1);

    // The engine restarts, now with a pre-shared key and ONLY_SECURE_DEVICES; the replay is
    // still refused.
    stack.engine.proc.terminate(Duration::from_secs(10));
    stack.engine = EngineProc::start(
        stack.dir.path(),
        &stack.redis,
        &stack.mqtt,
        &[("IOT_SECURE_PSK", PSK), ("ONLY_SECURE_DEVICES", "1")],
    )
    .await;
    tokio::time::sleep(AFTER_DEDUP).await;
    ap::send(&mut ws, &token, AP1, &[&second]).await;
    assert!(
        sub.wait_until(WAIT, |m| security_events(m, &events, "RLC_REPLAY") == 2)
            .await,
        "replay after the restart not refused"
    );
    ap::send(&mut ws, &token, AP1, &[&temperature(&old, 3, 23.0)]).await;
    assert_eq!(sub.wait_for(&telemetry, 3, WAIT).await.len(), 3);

    // With ONLY_SECURE_DEVICES the plain device's telegrams are dropped and counted.
    let plain_frame = radio::eep_frame("A5-02-05", &[("TMP", 19.0)], PLAIN, -70);
    ap::send(&mut ws, &token, AP1, &[&plain_frame]).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let n: Option<i64> = r
            .hget(keys::device_stats(PLAIN_ID), keys::stats::NOT_PROCESSED)
            .await
            .unwrap();
        if n == Some(1) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "plain telegram not counted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(sub.on(&plain_topic).len(), 1, "plain telegram published");

    // A secure teach-in, encrypted with the pre-shared key, brings a new key.
    let teach_in = SecureTeachIn {
        info: TeachInInfo(0),
        slf: Slf::new(0xF3).unwrap(),
        rlc: 100,
        key: secure::parse_key(NEW_KEY).unwrap(),
    };
    let psk = secure::parse_key(PSK).unwrap();
    let frames: Vec<Vec<u8>> = teach_in
        .to_payloads(Some(&psk), secure::ERP1_PART_LEN)
        .unwrap()
        .into_iter()
        .map(|p| radio::frame(&radio::telegram(secure::SEC_TI, p, SENSOR, 0, -58)))
        .collect();
    // The key was set through the API: without a learn window the teach-in is refused.
    for frame in &frames {
        ap::send(&mut ws, &token, AP1, &[frame]).await;
    }
    assert!(
        sub.wait_until(WAIT, |m| security_events(
            m,
            &events,
            "SECURE_TEACH_IN_REFUSED"
        ) == 1)
            .await,
        "teach-in outside a learn window not refused\n{}",
        stack.engine.proc.log_tail(20)
    );
    assert_eq!(api_key(&stack, SENSOR_ID).await, KEY);
    // The operator opens the device's learn window through the API; the teach-in, sent
    // again, is applied.
    let opened = reqwest::Client::new()
        .post(stack.api_url(&format!("/devices/learn?sourceID={SENSOR_ID}&seconds=60")))
        .basic_auth(API_USER, Some(API_PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(opened.status(), 200);
    let window: Value = opened.json().await.unwrap();
    assert_eq!(window, json!({"sourceID": SENSOR_ID, "seconds": 60}));
    tokio::time::sleep(AFTER_DEDUP).await;
    for frame in &frames {
        ap::send(&mut ws, &token, AP1, &[frame]).await;
    }
    let deadline = tokio::time::Instant::now() + WAIT;
    while api_key(&stack, SENSOR_ID).await != NEW_KEY {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the API does not show the taught key\n{}",
            stack.engine.proc.log_tail(20)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The next telegram under the new key decodes; one under the old key does not.
    ap::send(
        &mut ws,
        &token,
        AP1,
        &[&temperature(&ctx(NEW_KEY), 100, 24.5)],
    )
    .await;
    let got = sub.wait_for(&telemetry, 4, WAIT).await;
    assert_eq!(got.len(), 4, "telemetry under the taught key");
    assert!((temperature_of(&got[3]) - 24.5).abs() < 0.2);
    ap::send(&mut ws, &token, AP1, &[&temperature(&old, 4, 25.0)]).await;
    assert!(
        sub.wait_until(WAIT, |m| security_events(
            m,
            &events,
            "MAC_VALIDATION_ERROR"
        ) == 2)
            .await,
        "old key still accepted"
    );
    assert_eq!(sub.on(&telemetry).len(), 4);

    // No key in any log line.
    for proc in [&stack.engine.proc, &stack.api, &stack.ingress] {
        let log = proc.log_tail(10_000).to_ascii_lowercase();
        for secret in [KEY, NEW_KEY, PSK] {
            assert!(!log.contains(secret), "{} logs a key", proc.name);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulator_secure_devices_reach_mqtt() {
    let stack = Stack::start().await;
    let sub = Subscriber::start(stack.mqtt.port, "sensor/+/telemetry").await;
    let out = tokio::task::spawn_blocking({
        let ingress = stack.ingress_port;
        let api = stack.api_url("");
        let mqtt = stack.mqtt.connstring();
        move || {
            Command::new(bin("iotc"))
                .args(iotc_e2e::simulate_args(ingress))
                .args(["--gateways", "2", "--shared", "0", "--devices", "4"])
                .args(["--eep", "A5-02-05,D2-14-41", "--id-base", "05ec1000"])
                .args(["--secure", "3", "--secure-teach-in"])
                .args(["--rate", "20", "--count", "24"])
                .args(["--onboard", &api])
                .args(["--api-username", API_USER, "--api-password", API_PASSWORD])
                .args(["--expect-mqtt", &mqtt, "--drain-timeout", "15"])
                .output()
                .expect("run iotc simulate")
        }
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "iotc simulate failed:\n{stdout}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        stack.engine.proc.log_tail(30)
    );
    assert!(
        stdout.contains("received 24 of 24, lost 0"),
        "{stdout}\n{}",
        stack.engine.proc.log_tail(30)
    );
    assert!(stdout.contains("teach-ins of 3 secure devices"), "{stdout}");

    // The three secure devices' telemetry was verified (level 4), the fourth is plain.
    let all = sub.all();
    for (id, level) in [
        ("05ec1000", 4),
        ("05ec1001", 4),
        ("05ec1002", 4),
        ("05ec1003", 0),
    ] {
        let mine: Vec<Value> = all
            .iter()
            .filter(|m| m.topic == format!("sensor/{id}/telemetry"))
            .map(Received::json)
            .collect();
        assert_eq!(mine.len(), 6, "{id}");
        assert!(
            mine.iter().all(|j| j["raw"]["securityLevel"] == level),
            "{id}: {mine:?}"
        );
    }
    // The registry holds the simulator's keys.
    let (_, device) = stack.api_get("/devices?sourceID=05ec1001").await;
    assert_eq!(device["slf"], "f3");
    assert_eq!(device["AESKey"].as_str().map(str::len), Some(32));
}

/// A secure telegram whose rolling code was stored, but whose publication never got
/// through (the broker is down) and whose engine is then killed: the restarted engine reads
/// the same stream entry again and publishes it, without `RLC_REPLAY`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redelivered_secure_telegram_is_published() {
    let mut stack = Stack::start().await;
    stack
        .onboard(
            &json!({"sourceEurid": SENSOR_ID, "friendlyID": "secure", "eep": "A5-02-05",
                         "AESKey": KEY, "slf": "f3"}),
        )
        .await;
    let mut ws = stack.ap_socket().await;
    let token = stack.ap_token().await;

    stack.mqtt.stop();
    ap::send(&mut ws, &token, AP1, &[&temperature(&ctx(KEY), 41, 22.5)]).await;
    // The engine accepts the code before it publishes; wait until it is stored.
    let mut r = stack.redis.conn().await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let code: Option<u32> = r.hget(keys::device_rlc(SENSOR_ID), "rlc").await.unwrap();
        if code == Some(41) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "code not stored\n{}",
            stack.engine.proc.log_tail(20)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stack.engine.proc.kill();
    let pending: redis::streams::StreamPendingReply = r
        .xpending(keys::TELEGRAM_STREAM, keys::ENGINE_GROUP)
        .await
        .unwrap();
    assert_eq!(pending.count(), 1, "the entry is still pending");

    stack.mqtt.start_again();
    let sub = Subscriber::start(stack.mqtt.port, "sensor/#").await;
    stack.engine = EngineProc::start(stack.dir.path(), &stack.redis, &stack.mqtt, &[]).await;
    let telemetry = format!("sensor/{SENSOR_ID}/telemetry");
    let got = sub.wait_for(&telemetry, 1, WAIT).await;
    assert_eq!(got.len(), 1, "{}", stack.engine.proc.log_tail(20));
    assert!((temperature_of(&got[0]) - 22.5).abs() < 0.2);
    assert_eq!(got[0].json()["raw"]["securityLevel"], 4);
    let events = format!("sensor/{SENSOR_ID}/meta/event");
    assert_eq!(
        security_events(&sub.all(), &events, "RLC_REPLAY"),
        0,
        "{:?}",
        sub.on(&events)
    );
    // The same telegram sent again by somebody else is still a replay.
    tokio::time::sleep(AFTER_DEDUP).await;
    ap::send(&mut ws, &token, AP1, &[&temperature(&ctx(KEY), 41, 22.5)]).await;
    assert!(
        sub.wait_until(WAIT, |m| security_events(m, &events, "RLC_REPLAY") == 1)
            .await
    );
    assert_eq!(sub.on(&telemetry).len(), 1);
}
