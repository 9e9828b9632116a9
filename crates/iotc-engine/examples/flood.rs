//! A hostile radio neighbour and a hostile AP flooding a running iotc-engine through the
//! telegram stream, printing the engine's resident memory (a measurement, not a test):
//!
//! ```sh
//! cargo run --release -p iotc-engine --example flood -- redis://127.0.0.1:6379 ENGINE_PID [SECONDS]
//! ```
//!
//! It onboards one A5-02-05 device (`f1009001`) and, as fast as Redis takes them, appends
//! stream entries as the ingress would forward them: telegrams of random unknown senders,
//! chained parts in the device's name with random sequence numbers and indexes (that never
//! complete), secure teach-in parts in its name, frames too short to read, and entries with
//! a 255-byte USB identifier. Every 200 ms it reads VmRSS of the engine; at the end it prints
//! the peak, the entries written and how many the engine has not acknowledged yet.

use std::time::{Duration, Instant};

use enocean::telegram::{BROADCAST, Telegram};
use iotc_core::bus::TelegramEntry;
use iotc_core::keys;
use rand::Rng;

const DEVICE: u32 = 0xf100_9001;

fn kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn frame(rorg: u8, data: Vec<u8>, sender: u32) -> Vec<u8> {
    let t = Telegram {
        rorg,
        data,
        sender,
        destination: BROADCAST,
        status: 0,
        sub_tel_num: Some(1),
        dbm: Some(-50),
        security_level: Some(0),
    };
    t.to_erp1_packet().encode()
}

/// One hostile entry of kind `n % 5`.
fn hostile(rng: &mut impl Rng, n: u64) -> TelegramEntry {
    let esp3 = match n % 5 {
        0 => frame(0xA5, vec![1, 2, 3, 8], rng.random()),
        1 => {
            let mut data = vec![rng.random::<u8>() | 1];
            data.extend((0..12).map(|_| rng.random::<u8>()));
            frame(0x40, data, DEVICE)
        }
        2 => frame(0x35, (0..14).map(|_| rng.random()).collect(), DEVICE),
        3 => vec![0x55, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00],
        _ => frame(0xD2, (0..14).map(|_| rng.random()).collect(), rng.random()),
    };
    TelegramEntry {
        gateway_mac: [2, 0, 0, 0, 0, (n % 7) as u8],
        received_ms: iotc_core::ops::unix_millis(),
        dbm: -50,
        usb_id: "€".repeat(85),
        esp3,
    }
}

#[tokio::main]
async fn main() -> redis::RedisResult<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(url), Some(pid)) = (args.get(1), args.get(2).and_then(|p| p.parse::<u32>().ok()))
    else {
        eprintln!("usage: flood REDIS_URL ENGINE_PID [SECONDS]");
        std::process::exit(2);
    };
    let seconds: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(30);
    let client = redis::Client::open(url.as_str())?;
    let mut redis = client.get_multiplexed_async_connection().await?;
    let device = serde_json::json!({"sourceEurid": format!("{DEVICE:08x}"),
        "friendlyID": "flood target", "eep": "A5-02-05"});
    redis::cmd("HSET")
        .arg(keys::DEVICES)
        .arg(keys::device_field(&format!("{DEVICE:08x}"), "ffffffff"))
        .arg(device.to_string())
        .exec_async(&mut redis)
        .await?;
    redis::cmd("PUBLISH")
        .arg(keys::DEVICES_CHANGED)
        .arg("*")
        .exec_async(&mut redis)
        .await?;
    let idle = kib(pid, "VmRSS:");
    let started = Instant::now();
    let mut sent = 0u64;
    let mut peak = idle;
    let mut next_sample = Instant::now();
    let mut rng = rand::rng();
    while started.elapsed() < Duration::from_secs(seconds) {
        let mut pipe = redis::pipe();
        for _ in 0..500 {
            let entry = hostile(&mut rng, sent);
            pipe.xadd(keys::TELEGRAM_STREAM, "*", &[("t", entry.encode())])
                .ignore();
            sent += 1;
        }
        pipe.exec_async(&mut redis).await?;
        if Instant::now() >= next_sample {
            peak = peak.max(kib(pid, "VmRSS:"));
            next_sample += Duration::from_millis(200);
        }
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    peak = peak.max(kib(pid, "VmRSS:"));
    let pending: redis::streams::StreamPendingReply = redis::cmd("XPENDING")
        .arg(keys::TELEGRAM_STREAM)
        .arg(keys::ENGINE_GROUP)
        .query_async(&mut redis)
        .await?;
    println!(
        "flood: {sent} entries in {seconds} s ({:.0}/s); engine RSS idle {} MiB, peak {} MiB \
         (VmHWM {} MiB), after {} MiB; pending {}",
        sent as f64 / seconds as f64,
        idle / 1024,
        peak / 1024,
        kib(pid, "VmHWM:") / 1024,
        kib(pid, "VmRSS:") / 1024,
        pending.count()
    );
    Ok(())
}
