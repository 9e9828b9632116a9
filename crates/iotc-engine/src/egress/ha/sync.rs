//! The task that keeps Home Assistant's view in step: discovery configs of every onboarded
//! device at start, after each broker reconnect and on every device change; empty retained
//! messages for what a deleted or changed device no longer has; `offline` for devices that
//! missed their rhythm.
//!
//! What was published is recorded in Redis (`keys::HA_DISCOVERY`: EURID → topics), so a
//! device deleted while the engine was down is still cleared at its next start.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use iotc_core::backoff::Backoff;
use iotc_core::keys;
use iotc_core::model::EnOceanSensor;
use iotc_core::ops::unix_millis;
use iotc_core::redis::Redis;
use redis::AsyncCommands;
use tracing::{info, warn};

use super::discovery::{self, Config};
use super::{Availability, Shared, state};
use crate::egress::{Egress, OutMessage};

/// How often reconnects and silent devices are checked.
const TICK: Duration = Duration::from_secs(1);

/// Runs for ever: follows device changes, reconnects and device rhythms.
pub async fn run(shared: Shared, client: redis::Client, redis: Redis, egress: Arc<Egress>) {
    let mut sync = Sync {
        shared,
        redis,
        egress,
        seeded: false,
    };
    loop {
        if let Err(e) = sync.follow(&client).await {
            warn!(error = %e, "Home Assistant sync: device subscription lost; retrying");
        }
        tokio::time::sleep(TICK).await;
    }
}

struct Sync {
    shared: Shared,
    redis: Redis,
    egress: Arc<Egress>,
    seeded: bool,
}

impl Sync {
    async fn follow(&mut self, client: &redis::Client) -> redis::RedisResult<()> {
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe(keys::DEVICES_CHANGED).await?;
        let mut connects = self.egress.connects();
        self.full().await?;
        let mut messages = pubsub.on_message();
        let mut tick = tokio::time::interval(TICK);
        loop {
            tokio::select! {
                msg = messages.next() => {
                    let Some(msg) = msg else { break };
                    let field: String = msg.get_payload()?;
                    match field.trim() {
                        "*" => self.full().await?,
                        f => self.one(f).await?,
                    }
                }
                _ = tick.tick() => {
                    let now = self.egress.connects();
                    if now != connects && self.egress.connected() {
                        connects = now;
                        info!("broker reconnected; publishing Home Assistant discovery again");
                        self.full().await?;
                    }
                    self.timeouts().await;
                    self.offline().await;
                }
            }
        }
        Err(redis::RedisError::from((
            redis::ErrorKind::Io,
            "subscription closed",
        )))
    }

    /// Every device: configs published, stale ones cleared; availability seeded once.
    async fn full(&mut self) -> redis::RedisResult<()> {
        let all: HashMap<String, String> = self.redis.hgetall(keys::DEVICES).await?;
        let devices: BTreeMap<String, EnOceanSensor> = all
            .values()
            .filter_map(|json| serde_json::from_str::<EnOceanSensor>(json).ok())
            .map(|d| (d.source_eurid.to_ascii_lowercase(), d))
            .collect();
        let published: HashMap<String, String> = self.redis.hgetall(keys::HA_DISCOVERY).await?;
        if !self.seeded {
            self.seed(devices.keys()).await?;
            self.seeded = true;
        }
        let mut msgs = Vec::new();
        if self.shared.args.ha_discovery {
            msgs.push(retained(discovery::bridge(&self.shared.topics)));
        }
        let manufacturers = if self.shared.args.ha_discovery {
            self.manufacturers(devices.keys()).await?
        } else {
            HashMap::new()
        };
        let mut record = Vec::new();
        let mut gone = Vec::new();
        for (eurid, d) in &devices {
            let before = topics_of(published.get(eurid));
            let made_by = manufacturers.get(eurid).copied();
            record.push((
                eurid.clone(),
                self.device(eurid, Some((d, made_by)), before, &mut msgs),
            ));
        }
        for (eurid, topics) in &published {
            if !devices.contains_key(eurid) {
                self.device(eurid, None, topics_of(Some(topics)), &mut msgs);
                gone.push(eurid.clone());
            }
        }
        self.publish(msgs).await;
        self.write_record(&record, &gone).await?;
        info!(
            devices = devices.len(),
            removed = gone.len(),
            "Home Assistant view published"
        );
        Ok(())
    }

    /// One changed device field (`<source>:<destination>`).
    async fn one(&mut self, field: &str) -> redis::RedisResult<()> {
        let json: Option<String> = self.redis.hget(keys::DEVICES, field).await?;
        let device = json.and_then(|j| serde_json::from_str::<EnOceanSensor>(&j).ok());
        let eurid = field
            .split(':')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let before: Option<String> = self.redis.hget(keys::HA_DISCOVERY, &eurid).await?;
        let made_by: Option<u16> = match device {
            Some(_) => self.redis.get(keys::device_manufacturer(&eurid)).await?,
            None => None,
        };
        let mut msgs = Vec::new();
        let topics = self.device(
            &eurid,
            device.as_ref().map(|d| (d, made_by)),
            topics_of(before.as_ref()),
            &mut msgs,
        );
        self.publish(msgs).await;
        match device {
            Some(_) => self.write_record(&[(eurid, topics)], &[]).await,
            None => self.write_record(&[], &[eurid]).await,
        }
    }

