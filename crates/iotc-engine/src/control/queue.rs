//! Devices that listen only right after they send (battery valves, A5-20-xx), like LoRaWAN
//! class A: their commands wait in `keys::device_queue` until the device's next telegram, then
//! go out at once (the valve listens for about a second). Items expire after
//! `IOTC_COMMAND_QUEUE_TTL_S` with a `COMMAND_EXPIRED` event.
//!
//! The telemetry path calls [`device_sent`] for every telegram of an onboarded device; it only
//! looks at an in-memory copy of `keys::QUEUED_DEVICES` (refreshed every second), so there is
//! no Redis call per telegram.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use iotc_core::command::CommandEntry;
use iotc_core::keys;
use iotc_core::ops::unix_millis;
use iotc_core::payload::EventCode;
use redis::AsyncCommands;
use tokio::sync::mpsc;

use super::Control;

/// How often the queued set is re-read and expired items are swept.
const REFRESH: Duration = Duration::from_secs(1);

struct Hook {
    queued: Arc<RwLock<HashSet<String>>>,
    /// Queued by this engine and not yet in a snapshot of `keys::QUEUED_DEVICES`: a telegram
    /// right after the command must not miss it.
    local: Arc<RwLock<HashSet<String>>>,
    tx: mpsc::Sender<String>,
}

fn write(set: &RwLock<HashSet<String>>) -> std::sync::RwLockWriteGuard<'_, HashSet<String>> {
    set.write().unwrap_or_else(|e| e.into_inner())
}

fn read(set: &RwLock<HashSet<String>>) -> std::sync::RwLockReadGuard<'_, HashSet<String>> {
    set.read().unwrap_or_else(|e| e.into_inner())
}

static HOOK: OnceLock<Hook> = OnceLock::new();

/// Whether commands to devices of `eep` wait for the device's next telegram.
pub fn listens_after_send(eep: &str) -> bool {
    eep.to_ascii_uppercase().starts_with("A5-20-")
}

/// The telemetry path's hook: device `eurid` just sent.
pub fn device_sent(eurid: &str) {
    let Some(hook) = HOOK.get() else { return };
    let queued = read(&hook.queued).contains(eurid) || read(&hook.local).contains(eurid);
    if queued && hook.tx.try_send(eurid.to_string()).is_err() {
        metrics::counter!("iotc_engine_queue_wakeups_dropped_total").increment(1);
    }
}

/// Starts the refresher and the sender (`control` needs its own blocking connection).
pub fn start(control: Control) {
    let (tx, mut rx) = mpsc::channel::<String>(1024);
    let queued = Arc::new(RwLock::new(HashSet::new()));
    let local = Arc::new(RwLock::new(HashSet::new()));
    let hook = Hook {
        queued: queued.clone(),
        local: local.clone(),
        tx,
    };
    if HOOK.set(hook).is_err() {
        return;
    }
    let sweeper = control.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(REFRESH);
        loop {
            tick.tick().await;
            match sweeper.sweep().await {
                Ok(set) => {
                    write(&local).retain(|d| !set.contains(d));
                    *write(&queued) = set;
                }
                Err(e) => tracing::warn!(error = %e, "command queues not swept"),
            }
        }
    });
    tokio::spawn(async move {
        while let Some(eurid) = rx.recv().await {
            if let Err(e) = control.flush(&eurid).await {
                tracing::warn!(device = %eurid, error = %e, "queued commands not sent");
            }
        }
    });
}

impl Control {
    /// Queues a command for its device's next telegram.
    pub async fn enqueue_for_device(&self, command: &CommandEntry) -> redis::RedisResult<bool> {
        let key = keys::device_queue(&command.device);
        let mut redis = self.redis.clone();
        let len: usize = redis.llen(&key).await?;
        if len >= keys::QUEUE_MAX {
            return Ok(false);
        }
        let mut fields: HashMap<&str, String> = command.fields().into_iter().collect();
        let expires = unix_millis() + self.queue_ttl.as_millis() as u64;
        fields.insert("expires", expires.to_string());
        let json = serde_json::to_string(&fields).expect("fields serialise");
        redis::pipe()
            .rpush(&key, json)
            .ignore()
            .pexpire(&key, self.queue_ttl.as_millis() as i64 + 60_000)
            .ignore()
            .sadd(keys::QUEUED_DEVICES, &command.device)
            .ignore()
            .query_async::<()>(&mut redis)
            .await?;
        if let Some(hook) = HOOK.get() {
            write(&hook.local).insert(command.device.clone());
        }
        metrics::counter!("iotc_engine_commands_total", "outcome" => "queued").increment(1);
        Ok(true)
    }

    /// Sends every queued command of `eurid` now; expired ones become events.
    async fn flush(&self, eurid: &str) -> redis::RedisResult<()> {
        if let Some(hook) = HOOK.get() {
            write(&hook.local).remove(eurid);
        }
        while let Some((command, expires)) = self.pop(eurid).await? {
            if expires < unix_millis() {
                self.expired(&command).await;
            } else {
                self.send_now(&command).await;
            }
        }
        Ok(())
    }

    /// Expired items of every queue become events; returns the devices still queued.
    async fn sweep(&self) -> redis::RedisResult<HashSet<String>> {
        let mut redis = self.redis.clone();
        let devices: HashSet<String> = redis.smembers(keys::QUEUED_DEVICES).await?;
        let mut left = HashSet::new();
        for eurid in devices {
            let key = keys::device_queue(&eurid);
            // Items share one lifetime: the oldest expires first.
            loop {
                let head: Option<String> = redis.lindex(&key, 0).await?;
                let Some(head) = head else { break };
                match parse(&head) {
                    Some((_, expires)) if expires >= unix_millis() => {
                        left.insert(eurid.clone());
                        break;
                    }
                    parsed => {
                        let _: Option<String> = redis.lpop(&key, None).await?;
                        if let Some((command, _)) = parsed {
                            self.expired(&command).await;
                        }
                    }
                }
            }
            if !left.contains(&eurid) {
                let _: () = redis.srem(keys::QUEUED_DEVICES, &eurid).await?;
            }
        }
        Ok(left)
    }

    async fn pop(&self, eurid: &str) -> redis::RedisResult<Option<(CommandEntry, u64)>> {
        let mut redis = self.redis.clone();
        loop {
            let item: Option<String> = redis.lpop(keys::device_queue(eurid), None).await?;
            match item {
                None => return Ok(None),
                Some(json) => match parse(&json) {
                    Some(parsed) => return Ok(Some(parsed)),
                    None => continue,
                },
            }
        }
    }

    async fn expired(&self, command: &CommandEntry) {
        let message = format!(
            "Command {} expired: the device did not send within {} s.",
            command.id,
            self.queue_ttl.as_secs()
        );
        self.event(&command.device, EventCode::CommandExpired, message)
            .await;
    }
}

/// A queue item: the command and its expiry (unix ms).
fn parse(json: &str) -> Option<(CommandEntry, u64)> {
    let fields: HashMap<String, String> = serde_json::from_str(json).ok()?;
    let expires = fields.get("expires")?.parse().ok()?;
    Some((CommandEntry::from_fields(&fields)?, expires))
}
