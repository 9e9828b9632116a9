//! The engine's pipeline with several batches in flight, against real redis-server and
//! mosquitto: per-device order, one FIRST_TIME_SEND per device, most-recent lists, and no
//! batch of its own taken back by the engine's XAUTOCLAIM while it waits for the broker.

use std::time::Duration;

use iotc_core::keys;
use iotc_e2e::{EngineProc, Mosquitto, Received, Redis, Subscriber, radio, stream, temp_dir};
use redis::AsyncCommands;
use serde_json::json;

const MAC: [u8; 6] = [0x24, 0xf2, 0x7f, 0xca, 0x1b, 0xa5];
const WAIT: Duration = Duration::from_secs(60);

async fn onboard(r: &mut redis::aio::MultiplexedConnection, eurid: &str) {
    let device = json!({"sourceEurid": eurid, "friendlyID": eurid, "eep": "A5-02-05"});
    let field = keys::device_field(eurid, "ffffffff");
    let () = r
        .hset(keys::DEVICES, field, device.to_string())
        .await
        .unwrap();
}

/// 4BS data whose DB3/DB2 carry `n` (unused by A5-02-05), so every telegram is unique.
fn numbered_frame(sender: u32, n: u16) -> Vec<u8> {
    let [hi, lo] = n.to_be_bytes();
    radio::frame(&radio::telegram(
        0xA5,
        vec![hi, lo, 0x80, 0x08],
        sender,
        0,
        -60,
    ))
}

/// The number a telemetry message carries (see `numbered_frame`).
fn number(json: &serde_json::Value) -> u16 {
    let data = json["raw"]["data"].as_str().unwrap();
    u16::from_str_radix(&data[2..6], 16).unwrap()
}

fn numbers(msgs: &[Received]) -> Vec<u16> {
    msgs.iter().map(|m| number(&m.json())).collect()
}

fn first_time_events(msgs: &[Received], topic: &str) -> usize {
    msgs.iter()
        .filter(|m| m.topic == topic)
        .filter(|m| m.json()["meta"]["events"]["health"][0]["code"] == "FIRST_TIME_SEND")
        .count()
}

async fn pending(r: &mut redis::aio::MultiplexedConnection) -> i64 {
    let reply: Vec<redis::Value> = redis::cmd("XPENDING")
        .arg(keys::TELEGRAM_STREAM)
        .arg(keys::ENGINE_GROUP)
        .query_async(r)
        .await
        .unwrap();
    match &reply[0] {
        redis::Value::Int(n) => *n,
        other => panic!("XPENDING count: {other:?}"),
    }
}

async fn wait_acknowledged(r: &mut redis::aio::MultiplexedConnection) {
    let deadline = std::time::Instant::now() + WAIT;
    while pending(r).await > 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(pending(r).await, 0, "entries left unacknowledged");
}

/// One telegram per batch: many batches are in flight at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_in_flight_keep_each_device_in_order_and_announce_it_once() {
    each_device_in_order(1, 400).await;
}

/// Full batches (the default size) in flight together: hundreds of messages are on their way
/// at once, more than the broker's window, and still leave in the stream's order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_batches_keep_each_device_in_order() {
    each_device_in_order(256, 3000).await;
}

/// Publishes `n` numbered telegrams of four devices with batches of `batch` and checks each
/// device's telemetry arrives once and in order, with one FIRST_TIME_SEND.
async fn each_device_in_order(batch: u16, n: u16) {
    let dir = temp_dir();
    let redis = Redis::start(dir.path());
    let mqtt = Mosquitto::start(dir.path());
    let mut r = redis.conn().await;
    const DEVICES: u32 = 4;
    let batch = batch.to_string();
    for d in 0..DEVICES {
        onboard(&mut r, &format!("{:08x}", 0x0195_0000 + d)).await;
    }
    let sub = Subscriber::start(mqtt.port, "sensor/#").await;
    let _engine =
        EngineProc::start(dir.path(), &redis, &mqtt, &[("IOTC_ENGINE_BATCH", &batch)]).await;

    let t0 = iotc_e2e::now_s() * 1000;
    let entries: Vec<_> = (0..n)
        .map(|n| {
            let sender = 0x0195_0000 + u32::from(n) % DEVICES;
            stream::entry(MAC, t0 + u64::from(n), numbered_frame(sender, n))
        })
        .collect();
    stream::add(&mut r, &entries).await;
    let telemetry = |m: &Received| m.topic.ends_with("/telemetry");
    let all = sub
        .wait_until(WAIT, |m| {
            m.iter().filter(|m| telemetry(m)).count() >= n as usize
        })
        .await;
    assert!(all, "not every telegram was published");
    wait_acknowledged(&mut r).await;

    let got = sub.all();
    for d in 0..DEVICES {
        let eurid = format!("{:08x}", 0x0195_0000 + d);
        let on = sub.on(&format!("sensor/{eurid}/telemetry"));
        let expected: Vec<u16> = (0..n).filter(|i| u32::from(*i) % DEVICES == d).collect();
        assert_eq!(
            numbers(&on),
            expected,
            "{eurid}: published out of order or twice"
        );
        let events = format!("sensor/{eurid}/meta/event");
        assert_eq!(
            first_time_events(&got, &events),
            1,
            "{eurid}: FIRST_TIME_SEND"
        );
        // The most recent ring holds the last five, read newest first.
        let ring: Vec<String> = r
            .hvals(keys::device_recent_telemetry(&eurid))
            .await
            .unwrap();
        let recent: Vec<u16> = iotc_core::recent::newest_first(ring)
            .iter()
            .map(|j| number(&serde_json::from_str(j).unwrap()))
            .collect();
        let newest: Vec<u16> = expected.iter().rev().take(5).copied().collect();
        assert_eq!(recent, newest, "{eurid}: most recent messages");
    }
}

