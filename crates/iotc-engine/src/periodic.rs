//! Periodic messages: sensor and gateway statistics, system health, and the retained device
//! metadata, read from Redis and published through the egress (see docs/egress.md).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use iotc_core::model::{EnOceanSensor, GatewayRecord};
use iotc_core::ops::unix_seconds;
use iotc_core::payload::{
    GatewayInfo, GatewayStats, SensorInfo, SensorStats, StatsMeta, TelegramStats,
};
use iotc_core::redis::Redis;
use iotc_core::{health, keys};
use redis::AsyncCommands;
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio::time::{MissedTickBehavior, interval};

use crate::egress::{Egress, EgressArgs, OutMessage};
use crate::sensor_info::InfoState;

/// Messages per publish() call when reporting many devices.
const CHUNK: usize = 500;

/// Starts the periodic tasks the settings enable; the handle ends them all when aborted.
pub fn spawn_periodic(egress: Arc<Egress>, redis: Redis, args: &EgressArgs) -> JoinHandle<()> {
    let jobs = [
        (Job::SensorStats, args.sensor_stats_interval),
        (Job::GatewayStats, args.gateway_stats_interval),
        (
            Job::Health {
                gateway_timeout_secs: args.gateway_timeout_seconds,
            },
            args.health_publish_interval,
        ),
        (Job::SensorInfo, args.sensor_info_interval),
    ];
    let tasks: Vec<JoinHandle<()>> = jobs
        .into_iter()
        .filter(|(_, secs)| *secs > 0)
        .map(|(job, secs)| {
            tokio::spawn(run(
                job,
                Duration::from_secs(secs),
                egress.clone(),
                redis.clone(),
            ))
        })
        .collect();
    tokio::spawn(async move {
        let _abort_all = AbortOnDrop(tasks);
        std::future::pending::<()>().await;
    })
}

