//! The stage after reading: decode a batch, verify secure telegrams, count it in Redis and
//! assemble its messages. Decoding state (chains, rolling codes) lives here, in one task, so
//! telegrams are handled in stream order.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use iotc_core::bus::TelegramEntry;
use iotc_core::keys::stats;
use iotc_core::ops::{unix_millis, unix_seconds};
use iotc_core::payload::GatewayEvent;
use iotc_core::redis::Redis;
use rustc_hash::FxHashSet;
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

use super::assemble::{Assembler, Publication, telegram_metric};
use super::batch::{AfterPublish, Batch, Committed, Item, Prepared};
use super::retry;
use crate::counting;
use crate::decode::{Decoder, DeviceResult, DeviceTelegram, Outcome};
use crate::device_counts::{self, Counters, DeviceCounts};
use crate::egress::{Egress, OutMessage};
use crate::lease::Held;
use crate::secure;
use crate::stream::{self, Entry, IdSet, SharedDedup, Source};

pub struct Prepare {
    pub redis: Redis,
    /// Batches from the read stage, in the order they were read.
    pub batches: super::read::Batches,
    /// The de-duplication windows (shared with the reader).
    pub dedup: SharedDedup,
    /// The telegram streams held.
    pub partitions: Held,
    pub decoder: Decoder,
    pub secure: secure::Stage,
    pub egress: Arc<Egress>,
    pub shutdown: watch::Receiver<bool>,
    /// Home Assistant state, availability and button events, when enabled.
    pub ha: Option<crate::egress::ha::Ha>,
    /// Batches on their way to the publish stage.
    pub out: mpsc::Sender<Prepared>,
    /// What the commit stage has acknowledged since.
    pub committed: mpsc::UnboundedReceiver<Committed>,
    /// Entries read and not yet acknowledged, by [`crate::stream::held_key`]: skipped when a
    /// claim or a read of own pending entries returns them again.
    pub in_flight: IdSet,
    /// Devices whose FIRST_TIME_SEND is published but not yet marked in Redis.
    pub first_pending: FxHashSet<String>,
    /// The counters of the devices of the partitions held.
    pub counts: DeviceCounts,
}

impl Prepare {
    /// Runs until shutdown is requested; dropping `out` then ends the later stages.
    pub async fn run(mut self) {
        while !*self.shutdown.borrow() {
            self.take_committed();
            let read = tokio::select! {
                r = self.batches.recv() => r,
                _ = self.shutdown.changed() => break,
            };
            let Some(entries) = read else { break };
            let handed_on = self.hand_on(entries).await;
            self.batches.prepared();
            if !handed_on {
                break;
            }
        }
        // A batch read ahead was delivered to this consumer: prepared too, so the publish
        // stage drains it rather than waiting for a claim.
        self.batches.close();
        while let Some(entries) = self.batches.recv().await {
            if !self.hand_on(entries).await {
                break;
            }
        }
        info!("engine stopped");
    }

    /// Prepares one batch and hands it to the publish stage; `false` once that stage is gone.
    async fn hand_on(&mut self, entries: Vec<Entry>) -> bool {
        let Some(prepared) = self.prepare(entries).await else {
            return true;
        };
        // Handed on even when stopping: its counters are written, so the publish stage
        // drains it rather than the next holder counting it again (the send fails at once if
        // that stage is gone).
        self.out.send(prepared).await.is_ok()
    }

    /// Leaves out entries already being handled: a claim, or a read of own pending entries
    /// (after a failed read), also returns the batches in flight and the parts of open
    /// chains. Without this a batch held up longer than the claim idle time (broker down)
    /// would be published a second time.
    fn not_yet_here(&self, mut entries: Vec<Entry>) -> Vec<Entry> {
        let chains = if self.decoder.holds_any() {
            self.decoder.held_ids()
        } else {
            IdSet::default()
        };
        entries.retain(|e| {
            let key = e.held_key();
            !self.in_flight.contains(key.as_ref()) && !chains.contains(key.as_ref())
        });
        entries
    }

    /// Forgets what the commit stage has acknowledged and marked.
    fn take_committed(&mut self) {
        while let Ok(c) = self.committed.try_recv() {
            for key in c.acks.held_keys() {
                self.in_flight.remove(key.as_ref());
            }
            for eurid in &c.first_seen {
                self.first_pending.remove(eurid);
                self.counts.mark_seen(eurid);
            }
        }
    }

    /// One read's entries as a counted batch with its messages; `None` when there is
    /// nothing to publish or acknowledge, or on shutdown.
    async fn prepare(&mut self, entries: Vec<Entry>) -> Option<Prepared> {
        let read_at = Instant::now();
        let mut batch = Batch::default();
        for entry in self.not_yet_here(entries) {
            match entry.source {
                Source::Telegrams => self.add_telegram(entry, &mut batch).await,
                Source::GatewayEvents => self.add_gateway_event(entry, &mut batch),
            }
        }
        self.add_abandoned_chains(&mut batch);
        if batch.is_empty() {
            return None;
        }
        // Markers committed up to now count as seen below.
        self.take_committed();
        let counters = self.count(&batch).await?;
        let mut publication = self.assemble(&batch, &counters);
        if let Some(ha) = &mut self.ha {
            let observations: Vec<_> = batch.items.iter().filter_map(Item::observation).collect();
            let more = ha.after_batch(&self.redis, &observations).await;
            publication.messages.extend(more);
        }
        let heard = batch
            .items
            .iter()
            .map(|i| (i.dt.eurid.clone(), i.mac.clone()))
            .collect();
        self.in_flight
            .extend(batch.acks.held_keys().map(|k| k.into_owned()));
        Some(Prepared {
            messages: publication.messages,
            after: AfterPublish {
                recent: publication.recent,
                first_seen: publication.first_seen,
                heard,
                acks: batch.acks,
                read_at,
            },
        })
    }

