//! Steady load for the fault tests: simulated APs that send numbered telegrams (each one
//! distinct, so every count is exact), authenticate again and reconnect with back-off by
//! themselves when the ingress goes away, and record what they wrote to their socket.
//! [`Tally`] compares what was sent, what the ingress accepted (the telegram stream) and
//! what arrived on MQTT.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::SinkExt;
use iotc_core::backoff::Backoff;
use prost::Message as _;
use tokio_tungstenite::tungstenite::Message;

use crate::{AP_PASSWORD, AP_USER, Received, Stack, ap, radio};

/// A telegram as the engine reports it: `raw.sender`, `raw.data`.
pub type Key = (String, String);

/// Telegram `n` of `sender` (A5-02-05): DB3/DB2, unused by the profile, carry the number.
pub fn numbered(sender: u32, n: u16) -> (Key, Vec<u8>) {
    let [hi, lo] = n.to_be_bytes();
    let t = radio::telegram(0xA5, vec![hi, lo, 0x80, 0x08], sender, 0, -60);
    ((t.sender_hex(), t.data_hex()), radio::frame(&t))
}

/// The key of a published telemetry message.
pub fn key_of(m: &Received) -> Key {
    let json = m.json();
    let raw = &json["raw"];
    let field = |name: &str| raw[name].as_str().unwrap_or_default().to_string();
    (field("sender"), field("data"))
}

#[derive(Default)]
struct Shared {
    sent: Mutex<Vec<Key>>,
    connects: AtomicU64,
    failed_sends: AtomicU64,
    stop: AtomicBool,
}

/// APs sending in turn to their devices, one telegram per AP every `period`.
pub struct Load {
    shared: Arc<Shared>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    /// Starts `aps` APs on the stack's ingress; `devices` are shared out among them.
    pub fn start(stack: &Stack, aps: u8, devices: &[u32], period: Duration) -> Load {
        keep_every_entry(stack);
        Self::start_on(&[stack.ingress_port], aps, devices, period)
    }

    /// As [`start`](Self::start) on several ingress instances (AP `i` on `ports[i % n]`),
    /// without the audit group.
    pub fn start_on(ports: &[u16], aps: u8, devices: &[u32], period: Duration) -> Load {
        let shared = Arc::new(Shared::default());
        let tasks = (0..aps)
            .map(|i| {
                let mine: Vec<u32> = devices
                    .iter()
                    .copied()
                    .skip(i.into())
                    .step_by(aps.into())
                    .collect();
                let ap = Ap {
                    mac: [0x02, 0x1a, 0xfa, 0x17, 0x00, i + 1],
                    port: ports[usize::from(i) % ports.len()],
                    shared: shared.clone(),
                };
                tokio::spawn(ap.run(mine, period))
            })
            .collect();
        Load { shared, tasks }
    }

    /// Telegrams written to a socket so far.
    pub fn sent(&self) -> Vec<Key> {
        self.shared.sent.lock().unwrap().clone()
    }

    pub fn sent_count(&self) -> usize {
        self.shared.sent.lock().unwrap().len()
    }

    /// Connections opened, the first ones included.
    pub fn connects(&self) -> u64 {
        self.shared.connects.load(Ordering::Relaxed)
    }

    /// Stops the APs; returns everything they sent.
    pub async fn stop(self) -> Vec<Key> {
        self.shared.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            let _ = t.await;
        }
        let taken = self.shared.sent.lock().map(|mut s| std::mem::take(&mut *s));
        taken.unwrap_or_default()
    }
}

struct Ap {
    mac: [u8; 6],
    port: u16,
    shared: Arc<Shared>,
}

impl Ap {
    async fn run(self, devices: Vec<u32>, period: Duration) {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut n: usize = 0;
        let mut session = None;
        while !self.shared.stop.load(Ordering::Relaxed) {
            tick.tick().await;
            let (ws, token) = match session.as_mut() {
                Some(s) => s,
                None => {
                    session = self.connect().await;
                    continue;
                }
            };
            let device = devices[n % devices.len()];
            let (key, frame) = numbered(device, (n / devices.len()) as u16);
            let msg =
                aruba::Telemetry::serial_data(token, ap::reporter(self.mac), ap::STICK, &[&frame]);
            let send = ws.send(Message::Binary(msg.encode_to_vec().into()));
            match tokio::time::timeout(Duration::from_secs(5), send).await {
                Ok(Ok(())) => {
                    self.shared.sent.lock().unwrap().push(key);
                    n += 1;
                }
                _ => {
                    self.shared.failed_sends.fetch_add(1, Ordering::Relaxed);
                    session = None;
                }
            }
        }
    }

