//! iotc-ingress against a real redis-server: authentication, the AP WebSocket, forwarding,
//! de-duplication across gateways, broken frames, AP health, readiness and configuration.

mod common;

use std::sync::Arc;
use std::time::Duration;

use aruba::{ApHealthUpdate, HealthStatus, Reporter, Telemetry, UsbDevice};
use futures_util::{SinkExt, StreamExt};
use prost::Message as _;
use redis::Commands;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use common::{Ingress, PASSWORD, RedisServer, STATIC_TOKEN, USER, metric, wait_for};
use iotc_core::bus::TelegramEntry;
use iotc_core::keys;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const MAC_A: [u8; 6] = [0x90, 0x4c, 0x81, 0xcf, 0x38, 0x86];
const MAC_B: [u8; 6] = [0x20, 0x4c, 0x03, 0x34, 0x44, 0x41];
const USB: &str = "ENOCEAN_USB:f6a68e740ecc549496d4b63072a33920";
/// The interface guide's signal telegram (vectors.json `official_esp3_nb_signal_telegram`).
const SIGNAL: &str = "55000807013dd006490412f2948001ffffffff4d009d";
/// The same transmission as heard through one repeater by another AP: status 0x81, dBm -90.
const SIGNAL_REPEATED: &str = "55000807013dd006490412f2948101ffffffff5a00";
/// vectors.json `esp3_rps_ptm215`.
const RPS: &str = "55000707017af600feee14ab2000ffffffff4700ad";
/// The interface guide's serial data message (vectors.json `official_aos8_nb_serialDataNb`).
const OFFICIAL_SERIAL: &str = "0a100801120a30313233343536373839180812440a053531352d321206904c81cf38861a0d3139322e3136382e382e3132322a0641502d353135320f382e382e302e302d382e382e302e303a05373936383040d7caf382065a460a1655000807013dd006490412f2948001ffffffff4d009d122c454e4f4345414e5f5553423a6636613638653734306563633534393439366434623633303732613333393230";
/// The interface guide's health message (vectors.json `official_aos8_nb_apHealthUpdate`).
const OFFICIAL_HEALTH: &str = "0a100801120a30313233343536373839180912440a053531352d321206904c81cf38861a0d3139322e3136382e382e3132322a0641502d353135320f382e382e302e302d382e382e302e303a053739313739408a8ed081066246080012100a06204c0339e22c10011800200028001a300a2c454e4f4345414e5f5553423a66366136386537343065636335343934393664346236333037326133333932301000";

fn bytes(h: &str) -> Vec<u8> {
    hex::decode(h).unwrap()
}

/// A frame with a valid CRC8D: SIGNAL_REPEATED is written without its last byte.
fn with_crc(frame_without_crc: &str) -> Vec<u8> {
    let raw = bytes(frame_without_crc);
    let packet = &raw[6..];
    let data_len = u16::from_be_bytes([raw[1], raw[2]]) as usize;
    enocean::esp3::encode_frame(raw[4], &packet[..data_len], &packet[data_len..])
}

fn reporter(mac: [u8; 6]) -> Reporter {
    Reporter {
        name: Some("ap-test".into()),
        mac: Some(mac.to_vec()),
        hw_type: Some("AP-505".into()),
        sw_version: Some("8.10.0.8-8.10.0.8".into()),
        time: Some(1_700_000_000),
        ..Reporter::default()
    }
}

fn serial(token: &str, mac: [u8; 6], frame: &[u8]) -> Vec<u8> {
    Telemetry::serial_data(token, reporter(mac), USB, &[frame]).encode_to_vec()
}

/// An official vector with our token put in.
fn official(hex_msg: &str, token: &str) -> Vec<u8> {
    let mut msg = Telemetry::decode(bytes(hex_msg).as_slice()).unwrap();
    msg.meta.access_token = Some(token.to_string());
    msg.encode_to_vec()
}

async fn connect(ingress: &Ingress, path: &str) -> Ws {
    let (ws, _) = tokio_tungstenite::connect_async(ingress.ws_url(path))
        .await
        .unwrap();
    ws
}

async fn send(ws: &mut Ws, message: Vec<u8>) {
    ws.send(Message::Binary(message.into())).await.unwrap();
}

/// The close code the server ends the connection with.
async fn close_code(ws: &mut Ws) -> Option<CloseCode> {
    let wait = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(msg) = ws.next().await {
            match msg {
                Ok(Message::Close(frame)) => return frame.map(|f| f.code),
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
        None
    });
    wait.await.expect("the server did not close the connection")
}

