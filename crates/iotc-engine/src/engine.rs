//! The processing loop: read a batch, decode, count, publish, acknowledge.
//!
//! Per batch there are two Redis round trips: one atomic pipeline that counts (and returns
//! the device counters the telemetry carries), and, after the egress confirmed every
//! message, one that stores the most recent messages, marks first-time senders and XACKs.
//! An entry is acknowledged only after everything it produced was confirmed: delivery is
//! at-least-once (see docs/engine.md).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use iotc_core::backoff::Backoff;
use iotc_core::bus::TelegramEntry;
use iotc_core::keys::{self, stats};
use iotc_core::ops::{unix_millis, unix_seconds};
use iotc_core::payload::{EventCode, GatewayEvent, SensorEvent, SensorInfo};
use iotc_core::redis::Redis;
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::counting;
use crate::decode::{Decoder, DeviceResult, DeviceTelegram, Outcome};
use crate::egress::{DeadLetter, Delivery, Egress, OutMessage};
use crate::secure;
use crate::stream::{Entry, Reader, Source};
use crate::telemetry;

pub struct Engine {
    pub redis: Redis,
    pub reader: Reader,
    pub decoder: Decoder,
    /// Verification of secure telegrams and secure teach-ins (needs Redis per telegram).
    pub secure: secure::Stage,
    pub egress: Arc<Egress>,
    pub shutdown: watch::Receiver<bool>,
}

/// One telegram of an onboarded device, with what the published JSON needs.
struct Item {
    dt: DeviceTelegram,
    mac: String,
    received_ms: u64,
    entry_dbm: i8,
}

/// Everything one batch leads to.
#[derive(Default)]
struct Batch {
    items: Vec<Item>,
    /// (gateway MAC, stats field) → increment.
    gateway_counts: HashMap<(String, &'static str), i64>,
    gateway_events: Vec<OutMessage>,
    acks_telegrams: Vec<String>,
    acks_gateway: Vec<String>,
}

impl Batch {
    fn is_empty(&self) -> bool {
        self.items.is_empty()
            && self.gateway_counts.is_empty()
            && self.gateway_events.is_empty()
            && self.acks_telegrams.is_empty()
            && self.acks_gateway.is_empty()
    }

    fn count_gateway(&mut self, mac: &str, field: &'static str) {
        *self
            .gateway_counts
            .entry((mac.to_string(), field))
            .or_default() += 1;
    }
}

/// Messages to publish and what to store once they are confirmed.
#[derive(Default)]
struct Publication {
    messages: Vec<OutMessage>,
    /// (list key, JSON) for the most-recent lists.
    recent: Vec<(String, String)>,
    first_seen: Vec<String>,
}

impl Engine {
    /// Runs until shutdown is requested.
    pub async fn run(mut self) {
        let mut backoff = Backoff::default();
        while !*self.shutdown.borrow() {
            let held = self.decoder.held_ids();
            let read = tokio::select! {
                r = self.reader.next_batch(&held) => r,
                _ = self.shutdown.changed() => break,
            };
            match read {
                Ok(entries) => {
                    backoff.reset();
                    self.handle(entries).await;
                }
                Err(e) => {
                    metrics::counter!("iotc_engine_redis_errors_total").increment(1);
                    warn!(error = %e, "reading the streams failed; retrying");
                    self.pause(backoff.next_pause()).await;
                }
            }
        }
        info!("engine stopped");
    }

    async fn pause(&mut self, d: Duration) {
        tokio::select! {
            _ = tokio::time::sleep(d) => {}
            _ = self.shutdown.changed() => {}
        }
    }

