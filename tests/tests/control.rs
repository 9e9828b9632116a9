//! Commands to actuators end to end (docs/control.md): MQTT and API commands reach the AP that
//! heard the device best as the exact ESP3 frame, the AP's stick answers with a RESPONSE, and
//! the outcome is an event; a disconnected AP is skipped; with no AP the command fails.

use std::time::Duration;

use enocean::esp3;
use enocean::south::sender_for;
use futures_util::StreamExt;
use iotc_core::keys;
use iotc_e2e::{Stack, Subscriber, ap, radio, until};
use prost::Message as _;
use redis::AsyncCommands;
use rumqttc::{AsyncClient, MqttOptions, QoS};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const AP1: [u8; 6] = [0x02, 0x1a, 0x1e, 0x00, 0x00, 0x11];
const AP2: [u8; 6] = [0x02, 0x1a, 0x1e, 0x00, 0x00, 0x12];
const SWITCH: u32 = 0x0190_0001;
const ID: &str = "01900001";
const BASE: u32 = 0xFF80_0000;
const WAIT: Duration = Duration::from_secs(15);
/// ESP3 v1.47 2.5.8: CO_RD_IDBASE.
const READ_BASE_ID: &str = "5500010005700838";

/// The frame the stick must get for D2-01 CMD 0x1 (Actuator Set Output), built from the
/// profile's field table: CMD bits 4-7, dim value 8-10, I/O channel 11-15, output value 17-23;
/// then the sender (base ID + offset) and status; optional data: send (3), destination, dBm
/// 0xFF, security 0.
fn set_output_frame(channel: u8, value: u8) -> Vec<u8> {
    let mut data = vec![0xD2, 0x01, channel & 0x1F, value & 0x7F];
    data.extend_from_slice(&sender_for(BASE, SWITCH).to_be_bytes());
    data.push(0x00);
    let mut optional = vec![0x03];
    optional.extend_from_slice(&SWITCH.to_be_bytes());
    optional.extend_from_slice(&[0xFF, 0x00]);
    esp3::encode_frame(0x01, &data, &optional)
}

/// The stick's RESPONSE: return code and data.
fn response(code: u8, data: &[u8]) -> Vec<u8> {
    let mut all = vec![code];
    all.extend_from_slice(data);
    esp3::encode_frame(0x02, &all, &[])
}

/// The switch's status telegram (D2-01 CMD 0x4) with output value `value`.
fn status(value: f64, dbm: i16) -> Vec<u8> {
    radio::eep_frame("D2-01-12", &[("CMD", 4.0), ("OV", value)], SWITCH, dbm)
}

/// The next southbound message on an AP's socket: (AP MAC, stick, ESP3 frame).
async fn next_south(ws: &mut ap::Socket) -> (Vec<u8>, String, Vec<u8>) {
    let msg = tokio::time::timeout(WAIT, async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Binary(b))) => return b,
                Some(Ok(_)) => continue,
                other => panic!("socket ended: {other:?}"),
            }
        }
    })
    .await
    .expect("a southbound message in time");
    let sb = aruba::IotSbMessage::decode(msg.as_ref()).expect("IotSbMessage");
    assert_eq!(sb.meta.sb_topic, Some(aruba::SbTopic::SerialDataSb as i32));
    let data = &sb.sb_s_data[0];
    (
        sb.receiver.unwrap().ap_mac.unwrap(),
        data.sb_device_id.clone().unwrap(),
        data.sb_serial_payload.clone().unwrap(),
    )
}

/// An AP answering the base ID request, then checking the command frame and answering OK.
async fn answer_command(
    ws: &mut ap::Socket,
    token: &str,
    mac: [u8; 6],
    want: &[u8],
    read_base: bool,
) {
    if read_base {
        let (to, stick, frame) = next_south(ws).await;
        assert_eq!((to.as_slice(), stick.as_str()), (&mac[..], ap::STICK));
        assert_eq!(hex::encode(&frame), READ_BASE_ID, "CO_RD_IDBASE first");
        ap::send(
            ws,
            token,
            mac,
            &[&response(0, &[0xFF, 0x80, 0x00, 0x00, 0x0A])],
        )
        .await;
    }
    let (to, _, frame) = next_south(ws).await;
    assert_eq!(to.as_slice(), &mac[..], "sent through this AP");
    assert_eq!(
        hex::encode(&frame),
        hex::encode(want),
        "the exact ESP3 frame"
    );
    ap::send(ws, token, mac, &[&response(0, &[])]).await;
}

