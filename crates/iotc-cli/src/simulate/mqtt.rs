//! The end-to-end check: subscribe to the telemetry topic and match every published message
//! to the telegram the simulator sent (by sender ID and data), for latency and loss.

use std::collections::VecDeque;
use std::collections::hash_map::Entry;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS};

/// A telegram as the check matches it: sender and `R-ORG | data` (at most [`KEY_DATA`] bytes
/// kept; ERP1 data is shorter). Fixed size, so recording one allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    sender: u32,
    len: u8,
    data: [u8; KEY_DATA],
}

const KEY_DATA: usize = 32;

impl Key {
    /// The key of a telegram sent: its sender, R-ORG and data.
    pub fn sent(sender: u32, rorg: u8, data: &[u8]) -> Key {
        let mut key = Key {
            sender,
            len: 0,
            data: [0; KEY_DATA],
        };
        let n = (data.len() + 1).min(KEY_DATA);
        key.data[0] = rorg;
        key.data[1..n].copy_from_slice(&data[..n - 1]);
        key.len = n as u8;
        key
    }

    /// The key of a published message: `raw.sender` and `raw.data` in hex (either case).
    fn published(sender: &str, data: &str) -> Option<Key> {
        if !data.len().is_multiple_of(2) {
            return None;
        }
        let sender = u32::from_str_radix(sender, 16).ok()?;
        let mut key = Key {
            sender,
            len: 0,
            data: [0; KEY_DATA],
        };
        let n = (data.len() / 2).min(KEY_DATA);
        hex::decode_to_slice(&data[..n * 2], &mut key.data[..n]).ok()?;
        key.len = n as u8;
        Some(key)
    }
}

/// When each telegram was sent, for those not yet seen on MQTT. Nearly every key is
/// pending once, so one time is kept without a queue.
#[derive(Default)]
pub struct Pending {
    sent: rustc_hash::FxHashMap<Key, Sent>,
}

enum Sent {
    Once(Instant),
    More(VecDeque<Instant>),
}

pub type Shared<T> = Arc<Mutex<T>>;

impl Pending {
    pub fn record(&mut self, key: Key, at: Instant) {
        match self.sent.entry(key) {
            Entry::Vacant(v) => {
                v.insert(Sent::Once(at));
            }
            Entry::Occupied(mut o) => {
                let sent = o.get_mut();
                match sent {
                    Sent::Once(first) => *sent = Sent::More(VecDeque::from([*first, at])),
                    Sent::More(queue) => queue.push_back(at),
                }
            }
        }
    }

    /// The oldest send time of `key`, now seen.
    fn take(&mut self, key: &Key) -> Option<Instant> {
        let Entry::Occupied(mut o) = self.sent.entry(*key) else {
            return None;
        };
        match o.get_mut() {
            Sent::Once(at) => {
                let at = *at;
                o.remove();
                Some(at)
            }
            Sent::More(queue) => {
                let at = queue.pop_front();
                if queue.is_empty() {
                    o.remove();
                }
                at
            }
        }
    }
}

/// What the listener measured.
#[derive(Default)]
pub struct Received {
    /// Latency of each matched telegram.
    pub latencies: Vec<Duration>,
    pub last_at: Option<Instant>,
    /// Messages on the topic that match nothing the simulator sent.
    pub unmatched: u64,
}

pub struct Options {
    pub host: String,
    pub port: u16,
    pub topic: String,
    pub credentials: Option<(String, String)>,
    /// QoS of the subscription: 1 (the default) acknowledges every message to the broker.
    pub qos: QoS,
}

impl Options {
    pub fn parse(
        host_port: &str,
        topic: &str,
        credentials: Option<(String, String)>,
    ) -> anyhow::Result<Options> {
        if let Some(path) = host_port.strip_prefix("unix://") {
            return Ok(Options {
                host: path.to_string(),
                port: 0,
                topic: topic.to_string(),
                credentials,
                qos: QoS::AtLeastOnce,
            });
        }
        let (host, port) = host_port
            .rsplit_once(':')
            .with_context(|| format!("--expect-mqtt {host_port}: expected host:port"))?;
        let port = port
            .parse()
            .with_context(|| format!("--expect-mqtt {host_port}: bad port"))?;
        Ok(Options {
            host: host.to_string(),
            port,
            topic: topic.to_string(),
            credentials,
            qos: QoS::AtLeastOnce,
        })
    }
}

/// Connects and subscribes; returns once the broker confirmed the subscription.
pub async fn subscribe(options: &Options) -> anyhow::Result<EventLoop> {
    let id = format!("iotc-simulate-{:08x}", rand::random::<u32>());
    let mut mqtt = MqttOptions::new(id, options.host.clone(), options.port);
    if options.port == 0 {
        mqtt.set_transport(rumqttc::Transport::Unix);
    }
    mqtt.set_keep_alive(Duration::from_secs(30));
    mqtt.set_max_packet_size(1 << 20, 1 << 20);
    if let Some((user, password)) = &options.credentials {
        mqtt.set_credentials(user.clone(), password.clone());
    }
    let (client, mut events) = AsyncClient::new(mqtt, 1024);
    client.subscribe(options.topic.clone(), options.qos).await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, events.poll()).await {
            Ok(Ok(Event::Incoming(Packet::SubAck(_)))) => break,
            Ok(Ok(_)) => {}
            Ok(Err(e)) => bail!("MQTT {}:{}: {e}", options.host, options.port),
            Err(_) => bail!(
                "MQTT {}:{}: no subscription confirmed within 10 s",
                options.host,
                options.port
            ),
        }
    }
    // The client handle must live as long as the event loop is polled.
    std::mem::forget(client);
    Ok(events)
}