fn http() -> reqwest::Client {
    reqwest::Client::new()
}

async fn login(ingress: &Ingress) -> String {
    let body = serde_json::json!({"grant_type": "password", "username": USER, "password": PASSWORD, "client_id": "1111", "scope": "Aruba_IoT_Framework"});
    let answer: serde_json::Value = http()
        .post(ingress.http_url("/auth/aruba"))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["access_token"].as_str().unwrap().to_string()
}

fn entries(redis: &RedisServer) -> Vec<TelegramEntry> {
    let reply: redis::streams::StreamRangeReply =
        redis.conn().xrange_all(keys::TELEGRAM_STREAM).unwrap();
    reply
        .ids
        .iter()
        .map(|id| {
            let raw: Vec<u8> = id.get(iotc_core::bus::FIELD).unwrap();
            TelegramEntry::decode(&raw).unwrap()
        })
        .collect()
}

fn gateway_stat(redis: &RedisServer, mac: &str, field: &str) -> i64 {
    let value: Option<i64> = redis.conn().hget(keys::gateway_stats(mac), field).unwrap();
    value.unwrap_or(0)
}

/// Waits until `gateway_stats(mac).field` reaches `want`.
fn wait_stat(redis: &RedisServer, mac: &str, field: &str, want: i64) {
    let reached = wait_for(Duration::from_secs(10), || {
        (gateway_stat(redis, mac, field) >= want).then_some(())
    });
    assert!(reached.is_some(), "{mac} {field} never reached {want}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_accepts_right_credentials_only() {
    let redis = RedisServer::start();
    let ingress = Ingress::start(&redis.url(), &[("IOT_AUTH_CALLBACK", "iotc.example:8080")]);
    let url = ingress.http_url("/auth/aruba");

    let good = serde_json::json!({"grant_type": "password", "username": USER, "password": PASSWORD, "client_id": "1111"});
    let response = http().post(&url).json(&good).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["api_url"], "wss://iotc.example:8080/aruba");
    let token = body["access_token"].as_str().unwrap();
    assert!(token.len() >= 32);
    let stored: Vec<String> = redis
        .conn()
        .keys(format!("{}*", keys::AUTH_TOKEN_PREFIX))
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert!(!stored[0].contains(token), "the token itself is not stored");
    let ttl: i64 = redis.conn().ttl(&stored[0]).unwrap();
    assert!((3590..=3600).contains(&ttl), "ttl {ttl}");

    let wrong = serde_json::json!({"grant_type": "password", "username": USER, "password": "nope"});
    let response = http().post(&url).json(&wrong).send().await.unwrap();
    assert_eq!(response.status(), 401);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error_description"], "Incorrect credentials.");

    let response = http()
        .post(&url)
        .body("username=ap-user&password=ap-password")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("not JSON")
    );

    let missing = serde_json::json!({"grant_type": "password", "username": USER});
    assert_eq!(
        http()
            .post(&url)
            .json(&missing)
            .send()
            .await
            .unwrap()
            .status(),
        400
    );
    let other = serde_json::json!({"grant_type": "implicit"});
    assert_eq!(
        http()
            .post(&url)
            .json(&other)
            .send()
            .await
            .unwrap()
            .status(),
        400
    );

    let secret = serde_json::json!({"grant_type": "client_credentials", "client_id": USER, "client_secret": PASSWORD});
    assert_eq!(
        http()
            .post(&url)
            .json(&secret)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    assert_eq!(
        metric(&ingress, "iotc_ingress_auth_requests_total{result=\"ok\"}").await,
        2.0
    );
    assert_eq!(
        metric(
            &ingress,
            "iotc_ingress_auth_requests_total{result=\"wrong_credentials\"}"
        )
        .await,
        1.0
    );
    assert_eq!(
        metric(
            &ingress,
            "iotc_ingress_auth_requests_total{result=\"not_json\"}"
        )
        .await,
        1.0
    );
    assert_eq!(
        metric(
            &ingress,
            "iotc_ingress_auth_requests_total{result=\"invalid_request\"}"
        )
        .await,
        1.0
    );
    assert_eq!(
        metric(
            &ingress,
            "iotc_ingress_auth_requests_total{result=\"unsupported_grant\"}"
        )
        .await,
        1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telegram_with_issued_token_reaches_the_stream() {
    let redis = RedisServer::start();
    let ingress = Ingress::start(&redis.url(), &[]);
    let token = login(&ingress).await;
    let mut ws = connect(&ingress, "/aruba").await;
    send(&mut ws, official(OFFICIAL_SERIAL, &token)).await;
    wait_stat(&redis, "904c81cf3886", keys::stats::TOTAL, 1);

    let got = entries(&redis);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].esp3, bytes(SIGNAL));
    assert_eq!(got[0].gateway_mac, MAC_A);
    assert_eq!(got[0].usb_id, USB);
    assert_eq!(got[0].dbm, -77);
    let age = iotc_core::ops::unix_millis().abs_diff(got[0].received_ms);
    assert!(age < 60_000);

    let record: String = redis.conn().hget(keys::GATEWAYS, "904c81cf3886").unwrap();
    let record: iotc_core::model::GatewayRecord = serde_json::from_str(&record).unwrap();
    assert_eq!(record.hardware_descriptor, "AP-515");
    assert_eq!(record.software_version, "8.8.0.0");
    assert!(record.last_seen > 0);

    // The other path and the static token work too.
    let mut ws2 = connect(&ingress, "/aruba/aos8").await;
    send(&mut ws2, serial(STATIC_TOKEN, MAC_B, &bytes(RPS))).await;
    wait_stat(&redis, "204c03344441", keys::stats::TOTAL, 1);
    assert_eq!(entries(&redis).len(), 2);
    assert_eq!(forwarded_reaching(&ingress, 2.0).await, 2.0);
}