struct AbortOnDrop(Vec<JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Job {
    SensorStats,
    GatewayStats,
    Health { gateway_timeout_secs: u64 },
    SensorInfo,
}

async fn run(job: Job, every: Duration, egress: Arc<Egress>, mut redis: Redis) {
    let mut tick = interval(every);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut info = InfoState::default();
    let mut failing = false;
    loop {
        tick.tick().await;
        let result = match job {
            Job::SensorStats => sensor_stats(&egress, &mut redis).await,
            Job::GatewayStats => gateway_stats(&egress, &mut redis).await,
            Job::Health {
                gateway_timeout_secs,
            } => health(&egress, &mut redis, gateway_timeout_secs).await,
            Job::SensorInfo => info.publish_changes(&egress, &mut redis).await,
        };
        // Log a failure once per streak; the next tick tries again.
        match result {
            Ok(()) if failing => {
                tracing::info!(?job, "periodic message published again");
                failing = false;
            }
            Ok(()) => {}
            Err(e) if !failing => {
                tracing::warn!(?job, error = %e, "periodic message not published");
                failing = true;
            }
            Err(_) => {}
        }
    }
}

type JobResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

async fn publish_chunked(egress: &Egress, msgs: Vec<OutMessage>) -> JobResult {
    let mut msgs = msgs.into_iter().peekable();
    while msgs.peek().is_some() {
        let chunk: Vec<OutMessage> = msgs.by_ref().take(CHUNK).collect();
        egress.publish(chunk).await?;
    }
    Ok(())
}

/// Onboarded devices, one per source EURID (the first entry wins), sorted by EURID.
async fn devices(redis: &mut Redis) -> redis::RedisResult<BTreeMap<String, EnOceanSensor>> {
    let all: HashMap<String, String> = redis.hgetall(keys::DEVICES).await?;
    let mut out = BTreeMap::new();
    for json in all.values() {
        match serde_json::from_str::<EnOceanSensor>(json) {
            Ok(d) => {
                out.entry(d.source_eurid.to_ascii_lowercase()).or_insert(d);
            }
            Err(e) => tracing::debug!(error = %e, "device entry skipped"),
        }
    }
    Ok(out)
}

async fn gateways(redis: &mut Redis) -> redis::RedisResult<BTreeMap<String, GatewayRecord>> {
    let all: HashMap<String, String> = redis.hgetall(keys::GATEWAYS).await?;
    Ok(all
        .into_iter()
        .filter_map(|(mac, json)| Some((mac, serde_json::from_str(&json).ok()?)))
        .collect())
}

/// Reads many stats hashes in one round trip.
async fn stats_of(redis: &mut Redis, keys: &[String]) -> redis::RedisResult<Vec<TelegramStats>> {
    let mut pipe = redis::pipe();
    for k in keys {
        pipe.hgetall(k);
    }
    let hashes: Vec<HashMap<String, String>> = pipe.query_async(redis).await?;
    Ok(hashes.iter().map(TelegramStats::from_hash).collect())
}

async fn sensor_stats(egress: &Egress, redis: &mut Redis) -> JobResult {
    let devices = devices(redis).await?;
    let ids: Vec<String> = devices.keys().map(|id| keys::device_stats(id)).collect();
    let stats = stats_of(redis, &ids).await?;
    let topics = egress.topics();
    let msgs = devices
        .iter()
        .zip(stats)
        .map(|((id, device), stats)| {
            let body = SensorStats {
                sensor: SensorInfo::from(device),
                meta: StatsMeta { stats },
            };
            OutMessage::new(topics.sensor_stats(id), to_json(&body))
        })
        .collect();
    publish_chunked(egress, msgs).await
}

async fn gateway_stats(egress: &Egress, redis: &mut Redis) -> JobResult {
    let gateways = gateways(redis).await?;
    let ids: Vec<String> = gateways
        .keys()
        .map(|mac| keys::gateway_stats(mac))
        .collect();
    let stats = stats_of(redis, &ids).await?;
    let topics = egress.topics();
    let msgs = gateways
        .iter()
        .zip(stats)
        .map(|((mac, gw), stats)| {
            let body = GatewayStats {
                gateway_info: GatewayInfo {
                    mac: mac.clone(),
                    software_version: gw.software_version.clone(),
                    hardware_descriptor: gw.hardware_descriptor.clone(),
                },
                stats,
            };
            OutMessage::new(topics.gateway_stats(mac), to_json(&body))
        })
        .collect();
    publish_chunked(egress, msgs).await
}

async fn health(egress: &Egress, redis: &mut Redis, gateway_timeout_secs: u64) -> JobResult {
    let gateways = gateways(redis).await?;
    let now = unix_seconds();
    let services = ["ingress", "engine", "api"].map(keys::heartbeat);
    let beats: Vec<Option<String>> = redis::cmd("MGET").arg(&services).query_async(redis).await?;
    let status = |beat: &Option<String>| {
        beat.as_deref()
            .and_then(|b| serde_json::from_str::<Value>(b).ok())
            .and_then(|v| v.get("status")?.as_str().map(str::to_string))
            .unwrap_or_else(|| health::DOWN.to_string())
    };
    let mqtt = health::mqtt_status(egress.mqtt_enabled(), egress.connected());
    let body = json!({
        "gateway_info": gateways
            .values()
            .map(|g| health::gateway_status(g, now, gateway_timeout_secs))
            .collect::<Vec<_>>(),
        "system_health": {
            "redis": health::RUNNING,
            "ingress": status(&beats[0]),
            "api": status(&beats[2]),
            "mqtt": mqtt,
            // IoTC's integration container did the egress; here the engine does.
            "integration": status(&beats[1]),
        },
        "engine": engine_figures(egress),
        "stream": stream_figures(redis).await,
    });
    egress
        .publish(vec![OutMessage::new(
            egress.topics().system_health(),
            body.to_string(),
        )])
        .await?;
    Ok(())
}

/// `2022-05-18T09:25:33Z`, as IoTC writes it.
pub fn iso_time(unix_s: u64) -> String {
    jiff::Timestamp::from_second(unix_s as i64)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

/// Uptime, memory and processing counters of this engine.
fn engine_figures(egress: &Egress) -> Value {
    let c = egress.counters();
    json!({
        "uptime": egress.started().elapsed().as_secs(),
        "memoryRss": rss_bytes(),
        "processed": c.processed.load(Ordering::Relaxed),
        "notProcessed": c.not_processed.load(Ordering::Relaxed),
        "published": c.published.load(Ordering::Relaxed),
        "publishErrors": c.publish_errors.load(Ordering::Relaxed),
        "timestamp": unix_seconds().to_string(),
    })
}

/// Telegram stream figures: length, entries not yet delivered to the engines (`lag`), and
/// entries trimmed by the stream bound (MAXLEN) before any engine read them (lost input).
async fn stream_figures(redis: &mut Redis) -> Value {
    let stream: redis::RedisResult<HashMap<String, redis::Value>> = redis::cmd("XINFO")
        .arg("STREAM")
        .arg(keys::TELEGRAM_STREAM)
        .query_async(redis)
        .await;
    let groups: redis::RedisResult<Vec<HashMap<String, redis::Value>>> = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(keys::TELEGRAM_STREAM)
        .query_async(redis)
        .await;
    let (Ok(stream), Ok(groups)) = (stream, groups) else {
        return Value::Null;
    };
    let num = |m: &HashMap<String, redis::Value>, k: &str| match m.get(k) {
        Some(redis::Value::Int(n)) => Some(*n),
        _ => None,
    };
    let group = groups.iter().find(|g| {
        matches!(g.get("name"), Some(redis::Value::BulkString(n)) if n == keys::ENGINE_GROUP.as_bytes())
    });
    let length = num(&stream, "length").unwrap_or(0);
    let added = num(&stream, "entries-added");
    // A group that never read anything reports no count: it read 0.
    let never_read = group.is_some_and(|g| {
        matches!(g.get("last-delivered-id"), Some(redis::Value::BulkString(id)) if id == b"0-0")
    });
    let read = group
        .and_then(|g| num(g, "entries-read"))
        .or(never_read.then_some(0));
    let lag = group.and_then(|g| num(g, "lag"));
    // Every entry added was read, is still waiting (lag), or was trimmed unread.
    let trimmed_unread = match (added, read) {
        (Some(added), Some(read)) => (added - read - lag.unwrap_or(length)).max(0),
        _ => 0,
    };
    metrics::gauge!("iotc_stream_trimmed_unread").set(trimmed_unread as f64);
    json!({"length": length, "lag": lag, "trimmedUnread": trimmed_unread})
}

/// Resident set size in bytes (`VmRSS` of /proc/self/status: statm's resident pages times the
/// page size, without having to know the page size); 0 where unavailable.
pub fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map_or(0, |kib| kib * 1024)
}

/// Retained metadata of a device: what it is and where (never its keys).
pub fn info_payload(d: &EnOceanSensor) -> String {
    json!({
        "sensor": SensorInfo::from(d),
        "destinationID": d.destination(),
        "activeFlag": d.active_flag,
    })
    .to_string()
}

fn to_json<T: serde::Serialize>(body: &T) -> Vec<u8> {
    serde_json::to_vec(body).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_time_like_iotc() {
        assert_eq!(iso_time(1652865933), "2022-05-18T09:25:33Z");
    }

    #[test]
    fn rss_is_measured() {
        assert!(rss_bytes() > 1024 * 1024);
    }

    #[test]
    fn gateway_health_entry() {
        let gw = GatewayRecord {
            mac: "a1b2c3d4e5f6".into(),
            health_timestamp: 1652865933,
            ap_status: "healthy".into(),
            ..Default::default()
        };
        let entry = serde_json::to_value(health::gateway_status(&gw, 1652865933, 300)).unwrap();
        assert_eq!(
            entry,
            json!({"mac":"a1b2c3d4e5f6","status":"healthy","timestamp":"2022-05-18T09:25:33Z"})
        );
    }

    #[test]
    fn info_payload_has_no_key() {
        let d: EnOceanSensor = serde_json::from_value(json!({
            "sourceEurid": "a1b2c3d4", "friendlyID": "Room Panel 02", "location": "Level 2",
            "eep": "A5-04-01", "AESKey": "3a0c1b30b0a822a17a28fd01d77abdae", "slf": "f3"
        }))
        .unwrap();
        let v: Value = serde_json::from_str(&info_payload(&d)).unwrap();
        assert_eq!(v["sensor"]["friendlyID"], "Room Panel 02");
        assert_eq!(v["sensor"]["eep"], "a5-04-01");
        assert_eq!(v["destinationID"], "ffffffff");
        assert!(!v.to_string().contains("3a0c1b30"));
    }
}