/// Telegrams numbered 1..=[`HELD_N`] waiting in the engine for a broker that is away.
/// Fields drop in this order: the engine first, the folder last.
struct HeldUp {
    engine: EngineProc,
    sub: Subscriber,
    r: redis::aio::MultiplexedConnection,
    topic: String,
    mqtt: Mosquitto,
    _redis: Redis,
    _dir: tempfile::TempDir,
}

const HELD_N: u16 = 50;

impl HeldUp {
    /// One telegram published, then the broker stopped and [`HELD_N`] more added; returns
    /// once the engine holds some of them unacknowledged.
    async fn start(eurid: &str, settings: &[(&str, &str)]) -> HeldUp {
        let dir = temp_dir();
        let redis = Redis::start(dir.path());
        let mut mqtt = Mosquitto::start_persistent(dir.path());
        let mut r = redis.conn().await;
        onboard(&mut r, eurid).await;
        let sensor = u32::from_str_radix(eurid, 16).unwrap();
        let topic = format!("sensor/{eurid}/telemetry");
        let sub = Subscriber::start_persistent(mqtt.port, &topic).await;
        let engine = EngineProc::start(dir.path(), &redis, &mqtt, settings).await;
        let t0 = iotc_e2e::now_s() * 1000;
        stream::add(&mut r, &[stream::entry(MAC, t0, numbered_frame(sensor, 0))]).await;
        assert_eq!(sub.wait_for(&topic, 1, WAIT).await.len(), 1);
        mqtt.stop();
        let entries: Vec<_> = (1..=HELD_N)
            .map(|n| stream::entry(MAC, t0 + u64::from(n), numbered_frame(sensor, n)))
            .collect();
        stream::add(&mut r, &entries).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(pending(&mut r).await > 0, "acknowledged without a broker");
        HeldUp {
            engine,
            sub,
            r,
            topic,
            mqtt,
            _redis: redis,
            _dir: dir,
        }
    }

    /// Brings the broker back; every telegram must arrive once and in order.
    async fn finish(mut self) -> HeldUp {
        self.mqtt.start_again();
        self.sub
            .wait_for(&self.topic, HELD_N as usize + 1, WAIT)
            .await;
        wait_acknowledged(&mut self.r).await;
        // Let a second copy arrive if one was on its way.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let got = numbers(&self.sub.on(&self.topic));
        assert_eq!(
            got,
            (0..=HELD_N).collect::<Vec<u16>>(),
            "each telegram once and in order"
        );
        self
    }
}

/// A read fails while batches wait for the broker: the reader then reads its own pending
/// entries again (to find any a lost reply delivered), which include the batches in flight;
/// the engine skips those instead of publishing them a second time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_read_while_batches_wait_publishes_nothing_twice() {
    let settings = [("IOTC_ENGINE_BATCH", "10"), ("MQTT_PUBLISH_TIMEOUT", "1")];
    let mut held = HeldUp::start("019500ef", &settings).await;
    // Redis refuses the engine's reads for a second.
    for rule in ["-xreadgroup", "+xreadgroup"] {
        let _: () = redis::cmd("ACL")
            .arg("SETUSER")
            .arg("default")
            .arg(rule)
            .query_async(&mut held.r)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let held = held.finish().await;
    let log = std::fs::read_to_string(held.engine.proc.log_path()).unwrap_or_default();
    assert!(
        log.contains("reading the streams failed"),
        "the engine's read never failed"
    );
}

/// While the broker is away a batch waits far longer than the claim idle time; the engine's
/// own periodic XAUTOCLAIM must not take it back and publish it a second time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_held_up_by_the_broker_is_not_claimed_back() {
    let settings = [
        ("IOTC_ENGINE_CLAIM_IDLE_MS", "1000"),
        ("IOTC_ENGINE_BATCH", "10"),
        ("MQTT_PUBLISH_TIMEOUT", "1"),
    ];
    let held = HeldUp::start("019500ee", &settings).await;
    // Four times the claim idle time in all: claims ran while the batches waited.
    tokio::time::sleep(Duration::from_secs(3)).await;
    held.finish().await;
}
