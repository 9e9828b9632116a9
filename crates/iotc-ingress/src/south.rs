//! Southbound messages (docs/control.md): the engine writes a message for an AP to the stream of
//! the ingress instance holding that AP's WebSocket; this module registers the connected APs
//! (`iotc:ap:<mac>:ingress`, with a TTL), reads the instance's stream in one loop and hands each
//! message to its AP's connection. Connections report the stick's answers back through
//! [`South::reply`], and receptions per device and AP through [`South::heard`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use iotc_core::keys;
use iotc_core::redis::Redis;

use crate::store::Heard;
use redis::streams::{StreamReadOptions, StreamReadReply};
use tokio::sync::mpsc;

/// Lifetime of an AP's registration; refreshed every [`REFRESH`] while connected.
pub const REGISTRATION_TTL_S: u64 = 30;
const REFRESH: Duration = Duration::from_secs(10);
/// Messages waiting for one AP connection; beyond it a message is refused (`busy`).
pub const PER_AP_QUEUE: usize = 16;
/// How long a reply or a reception record is kept.
pub const REPLY_TTL_S: i64 = 60;
pub const HEARD_TTL_S: i64 = 86_400;

/// One message for a stick.
#[derive(Debug, Clone)]
pub struct SouthItem {
    pub stick: String,
    pub frame: Vec<u8>,
    /// Where the stick's RESPONSE goes (`keys::command_reply`).
    pub reply: String,
}

pub struct South {
    instance: String,
    redis: Redis,
    routes: Mutex<HashMap<String, mpsc::Sender<SouthItem>>>,
}

impl South {
    /// Starts the stream reader (its own connection: it blocks) and the registration refresher.
    pub fn start(redis_url: &str, redis: Redis, instance: &str) -> anyhow::Result<Arc<South>> {
        let options = iotc_core::redis::Options {
            connection_timeout: Duration::from_secs(2),
            response_timeout: Duration::from_secs(7),
            max_delay: Duration::from_secs(2),
            ..Default::default()
        };
        let reader = iotc_core::redis::connect(redis_url, options)?;
        let south = Arc::new(South {
            instance: instance.to_string(),
            redis,
            routes: Mutex::default(),
        });
        tokio::spawn(read_loop(south.clone(), reader));
        tokio::spawn(refresh_loop(south.clone()));
        tracing::info!(
            instance,
            "southbound stream {}",
            keys::south_stream(instance)
        );
        Ok(south)
    }

    /// Routes this AP's messages to the returned receiver (a newer connection of the same AP
    /// takes over) and registers the AP at once.
    pub fn attach(&self, mac: &str) -> mpsc::Receiver<SouthItem> {
        let (tx, rx) = mpsc::channel(PER_AP_QUEUE);
        self.lock().insert(mac.to_string(), tx);
        let mut redis = self.redis.clone();
        let (key, instance) = (keys::ap_ingress(mac), self.instance.clone());
        tokio::spawn(async move {
            let set: redis::RedisResult<()> = redis::cmd("SET")
                .arg(&key)
                .arg(&instance)
                .arg("EX")
                .arg(REGISTRATION_TTL_S)
                .query_async(&mut redis)
                .await;
            if let Err(e) = set {
                tracing::warn!(error = %e, "AP registration not written");
            }
        });
        rx
    }

    /// Forgets the AP when `rx`'s connection was the one routed to; its registration expires.
    pub fn detach(&self, mac: &str) {
        let mut routes = self.lock();
        if routes.get(mac).is_some_and(|tx| tx.is_closed()) {
            routes.remove(mac);
            let mut redis = self.redis.clone();
            let key = keys::ap_ingress(mac);
            tokio::spawn(async move {
                let _: redis::RedisResult<()> =
                    redis::cmd("DEL").arg(key).query_async(&mut redis).await;
            });
        }
    }