/// Polls the broker and matches telemetry messages until the task is aborted.
pub async fn listen(mut events: EventLoop, pending: Shared<Pending>, received: Shared<Received>) {
    loop {
        match events.poll().await {
            Ok(Event::Incoming(Packet::Publish(publish))) => {
                let now = Instant::now();
                let matched =
                    match_payload(&publish.payload).and_then(|key| pending.lock().ok()?.take(&key));
                if let Ok(mut r) = received.lock() {
                    match matched {
                        Some(sent) => {
                            r.latencies.push(now.duration_since(sent));
                            r.last_at = Some(now);
                        }
                        None => r.unmatched += 1,
                    }
                }
            }
            Ok(_) => {}
            Err(e) => {
                eprintln!("MQTT: {e}; reconnecting");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

/// The part of an IoTC telemetry payload the check needs; the rest is skipped without
/// being built (the simulator shares the machine it measures).
#[derive(serde::Deserialize)]
struct Payload<'a> {
    #[serde(borrow)]
    raw: RawIds<'a>,
}

#[derive(serde::Deserialize)]
struct RawIds<'a> {
    #[serde(borrow)]
    sender: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    data: std::borrow::Cow<'a, str>,
}

/// The key of an IoTC telemetry payload (`raw.sender`, `raw.data`).
fn match_payload(payload: &[u8]) -> Option<Key> {
    if let Some(raw) = last_raw_object(payload)
        && let Some(key) = key_of_raw(raw)
    {
        return Some(key);
    }
    let p: Payload = serde_json::from_slice(payload).ok()?;
    Key::published(&p.raw.sender, &p.raw.data)
}

/// The engine writes `raw` as the payload's last member: reading from there skips the
/// kilobyte before it. A quote inside a JSON string is escaped, so `"raw":` found here is a
/// key.
fn last_raw_object(payload: &[u8]) -> Option<&[u8]> {
    const RAW: &[u8] = b"\"raw\":";
    let at = payload.windows(RAW.len()).rposition(|w| w == RAW)?;
    Some(&payload[at + RAW.len()..])
}

/// The key from `raw`'s object, if only the payload's closing brace follows it (else the
/// `raw` found was not the top-level one).
fn key_of_raw(raw: &[u8]) -> Option<Key> {
    let mut stream = serde_json::Deserializer::from_slice(raw).into_iter::<RawIds>();
    let ids = stream.next()?.ok()?;
    let rest = &raw[stream.byte_offset()..];
    if rest.trim_ascii() != b"}" {
        return None;
    }
    Key::published(&ids.sender, &ids.data)
}

/// The `p`-th percentile (0..=100) of sorted durations.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_iotc_payloads() {
        let payload =
            br#"{"sensor":{},"telemetry":{},"raw":{"data":"A53E1F0008","sender":"0510000A"}}"#;
        assert_eq!(
            match_payload(payload),
            Some(Key::sent(0x0510_000a, 0xa5, &[0x3e, 0x1f, 0x00, 0x08]))
        );
        assert_eq!(match_payload(b"not json"), None);
        let odd = br#"{"raw":{"data":"A5zz","sender":"0510000A"}}"#;
        assert_eq!(match_payload(odd), None, "not hex");
        let half = br#"{"raw":{"data":"A53","sender":"0510000A"}}"#;
        assert_eq!(match_payload(half), None, "half a byte");
        let nested = br#"{"telemetry":{"raw":{"data":"F610","sender":"01"}},"raw":{"data":"F630","sender":"02"}}"#;
        assert_eq!(
            match_payload(nested),
            Some(Key::sent(2, 0xf6, &[0x30])),
            "the top-level raw"
        );
        let spaced = br#"{"raw": {"sender": "0510000A", "data": "F630"}, "sensor": {}}"#;
        assert_eq!(
            match_payload(spaced),
            Some(Key::sent(0x0510_000a, 0xf6, &[0x30])),
            "any layout"
        );
        let first = br#"{"raw":{"data":"F630","sender":"02"},"telemetry":{"raw":{"data":"F610","sender":"01"}}}"#;
        assert_eq!(
            match_payload(first),
            Some(Key::sent(2, 0xf6, &[0x30])),
            "raw not last"
        );
    }

    #[test]
    fn pending_is_first_in_first_out() {
        let mut p = Pending::default();
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_millis(5);
        let t2 = t0 + Duration::from_millis(9);
        let (a, b) = (Key::sent(1, 0xf6, &[0x30]), Key::sent(1, 0xf6, &[0x10]));
        p.record(a, t0);
        p.record(b, t2);
        p.record(a, t1);
        assert_eq!(p.take(&a), Some(t0));
        assert_eq!(p.take(&a), Some(t1));
        assert_eq!(p.take(&a), None);
        assert_eq!(p.take(&b), Some(t2));
        assert_eq!(p.take(&b), None);
    }

    #[test]
    fn percentiles() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&v, 50.0), Duration::from_millis(51));
        assert_eq!(percentile(&v, 100.0), Duration::from_millis(100));
        assert_eq!(percentile(&[], 50.0), Duration::ZERO);
    }
}