    /// Processes one batch; returns when its entries are acknowledged (or on shutdown,
    /// leaving them pending for the next start).
    async fn handle(&mut self, entries: Vec<Entry>) {
        let started = std::time::Instant::now();
        let mut batch = Batch::default();
        for entry in entries {
            match entry.source {
                Source::Telegrams => self.add_telegram(entry, &mut batch).await,
                Source::GatewayEvents => self.add_gateway_event(entry, &mut batch),
            }
        }
        self.add_abandoned_chains(&mut batch);
        if batch.is_empty() {
            return;
        }
        let b = &batch;
        let counting = self.retry("counting", |mut r| async move { count(&mut r, b).await });
        let Some(counters) = counting.await else {
            return;
        };
        let publication = self.publication(&batch, &counters);
        let mut delivery = Delivery::new(publication.messages.clone());
        if !self.retry_egress(&mut delivery).await {
            return;
        }
        let dead = delivery.dead_letters();
        let published = delivery.len() - dead.len();
        let p = &publication;
        let committing = self.retry("acknowledging", |mut r| async move {
            commit(&mut r, b, p, dead).await
        });
        if committing.await.is_none() {
            return;
        }
        count_dead_letters(dead);
        metrics::counter!("iotc_engine_messages_published_total").increment(published as u64);
        metrics::histogram!("iotc_engine_batch_seconds").record(started.elapsed().as_secs_f64());
        metrics::histogram!("iotc_engine_batch_entries")
            .record((batch.acks_telegrams.len() + batch.acks_gateway.len()) as f64);
    }

    async fn add_telegram(&mut self, entry: Entry, batch: &mut Batch) {
        let Some(payload) = entry.payload else {
            telegram_metric("gone");
            batch.acks_telegrams.push(entry.id);
            return;
        };
        let parsed = match TelegramEntry::decode(&payload) {
            Ok(p) => p,
            Err(e) => {
                telegram_metric("bad_entry");
                warn!(id = %entry.id, error = %e, "unreadable telegram stream entry");
                batch.acks_telegrams.push(entry.id);
                return;
            }
        };
        let mac = parsed.mac_hex();
        let mut released = Vec::new();
        let outcome = self.decoder.decode(&entry.id, &parsed, &mut released);
        let settled = self
            .secure
            .settle(&self.redis, &self.shutdown, outcome, &entry.id);
        let Some(outcome) = settled.await else {
            return; // stopping while Redis is away: left unacknowledged
        };
        batch.acks_telegrams.extend(released);
        match outcome {
            Outcome::ChainPart => {
                telegram_metric("chain_part");
                return;
            }
            Outcome::Broken(reason) => {
                telegram_metric("broken");
                self.not_processed();
                debug!(gateway = %mac, %reason, "telegram not readable");
                batch.count_gateway(&mac, stats::NOT_PROCESSED);
            }
            Outcome::Unknown { sender, first } => {
                telegram_metric("unknown_device");
                self.not_processed();
                if first {
                    info!(gateway = %mac, "Sensor {sender} is not learned in. Dropping.");
                }
                batch.count_gateway(&mac, stats::NOT_PROCESSED);
            }
            Outcome::Device(dt) => {
                let ok = dt.result.is_success();
                batch.count_gateway(&mac, if ok { stats::OK } else { stats::NOT_PROCESSED });
                batch.items.push(Item {
                    dt,
                    mac,
                    received_ms: parsed.received_ms,
                    entry_dbm: parsed.dbm,
                });
            }
        }
        batch.acks_telegrams.push(entry.id);
    }

    fn add_gateway_event(&mut self, entry: Entry, batch: &mut Batch) {
        batch.acks_gateway.push(entry.id);
        let Some(payload) = entry.payload else {
            return;
        };
        match serde_json::from_slice::<GatewayEvent>(&payload) {
            Ok(ev) => {
                let topic = self
                    .egress
                    .topics()
                    .gateway_event(&ev.gateway_info.mac.to_ascii_lowercase());
                batch.gateway_events.push(OutMessage::new(topic, payload));
                metrics::counter!("iotc_engine_gateway_events_total").increment(1);
            }
            Err(e) => {
                metrics::counter!("iotc_engine_gateway_events_invalid_total").increment(1);
                warn!(error = %e, "gateway event is not IoTC's gateway meta event; dropped");
            }
        }
    }

    /// Chains that never completed: their parts are acknowledged and counted once.
    fn add_abandoned_chains(&mut self, batch: &mut Batch) {
        for (device, ids) in self.decoder.expire() {
            telegram_metric("chain_incomplete");
            batch.acks_telegrams.extend(ids);
            let eurid = device.source_eurid.clone();
            batch.items.push(Item {
                dt: DeviceTelegram {
                    device,
                    eurid,
                    result: DeviceResult::Failed {
                        reason: "chained telegram incomplete".into(),
                        event: None,
                    },
                },
                mac: String::new(),
                received_ms: unix_millis(),
                entry_dbm: 0,
            });
        }
    }

