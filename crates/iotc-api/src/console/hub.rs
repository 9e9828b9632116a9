//! One reader of the engine's live stream per API process, shared by every connected console.
//!
//! The reader runs only while a console is connected: it keeps the watcher key alive (which
//! makes the engine write the stream), polls the stream and broadcasts each entry, already
//! rendered as the JSON text of one server-sent event. Polling (instead of a blocking
//! XREAD) keeps the shared Redis connection free for the API's requests.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use iotc_core::keys;
use iotc_core::redis::Redis;
use redis::streams::{StreamId, StreamRangeReply, StreamReadOptions, StreamReadReply};
use redis::{AsyncCommands, Value as RedisValue};
use serde_json::{Value, json};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast};
use tokio::time::Instant;
use tracing::debug;

/// Consoles connected at once to one API process; more are refused with 503.
pub const MAX_CLIENTS: usize = 16;
/// Entries a console gets on connecting (the newest ones of the stream).
pub const HISTORY: usize = 50;
/// How often the stream is read while a console is connected.
const POLL: Duration = Duration::from_millis(100);
/// Entries read per poll.
const READ_COUNT: usize = 500;
/// Entries buffered per console before it is told it lagged.
const CHANNEL: usize = 1024;
/// TTL of the watcher key, and how often it is renewed.
const WATCH_TTL_SECS: u64 = 5;
const WATCH_RENEW: Duration = Duration::from_secs(2);

/// One live entry, ready to send: its stream ID and its JSON text.
#[derive(Debug, Clone)]
pub struct Item {
    pub id: StreamPos,
    pub json: Arc<str>,
}

/// A stream entry ID (`<ms>-<seq>`), comparable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct StreamPos(u64, u64);

impl StreamPos {
    pub fn parse(id: &str) -> StreamPos {
        let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
        StreamPos(ms.parse().unwrap_or(0), seq.parse().unwrap_or(0))
    }

    fn text(self) -> String {
        format!("{}-{}", self.0, self.1)
    }
}

#[derive(Clone)]
pub struct Hub {
    redis: Redis,
    tx: broadcast::Sender<Item>,
    clients: Arc<Semaphore>,
    running: Arc<AtomicBool>,
}

/// What a connected console holds: its place among [`MAX_CLIENTS`] and its receiver.
pub struct Subscription {
    pub _permit: OwnedSemaphorePermit,
    pub rx: broadcast::Receiver<Item>,
}

impl Hub {
    pub fn new(redis: Redis) -> Hub {
        Hub {
            redis,
            tx: broadcast::channel(CHANNEL).0,
            clients: Arc::new(Semaphore::new(MAX_CLIENTS)),
            running: Arc::new(AtomicBool::new(false)),
        }
    }

    /// A new console; `None` when [`MAX_CLIENTS`] are connected. Call [`Hub::ensure_reader`]
    /// once its history was read.
    pub fn subscribe(&self) -> Option<Subscription> {
        let permit = self.clients.clone().try_acquire_owned().ok()?;
        Some(Subscription {
            _permit: permit,
            rx: self.tx.subscribe(),
        })
    }

    /// Starts the reader unless it runs; a new reader reads the entries after `start` (the
    /// newest one of the history just sent), so that nothing falls between the two.
    pub fn ensure_reader(&self, start: StreamPos) {
        if !self.running.swap(true, Ordering::SeqCst) {
            tokio::spawn(self.clone().run(start));
        }
    }

    /// The newest [`HISTORY`] entries, oldest first.
    pub async fn history(&self) -> redis::RedisResult<Vec<Item>> {
        let reply: StreamRangeReply = self
            .redis
            .clone()
            .xrevrange_count(keys::LIVE_STREAM, "+", "-", HISTORY)
            .await?;
        Ok(reply.ids.iter().rev().map(item).collect())
    }

