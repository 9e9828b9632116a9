//! Home Assistant discovery, state topic, availability and button events, end to end: devices
//! onboarded through the API, telegrams sent by an AP, configs read from a real mosquitto and
//! checked against Home Assistant's schema; value templates rendered on the state object.

mod ha_support;

use std::time::Duration;

use iotc_core::keys;
use iotc_e2e::{API_PASSWORD, API_USER, Received, Stack, Subscriber, ap, radio};
use serde_json::{Value, json};

const AP1: [u8; 6] = [0x02, 0x1a, 0x1e, 0x00, 0x00, 0x11];
const WAIT: Duration = Duration::from_secs(20);

const HA_ENV: &[(&str, &str)] = &[
    ("IOTC_HA_DISCOVERY", "true"),
    ("IOTC_AVAILABILITY_MIN_SECONDS", "1"),
    ("IOTC_AVAILABILITY_MAX_SECONDS", "2"),
];

/// The latest message on `topic`, once one matching `pred` arrived.
async fn latest(sub: &Subscriber, topic: &str, pred: impl Fn(&Received) -> bool) -> Received {
    let ok = sub
        .wait_until(WAIT, |all| {
            all.iter()
                .rev()
                .find(|m| m.topic == topic)
                .is_some_and(&pred)
        })
        .await;
    assert!(ok, "nothing fitting on {topic}: {:?}", sub.on(topic).last());
    sub.on(topic).pop().unwrap()
}

/// Discovery configs of one device received so far: (component, object, config), latest only.
fn configs(sub: &Subscriber, id: &str) -> Vec<(String, String, Value)> {
    configs_of(&sub.all(), id)
}

fn configs_of(all: &[Received], id: &str) -> Vec<(String, String, Value)> {
    let mut out: Vec<(String, String, Value)> = Vec::new();
    for m in all {
        let parts: Vec<&str> = m.topic.split('/').collect();
        if parts.len() != 5 || parts[0] != "homeassistant" || parts[2] != format!("iotc_{id}") {
            continue;
        }
        out.retain(|(c, o, _)| !(c == parts[1] && o == parts[3]));
        if !m.payload.is_empty() {
            out.push((parts[1].into(), parts[3].into(), m.json()));
        }
    }
    out
}

/// The device's configs once every `(component, object)` in `wanted` has arrived: a device's
/// configs are separate messages, so the first one seen says nothing about the others.
async fn configs_with(
    sub: &Subscriber,
    id: &str,
    wanted: &[(&str, &str)],
) -> Vec<(String, String, Value)> {
    sub.wait_until(WAIT, |all| {
        let got = configs_of(all, id);
        wanted
            .iter()
            .all(|(c, o)| got.iter().any(|(gc, go, _)| gc == c && go == o))
    })
    .await;
    configs(sub, id)
}

fn config<'a>(all: &'a [(String, String, Value)], component: &str, object: &str) -> &'a Value {
    all.iter()
        .find(|(c, o, _)| c == component && o == object)
        .map(|(_, _, v)| v)
        .unwrap_or_else(|| panic!("no {component}/{object} config"))
}

async fn api(stack: &Stack, method: reqwest::Method, path: &str, body: Option<Value>) {
    let mut req = reqwest::Client::new()
        .request(method, stack.api_url(path))
        .basic_auth(API_USER, Some(API_PASSWORD));
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.expect("API call");
    assert!(res.status().is_success(), "{path}: {}", res.status());
}

async fn send(stack: &Stack, frames: &[&[u8]]) {
    let token = stack.ap_token().await;
    let mut ws = stack.ap_socket().await;
    ap::send(&mut ws, &token, AP1, frames).await;
}