    /// Builds the messages of a batch from its items and their fresh counters.
    fn publication(&self, batch: &Batch, counters: &[i64]) -> Publication {
        let topics = self.egress.topics();
        let mut out = Publication::default();
        let mut seen_here: HashSet<&str> = HashSet::new();
        let now_s = unix_seconds();
        for (item, c) in batch.items.iter().zip(counters.chunks_exact(4)) {
            let dt = &item.dt;
            let sensor = SensorInfo::from(dt.device.as_ref());
            if c[3] == 0 && seen_here.insert(&dt.eurid) {
                info!(eurid = %dt.eurid, "first telegram of device");
                let msg = format!("First time send of device with id={}.", dt.eurid);
                let ev = SensorEvent::new(sensor.clone(), EventCode::FirstTimeSend, msg, now_s);
                out.messages
                    .push(event_message(topics.sensor_event(&dt.eurid), &ev));
                out.first_seen.push(dt.eurid.clone());
            }
            let counts = telemetry::Counts {
                total: c[0] as u64,
                ok: c[1] as u64,
                not_processed: c[2] as u64,
            };
            match &dt.result {
                DeviceResult::Data { telegram, fields }
                | DeviceResult::Signal { telegram, fields } => {
                    self.egress
                        .counters()
                        .processed
                        .fetch_add(1, Ordering::Relaxed);
                    let signal = matches!(dt.result, DeviceResult::Signal { .. });
                    telegram_metric(if signal { "signal" } else { "data" });
                    let radio = telemetry::Radio {
                        received_ms: item.received_ms,
                        entry_dbm: item.entry_dbm,
                    };
                    let json = telemetry::build(sensor, telegram, fields, signal, counts, radio);
                    out.messages.push(OutMessage::new(
                        topics.sensor_telemetry(&dt.eurid),
                        json.clone(),
                    ));
                    let list = if signal {
                        keys::device_recent_signal(&dt.eurid)
                    } else {
                        keys::device_recent_telemetry(&dt.eurid)
                    };
                    out.recent.push((list, json));
                }
                DeviceResult::Secure(_) => {
                    // Settled before; counted like any telegram not processed.
                    self.not_processed();
                    telegram_metric("not_processed");
                }
                DeviceResult::TeachIn(t) => {
                    self.not_processed();
                    telegram_metric("teach_in");
                    info!(eurid = %dt.eurid, gateway = %item.mac, kind = ?t.kind,
                          eep = ?t.eep.map(|e| e.to_string()), "teach-in telegram; not published");
                }
                DeviceResult::Failed { reason, event } => {
                    self.not_processed();
                    telegram_metric("not_processed");
                    warn!(eurid = %dt.eurid, %reason, "telegram not processed");
                    if let Some((code, message)) = event {
                        let ev = SensorEvent::new(sensor, *code, message.clone(), now_s);
                        out.messages
                            .push(event_message(topics.sensor_event(&dt.eurid), &ev));
                    }
                }
            }
        }
        out.messages.extend(batch.gateway_events.iter().cloned());
        out
    }

    fn not_processed(&self) {
        self.egress
            .counters()
            .not_processed
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Retries a Redis call until it succeeds; `None` on shutdown.
    async fn retry<T, F, Fut>(&mut self, what: &str, mut call: F) -> Option<T>
    where
        F: FnMut(Redis) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let mut backoff = Backoff::default();
        loop {
            match call(self.redis.clone()).await {
                Ok(v) => return Some(v),
                Err(e) => {
                    metrics::counter!("iotc_engine_redis_errors_total").increment(1);
                    warn!(error = %e, "{what} failed; retrying");
                }
            }
            if *self.shutdown.borrow() {
                return None;
            }
            self.pause(backoff.next_pause()).await;
        }
    }