    /// Adds the messages of one device (its configs, or empty ones and a cleared state when
    /// it is gone) and returns the topics published for it.
    fn device(
        &self,
        eurid: &str,
        device: Option<(&EnOceanSensor, Option<u16>)>,
        before: BTreeSet<String>,
        msgs: &mut Vec<OutMessage>,
    ) -> BTreeSet<String> {
        let topics = &self.shared.topics;
        let configs = match device {
            Some((d, made_by)) if self.shared.args.ha_discovery => discovery::configs(
                d,
                made_by,
                topics,
                self.shared.args.availability_on() && Availability::applies(&d.eep),
            ),
            _ => Vec::new(),
        };
        let now: BTreeSet<String> = configs.iter().map(|c| c.topic.clone()).collect();
        for stale in before.difference(&now) {
            msgs.push(OutMessage::mqtt_retained(stale.clone(), Vec::new()));
        }
        msgs.extend(configs.into_iter().map(retained));
        if device.is_none() {
            msgs.push(OutMessage::mqtt_retained(topics.state(eurid), Vec::new()));
            msgs.push(OutMessage::mqtt_retained(
                topics.availability(eurid),
                Vec::new(),
            ));
            self.shared.availability().forget(eurid);
        }
        now
    }

    /// The manufacturers teach-ins told, by device (read in pages).
    async fn manufacturers<'a>(
        &mut self,
        eurids: impl Iterator<Item = &'a String>,
    ) -> redis::RedisResult<HashMap<String, u16>> {
        let eurids: Vec<&String> = eurids.collect();
        let mut found = HashMap::new();
        for page in eurids.chunks(1000) {
            // GETs, not MGET: on a Redis Cluster the keys lie in different slots.
            let mut pipe = redis::pipe();
            for eurid in page {
                pipe.get(keys::device_manufacturer(eurid));
            }
            let values: Vec<Option<u16>> = pipe.query_async(&mut self.redis).await?;
            for (eurid, value) in page.iter().zip(values) {
                if let Some(m) = value {
                    found.insert((*eurid).clone(), m);
                }
            }
        }
        Ok(found)
    }

    async fn write_record(
        &mut self,
        record: &[(String, BTreeSet<String>)],
        gone: &[String],
    ) -> redis::RedisResult<()> {
        let mut pipe = redis::pipe();
        for (eurid, topics) in record {
            let json = serde_json::to_string(topics).expect("topics serialize");
            pipe.hset(keys::HA_DISCOVERY, eurid, json).ignore();
        }
        for eurid in gone {
            pipe.hdel(keys::HA_DISCOVERY, eurid).ignore();
            pipe.del(keys::device_state(eurid)).ignore();
        }
        pipe.query_async(&mut self.redis).await
    }

    /// Reads the rhythm Redis kept for each device, so a device that stays silent after a
    /// restart still goes offline.
    async fn seed<'a>(
        &mut self,
        eurids: impl Iterator<Item = &'a String>,
    ) -> redis::RedisResult<()> {
        let eurids: Vec<&String> = eurids.collect();
        let mut pipe = redis::pipe();
        for e in &eurids {
            pipe.hmget(keys::device_state(e), &[state::LAST_MS, state::INTERVAL_MS]);
        }
        let got: Vec<(Option<f64>, Option<f64>)> = pipe.query_async(&mut self.redis).await?;
        let mut av = self.shared.availability();
        for (eurid, (last, interval)) in eurids.iter().zip(got) {
            if let Some(last) = last {
                av.seed(eurid, last as u64, interval.map(|i| i as u64));
            }
        }
        Ok(())
    }

    /// Reads the timeouts set through the API (a small hash; read every tick).
    async fn timeouts(&mut self) {
        if !self.shared.args.availability_on() {
            return;
        }
        let read: redis::RedisResult<HashMap<String, u64>> =
            self.redis.hgetall(keys::AVAILABILITY_TIMEOUTS).await;
        match read {
            Ok(set) => {
                let set = set
                    .into_iter()
                    .map(|(e, s)| (e.to_ascii_lowercase(), Duration::from_secs(s)))
                    .collect();
                self.shared.availability().set_timeouts(set);
            }
            Err(e) => warn!(error = %e, "reading availability timeouts failed"),
        }
    }

    async fn offline(&mut self) {
        if !self.shared.args.availability_on() {
            return;
        }
        let expired = self.shared.availability().expired(unix_millis());
        let msgs: Vec<OutMessage> = expired
            .iter()
            .map(|e| OutMessage::mqtt_retained(self.shared.topics.availability(e), "offline"))
            .collect();
        if !msgs.is_empty() {
            info!(devices = msgs.len(), "devices missed their rhythm: offline");
            self.publish(msgs).await;
        }
    }

    /// Publishes until the broker confirmed; messages are retained and idempotent.
    async fn publish(&self, msgs: Vec<OutMessage>) {
        let mut backoff = Backoff::default();
        for chunk in msgs.chunks(256) {
            while let Err(e) = self.egress.publish(chunk.to_vec()).await {
                metrics::counter!("iotc_engine_ha_publish_retries_total").increment(1);
                warn!(error = %e, "Home Assistant messages not confirmed; publishing again");
                tokio::time::sleep(backoff.next_pause()).await;
            }
            backoff.reset();
        }
    }
}

fn retained(c: Config) -> OutMessage {
    OutMessage::mqtt_retained(c.topic, c.payload.to_string())
}

fn topics_of(json: Option<&String>) -> BTreeSet<String> {
    json.and_then(|j| serde_json::from_str(j).ok())
        .unwrap_or_default()
}