/// `iotc_ingress_telegrams_forwarded_total` once it reached `want` (or after 5 s): it is
/// counted when a forwarding call is over, just after its telegrams are in the stream.
async fn forwarded_reaching(ingress: &Ingress, want: f64) -> f64 {
    let mut value = 0.0;
    for _ in 0..250 {
        value = metric(ingress, "iotc_ingress_telegrams_forwarded_total").await;
        if value >= want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    value
}

/// HSET calls Redis has run so far (scripts included), from INFO commandstats.
fn hset_calls(redis: &RedisServer) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut redis.conn())
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("cmdstat_hset:calls="))
        .and_then(|rest| rest.split(',').next()?.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_last_seen_is_written_at_most_once_a_second() {
    let redis = RedisServer::start();
    let ingress = Ingress::start(&redis.url(), &[]);
    let mut ws = connect(&ingress, "/aruba").await;
    let started = std::time::Instant::now();
    let before = hset_calls(&redis);
    const N: u8 = 200;
    for i in 0..N {
        // RPS telegrams of one sender with distinct data: every one is new.
        let frame = with_crc(&format!("55000707017af6{i:02x}feee14ab2000ffffffff4700"));
        send(&mut ws, serial(STATIC_TOKEN, MAC_A, &frame)).await;
    }
    wait_stat(&redis, "904c81cf3886", keys::stats::TOTAL, i64::from(N));
    // `lastSeen`, the registry record and the reception hash's time to live follow the
    // telegrams' pipeline (they depend on its answers).
    let heard_key = keys::device_heard("feee14ab");
    let written = wait_for(Duration::from_secs(5), || {
        let ttl: i64 = redis.conn().ttl(&heard_key).ok()?;
        (gateway_stat(&redis, "904c81cf3886", "lastSeen") > 0 && ttl > 0).then_some(())
    });
    assert!(written.is_some(), "lastSeen and the time to live written");
    let writes = hset_calls(&redis) - before;
    // Each second at most the stats field, the registry record and the sender's reception
    // record; 3 per telegram before. The run spans at most this many distinct unix seconds.
    let seconds = started.elapsed().as_secs() + 2;
    assert!(
        writes <= 3 * seconds,
        "{writes} HSET calls for {N} telegrams in {seconds} s"
    );
    assert_eq!(entries(&redis).len(), usize::from(N));
    assert!(gateway_stat(&redis, "904c81cf3886", "lastSeen") > 0);
    let record: String = redis.conn().hget(keys::GATEWAYS, "904c81cf3886").unwrap();
    let record: iotc_core::model::GatewayRecord = serde_json::from_str(&record).unwrap();
    assert!(record.last_seen > 0);
    // The sender's reception record, written with the telegrams, for the control egress.
    let heard: String = redis.conn().hget(&heard_key, "904c81cf3886").unwrap();
    let parts: Vec<&str> = heard.split(',').collect();
    assert_eq!(parts.len(), 3, "{heard}");
    assert!(parts[0].parse::<u64>().unwrap() > 0);
    let ttl: i64 = redis.conn().ttl(&heard_key).unwrap();
    assert!(ttl > 0 && ttl <= 86_400, "TTL {ttl}");
}

/// Every copy goes to the stream with the AP that heard it: the engine reading the
/// partition drops the copies (crates/iotc-engine/src/dedup.rs, tests/tests/e2e.rs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_copy_of_a_telegram_is_appended_with_its_gateway() {
    let redis = RedisServer::start();
    let ingress = Ingress::start(&redis.url(), &[]);
    let mut a = connect(&ingress, "/aruba").await;
    let mut b = connect(&ingress, "/aruba").await;
    let repeated = with_crc(SIGNAL_REPEATED);
    assert_ne!(repeated, bytes(SIGNAL));
    send(&mut a, serial(STATIC_TOKEN, MAC_A, &bytes(SIGNAL))).await;
    wait_stat(&redis, "904c81cf3886", keys::stats::TOTAL, 1);
    send(&mut b, serial(STATIC_TOKEN, MAC_B, &repeated)).await;
    wait_stat(&redis, "204c03344441", keys::stats::TOTAL, 1);
    let got = entries(&redis);
    assert_eq!(got.len(), 2, "one stream entry per reception");
    assert_eq!((got[0].gateway_mac, got[1].gateway_mac), (MAC_A, MAC_B));
    assert_eq!(
        (got[0].esp3.clone(), got[1].esp3.clone()),
        (bytes(SIGNAL), repeated)
    );
    assert_eq!(forwarded_reaching(&ingress, 2.0).await, 2.0);
}