    /// Publishes until every message is confirmed or refused for good; `false` on shutdown.
    async fn retry_egress(&mut self, delivery: &mut Delivery) -> bool {
        let mut backoff = Backoff::default();
        let egress = self.egress.clone();
        loop {
            let result = tokio::select! {
                r = egress.deliver(delivery) => r,
                _ = self.shutdown.changed() => return false,
            };
            match result {
                Ok(()) => return true,
                Err(e) => {
                    metrics::counter!("iotc_engine_egress_retries_total").increment(1);
                    warn!(error = %e, "egress did not confirm; publishing again");
                }
            }
            if *self.shutdown.borrow() {
                return false;
            }
            self.pause(backoff.next_pause()).await;
        }
    }
}

fn telegram_metric(outcome: &'static str) {
    metrics::counter!("iotc_engine_telegrams_total", "outcome" => outcome).increment(1);
}

fn event_message(topic: String, ev: &SensorEvent) -> OutMessage {
    let json = serde_json::to_vec(ev).expect("event serializes");
    metrics::counter!("iotc_engine_events_total").increment(1);
    OutMessage::new(topic, json)
}

/// First round trip: device and gateway counters, and whether each device was seen before,
/// applied once per batch even when retried. Four numbers per item: total,
/// succesfullyProcessed, notProcessed, seen (0/1).
async fn count(redis: &mut Redis, batch: &Batch) -> redis::RedisResult<Vec<i64>> {
    let ids = batch.acks_telegrams.iter().chain(&batch.acks_gateway);
    let key = counting::batch_key(ids.map(String::as_str));
    let counts = counting::Counts {
        devices: batch
            .items
            .iter()
            .map(|i| (i.dt.eurid.as_str(), i.dt.result.is_success()))
            .collect(),
        gateways: batch
            .gateway_counts
            .iter()
            .map(|((mac, field), n)| (mac.as_str(), *field, *n))
            .collect(),
    };
    if redis.is_cluster() {
        return crate::counting_cluster::count_by_slot(redis, &key, &counts, unix_seconds()).await;
    }
    counting::count(redis, &key, &counts, unix_seconds()).await
}

/// Second round trip, after the egress confirmed: most-recent lists, first-seen markers,
/// dead letters, acknowledgements.
async fn commit(
    redis: &mut Redis,
    batch: &Batch,
    publication: &Publication,
    dead: &[DeadLetter],
) -> redis::RedisResult<()> {
    let mut pipe = redis::pipe();
    for letter in dead {
        add_dead_letter(&mut pipe, letter);
    }
    for eurid in &publication.first_seen {
        pipe.set_nx(keys::device_seen(eurid), unix_seconds())
            .ignore();
    }
    for (list, json) in &publication.recent {
        pipe.lpush(list, json).ignore().ltrim(list, 0, 4).ignore();
    }
    let acks = [
        (Source::Telegrams, &batch.acks_telegrams),
        (Source::GatewayEvents, &batch.acks_gateway),
    ];
    for (source, ids) in acks {
        crate::stream::add_acks(&mut pipe, source, ids);
    }
    pipe.query_async(redis).await
}

/// Largest part of a dead letter's payload kept in the stream, in bytes.
const DEAD_PAYLOAD_MAX: usize = 16 * 1024;

/// One entry of the dead-letter stream: where it was going, why it was refused, when, its
/// size and the start of its payload.
fn add_dead_letter(pipe: &mut redis::Pipeline, letter: &DeadLetter) {
    let kept = &letter.payload[..letter.payload.len().min(DEAD_PAYLOAD_MAX)];
    pipe.xadd_maxlen(
        keys::DEAD_LETTER_STREAM,
        redis::streams::StreamMaxlen::Approx(keys::DEAD_LETTER_MAXLEN),
        "*",
        &[
            ("egress", letter.egress.as_bytes()),
            ("topic", letter.topic.as_bytes()),
            ("reason", letter.reason.as_bytes()),
            ("time", unix_millis().to_string().as_bytes()),
            ("size", letter.payload.len().to_string().as_bytes()),
            ("payload", kept),
        ],
    )
    .ignore();
}

fn count_dead_letters(dead: &[DeadLetter]) {
    for letter in dead {
        let reason = letter.reason_label().to_string();
        metrics::counter!("iotc_engine_dead_letters_total", "egress" => letter.egress, "reason" => reason)
            .increment(1);
        tracing::error!(egress = letter.egress, topic = %letter.topic, reason = %letter.reason,
            size = letter.payload.len(), "broker refused a message for good; kept in {}", keys::DEAD_LETTER_STREAM);
    }
}