async fn events(sub: &Subscriber, code: &str, n: usize) -> Vec<Value> {
    events_of(sub, ID, code, n).await
}

async fn events_of(sub: &Subscriber, id: &str, code: &str, n: usize) -> Vec<Value> {
    let topic = format!("sensor/{id}/meta/event");
    let has = |r: &iotc_e2e::Received| {
        r.topic == topic && r.json()["meta"]["events"]["health"][0]["code"] == code
    };
    sub.wait_until(WAIT, |all| all.iter().filter(|r| has(r)).count() >= n)
        .await;
    sub.all()
        .iter()
        .filter(|r| has(r))
        .map(|r| r.json())
        .collect()
}

/// Onboards the switch and lets AP1 hear it at -75 dBm and AP2 at -52 dBm.
async fn switch_heard_by_two(stack: &Stack, token: &str) -> (ap::Socket, ap::Socket) {
    stack
        .onboard(&json!({"sourceEurid": ID, "friendlyID": "Kitchen light", "eep": "D2-01-12"}))
        .await;
    let mut ws1 = stack.ap_socket().await;
    let mut ws2 = stack.ap_socket().await;
    ap::send(&mut ws1, token, AP1, &[&status(0.0, -75)]).await;
    ap::send(&mut ws2, token, AP2, &[&status(0.0, -52)]).await;
    let mut r = stack.redis.conn().await;
    until(WAIT, "both APs heard the switch", async || {
        let n: usize = r.hlen(keys::device_heard(ID)).await.unwrap();
        let live: usize = r
            .exists(&[
                keys::ap_ingress(&hex::encode(AP1)),
                keys::ap_ingress(&hex::encode(AP2)),
            ])
            .await
            .unwrap();
        (n == 2 && live == 2).then_some(())
    })
    .await;
    (ws1, ws2)
}

/// Publishes a command on the MQTT topic until it is in the command stream (the engine's
/// subscription may still be on its way).
async fn publish_command(stack: &Stack, body: &Value) {
    let mut options = MqttOptions::new("e2e-commander", "127.0.0.1", stack.mqtt.port);
    options.set_keep_alive(Duration::from_secs(5));
    let (client, mut el) = AsyncClient::new(options, 10);
    tokio::spawn(async move { while el.poll().await.is_ok() {} });
    let mut r = stack.redis.conn().await;
    let before: usize = r.xlen(keys::COMMAND_STREAM).await.unwrap();
    for _ in 0..20 {
        client
            .publish(
                format!("sensor/{ID}/set"),
                QoS::AtLeastOnce,
                false,
                body.to_string(),
            )
            .await
            .unwrap();
        for _ in 0..10 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let now: usize = r.xlen(keys::COMMAND_STREAM).await.unwrap();
            if now > before {
                return;
            }
        }
    }
    panic!("the engine never took the MQTT command");
}

