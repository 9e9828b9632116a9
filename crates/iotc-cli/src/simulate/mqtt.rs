//! The end-to-end check: subscribe to the telemetry topic and match every published message
//! to the telegram the simulator sent (by sender ID and data), for latency and loss.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS};

/// Telegrams sent and not yet seen on MQTT, keyed by (sender hex, data hex).
#[derive(Default)]
pub struct Pending {
    sent: HashMap<(String, String), VecDeque<Instant>>,
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

pub type Shared<T> = Arc<Mutex<T>>;

impl Pending {
    pub fn record(&mut self, sender: String, data: String, at: Instant) {
        self.sent.entry((sender, data)).or_default().push_back(at);
    }

    fn take(&mut self, sender: &str, data: &str) -> Option<Instant> {
        let key = (sender.to_string(), data.to_string());
        let queue = self.sent.get_mut(&key)?;
        let at = queue.pop_front();
        if queue.is_empty() {
            self.sent.remove(&key);
        }
        at
    }
}

pub struct Options {
    pub host: String,
    pub port: u16,
    pub topic: String,
    pub credentials: Option<(String, String)>,
}

impl Options {
    pub fn parse(
        host_port: &str,
        topic: &str,
        credentials: Option<(String, String)>,
    ) -> anyhow::Result<Options> {
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
        })
    }
}

/// Connects and subscribes; returns once the broker confirmed the subscription.
pub async fn subscribe(options: &Options) -> anyhow::Result<EventLoop> {
    let id = format!("iotc-simulate-{:08x}", rand::random::<u32>());
    let mut mqtt = MqttOptions::new(id, options.host.clone(), options.port);
    mqtt.set_keep_alive(Duration::from_secs(30));
    mqtt.set_max_packet_size(1 << 20, 1 << 20);
    if let Some((user, password)) = &options.credentials {
        mqtt.set_credentials(user.clone(), password.clone());
    }
    let (client, mut events) = AsyncClient::new(mqtt, 1024);
    client
        .subscribe(options.topic.clone(), QoS::AtLeastOnce)
        .await?;
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
                let matched = match_payload(&publish.payload)
                    .and_then(|(sender, data)| pending.lock().ok()?.take(&sender, &data));
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

/// `(raw.sender, raw.data)` of an IoTC telemetry payload.
fn match_payload(payload: &[u8]) -> Option<(String, String)> {
    let p: Payload = serde_json::from_slice(payload).ok()?;
    Some((
        p.raw.sender.to_ascii_lowercase(),
        p.raw.data.to_ascii_lowercase(),
    ))
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
            Some(("0510000a".into(), "a53e1f0008".into()))
        );
        assert_eq!(match_payload(b"not json"), None);
    }

    #[test]
    fn pending_is_first_in_first_out() {
        let mut p = Pending::default();
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_millis(5);
        p.record("a".into(), "d".into(), t0);
        p.record("a".into(), "d".into(), t1);
        assert_eq!(p.take("a", "d"), Some(t0));
        assert_eq!(p.take("a", "d"), Some(t1));
        assert_eq!(p.take("a", "d"), None);
    }

    #[test]
    fn percentiles() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&v, 50.0), Duration::from_millis(51));
        assert_eq!(percentile(&v, 100.0), Duration::from_millis(100));
        assert_eq!(percentile(&[], 50.0), Duration::ZERO);
    }
}