fn number(rendered: &str) -> Option<f64> {
    rendered.trim().parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multisensor_discovery_state_availability_and_delete() {
    let stack = Stack::start_with(HA_ENV).await;
    let sub = Subscriber::start(stack.mqtt.port, "#").await;
    let id = "0413d759";
    // As the learn mode keeps it when a teach-in names the manufacturer.
    let mut redis = stack.redis.conn().await;
    let _: () = redis::AsyncCommands::set(&mut redis, keys::device_manufacturer(id), 0x00B)
        .await
        .unwrap();
    stack
        .onboard(&json!({"sourceEurid": id, "friendlyID": "Multisensor",
                         "location": "Office 265", "eep": "D2-14-41"}))
        .await;
    let temp_topic = format!("homeassistant/sensor/iotc_{id}/temperature/config");
    latest(&sub, &temp_topic, |m| !m.payload.is_empty()).await;
    latest(
        &sub,
        "homeassistant/binary_sensor/iotc/status/config",
        |_| true,
    )
    .await;

    // Every config is valid for Home Assistant.
    let all = configs_with(
        &sub,
        id,
        &[
            ("sensor", "temperature"),
            ("sensor", "humidity"),
            ("sensor", "illumination"),
            ("binary_sensor", "contact"),
            ("sensor", "rssi"),
        ],
    )
    .await;
    for (component, object, cfg) in &all {
        if let Err(e) = ha_support::check(component, cfg) {
            panic!("{component}/{object}: {e}\n{cfg:#}");
        }
    }
    let t = config(&all, "sensor", "temperature");
    assert_eq!(t["device_class"], "temperature");
    assert_eq!(t["unit_of_measurement"], "°C");
    assert_eq!(t["state_class"], "measurement");
    assert_eq!(t["state_topic"], format!("sensor/{id}/state"));
    assert_eq!(t["unique_id"], format!("iotc_{id}_temperature"));
    assert_eq!(t["device"]["name"], "Multisensor");
    assert_eq!(t["device"]["suggested_area"], "Office 265");
    assert_eq!(t["device"]["via_device"], "iotc");
    assert_eq!(t["device"]["manufacturer"], "EnOcean manufacturer 0x00B");
    assert!(
        t["device"]["model"]
            .as_str()
            .unwrap()
            .starts_with("D2-14-41 ")
    );
    let avail: Vec<&str> = t["availability"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["topic"].as_str().unwrap())
        .collect();
    assert_eq!(
        avail,
        ["system/availability", &format!("sensor/{id}/availability")]
    );
    assert_eq!(
        config(&all, "sensor", "humidity")["device_class"],
        "humidity"
    );
    assert_eq!(
        config(&all, "sensor", "illumination")["device_class"],
        "illuminance"
    );
    assert_eq!(
        config(&all, "binary_sensor", "contact")["device_class"],
        "window"
    );
    assert_eq!(
        config(&all, "sensor", "rssi")["entity_category"],
        "diagnostic"
    );

    // A telegram: telemetry as before, plus the state object and `online`.
    let frame = radio::eep_frame(
        "D2-14-41",
        &[("TMP10", 21.5), ("HUM", 40.0), ("ILL", 320.0), ("CO", 0.0)],
        0x0413_d759,
        -61,
    );
    send(&stack, &[&frame]).await;
    let telemetry = latest(&sub, &format!("sensor/{id}/telemetry"), |_| true)
        .await
        .json();
    let state = latest(&sub, &format!("sensor/{id}/state"), |_| true).await;
    let state_json = state.json();
    assert_eq!(state_json["rssi"], -61);
    let online = latest(&sub, &format!("sensor/{id}/availability"), |_| true).await;
    assert_eq!(online.payload, b"online");

    // Each decoded value, through its entity's template, is what the telemetry says.
    let mut rendered = 0;
    for f in telemetry["telemetry"]["data"].as_array().unwrap() {
        let key = f["key"].as_str().unwrap();
        let Some((component, _, cfg)) = all.iter().find(|(_, o, _)| o == key) else {
            continue;
        };
        let out = ha_support::render(cfg["value_template"].as_str().unwrap(), &state_json);
        match component.as_str() {
            "binary_sensor" => {
                let on = f["value"] == "open";
                assert_eq!(out, if on { "ON" } else { "OFF" }, "{key}");
            }
            _ if f["value"].is_number() => {
                let want = f["value"].as_f64().unwrap();
                assert!(
                    (number(&out).expect(key) - want).abs() < 1e-9,
                    "{key}: {out} != {want}"
                );
            }
            _ => assert_eq!(out, f["value"].as_str().unwrap(), "{key}"),
        }
        rendered += 1;
    }
    assert!(rendered >= 8, "only {rendered} values rendered");
    let rssi = config(&all, "sensor", "rssi");
    let out = ha_support::render(rssi["value_template"].as_str().unwrap(), &state_json);
    assert_eq!(number(&out), Some(-61.0));

    // Silent for longer than its timeout: offline.
    let offline = latest(&sub, &format!("sensor/{id}/availability"), |m| {
        m.payload == b"offline"
    })
    .await;
    assert!(offline.payload == b"offline");

    // A new EEP replaces the entities: humidity is gone, temperature stays.
    api(
        &stack,
        reqwest::Method::PUT,
        &format!("/devices?sourceID={id}"),
        Some(json!({"sourceEurid": id, "friendlyID": "Multisensor", "eep": "A5-02-05"})),
    )
    .await;
    let humidity = format!("homeassistant/sensor/iotc_{id}/humidity/config");
    latest(&sub, &humidity, |m| m.payload.is_empty()).await;
    let t = latest(&sub, &temp_topic, |m| {
        !m.payload.is_empty() && m.json()["device"]["model_id"] == "A5-02-05"
    })
    .await;
    assert!(ha_support::check("sensor", &t.json()).is_ok());

    // Deleting the device clears every config, its state and availability.
    api(
        &stack,
        reqwest::Method::DELETE,
        &format!("/devices?sourceID={id}"),
        None,
    )
    .await;
    latest(&sub, &temp_topic, |m| m.payload.is_empty()).await;
    latest(&sub, &format!("sensor/{id}/state"), |m| {
        m.payload.is_empty()
    })
    .await;
    assert!(configs(&sub, id).is_empty(), "{:?}", configs(&sub, id));
    // A subscriber that comes later gets no retained config of the device.
    let late = Subscriber::start(stack.mqtt.port, "homeassistant/#").await;
    latest(
        &late,
        "homeassistant/binary_sensor/iotc/status/config",
        |_| true,
    )
    .await;
    assert!(configs(&late, id).is_empty());
    // The manufacturer went with the device.
    let made_by: Option<u16> = redis::AsyncCommands::get(&mut redis, keys::device_manufacturer(id))
        .await
        .unwrap();
    assert_eq!(made_by, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actuators_get_command_entities_on_the_control_topic() {
    let stack = Stack::start_with(HA_ENV).await;
    let sub = Subscriber::start(stack.mqtt.port, "homeassistant/#").await;
    let devices = [
        ("d2010000", "D2-01-00", "switch", "switch"),
        ("d2010012", "D2-01-12", "switch", "switch_ch1"),
        ("d2010014", "D2-01-14", "switch", "switch_ch7"),
        ("d2010002", "D2-01-02", "light", "light"),
        ("d2050000", "D2-05-00", "cover", "cover"),
        ("a5200001", "A5-20-01", "valve", "valve"),
        ("a5200001", "A5-20-01", "climate", "climate"),
        ("a5200006", "A5-20-06", "valve", "valve"),
        ("a5200006", "A5-20-06", "climate", "climate"),
    ];
    for (i, (id, eep, component, object)) in devices.into_iter().enumerate() {
        if i == 0 || devices[i - 1].0 != id {
            stack
                .onboard(&json!({"sourceEurid": id, "friendlyID": component, "eep": eep}))
                .await;
        }
        let topic = format!("homeassistant/{component}/iotc_{id}/{object}/config");
        let cfg = latest(&sub, &topic, |m| !m.payload.is_empty()).await.json();
        let command = cfg
            .get("command_topic")
            .or(cfg.get("temperature_command_topic"));
        assert_eq!(command, Some(&json!(format!("sensor/{id}/set"))), "{eep}");
        for (c, object, cfg) in configs(&sub, id) {
            if let Err(e) = ha_support::check(&c, &cfg) {
                panic!("{eep} {c}/{object}: {e}\n{cfg:#}");
            }
        }
    }
    let switch = configs_with(&sub, "d2010000", &[("switch", "switch")]).await;
    let s = config(&switch, "switch", "switch");
    assert_eq!(s["payload_on"], r#"[{"key":"outputValue","value":100}]"#);
    assert_eq!(s["payload_off"], r#"[{"key":"outputValue","value":0}]"#);
    let on = ha_support::render(
        s["value_template"].as_str().unwrap(),
        &json!({"outputValue": 40}),
    );
    assert_eq!(on, "ON");

    // Multi-channel: one switch per channel, each with its channel and its own state.
    let channels: Vec<String> = (0..8).map(|c| format!("switch_ch{c}")).collect();
    let wanted: Vec<(&str, &str)> = channels.iter().map(|o| ("switch", o.as_str())).collect();
    let eight = configs_with(&sub, "d2010014", &wanted).await;
    let switches: Vec<&Value> = eight
        .iter()
        .filter(|(c, _, _)| c == "switch")
        .map(|(_, _, cfg)| cfg)
        .collect();
    assert_eq!(switches.len(), 8, "D2-01-14 has eight channels");
    let two = configs_with(
        &sub,
        "d2010012",
        &[
            ("switch", "switch_ch0"),
            ("switch", "switch_ch1"),
            ("sensor", "outputValue_ch1"),
        ],
    )
    .await;
    let second = config(&two, "switch", "switch_ch1");
    assert_eq!(second["name"], "Output 2");
    assert_eq!(
        second["payload_off"],
        r#"{"values":[{"key":"outputValue","value":0}],"channel":1}"#
    );
    let template = second["value_template"].as_str().unwrap();
    let state = json!({"outputValue": 0, "outputValue_ch0": 0, "outputValue_ch1": 100});
    assert_eq!(ha_support::render(template, &state), "ON");
    let first = config(&two, "switch", "switch_ch0");
    let template = first["value_template"].as_str().unwrap();
    assert_eq!(ha_support::render(template, &state), "OFF");
    assert!(
        two.iter().all(|(_, o, _)| o != "switch"),
        "no channel-less switch"
    );
    let per_channel = config(&two, "sensor", "outputValue_ch1");
    assert_eq!(per_channel["name"], "Output value (channel 2)");

    let light = configs_with(&sub, "d2010002", &[("light", "light")]).await;
    let l = config(&light, "light", "light");
    let body = ha_support::render(
        l["brightness_command_template"].as_str().unwrap(),
        &json!({}),
    );
    assert_eq!(
        body, r#"[{"key":"outputValue","value":}]"#,
        "value comes from HA"
    );
    // A light compares its rendered state with its payloads (it has no state_on).
    let template = l["state_value_template"].as_str().unwrap();
    let on = ha_support::render(template, &json!({"outputValue": 40}));
    assert_eq!(on, l["payload_on"].as_str().unwrap());
    let off = ha_support::render(template, &json!({"outputValue": 0}));
    assert_eq!(off, l["payload_off"].as_str().unwrap());
    let cover = configs_with(&sub, "d2050000", &[("cover", "cover")]).await;
    let c = config(&cover, "cover", "cover");
    let pos = ha_support::render(
        c["position_template"].as_str().unwrap(),
        &json!({"position": 30}),
    );
    assert_eq!(pos.trim(), "70", "EnOcean 30 % closed is HA 70 % open");
    let unknown = ha_support::render(
        c["position_template"].as_str().unwrap(),
        &json!({"position": "positionUnknown"}),
    );
    assert_eq!(
        unknown.trim(),
        "None",
        "HA's PAYLOAD_NONE: position unknown"
    );

    // Battery valves as thermostats: the target temperature is the set point in °C, with the
    // valve's own temperature as the room temperature; the control egress encodes it.
    thermostat_sends_set_point_and_room(&sub, "a5200001", "A5-20-01", (137, 131)).await;
    thermostat_sends_set_point_and_room(&sub, "a5200006", "A5-20-06", (43, 78)).await;
}

/// The thermostat of valve `id` at 21.5 °C with the room at 19.5 °C: the raw set point and
/// room temperature bytes (DB3, DB2) of the telegram the control egress encodes.
async fn thermostat_sends_set_point_and_room(
    sub: &Subscriber,
    id: &str,
    eep: &str,
    (set_point, room): (u8, u8),
) {
    let valve = configs_with(sub, id, &[("climate", "climate")]).await;
    let t = config(&valve, "climate", "climate");
    let reported = json!({"temperature": 19.5, "currentValue": 30});
    let current = ha_support::render(
        t["current_temperature_template"].as_str().unwrap(),
        &reported,
    );
    assert_eq!(current.trim(), "19.5", "{eep}");
    let action = ha_support::render(t["action_template"].as_str().unwrap(), &reported);
    assert_eq!(action, "heating", "{eep}");
    let body = ha_support::render_command(
        t["temperature_command_template"].as_str().unwrap(),
        &json!(21.5),
        &json!({"current_temperature": 19.5}),
    );
    let encoded = iotc_core::command::CommandBody::parse(body.as_bytes())
        .unwrap()
        .encode(eep, u32::from_str_radix(id, 16).unwrap())
        .unwrap();
    assert_eq!(encoded.rorg, 0xA5, "{eep}");
    assert_eq!(
        (encoded.data[0], encoded.data[1]),
        (set_point, room),
        "{eep} {body}"
    );
    assert_ne!(
        encoded.data[2] & 0x04,
        0,
        "{eep}: SPS, temperature set point"
    );
    assert_ne!(
        encoded.data[3] & 0x08,
        0,
        "{eep}: a data telegram, not a teach-in"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rocker_press_and_release_are_events() {
    let stack = Stack::start_with(HA_ENV).await;
    let sub = Subscriber::start(stack.mqtt.port, "#").await;
    let id = "fe0000a1";
    stack
        .onboard(&json!({"sourceEurid": id, "friendlyID": "Hall switch", "eep": "F6-02-01"}))
        .await;
    let topic = format!("homeassistant/event/iotc_{id}/buttonA0/config");
    let cfg = latest(&sub, &topic, |m| !m.payload.is_empty()).await.json();
    ha_support::check("event", &cfg).unwrap();
    assert_eq!(cfg["event_types"], json!(["press", "release"]));
    assert_eq!(cfg["state_topic"], format!("sensor/{id}/action/buttonA0"));
    assert_eq!(cfg["device_class"], "button");
    assert_eq!(
        cfg["availability"].as_array().unwrap().len(),
        1,
        "a switch has no rhythm: only the engine's availability"
    );

    let press = radio::eep_frame(
        "F6-02-01",
        &[("R1", 1.0), ("EB", 1.0), ("T21", 1.0), ("NU", 1.0)],
        0xfe00_00a1,
        -55,
    );
    let release = radio::eep_frame(
        "F6-02-01",
        &[("EB", 0.0), ("T21", 1.0), ("NU", 0.0)],
        0xfe00_00a1,
        -55,
    );
    send(&stack, &[&press]).await;
    let action = format!("sensor/{id}/action/buttonA0");
    let got = latest(&sub, &action, |_| true).await;
    assert_eq!(got.json(), json!({"event_type": "press"}));
    send(&stack, &[&release]).await;
    let got = latest(&sub, &action, |m| m.json()["event_type"] == "release").await;
    assert_eq!(got.json(), json!({"event_type": "release"}));
    assert!(
        sub.on(&format!("sensor/{id}/action/buttonB0")).is_empty(),
        "only the pressed button"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_object_survives_an_engine_restart() {
    let env = &[("IOTC_STATE_TOPIC", "true")];
    let mut stack = Stack::start_with(env).await;
    let sub = Subscriber::start(stack.mqtt.port, "sensor/#").await;
    let id = "0512a001";
    stack
        .onboard(&json!({"sourceEurid": id, "friendlyID": "Meter", "eep": "A5-12-01"}))
        .await;
    let state_topic = format!("sensor/{id}/state");
    let energy = radio::eep_frame("A5-12-01", &[("MR", 1234.0), ("DT", 0.0)], 0x0512_a001, -70);
    send(&stack, &[&energy]).await;
    let first = latest(&sub, &state_topic, |_| true).await.json();
    assert_eq!(first["meterReading_kWh"], 1234.0);
    assert!(first.get("meterReading_W").is_none());

    stack.restart_engine(env).await;
    let power = radio::eep_frame("A5-12-01", &[("MR", 500.0), ("DT", 1.0)], 0x0512_a001, -70);
    send(&stack, &[&power]).await;
    let after = latest(&sub, &state_topic, |m| {
        m.json().get("meterReading_W").is_some()
    })
    .await
    .json();
    assert_eq!(after["meterReading_W"], 500.0);
    assert_eq!(
        after["meterReading_kWh"], 1234.0,
        "the value from before the restart is kept"
    );
    // Discovery is off: no configs, and IoTC's telemetry is unchanged.
    assert!(
        sub.on(&format!("sensor/{id}/telemetry")).len() >= 2,
        "telemetry published as before"
    );
    assert!(sub.on(&format!("sensor/{id}/availability")).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_is_published_again_after_the_broker_lost_it() {
    let mut env = HA_ENV.to_vec();
    env.push(("MQTT_RECONNECT_MAX", "1"));
    let mut stack = Stack::start_with(&env).await;
    let id = "0413d7a0";
    let topic = format!("homeassistant/sensor/iotc_{id}/temperature/config");
    {
        let sub = Subscriber::start(stack.mqtt.port, "homeassistant/#").await;
        stack
            .onboard(&json!({"sourceEurid": id, "friendlyID": "Multisensor 2", "eep": "D2-14-41"}))
            .await;
        latest(&sub, &topic, |m| !m.payload.is_empty()).await;
    }
    // A broker without persistence forgets retained messages when it restarts.
    stack.mqtt.stop();
    stack.mqtt.start_again();
    let sub = Subscriber::start(stack.mqtt.port, "homeassistant/#").await;
    let cfg = latest(&sub, &topic, |m| !m.payload.is_empty()).await.json();
    assert_eq!(cfg["device"]["name"], "Multisensor 2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn availability_timeout_set_through_the_api() {
    // Learned timeouts would be at least an hour here: only the one set by hand can expire.
    let env = &[
        ("IOTC_DEVICE_AVAILABILITY", "true"),
        ("IOTC_AVAILABILITY_MIN_SECONDS", "3600"),
        ("IOTC_AVAILABILITY_MAX_SECONDS", "7200"),
    ];
    let stack = Stack::start_with(env).await;
    let sub = Subscriber::start(stack.mqtt.port, "sensor/#").await;
    let id = "0413d7b0";
    stack
        .onboard(&json!({"sourceEurid": id, "friendlyID": "Multisensor 3", "eep": "D2-14-41"}))
        .await;
    let path = format!("/devices/availability?sourceID={id}&seconds=1");
    api(&stack, reqwest::Method::PUT, &path, None).await;
    let (status, set) = stack.api_get("/devices/availability").await;
    assert_eq!(
        (status, set),
        (200, json!([{"sourceID": id, "seconds": 1}]))
    );
    let frame = radio::eep_frame("D2-14-41", &[("TMP10", 20.0)], 0x0413_d7b0, -60);
    send(&stack, &[&frame]).await;
    let topic = format!("sensor/{id}/availability");
    latest(&sub, &topic, |m| m.payload == b"online").await;
    latest(&sub, &topic, |m| m.payload == b"offline").await;
    assert!(
        sub.on(&format!("sensor/{id}/state")).is_empty(),
        "availability alone publishes no state object"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bridge_is_announced_before_any_device_is_onboarded() {
    let stack = Stack::start_with(HA_ENV).await;
    let sub = Subscriber::start(stack.mqtt.port, "homeassistant/#").await;
    let bridge = latest(
        &sub,
        "homeassistant/binary_sensor/iotc/status/config",
        |m| !m.payload.is_empty(),
    )
    .await;
    let cfg = bridge.json();
    assert_eq!(cfg["state_topic"], "system/availability");
    assert_eq!(cfg["payload_on"], "online");
    assert_eq!(cfg["unique_id"], "iotc_bridge_status");
}