/// A device's reception hash gets its one-day time to live when an AP is added to it, not at
/// every reception (a key look-up less per telegram).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reception_records_get_their_time_to_live_when_an_ap_is_added() {
    let redis = RedisServer::start();
    let ingress = Ingress::start(&redis.url(), &[]);
    let mut a = connect(&ingress, "/aruba").await;
    let mut b = connect(&ingress, "/aruba").await;
    let heard_key = keys::device_heard("feee14ab");
    let ttl = |redis: &RedisServer| -> i64 { redis.conn().ttl(&heard_key).unwrap() };
    let rps = |i: u8| with_crc(&format!("55000707017af6{i:02x}feee14ab2000ffffffff4700"));

    // The time to live follows the telegrams' pipeline (it depends on its answers).
    let lives_a_day = |redis: &RedisServer| {
        wait_for(Duration::from_secs(5), || {
            (ttl(redis) > 86_000).then_some(())
        })
        .is_some()
    };
    send(&mut a, serial(STATIC_TOKEN, MAC_A, &rps(1))).await;
    wait_stat(&redis, "904c81cf3886", keys::stats::TOTAL, 1);
    assert!(lives_a_day(&redis), "a new hash lives a day");

    // The same AP again, in a later second (records are written once a second): its record
    // is updated, the time to live is left as it was.
    let _: () = redis.conn().expire(&heard_key, 100).unwrap();
    let first: String = redis.conn().hget(&heard_key, "904c81cf3886").unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    send(&mut a, serial(STATIC_TOKEN, MAC_A, &rps(2))).await;
    wait_stat(&redis, "904c81cf3886", keys::stats::TOTAL, 2);
    // A connection's calls follow one another: once a message sent after that call is
    // counted, everything the call wrote after its telegrams is written too.
    send(&mut a, serial(STATIC_TOKEN, MAC_A, &rps(4))).await;
    wait_stat(&redis, "904c81cf3886", keys::stats::TOTAL, 3);
    let second: String = redis.conn().hget(&heard_key, "904c81cf3886").unwrap();
    assert_ne!(first, second, "the record follows the reception");
    assert!(ttl(&redis) <= 100, "not refreshed by the same AP");

    // Another AP joins the hash: a day again.
    send(&mut b, serial(STATIC_TOKEN, MAC_B, &rps(3))).await;
    wait_stat(&redis, "204c03344441", keys::stats::TOTAL, 1);
    assert!(lives_a_day(&redis), "set again when an AP is added");
}