    /// Hands a stick's answer (or an error text) to whoever waits on `reply`.
    pub async fn reply(&self, reply: &str, value: &str) {
        let mut pipe = redis::pipe();
        pipe.rpush(reply, value)
            .ignore()
            .expire(reply, REPLY_TTL_S)
            .ignore();
        let mut redis = self.redis.clone();
        if let Err(e) = pipe.query_async::<()>(&mut redis).await {
            tracing::warn!(error = %e, "southbound reply not written");
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, mpsc::Sender<SouthItem>>> {
        self.routes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Gives one stream entry to its AP's connection, or answers that it cannot be sent.
    async fn dispatch(&self, fields: &HashMap<String, redis::Value>) {
        let text = |k: &str| {
            fields
                .get(k)
                .and_then(|v| redis::from_redis_value_ref::<String>(v).ok())
                .unwrap_or_default()
        };
        let (mac, reply) = (text("mac"), text("reply"));
        let Ok(frame) = hex::decode(text("frame")) else {
            metrics::counter!("iotc_ingress_south_total", "outcome" => "invalid").increment(1);
            return;
        };
        let item = SouthItem {
            stick: text("stick"),
            frame,
            reply: reply.clone(),
        };
        let tx = self.lock().get(&mac).cloned();
        let refused = match tx.map(|tx| tx.try_send(item)) {
            Some(Ok(())) => return,
            Some(Err(mpsc::error::TrySendError::Full(_))) => "error:busy",
            _ => "error:not connected",
        };
        metrics::counter!("iotc_ingress_south_total", "outcome" => "refused").increment(1);
        if !reply.is_empty() {
            self.reply(&reply, refused).await;
        }
    }
}

/// Reads the instance's stream from its start, deleting what was handed on.
async fn read_loop(south: Arc<South>, mut redis: Redis) {
    let stream = keys::south_stream(&south.instance);
    let options = StreamReadOptions::default().count(100).block(5000);
    let mut last = "0-0".to_string();
    loop {
        let read: redis::RedisResult<StreamReadReply> =
            redis::AsyncCommands::xread_options(&mut redis, &[&stream], &[&last], &options).await;
        let reply = match read {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "southbound stream not readable; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        for key in reply.keys {
            let ids: Vec<String> = key.ids.iter().map(|e| e.id.clone()).collect();
            for entry in &key.ids {
                south.dispatch(&entry.map).await;
            }
            if let Some(id) = ids.last() {
                last = id.clone();
                let _: redis::RedisResult<()> =
                    redis::AsyncCommands::xdel(&mut redis, &stream, &ids).await;
            }
        }
    }
}

/// Keeps the registrations of the connected APs alive.
async fn refresh_loop(south: Arc<South>) {
    let mut tick = tokio::time::interval(REFRESH);
    loop {
        tick.tick().await;
        let macs: Vec<String> = south
            .lock()
            .iter()
            .filter(|(_, tx)| !tx.is_closed())
            .map(|(mac, _)| mac.clone())
            .collect();
        metrics::gauge!("iotc_ingress_south_aps").set(macs.len() as f64);
        if macs.is_empty() {
            continue;
        }
        let mut pipe = redis::pipe();
        for mac in &macs {
            pipe.cmd("SET")
                .arg(keys::ap_ingress(mac))
                .arg(&south.instance)
                .arg("EX")
                .arg(REGISTRATION_TTL_S)
                .ignore();
        }
        let mut redis = south.redis.clone();
        if let Err(e) = pipe.query_async::<()>(&mut redis).await {
            tracing::warn!(error = %e, "AP registrations not refreshed");
        }
    }
}

/// The reception record of one AP in a device's heard hash: `<unix ms>,<dBm>,<stick>`.
pub fn heard_record(ms: u64, dbm: i8, stick: &str) -> String {
    format!("{ms},{dbm},{stick}")
}

/// Writes reception records on their own (a Redis Cluster: the forwarding script touches one
/// slot, these are the devices' slots).
pub async fn record_heard(redis: &Redis, records: &[Heard]) {
    if records.is_empty() {
        return;
    }
    let mut pipe = redis::pipe();
    for (eurid, mac, ms, dbm, stick) in records {
        let key = keys::device_heard(eurid);
        pipe.hset(&key, mac, heard_record(*ms, *dbm, stick))
            .ignore()
            .expire(&key, HEARD_TTL_S)
            .ignore();
    }
    if let Err(e) = pipe.query_async::<()>(&mut redis.clone()).await {
        metrics::counter!("iotc_ingress_redis_errors_total").increment(1);
        tracing::debug!(error = %e, "receptions not recorded");
    }
}