    /// Reads and broadcasts until no console is left.
    async fn run(self, start: StreamPos) {
        metrics::gauge!("iotc_api_console_readers").set(1.0);
        let mut last = start;
        let mut renew_at = Instant::now();
        loop {
            if self.tx.receiver_count() == 0 && self.stop() {
                break;
            }
            if Instant::now() >= renew_at {
                self.mark_watched().await;
                renew_at = Instant::now() + WATCH_RENEW;
            }
            match self.read_after(last).await {
                Ok(items) => {
                    for it in items {
                        last = it.id;
                        let _ = self.tx.send(it);
                    }
                }
                Err(e) => {
                    metrics::counter!("iotc_api_console_redis_errors_total").increment(1);
                    debug!(error = %e, "reading the live stream failed");
                }
            }
            tokio::time::sleep(POLL).await;
        }
        metrics::gauge!("iotc_api_console_readers").set(0.0);
    }

    /// Marks the reader stopped; `false` when a console subscribed meanwhile without starting
    /// a reader of its own, and this one goes on.
    fn stop(&self) -> bool {
        self.running.store(false, Ordering::SeqCst);
        if self.tx.receiver_count() == 0 {
            return true;
        }
        self.running.swap(true, Ordering::SeqCst)
    }

    async fn mark_watched(&self) {
        let clients = (MAX_CLIENTS - self.clients.available_permits()).to_string();
        let set: redis::RedisResult<()> = self
            .redis
            .clone()
            .set_ex(keys::LIVE_WATCHERS, clients, WATCH_TTL_SECS)
            .await;
        if let Err(e) = set {
            metrics::counter!("iotc_api_console_redis_errors_total").increment(1);
            debug!(error = %e, "marking the console as watching failed");
        }
    }

    async fn read_after(&self, last: StreamPos) -> redis::RedisResult<Vec<Item>> {
        let opts = StreamReadOptions::default().count(READ_COUNT);
        let reply: Option<StreamReadReply> = self
            .redis
            .clone()
            .xread_options(&[keys::LIVE_STREAM], &[last.text()], &opts)
            .await?;
        Ok(reply
            .into_iter()
            .flat_map(|r| r.keys)
            .flat_map(|k| k.ids)
            .map(|e| item(&e))
            .collect())
    }
}

/// The event JSON of one stream entry: `{id, topic, gateway, time, payload}`. A payload
/// that is not JSON is sent as a string.
fn item(e: &StreamId) -> Item {
    let text = |f: &str| field(&e.map, f).map(|b| String::from_utf8_lossy(&b).into_owned());
    let payload = field(&e.map, "payload").unwrap_or_default();
    let payload = serde_json::from_slice::<Value>(&payload)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&payload).into_owned()));
    let time: u64 = text("time").and_then(|t| t.parse().ok()).unwrap_or(0);
    let json = json!({
        "id": e.id,
        "topic": text("topic").unwrap_or_default(),
        "gateway": text("gateway").unwrap_or_default(),
        "time": time,
        "payload": payload,
    });
    Item {
        id: StreamPos::parse(&e.id),
        json: json.to_string().into(),
    }
}

fn field(map: &HashMap<String, RedisValue>, name: &str) -> Option<Vec<u8>> {
    match map.get(name)? {
        RedisValue::BulkString(b) => Some(b.clone()),
        RedisValue::SimpleString(s) => Some(s.clone().into_bytes()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_positions_order_like_redis() {
        assert!(StreamPos::parse("5-1") > StreamPos::parse("5-0"));
        assert!(StreamPos::parse("10-0") > StreamPos::parse("9-99"));
        assert_eq!(StreamPos::parse("7-3").text(), "7-3");
        assert_eq!(StreamPos::parse("bad"), StreamPos(0, 0));
    }

    #[test]
    fn entry_becomes_event_json() {
        let mut map = HashMap::new();
        let b = |s: &str| RedisValue::BulkString(s.as_bytes().to_vec());
        map.insert("topic".into(), b("sensor/0190e2e1/telemetry"));
        map.insert("payload".into(), b(r#"{"sensor":{"id":"0190e2e1"}}"#));
        map.insert("gateway".into(), b("021a1e000001"));
        map.insert("time".into(), b("1700000000000"));
        let it = item(&StreamId {
            id: "1700000000000-2".into(),
            map,
            ..Default::default()
        });
        let v: Value = serde_json::from_str(&it.json).unwrap();
        assert_eq!(v["payload"]["sensor"]["id"], "0190e2e1");
        assert_eq!(v["gateway"], "021a1e000001");
        assert_eq!(v["time"], 1_700_000_000_000u64);
        assert_eq!(it.id, StreamPos(1_700_000_000_000, 2));
    }
}