/// A rocker telegram of `sender` (the RPS vector's layout with another sender ID).
fn rps_from(sender: u32) -> Vec<u8> {
    let mut data = vec![0xf6, 0x30];
    data.extend(sender.to_be_bytes());
    data.push(0x30);
    enocean::esp3::encode_frame(0x01, &data, &bytes("00ffffffff4700"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bursts_from_two_gateways_are_stored_for_each_in_order() {
    let redis = RedisServer::start();
    let ingress = Ingress::start(&redis.url(), &[]);
    const N: u32 = 600;
    let mut a = connect(&ingress, "/aruba").await;
    let mut b = connect(&ingress, "/aruba").await;
    // Both APs hear the same N transmissions and write them without waiting, so the
    // ingress finds many messages waiting on each connection.
    for sender in 1..=N {
        let frame = rps_from(0x0100_0000 + sender);
        a.feed(Message::Binary(serial(STATIC_TOKEN, MAC_A, &frame).into()))
            .await
            .unwrap();
        b.feed(Message::Binary(serial(STATIC_TOKEN, MAC_B, &frame).into()))
            .await
            .unwrap();
    }
    a.flush().await.unwrap();
    b.flush().await.unwrap();
    wait_stat(&redis, "904c81cf3886", keys::stats::TOTAL, N as i64);
    wait_stat(&redis, "204c03344441", keys::stats::TOTAL, N as i64);

    let got = entries(&redis);
    assert_eq!(got.len(), 2 * N as usize, "every reception stored once");
    for mac in [MAC_A, MAC_B] {
        let of_ap: Vec<u32> = got
            .iter()
            .filter(|e| e.gateway_mac == mac)
            .map(|e| u32::from_be_bytes(e.esp3[8..12].try_into().unwrap()))
            .collect();
        let want: Vec<u32> = (1..=N).map(|s| 0x0100_0000 + s).collect();
        assert_eq!(of_ap, want, "one AP's telegrams, all, in order");
    }
    let forwarded = forwarded_reaching(&ingress, 2.0 * N as f64).await;
    assert_eq!(forwarded, 2.0 * N as f64);
    let calls = metric(&ingress, "iotc_ingress_forward_calls_total").await;
    println!("{} receptions stored in {calls} calls", 2 * N);
}

/// The forwarding script takes one gateway's telegrams per call: a connection whose messages
/// name two reporters in turn still has each telegram stored once, in order, and counted for
/// its own gateway.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_naming_two_reporters_counts_each_for_its_own() {
    let redis = RedisServer::start();
    let ingress = Ingress::start(&redis.url(), &[]);
    const N: u32 = 300;
    let mut ws = connect(&ingress, "/aruba").await;
    for sender in 1..=N {
        let mac = if sender % 3 == 0 { MAC_B } else { MAC_A };
        let frame = rps_from(0x0200_0000 + sender);
        ws.feed(Message::Binary(serial(STATIC_TOKEN, mac, &frame).into()))
            .await
            .unwrap();
    }
    ws.flush().await.unwrap();
    wait_stat(
        &redis,
        "904c81cf3886",
        keys::stats::TOTAL,
        (N - N / 3) as i64,
    );
    wait_stat(&redis, "204c03344441", keys::stats::TOTAL, (N / 3) as i64);

    let got = entries(&redis);
    let senders: Vec<u32> = got
        .iter()
        .map(|e| u32::from_be_bytes(e.esp3[8..12].try_into().unwrap()))
        .collect();
    let sent: Vec<u32> = (1..=N).map(|s| 0x0200_0000 + s).collect();
    assert_eq!(senders, sent, "every telegram stored once, in order");
    for (entry, sender) in got.iter().zip(&senders) {
        let want = if (sender - 0x0200_0000) % 3 == 0 {
            MAC_B
        } else {
            MAC_A
        };
        assert_eq!(entry.gateway_mac, want, "stored with its own reporter");
    }
    let calls = metric(&ingress, "iotc_ingress_forward_calls_total").await;
    assert!(
        calls >= f64::from(2 * (N / 3)),
        "a call never mixes gateways"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_missing_or_expired_token_closes_with_1008() {
    let redis = RedisServer::start();
    let ingress = Ingress::start(&redis.url(), &[("TOKEN_EXP_INTERVAL", "1")]);

    let mut ws = connect(&ingress, "/aruba").await;
    send(&mut ws, serial("not-a-token", MAC_A, &bytes(RPS))).await;
    assert_eq!(close_code(&mut ws).await, Some(CloseCode::Policy));

    let mut ws = connect(&ingress, "/aruba").await;
    send(&mut ws, serial("", MAC_A, &bytes(RPS))).await;
    assert_eq!(close_code(&mut ws).await, Some(CloseCode::Policy));

    let token = login(&ingress).await;
    let mut ws = connect(&ingress, "/aruba").await;
    send(&mut ws, serial(&token, MAC_A, &bytes(RPS))).await;
    wait_stat(&redis, "904c81cf3886", keys::stats::TOTAL, 1);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    send(&mut ws, serial(&token, MAC_A, &bytes(SIGNAL))).await;
    assert_eq!(close_code(&mut ws).await, Some(CloseCode::Policy));

    assert_eq!(
        entries(&redis).len(),
        1,
        "only the message with a valid token went through"
    );
    assert_eq!(
        metric(
            &ingress,
            "iotc_ingress_ws_rejected_total{reason=\"invalid_token\"}"
        )
        .await,
        2.0
    );
    assert_eq!(
        metric(
            &ingress,
            "iotc_ingress_ws_rejected_total{reason=\"missing_token\"}"
        )
        .await,
        1.0
    );

    // Not a protobuf message at all: 1007.
    let mut ws = connect(&ingress, "/aruba").await;
    send(&mut ws, vec![0xff; 12]).await;
    assert_eq!(close_code(&mut ws).await, Some(CloseCode::Invalid));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_frame_is_counted_and_the_connection_goes_on() {
    let redis = RedisServer::start();
    let ingress = Ingress::start(&redis.url(), &[]);
    let mut ws = connect(&ingress, "/aruba").await;
    let mut broken = bytes(RPS);
    let last = broken.len() - 1;
    broken[last] ^= 0x5a;
    send(&mut ws, serial(STATIC_TOKEN, MAC_A, &broken)).await;
    wait_stat(&redis, "904c81cf3886", keys::stats::NOT_PROCESSED, 1);
    assert_eq!(gateway_stat(&redis, "904c81cf3886", keys::stats::TOTAL), 1);
    assert!(entries(&redis).is_empty());
    assert_eq!(
        metric(
            &ingress,
            "iotc_ingress_frames_invalid_total{reason=\"data_crc\"}"
        )
        .await,
        1.0
    );

    // A RESPONSE packet is not a telegram: counted apart (answering no southbound packet),
    // not forwarded, not an error.
    let response =
        bytes("55002100022600010208000103040004129f1e454f010354434d3531355500000000000000000039");
    send(&mut ws, serial(STATIC_TOKEN, MAC_A, &response)).await;
    ws.send(Message::Text("hello".into())).await.unwrap();
    send(&mut ws, serial(STATIC_TOKEN, MAC_A, &bytes(RPS))).await;
    wait_stat(&redis, "904c81cf3886", keys::stats::TOTAL, 2);
    assert_eq!(entries(&redis).len(), 1);
    assert_eq!(
        gateway_stat(&redis, "904c81cf3886", keys::stats::NOT_PROCESSED),
        1
    );
    assert_eq!(
        metric(
            &ingress,
            "iotc_ingress_responses_total{outcome=\"unmatched\"}"
        )
        .await,
        1.0
    );
    assert_eq!(
        metric(&ingress, "iotc_ingress_text_frames_total").await,
        1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_update_registers_the_gateway_and_raises_an_event() {
    let redis = RedisServer::start();
    let ingress = Ingress::start(&redis.url(), &[]);
    let mut ws = connect(&ingress, "/aruba").await;
    send(&mut ws, official(OFFICIAL_HEALTH, STATIC_TOKEN)).await;
    let record: String = wait_for(Duration::from_secs(10), || {
        redis
            .conn()
            .hget(keys::GATEWAYS, "904c81cf3886")
            .ok()
            .flatten()
    })
    .expect("gateway registered");
    let record: iotc_core::model::GatewayRecord = serde_json::from_str(&record).unwrap();
    assert_eq!(record.mac, "904c81cf3886");
    assert_eq!(record.hardware_descriptor, "AP-515");
    assert_eq!(record.software_version, "8.8.0.0");
    assert_eq!(record.ap_status, "healthy");
    assert_eq!(record.health_timestamp, 1_614_022_410);
    assert_eq!(record.usb.len(), 1);
    assert_eq!(record.usb[0].usb_identifier, USB);
    assert_eq!(record.usb[0].usb_health, "healthy");

    let events: redis::streams::StreamRangeReply =
        redis.conn().xrange_all(keys::GATEWAY_EVENT_STREAM).unwrap();
    assert_eq!(events.ids.len(), 1);
    let json: String = events.ids[0].get("j").unwrap();
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "gateway_info": {"mac": "904c81cf3886", "softwareVersion": "8.8.0.0", "hardwareDescriptor": "AP-515"},
            "stats": {"timestamp": "1614022410"},
            "usb_info": [{"usb_identifier": USB, "usb_health": "healthy"}]
        })
    );

    // Every later message refreshes lastSeen without losing the health details.
    redis
        .conn()
        .hset::<_, _, _, ()>(
            keys::GATEWAYS,
            "904c81cf3886",
            serde_json::to_string(&iotc_core::model::GatewayRecord {
                last_seen: 5,
                ..record.clone()
            })
            .unwrap(),
        )
        .unwrap();
    let unplugged = ApHealthUpdate {
        ap_status: Some(HealthStatus::Healthy as i32),
        radio: vec![],
        usb: vec![UsbDevice::new(USB, HealthStatus::Unavailable)],
    };
    send(&mut ws, serial(STATIC_TOKEN, MAC_A, &bytes(RPS))).await;
    let refreshed = wait_for(Duration::from_secs(10), || {
        let raw: String = redis.conn().hget(keys::GATEWAYS, "904c81cf3886").ok()?;
        let r: iotc_core::model::GatewayRecord = serde_json::from_str(&raw).ok()?;
        (r.last_seen > 5).then_some(r)
    })
    .expect("lastSeen refreshed");
    assert_eq!(refreshed.usb, record.usb);
    assert_eq!(refreshed.ap_status, "healthy");

    let health = Telemetry::health(STATIC_TOKEN, reporter(MAC_A), unplugged).encode_to_vec();
    send(&mut ws, health).await;
    let second = wait_for(Duration::from_secs(10), || {
        let events: redis::streams::StreamRangeReply =
            redis.conn().xrange_all(keys::GATEWAY_EVENT_STREAM).ok()?;
        (events.ids.len() == 2).then(|| events.ids[1].get::<String>("j").unwrap())
    })
    .expect("second event");
    assert!(
        second.contains("\"usb_health\":\"unavailable\""),
        "{second}"
    );
    assert!(
        second.contains("\"hardwareDescriptor\":\"AP-505\""),
        "{second}"
    );
    assert_eq!(
        metric(&ingress, "iotc_ingress_health_updates_total").await,
        2.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_ready_metrics_heartbeat_and_redis_restart() {
    let mut redis = RedisServer::start();
    let ingress = Ingress::start(&redis.url(), &[("IOTC_INGRESS_REDIS_RETRY_S", "20")]);
    assert_eq!(
        http()
            .get(ingress.http_url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        http()
            .get(ingress.http_url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let beat: String = wait_for(Duration::from_secs(10), || {
        redis.conn().get(keys::heartbeat("ingress")).ok().flatten()
    })
    .expect("heartbeat written");
    let beat: serde_json::Value = serde_json::from_str(&beat).unwrap();
    assert_eq!(beat["status"], "running");
    let ttl: i64 = redis.conn().ttl(keys::heartbeat("ingress")).unwrap();
    assert!((1..=30).contains(&ttl));

    let mut ws = connect(&ingress, "/aruba").await;
    send(&mut ws, serial(STATIC_TOKEN, MAC_A, &bytes(RPS))).await;
    wait_stat(&redis, "904c81cf3886", keys::stats::TOTAL, 1);
    // Kill Redis only once the ingress has Redis's answer: a crash between the write and the
    // answer makes the ingress write the telegram again (at least once), into the new Redis.
    for _ in 0..100 {
        if metric(&ingress, "iotc_ingress_telegrams_forwarded_total").await >= 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    redis.stop();
    let mut not_ready = false;
    for _ in 0..150 {
        let status = http()
            .get(ingress.http_url("/readyz"))
            .send()
            .await
            .unwrap()
            .status();
        if status == 503 {
            not_ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(not_ready, "/readyz reports Redis down");

    // A telegram sent while Redis is down waits for it and is not lost.
    send(&mut ws, serial(STATIC_TOKEN, MAC_A, &bytes(SIGNAL))).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    redis.restart();
    wait_stat(&redis, "904c81cf3886", keys::stats::TOTAL, 1);
    let got = entries(&redis);
    let frames: Vec<String> = got.iter().map(|e| hex::encode(&e.esp3)).collect();
    let stats: std::collections::HashMap<String, String> = redis
        .conn()
        .hgetall(keys::gateway_stats("904c81cf3886"))
        .unwrap();
    assert_eq!(frames, [SIGNAL], "{stats:?}");
    assert_eq!(
        http()
            .get(ingress.http_url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        metric(&ingress, "iotc_ingress_telegrams_lost_total").await,
        0.0
    );
    assert_eq!(forwarded_reaching(&ingress, 2.0).await, 2.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_tls_serves_https_auth_and_wss() {
    let dir = tempfile::tempdir().unwrap();
    let (ca_pem, cert_path, key_path) = test_certificates(dir.path());
    let redis = RedisServer::start();
    let ingress = Ingress::start(
        &redis.url(),
        &[
            ("IOTC_INGRESS_TLS_CERT", cert_path.to_str().unwrap()),
            ("IOTC_INGRESS_TLS_KEY", key_path.to_str().unwrap()),
        ],
    );
    let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(ca)
        .build()
        .unwrap();
    let body =
        serde_json::json!({"grant_type": "password", "username": USER, "password": PASSWORD});
    let answer: serde_json::Value = client
        .post(ingress.http_url("/auth/aruba"))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = answer["access_token"].as_str().unwrap();

    let mut roots = rustls::RootCertStore::empty();
    let ca_der = rustls_pki_types::CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap();
    roots.add(ca_der).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(iotc_core::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_tungstenite::Connector::Rustls(Arc::new(config));
    let (mut ws, _) = tokio_tungstenite::connect_async_tls_with_config(
        ingress.ws_url("/aruba"),
        None,
        false,
        Some(connector),
    )
    .await
    .unwrap();
    send(&mut ws, serial(token, MAC_B, &bytes(RPS))).await;
    wait_stat(&redis, "204c03344441", keys::stats::TOTAL, 1);
    assert_eq!(entries(&redis)[0].esp3, bytes(RPS));

    // Plain HTTP to the TLS port gets nowhere.
    let plain = format!("http://localhost:{}/healthz", ingress.port);
    assert!(http().get(plain).send().await.is_err());
}

use rustls_pki_types::pem::PemObject;

/// A test CA and a `localhost` certificate it signed: (CA PEM, cert file, key file).
fn test_certificates(dir: &std::path::Path) -> (String, std::path::PathBuf, std::path::PathBuf) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "iotc test CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    (ca_cert.pem(), cert_path, key_path)
}

#[test]
fn bad_configuration_is_one_line_naming_the_variable() {
    let run = |env: &[(&str, &str)]| {
        let mut command = std::process::Command::new(common::ingress_binary());
        command.env_clear();
        for (k, v) in env {
            command.env(k, v);
        }
        let out = command.output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        )
    };
    let (code, err) = run(&[]);
    assert_eq!(code, Some(2));
    assert!(err.contains("IOT_GATEWAY_USERNAME"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    let (code, err) = run(&[("IOT_GATEWAY_TOKEN", "t"), ("IOT_DEDUP_WINDOW_MS", "soon")]);
    assert_eq!(code, Some(2));
    assert!(err.starts_with("error: IOT_DEDUP_WINDOW_MS"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    let (code, err) = run(&[
        ("IOT_GATEWAY_TOKEN", "t"),
        ("IOTC_INGRESS_TLS_CERT", "/nonexistent.pem"),
        ("IOTC_INGRESS_TLS_KEY", "/nonexistent.key"),
    ]);
    assert_eq!(code, Some(2));
    assert!(err.contains("IOTC_INGRESS_TLS_CERT"), "{err}");

    let help = std::process::Command::new(common::ingress_binary())
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for var in [
        "IOTC_INGRESS_PORT",
        "REDIS_URL",
        "IOT_GATEWAY_USERNAME",
        "IOT_GATEWAY_PASSWORD",
        "IOT_GATEWAY_TOKEN",
        "TOKEN_EXP_INTERVAL",
        "IOTC_TELEGRAM_STREAM_MAXLEN",
        "IOTC_INGRESS_TLS_CERT",
        "IOTC_INGRESS_TLS_KEY",
        "IOTC_INGRESS_BACKPRESSURE_WAIT_S",
        "IOTC_INGRESS_MAX_CONNECTIONS",
        "IOTC_INGRESS_AUTH_DEADLINE_S",
        "IOTC_INGRESS_MAX_STICKS",
        "IOTC_INGRESS_MAX_FRAME_BYTES",
        "IOTC_INGRESS_MAX_MESSAGE_BYTES",
    ] {
        assert!(help.contains(var), "--help lists {var}");
    }
}