    fn assemble(&mut self, batch: &Batch, counters: &[Counters]) -> Publication {
        let mut assembler = Assembler {
            egress: &self.egress,
            first_pending: &mut self.first_pending,
            now_s: unix_seconds(),
            out: Publication::default(),
        };
        for (item, c) in batch.items.iter().zip(counters) {
            assembler.telegram(item, c);
        }
        let mut out = assembler.out;
        out.messages.extend(batch.gateway_events.iter().cloned());
        out
    }

    async fn add_telegram(&mut self, entry: Entry, batch: &mut Batch) {
        let Some(payload) = entry.payload else {
            telegram_metric("gone");
            batch.acks.telegrams.push(entry.id);
            return;
        };
        let parsed = match TelegramEntry::decode(&payload) {
            Ok(p) => p,
            Err(e) => {
                telegram_metric("bad_entry");
                warn!(id = %entry.id, error = %e, "unreadable telegram stream entry");
                batch.acks.telegrams.push(entry.id);
                return;
            }
        };
        let (stream, id) = stream::split_id(Source::Telegrams, &entry.id);
        if stream::lock(&self.dedup).is_copy(stream, id, &parsed.esp3) {
            telegram_metric("duplicate");
            batch.acks.telegrams.push(entry.id);
            return;
        }
        let mac = parsed.mac_hex();
        let mut released = Vec::new();
        let outcome = self.decoder.decode(&entry.id, &parsed, &mut released);
        let settled = self
            .secure
            .settle(&self.redis, &self.shutdown, outcome, &entry.id);
        let Some(outcome) = settled.await else {
            return; // stopping while Redis is away: left unacknowledged
        };
        batch.acks.telegrams.extend(released);
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
                crate::control::learn::unknown_heard(&parsed);
                self.not_processed();
                if first {
                    info!(gateway = %mac, "Sensor {sender} is not learned in. Dropping.");
                }
                batch.count_gateway(&mac, stats::NOT_PROCESSED);
            }
            Outcome::Device(dt) => {
                crate::control::queue::device_sent(&dt.eurid);
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
        batch.acks.telegrams.push(entry.id);
    }

    fn add_gateway_event(&mut self, entry: Entry, batch: &mut Batch) {
        batch.acks.gateway.push(entry.id);
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
            batch.acks.telegrams.extend(ids);
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

    fn not_processed(&self) {
        self.egress
            .counters()
            .not_processed
            .fetch_add(1, Ordering::Relaxed);
    }
}

impl Prepare {
    /// Counts the batch: its devices' counters including each telegram (and whether the
    /// device was seen before), written to Redis together with the gateway counters in one
    /// round trip.
    async fn count(&mut self, batch: &Batch) -> Option<Vec<Counters>> {
        let changes = self.decoder.devices().take_changes();
        self.counts.refresh(self.partitions.current(), changes);
        let in_copy: Vec<bool> = batch
            .items
            .iter()
            .map(|i| self.counts.knows(&i.dt.eurid))
            .collect();
        let (mut known, mut new) = (Vec::new(), Vec::new());
        for (item, &k) in batch.items.iter().zip(&in_copy) {
            let counted = (item.dt.eurid.as_str(), item.dt.result.outcome());
            if k { &mut known } else { &mut new }.push(counted);
        }
        let applied = self.counts.apply(&known);
        let key = counting::batch_key(batch.acks.ids().map(String::as_str));
        let script = counting::Counts {
            devices: new,
            gateways: batch
                .gateway_counts
                .iter()
                .map(|((mac, field), n)| (mac.as_str(), *field, *n))
                .collect(),
        };
        let (writes, script, key) = (&applied.writes, &script, &key);
        let answers = retry::redis(
            &self.redis,
            &mut self.shutdown,
            "counting",
            |r| async move { write_counts(r, key, script, writes).await },
        )
        .await?;
        let counted = device_counts::from_script(&script.devices, &answers);
        self.counts.store(&applied.writes);
        self.counts.store(&counted.writes);
        // Back into the batch's order.
        let (mut known, mut new) = (applied.items.into_iter(), counted.items.into_iter());
        let items = in_copy
            .iter()
            .map(|&k| if k { known.next() } else { new.next() }.unwrap_or_default());
        Some(items.collect())
    }
}

/// The absolute writes of the devices in the copy, and the counting script for the others
/// and the gateways (applied once per batch even when retried), side by side on the
/// connection. Returns the script's answer: four numbers per device telegram it counted.
async fn write_counts(
    redis: Redis,
    key: &str,
    script: &counting::Counts<'_>,
    writes: &[(String, Counters)],
) -> redis::RedisResult<Vec<i64>> {
    let now = unix_seconds();
    let devices = async {
        if writes.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        device_counts::add_writes(&mut pipe, writes, now);
        pipe.query_async::<()>(&mut redis.clone()).await
    };
    let counted = async {
        if redis.is_cluster() {
            crate::counting_cluster::count_by_slot(&redis, key, script, now).await
        } else {
            counting::count(&mut redis.clone(), key, script, now).await
        }
    };
    let ((), answers) = futures_util::try_join!(devices, counted)?;
    Ok(answers)
}
