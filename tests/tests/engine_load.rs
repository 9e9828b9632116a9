//! Throughput of the engine binary, printed (not asserted): a backlog of telegrams from many
//! devices in the stream, drained to a real mosquitto with QoS 1 confirmations.
//!
//! `IOTC_E2E_RELEASE=1 cargo test -p iotc-e2e --release --test engine_load -- --nocapture`
//! (`IOTC_E2E_CONSOLE=1`: with a live console watching, docs/console.md)

use std::time::{Duration, Instant};

use iotc_core::keys;
use iotc_e2e::{EngineProc, Mosquitto, Redis, Subscriber, radio, stream, temp_dir};
use redis::AsyncCommands;
use serde_json::json;

const DEVICES: u32 = 200;
const PER_DEVICE: u32 = 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drains_a_backlog_and_prints_the_rate() {
    let dir = temp_dir();
    let redis = Redis::start(dir.path());
    let mqtt = Mosquitto::start(dir.path());
    let mut r = redis.conn().await;
    let mut pipe = redis::pipe();
    for d in 0..DEVICES {
        let id = format!("{:08x}", 0x0500_0000 + d);
        let device =
            json!({"sourceEurid": id, "friendlyID": format!("load {d}"), "eep": "A5-02-05"});
        pipe.hset(
            keys::DEVICES,
            keys::device_field(&id, "ffffffff"),
            device.to_string(),
        )
        .ignore();
    }
    let () = pipe.query_async(&mut r).await.unwrap();
    if std::env::var("IOTC_E2E_CONSOLE").is_ok_and(|v| v == "1") {
        let () = r.set_ex(keys::LIVE_WATCHERS, 1, 3600).await.unwrap();
    }
    let sub = Subscriber::start(mqtt.port, "sensor/+/telemetry").await;
    let _engine = EngineProc::start(dir.path(), &redis, &mqtt, &[]).await;

    let total = (DEVICES * PER_DEVICE) as usize;
    let t0 = iotc_e2e::now_s() * 1000;
    let entries: Vec<_> = (0..total as u32)
        .map(|n| {
            let sender = 0x0500_0000 + n % DEVICES;
            // Each of a device's telegrams reads another temperature (0.4 °C apart, about
            // 2.5 steps of the 8-bit value): identical telegrams of one device within the
            // de-duplication window would be copies of one transmission.
            let tmp = f64::from(n / DEVICES) * 0.4;
            let frame = radio::eep_frame("A5-02-05", &[("TMP", tmp)], sender, -60);
            stream::entry([2, 0, 0, 0, 0, 1], t0 + n as u64, frame)
        })
        .collect();
    let started = Instant::now();
    for chunk in entries.chunks(2000) {
        stream::add(&mut r, chunk).await;
    }
    let all = sub
        .wait_until(Duration::from_secs(300), |m| m.len() >= total)
        .await;
    let elapsed = started.elapsed();
    let got = sub.all().len();
    assert!(all, "{got} of {total} telemetry messages");
    println!(
        "engine: {total} telegrams from {DEVICES} devices published in {:.2} s = {:.0} telegrams/s",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64()
    );
}
