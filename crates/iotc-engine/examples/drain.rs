//! Engine throughput over partitions, for docs/scaling.md (a measurement, not a test):
//!
//! ```sh
//! cargo run --release -p iotc-engine --example drain -- REDIS_URL PARTITIONS ENTRIES
//! ```
//!
//! `REDIS_URL` as the services take it (a cluster: addresses separated by commas). Onboards
//! 1,000 A5-02-05 devices, appends `ENTRIES` telegrams of theirs to the partition streams as
//! the ingress would (each sender to its partition) while the running engines read them,
//! waits until every entry is acknowledged and prints the rate from the first append to the
//! last acknowledgement.

use std::time::{Duration, Instant};

use enocean::telegram::{BROADCAST, Telegram};
use iotc_core::bus::TelegramEntry;
use iotc_core::keys;
use iotc_core::partition::Layout;
use iotc_core::redis::{Redis, connect};
use redis::Value;

const DEVICES: u32 = 1000;
const BASE: u32 = 0x0600_0000;

fn entry(sender: u32, n: u64) -> TelegramEntry {
    let t = Telegram {
        rorg: 0xA5,
        data: vec![(n >> 8) as u8, n as u8, 0x80, 0x08],
        sender,
        destination: BROADCAST,
        status: 0,
        sub_tel_num: Some(1),
        dbm: Some(-50),
        security_level: Some(0),
    };
    TelegramEntry {
        gateway_mac: [2, 0, 0, 0, 0, 1],
        received_ms: iotc_core::ops::unix_millis(),
        dbm: -50,
        usb_id: "ENOCEAN_USB:0123".into(),
        esp3: t.to_erp1_packet().encode(),
    }
}

async fn onboard(redis: &mut Redis) -> redis::RedisResult<()> {
    let mut pipe = redis::pipe();
    for i in 0..DEVICES {
        let id = format!("{:08x}", BASE + i);
        let device = serde_json::json!({"sourceEurid": id, "friendlyID": id, "eep": "A5-02-05"});
        pipe.hset(
            keys::DEVICES,
            keys::device_field(&id, "ffffffff"),
            device.to_string(),
        )
        .ignore();
    }
    pipe.publish(keys::DEVICES_CHANGED, "*").ignore();
    pipe.exec_async(redis).await
}

async fn fill(redis: &mut Redis, layout: Layout, entries: u64) -> redis::RedisResult<()> {
    for stream in layout.streams() {
        let _: redis::RedisResult<()> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&stream)
            .arg(keys::ENGINE_GROUP)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(redis)
            .await;
    }
    let mut n = 0;
    while n < entries {
        let mut pipe = redis::pipe();
        for _ in 0..500.min(entries - n) {
            let sender = BASE + (n % u64::from(DEVICES)) as u32;
            let stream = layout.stream(layout.of_sender(sender));
            pipe.xadd(stream, "*", &[("t", entry(sender, n).encode())])
                .ignore();
            n += 1;
        }
        pipe.exec_async(redis).await?;
    }
    Ok(())
}

/// Entries not yet delivered plus delivered and not acknowledged, over every partition.
async fn outstanding(redis: &mut Redis, layout: Layout) -> redis::RedisResult<i64> {
    let mut total = 0;
    for stream in layout.streams() {
        let groups: Vec<Value> = redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(&stream)
            .query_async(redis)
            .await?;
        for g in groups {
            let fields: Vec<(String, Value)> = match g {
                Value::Map(m) => m
                    .into_iter()
                    .map(|(k, v)| (redis::from_redis_value(k).unwrap_or_default(), v))
                    .collect(),
                Value::Array(a) => a
                    .chunks(2)
                    .map(|c| {
                        (
                            redis::from_redis_value(c[0].clone()).unwrap_or_default(),
                            c[1].clone(),
                        )
                    })
                    .collect(),
                _ => Vec::new(),
            };
            for (k, v) in fields {
                if (k == "lag" || k == "pending")
                    && let Value::Int(n) = v
                {
                    total += n;
                }
            }
        }
    }
    Ok(total)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(url), Some(partitions), Some(entries)) = (
        args.get(1),
        args.get(2).and_then(|p| p.parse::<u16>().ok()),
        args.get(3).and_then(|p| p.parse::<u64>().ok()),
    ) else {
        eprintln!("usage: drain REDIS_URL PARTITIONS ENTRIES");
        std::process::exit(2);
    };
    let mut redis = connect(url, Default::default())?;
    let layout = Layout::new(partitions, redis.is_cluster());
    onboard(&mut redis).await?;
    // The engines reload their devices on the change message.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let started = Instant::now();
    fill(&mut redis, layout, entries).await?;
    let filled = started.elapsed().as_secs_f64();
    while outstanding(&mut redis, layout).await? > 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "drain: {entries} entries over {partitions} partitions in {secs:.1} s (filled in \
         {filled:.1} s): {:.0} telegrams/s",
        entries as f64 / secs
    );
    Ok(())
}
