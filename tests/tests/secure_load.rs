//! Throughput of the engine binary with secure telegrams, printed (not asserted): a backlog
//! of 0x31 telegrams (SLF 0xF3) from many secure devices in the stream, each verified,
//! decrypted and its rolling code stored in Redis before it is published to a real
//! mosquitto with QoS 1 confirmations. Compare with `engine_load` (plain telegrams).
//!
//! `IOTC_E2E_RELEASE=1 cargo test -p iotc-e2e --release --test secure_load -- --nocapture`

use std::time::{Duration, Instant};

use enocean::eep;
use enocean::secure::{self, SecureContext};
use iotc_core::keys;
use iotc_e2e::{EngineProc, Mosquitto, Redis, Subscriber, radio, stream, temp_dir};
use serde_json::json;

const DEVICES: u32 = 200;
const PER_DEVICE: u32 = 50;
const KEY: &str = "2b7e151628aed2a6abf7158809cf4f3c";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drains_a_secure_backlog_and_prints_the_rate() {
    let dir = temp_dir();
    let redis = Redis::start(dir.path());
    let mqtt = Mosquitto::start(dir.path());
    let mut r = redis.conn().await;
    let mut pipe = redis::pipe();
    for d in 0..DEVICES {
        let id = format!("{:08x}", 0x05e0_0000 + d);
        let device = json!({"sourceEurid": id, "friendlyID": format!("secure load {d}"),
            "eep": "A5-02-05", "AESKey": KEY, "slf": "f3"});
        pipe.hset(
            keys::DEVICES,
            keys::device_field(&id, "ffffffff"),
            device.to_string(),
        )
        .ignore();
    }
    let () = pipe.query_async(&mut r).await.unwrap();
    let sub = Subscriber::start(mqtt.port, "sensor/+/telemetry").await;
    let _engine = EngineProc::start(dir.path(), &redis, &mqtt, &[]).await;

    let ctx = SecureContext::from_hex(KEY, "f3", false).unwrap();
    let total = (DEVICES * PER_DEVICE) as usize;
    let t0 = iotc_e2e::now_s() * 1000;
    let entries: Vec<_> = (0..total as u32)
        .map(|n| {
            let sender = 0x05e0_0000 + n % DEVICES;
            let rlc = n / DEVICES + 1;
            let (rorg, data, _) =
                eep::encode("A5-02-05".parse().unwrap(), &[("TMP", (n % 40) as f64)]).unwrap();
            let payload = secure::encrypt_sec_r(&ctx, rlc, rorg, &data).unwrap();
            let frame = radio::frame(&radio::telegram(secure::SEC_R, payload, sender, 0, -60));
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
    let got = sub.all();
    assert!(all, "{} of {total} telemetry messages", got.len());
    assert!(
        got.iter().all(|m| m.json()["raw"]["securityLevel"] == 4),
        "every message was verified"
    );
    println!(
        "engine: {total} secure telegrams from {DEVICES} devices published in {:.2} s = {:.0} telegrams/s",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64()
    );
}