async fn post_command(stack: &Stack, body: &Value) -> (u16, Value) {
    let res = reqwest::Client::new()
        .post(stack.api_url(&format!("/devices/command?sourceID={ID}")))
        .basic_auth(iotc_e2e::API_USER, Some(iotc_e2e::API_PASSWORD))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_from_mqtt_and_api_reach_the_best_ap_as_exact_frames() {
    let stack = Stack::start().await;
    let sub = Subscriber::start(stack.mqtt.port, &format!("sensor/{ID}/#")).await;
    let token = stack.ap_token().await;
    let (_ws1, mut ws2) = switch_heard_by_two(&stack, &token).await;

    // MQTT: AP2 heard the switch best; its stick's base ID is read first.
    publish_command(&stack, &json!([{"key": "outputValue", "value": 100}])).await;
    answer_command(&mut ws2, &token, AP2, &set_output_frame(0, 100), true).await;
    let sent = events(&sub, "COMMAND_SENT", 1).await;
    assert_eq!(sent.len(), 1, "sent event");
    assert_eq!(sent[0]["sensor"]["id"], ID);

    // The switch reports its new state as ordinary telemetry.
    ap::send(&mut ws2, &token, AP2, &[&status(100.0, -52)]).await;
    let on = sub
        .wait_until(WAIT, |all| {
            all.iter().any(|r| {
                r.topic.ends_with("/telemetry")
                    && r.json()["telemetry"]["data"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|d| d["key"] == "outputValue" && d["value"].as_f64() == Some(100.0))
            })
        })
        .await;
    assert!(on, "status telemetry shows output 100");

    // API, object form with a channel: the base ID is known now.
    let body = json!({"values": [{"key": "outputValue", "value": 0}], "channel": 1});
    let (status, accepted) = post_command(&stack, &body).await;
    assert_eq!((status, &accepted["telegram"]), (200, &json!("d2010100")));
    answer_command(&mut ws2, &token, AP2, &set_output_frame(1, 0), false).await;
    assert_eq!(events(&sub, "COMMAND_SENT", 2).await.len(), 2);

    // What the profile cannot express is refused at once.
    let (status, err) = post_command(&stack, &json!([{"key": "colour", "value": 1}])).await;
    assert_eq!(
        (status, &err["code"]),
        (400, &json!("COMMAND_NOT_EXPRESSIBLE"))
    );
    // A teach-in telegram for the switch in its learn mode: a broadcast UTE query
    // (bidirectional, response expected, all channels, manufacturer multi-user 0x7FF, D2-01-12).
    let path = format!("/devices/teach-in?sourceID={ID}");
    let (status, accepted) = api(&stack, reqwest::Method::POST, &path, None).await;
    assert_eq!(
        (status, &accepted["telegram"]),
        (200, &json!("d480ffff071201d2"))
    );
    let mut data = vec![0xD4, 0x80, 0xFF, 0xFF, 0x07, 0x12, 0x01, 0xD2];
    data.extend_from_slice(&sender_for(BASE, SWITCH).to_be_bytes());
    data.push(0x00);
    let optional = [0x03, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x00];
    let want = esp3::encode_frame(0x01, &data, &optional);
    answer_command(&mut ws2, &token, AP2, &want, false).await;
    assert_eq!(events(&sub, "COMMAND_SENT", 3).await.len(), 3);

    // On MQTT, a refusal is an event (the subscription is up: a command went through).
    let (client, mut el) = AsyncClient::new(
        MqttOptions::new("e2e-bad", "127.0.0.1", stack.mqtt.port),
        10,
    );
    tokio::spawn(async move { while el.poll().await.is_ok() {} });
    let bad = json!([{"key": "outputValue", "value": 300}]).to_string();
    client
        .publish(format!("sensor/{ID}/set"), QoS::AtLeastOnce, false, bad)
        .await
        .unwrap();
    let failed = events(&sub, "COMMAND_FAILED", 1).await;
    assert_eq!(failed.len(), 1, "refused MQTT command: failed event");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnected_ap_is_skipped_and_without_ap_the_command_fails() {
    let stack = Stack::start().await;
    let sub = Subscriber::start(stack.mqtt.port, &format!("sensor/{ID}/#")).await;
    let token = stack.ap_token().await;
    let (mut ws1, ws2) = switch_heard_by_two(&stack, &token).await;

    // AP2 heard the switch best but disconnects: AP1 takes the command.
    drop(ws2);
    let mut r = stack.redis.conn().await;
    until(WAIT, "AP2 deregistered", async || {
        let live: bool = r.exists(keys::ap_ingress(&hex::encode(AP2))).await.unwrap();
        (!live).then_some(())
    })
    .await;
    let (status, _) = post_command(&stack, &json!([{"key": "outputValue", "value": 50}])).await;
    assert_eq!(status, 200);
    answer_command(&mut ws1, &token, AP1, &set_output_frame(0, 50), true).await;
    let sent = events(&sub, "COMMAND_SENT", 1).await;
    let text = sent[0]["meta"]["events"]["health"][0]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(text.contains(&hex::encode(AP1)), "{text}");

    drop(ws1);
    until(WAIT, "AP1 deregistered", async || {
        let live: bool = r.exists(keys::ap_ingress(&hex::encode(AP1))).await.unwrap();
        (!live).then_some(())
    })
    .await;
    let (status, _) = post_command(&stack, &json!([{"key": "outputValue", "value": 1}])).await;
    assert_eq!(status, 200);
    let failed = events(&sub, "COMMAND_FAILED", 1).await;
    assert_eq!(failed.len(), 1, "failed event without an AP");
}

/// A UTE teach-in query of a D2-01-12 switch (manufacturer 0x046): bidirectional, response
/// expected, teach-in, `channels`.
fn ute_query(sender: u32, channels: u8) -> Vec<u8> {
    let data = vec![0x80, channels, 0x46, 0x00, 0x12, 0x01, 0xD2];
    radio::frame(&radio::telegram(0xD4, data, sender, 0, -60))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ute_teach_in_is_listed_outside_the_window_and_answered_and_onboarded_inside() {
    const NEW: u32 = 0x0190_0002;
    let id = "01900002";
    let stack = Stack::start().await;
    let sub = Subscriber::start(stack.mqtt.port, &format!("sensor/{id}/#")).await;
    let token = stack.ap_token().await;
    let mut ws = stack.ap_socket().await;

    // Outside a learn window: listed, not onboarded.
    ap::send(&mut ws, &token, AP1, &[&ute_query(NEW, 0xFF)]).await;
    let d = until(WAIT, "listed as unknown", async || {
        let (_, list) = stack.api_get("/devices/unknown").await;
        list.as_array().and_then(|l| l.first()).cloned()
    })
    .await;
    assert_eq!(
        (
            &d["sourceEurid"],
            &d["eep"],
            &d["manufacturer"],
            &d["count"],
            &d["gateway"]
        ),
        (
            &json!(id),
            &json!("D2-01-12"),
            &json!(0x46),
            &json!(1),
            &json!(hex::encode(AP1))
        )
    );
    let (status, _) = stack.api_get(&format!("/devices?sourceID={id}")).await;
    assert_eq!(status, 404, "nothing onboarded outside the window");

    // Inside the window: the stick answers with a UTE response, the device is onboarded.
    let res = reqwest::Client::new()
        .post(stack.api_url(&format!("/devices/learn?sourceID={id}&seconds=60")))
        .basic_auth(iotc_e2e::API_USER, Some(iotc_e2e::API_PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    ap::send(&mut ws, &token, AP1, &[&ute_query(NEW, 0x01)]).await;
    // UTE response (EEP 2.6 UTE, CMD 0x1): DB6 = teach-in accepted | CMD 1, then the query's
    // channels, manufacturer and EEP; addressed to the device.
    let mut data = vec![0xD4, 0x11, 0x01, 0x46, 0x00, 0x12, 0x01, 0xD2];
    data.extend_from_slice(&sender_for(BASE, NEW).to_be_bytes());
    data.push(0x00);
    let mut optional = vec![0x03];
    optional.extend_from_slice(&NEW.to_be_bytes());
    optional.extend_from_slice(&[0xFF, 0x00]);
    let want = esp3::encode_frame(0x01, &data, &optional);
    answer_command(&mut ws, &token, AP1, &want, true).await;
    let taught = events_of(&sub, id, "DEVICE_TAUGHT_IN", 1).await;
    assert_eq!(taught.len(), 1, "taught-in event");
    let (status, device) = stack.api_get(&format!("/devices?sourceID={id}")).await;
    assert_eq!((status, &device["eep"]), (200, &json!("D2-01-12")));
    let (_, list) = stack.api_get("/devices/unknown").await;
    assert_eq!(list, json!([]), "no longer unknown");

    // A 4BS teach-in with EEP (A5-02-05, manufacturer 0x046) in the window for all devices.
    let res = reqwest::Client::new()
        .post(stack.api_url("/devices/learn?seconds=60"))
        .basic_auth(iotc_e2e::API_USER, Some(iotc_e2e::API_PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let teach = radio::telegram(0xA5, vec![0x08, 0x28, 0x46, 0x80], 0x0190_0004, 0, -60);
    ap::send(&mut ws, &token, AP1, &[&radio::frame(&teach)]).await;
    let device = until(WAIT, "4BS teach-in onboarded", async || {
        let (status, device) = stack.api_get("/devices?sourceID=01900004").await;
        (status == 200).then_some(device)
    })
    .await;
    assert_eq!(device["eep"], "A5-02-05");
    // Both teach-ins named manufacturer 0x046; it is kept with the onboarded devices.
    let mut redis = stack.redis.conn().await;
    for eurid in [id, "01900004"] {
        let made_by: Option<u16> =
            redis::AsyncCommands::get(&mut redis, iotc_core::keys::device_manufacturer(eurid))
                .await
                .unwrap();
        assert_eq!(made_by, Some(0x046), "{eurid}");
    }
}

const VALVE: u32 = 0x0190_0003;
const VALVE_ID: &str = "01900003";

/// The valve's own telegram (A5-20-01 transmit mode) with current value `cv` %.
fn valve_telegram(cv: f64) -> Vec<u8> {
    radio::eep_frame("A5-20-01", &[("CV", cv)], VALVE, -60)
}

async fn api(
    stack: &Stack,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .request(method, stack.api_url(path))
        .basic_auth(iotc_e2e::API_USER, Some(iotc_e2e::API_PASSWORD));
    if let Some(body) = body {
        req = req.json(&body);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn queued(stack: &Stack) -> Vec<Value> {
    let (status, list) = stack
        .api_get(&format!("/devices/queue?sourceID={VALVE_ID}"))
        .await;
    assert_eq!(status, 200);
    list.as_array().cloned().unwrap_or_default()
}

async fn valve_onboarded(stack: &Stack) {
    stack
        .onboard(&json!({"sourceEurid": VALVE_ID, "friendlyID": "Radiator", "eep": "A5-20-01"}))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valve_command_waits_for_the_valve_and_goes_out_right_after_its_telegram() {
    let stack = Stack::start().await;
    let sub = Subscriber::start(stack.mqtt.port, &format!("sensor/{VALVE_ID}/#")).await;
    let token = stack.ap_token().await;
    valve_onboarded(&stack).await;
    let mut ws = stack.ap_socket().await;
    ap::send(&mut ws, &token, AP1, &[&valve_telegram(10.0)]).await;
    sub.wait_for(&format!("sensor/{VALVE_ID}/telemetry"), 1, WAIT)
        .await;

    let set = json!([{"key": "valvePositionOrTemperatureSetpoint", "value": 50}]);
    let path = format!("/devices/command?sourceID={VALVE_ID}");
    let (status, accepted) = api(&stack, reqwest::Method::POST, &path, Some(set.clone())).await;
    assert_eq!((status, &accepted["telegram"]), (200, &json!("a532000008")));
    until(WAIT, "queued", async || {
        (!queued(&stack).await.is_empty()).then_some(())
    })
    .await;
    assert_eq!(queued(&stack).await[0]["id"], accepted["id"]);

    // The valve sends: the command follows at once. Set point 50 % (SPS 0) in DB3, TMP raw
    // 0, DB0 with the LRN bit set to "data telegram".
    ap::send(&mut ws, &token, AP1, &[&valve_telegram(20.0)]).await;
    let mut data = vec![0xA5, 0x32, 0x00, 0x00, 0x08];
    data.extend_from_slice(&sender_for(BASE, VALVE).to_be_bytes());
    data.push(0x00);
    let mut optional = vec![0x03];
    optional.extend_from_slice(&VALVE.to_be_bytes());
    optional.extend_from_slice(&[0xFF, 0x00]);
    answer_command(
        &mut ws,
        &token,
        AP1,
        &esp3::encode_frame(0x01, &data, &optional),
        true,
    )
    .await;
    assert_eq!(events_of(&sub, VALVE_ID, "COMMAND_SENT", 1).await.len(), 1);
    assert!(
        queued(&stack).await.is_empty(),
        "sent commands leave the queue"
    );

    // A queued command can be dropped.
    let (status, _) = api(&stack, reqwest::Method::POST, &path, Some(set)).await;
    assert_eq!(status, 200);
    until(WAIT, "queued again", async || {
        (!queued(&stack).await.is_empty()).then_some(())
    })
    .await;
    let queue = format!("/devices/queue?sourceID={VALVE_ID}");
    let (status, _) = api(&stack, reqwest::Method::DELETE, &queue, None).await;
    assert_eq!(status, 200);
    assert!(queued(&stack).await.is_empty(), "deleted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_command_expires_with_an_event() {
    let stack = Stack::start_with(&[("IOTC_COMMAND_QUEUE_TTL_S", "1")]).await;
    let sub = Subscriber::start(stack.mqtt.port, &format!("sensor/{VALVE_ID}/#")).await;
    valve_onboarded(&stack).await;
    let set = json!([{"key": "valvePositionOrTemperatureSetpoint", "value": 30}]);
    let path = format!("/devices/command?sourceID={VALVE_ID}");
    let (status, accepted) = api(&stack, reqwest::Method::POST, &path, Some(set)).await;
    assert_eq!(status, 200);
    let expired = events_of(&sub, VALVE_ID, "COMMAND_EXPIRED", 1).await;
    assert_eq!(expired.len(), 1, "expired event");
    let text = expired[0]["meta"]["events"]["health"][0]["message"]
        .as_str()
        .unwrap();
    assert!(text.contains(accepted["id"].as_str().unwrap()), "{text}");
    assert!(queued(&stack).await.is_empty());
}

/// `iotc simulate` plays the AP and its stick: it checks the ESP3 frames the server writes and
/// answers with RESPONSE packets, so a command to one of its devices is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_ap_answers_the_stick_side() {
    let sim_id = "05a00000";
    let stack = Stack::start().await;
    let sub = Subscriber::start(stack.mqtt.port, &format!("sensor/{sim_id}/#")).await;
    let _sim = simulator(
        &stack,
        &["--gateways", "2", "--copies", "2", "--eep", "D2-01-12"],
        &[
            "--id-base",
            sim_id,
            "--rate",
            "2",
            "--onboard",
            &stack.api_url(""),
        ],
    );
    let mut r = stack.redis.conn().await;
    until(
        WAIT,
        "the simulated device is heard and onboarded",
        async || {
            let n: usize = r.hlen(keys::device_heard(sim_id)).await.unwrap();
            let (status, _) = stack.api_get(&format!("/devices?sourceID={sim_id}")).await;
            (n > 0 && status == 200).then_some(())
        },
    )
    .await;
    let path = format!("/devices/command?sourceID={sim_id}");
    let body = json!([{"key": "outputValue", "value": 100}]);
    let (status, _) = api(&stack, reqwest::Method::POST, &path, Some(body)).await;
    assert_eq!(status, 200);
    let sent = events_of(&sub, sim_id, "COMMAND_SENT", 1).await;
    assert_eq!(sent.len(), 1, "the simulated stick answered RET_OK");
    // The simulated switch now reports its new output in a status response (CMD 0x4, the
    // case with powerFailure).
    let reports = sub
        .wait_until(WAIT, |all| {
            all.iter().any(|r| {
                let data = r.json()["telemetry"]["data"].clone();
                let has = |key: &str| {
                    data.as_array()
                        .into_iter()
                        .flatten()
                        .any(|d| d["key"] == key)
                };
                let on = data
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|d| d["key"] == "outputValue" && d["value"].as_f64() == Some(100.0));
                r.topic.ends_with("/telemetry") && has("powerFailure") && on
            })
        })
        .await;
    assert!(reports, "the simulated switch reports output 100");
}

/// `iotc simulate` against the stack: one device, the given options, for two minutes.
fn simulator(stack: &Stack, options: &[&str], more: &[&str]) -> tokio::process::Child {
    tokio::process::Command::new(iotc_e2e::bin("iotc"))
        .args(stack.simulate_args())
        .args(["--devices", "1", "--duration", "120"])
        .args(options)
        .args(more)
        .env("IOT_API_USERNAME", iotc_e2e::API_USER)
        .env("IOT_API_PASSWORD", iotc_e2e::API_PASSWORD)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("iotc simulate")
}

/// Whether a telemetry message carries `key` with a value near `want`.
fn reports(all: &[iotc_e2e::Received], key: &str, want: f64) -> bool {
    all.iter().any(|r| {
        r.topic.ends_with("/telemetry")
            && r.json()["telemetry"]["data"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|d| {
                    d["key"] == key && d["value"].as_f64().is_some_and(|v| (v - want).abs() < 1.0)
                })
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_valve_takes_the_queued_set_point_right_after_it_sends() {
    let valve = "05b00000";
    let stack = Stack::start().await;
    let sub = Subscriber::start(stack.mqtt.port, &format!("sensor/{valve}/#")).await;
    let _sim = simulator(
        &stack,
        &["--gateways", "2", "--eep", "A5-20-01"],
        &[
            "--id-base",
            valve,
            // One telegram every 4 s, listening 1 s after each: a command sent at a random
            // moment would mostly be lost; the queue sends it while the valve listens.
            "--rate",
            "0.25",
            "--onboard",
            &stack.api_url(""),
        ],
    );
    let heard = sub.wait_until(WAIT, |all| {
        all.iter().any(|r| r.topic.ends_with("/telemetry"))
    });
    assert!(heard.await, "the simulated valve is heard");
    let path = format!("/devices/command?sourceID={valve}");
    let body = json!([{"key": "valvePositionOrTemperatureSetpoint", "value": 70}]);
    let (status, _) = api(&stack, reqwest::Method::POST, &path, Some(body)).await;
    assert_eq!(status, 200);
    // Queued, sent right after the valve's next telegram while it listens, answered by the
    // simulated stick; the valve then reports the set point as its current value.
    let sent = events_of(&sub, valve, "COMMAND_SENT", 1).await;
    assert_eq!(sent.len(), 1);
    let took = sub
        .wait_until(WAIT, |all| reports(all, "currentValue", 70.0))
        .await;
    assert!(took, "the simulated valve reports 70 %");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_ute_device_is_listed_then_taught_in_by_learn_mode() {
    let device = "05c00000";
    let stack = Stack::start().await;
    let sub = Subscriber::start(stack.mqtt.port, &format!("sensor/{device}/#")).await;
    let _sim = simulator(
        &stack,
        &["--gateways", "2", "--eep", "D2-01-12", "--ute"],
        &["--id-base", device, "--rate", "2"],
    );
    // Outside the learn window its UTE queries list it as unknown.
    let entry = until(WAIT, "listed as unknown", async || {
        let (_, list) = stack.api_get("/devices/unknown").await;
        let mut all = list.as_array().cloned().unwrap_or_default().into_iter();
        all.find(|d| d["sourceEurid"] == device)
    })
    .await;
    assert_eq!(entry["eep"], "D2-01-12");
    let (status, _) = stack.api_get(&format!("/devices?sourceID={device}")).await;
    assert_eq!(status, 404, "not onboarded outside the window");

    let path = "/devices/learn?seconds=60";
    let (status, _) = api(&stack, reqwest::Method::POST, path, None).await;
    assert_eq!(status, 200);
    // The next query is answered through the simulated AP and onboards the device; taught in,
    // it sends its own telegrams, which arrive as telemetry.
    let taught = events_of(&sub, device, "DEVICE_TAUGHT_IN", 1).await;
    assert_eq!(taught.len(), 1);
    let telemetry = sub
        .wait_until(WAIT, |all| {
            all.iter().any(|r| r.topic.ends_with("/telemetry"))
        })
        .await;
    assert!(telemetry, "the taught-in device's telegrams arrive");
    let (status, onboarded) = stack.api_get(&format!("/devices?sourceID={device}")).await;
    assert_eq!((status, &onboarded["eep"]), (200, &json!("D2-01-12")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_stick_moves_the_command_to_the_next_ap() {
    let stack = Stack::start_with(&[("IOTC_COMMAND_RESPONSE_TIMEOUT_MS", "500")]).await;
    let sub = Subscriber::start(stack.mqtt.port, &format!("sensor/{ID}/#")).await;
    let token = stack.ap_token().await;
    let (mut ws1, mut ws2) = switch_heard_by_two(&stack, &token).await;
    let (status, _) = post_command(&stack, &json!([{"key": "outputValue", "value": 7}])).await;
    assert_eq!(status, 200);
    // AP2 (best signal) gets the base ID request and never answers.
    let (to, _, frame) = next_south(&mut ws2).await;
    assert_eq!(
        (to.as_slice(), hex::encode(frame).as_str()),
        (&AP2[..], READ_BASE_ID)
    );
    answer_command(&mut ws1, &token, AP1, &set_output_frame(0, 7), true).await;
    let sent = events(&sub, "COMMAND_SENT", 1).await;
    let text = sent[0]["meta"]["events"]["health"][0]["message"]
        .as_str()
        .unwrap();
    assert!(text.contains(&hex::encode(AP1)), "{text}");
}