    /// Logs in and opens the WebSocket, retrying with back-off until it works or the load
    /// stops.
    async fn connect(&self) -> Option<(ap::Socket, String)> {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        while !self.shared.stop.load(Ordering::Relaxed) {
            if let Some(s) = self.try_connect().await {
                self.shared.connects.fetch_add(1, Ordering::Relaxed);
                return Some(s);
            }
            backoff.wait().await;
        }
        None
    }

    async fn try_connect(&self) -> Option<(ap::Socket, String)> {
        let body = serde_json::json!({"grant_type": "password", "username": AP_USER,
            "password": AP_PASSWORD, "client_id": "e2e-load"});
        let res = reqwest::Client::new()
            .post(format!("http://127.0.0.1:{}/auth/aruba", self.port))
            .json(&body)
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .ok()?;
        let json: serde_json::Value = res.json().await.ok()?;
        let token = json["access_token"].as_str()?.to_string();
        let url = format!("ws://127.0.0.1:{}/aruba", self.port);
        let (ws, _) = tokio_tungstenite::connect_async(url.as_str()).await.ok()?;
        Some((ws, token))
    }
}

/// Creates a consumer group `audit` that never reads: the ingress trims only entries every
/// group has acknowledged, so the stream keeps every accepted telegram for [`accepted`].
pub fn keep_every_entry(stack: &Stack) {
    let mut conn = stack.redis.client().get_connection().expect("redis");
    let created: redis::RedisResult<()> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(iotc_core::keys::TELEGRAM_STREAM)
        .arg("audit")
        .arg("0")
        .arg("MKSTREAM")
        .query(&mut conn);
    if let Err(e) = created
        && e.code() != Some("BUSYGROUP")
    {
        panic!("XGROUP CREATE audit: {e}");
    }
}

/// Distinct telegrams in the telegram stream: what the ingress accepted (the `audit` group
/// keeps them all; the volumes of these tests are far below the stream bound).
pub async fn accepted(redis: &mut redis::aio::MultiplexedConnection) -> BTreeSet<Key> {
    // The ingress may still be writing what the APs sent last: wait until the stream stops
    // growing (the audit group keeps its length from shrinking).
    let mut len = stream_len(redis).await;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = stream_len(redis).await;
        if now == len {
            break;
        }
        len = now;
    }
    let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(iotc_core::keys::TELEGRAM_STREAM)
        .arg("-")
        .arg("+")
        .query_async(redis)
        .await
        .expect("XRANGE");
    let mut keys = BTreeSet::new();
    for id in reply.ids {
        let Some(redis::Value::BulkString(bytes)) = id.map.get(iotc_core::bus::FIELD) else {
            continue;
        };
        let entry = iotc_core::bus::TelegramEntry::decode(bytes).expect("stream entry");
        let t = enocean::telegram::Telegram::from_esp3(&entry.esp3).expect("ESP3 in entry");
        keys.insert((t.sender_hex(), t.data_hex()));
    }
    keys
}

async fn stream_len(redis: &mut redis::aio::MultiplexedConnection) -> u64 {
    redis::cmd("XLEN")
        .arg(iotc_core::keys::TELEGRAM_STREAM)
        .query_async(redis)
        .await
        .expect("XLEN")
}

/// Sent, accepted and arrived telegrams of one fault test.
pub struct Tally {
    pub sent: BTreeSet<Key>,
    pub accepted: BTreeSet<Key>,
    /// Copies received per telegram.
    pub arrived: BTreeMap<Key, usize>,
}

impl Tally {
    pub fn new(sent: &[Key], accepted: BTreeSet<Key>, received: &[Received]) -> Tally {
        let mut arrived = BTreeMap::new();
        for m in received {
            *arrived.entry(key_of(m)).or_insert(0) += 1;
        }
        Tally {
            sent: sent.iter().cloned().collect(),
            accepted,
            arrived,
        }
    }

    /// Accepted telegrams that never arrived.
    pub fn lost(&self) -> Vec<&Key> {
        self.accepted
            .iter()
            .filter(|k| !self.arrived.contains_key(*k))
            .collect()
    }

    /// Received copies beyond the first.
    pub fn duplicates(&self) -> usize {
        self.arrived.values().map(|c| c - 1).sum()
    }

    /// Arrived or accepted telegrams nobody sent.
    pub fn unknown(&self) -> usize {
        let arrived = self.arrived.keys().filter(|k| !self.sent.contains(*k));
        let accepted = self.accepted.iter().filter(|k| !self.sent.contains(*k));
        arrived.count() + accepted.count()
    }

    /// One line for the logs and docs/reliability.md.
    pub fn line(&self, fault: &str) -> String {
        format!(
            "FAULT {fault}: sent {} accepted {} arrived {} duplicates {} lost-after-accept {}",
            self.sent.len(),
            self.accepted.len(),
            self.arrived.len(),
            self.duplicates(),
            self.lost().len()
        )
    }
}
