//! The retained `sensor/<ID>/meta/info` messages: every check reads the registry a page at a
//! time (`HSCAN`) and publishes what changed since the last check. What was published is kept
//! as one 64-bit hash per device EURID (as a number), not the payload, so 1,000,000 devices
//! cost about 34 MB here instead of the payloads' 300 MB (docs/performance.md). A device whose
//! `sourceEurid` is not 8 hex digits (only a write past the API can store one) is skipped.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use iotc_core::keys;
use iotc_core::model::EnOceanSensor;
use iotc_core::redis::Redis;

use crate::egress::{Egress, OutMessage};
use crate::periodic::info_payload;

/// Registry entries one `HSCAN` page asks for.
const PAGE: usize = 500;

type JobResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// What was last published, to publish only changes.
#[derive(Default)]
pub struct InfoState {
    /// Source EURID → hash of the payload published for it.
    published: HashMap<u32, u64>,
    /// Egress connection count at the last full publication.
    connects: u64,
}

impl InfoState {
    pub async fn publish_changes(&mut self, egress: &Egress, redis: &mut Redis) -> JobResult {
        // A reconnect may mean a broker that lost its retained messages: send everything again.
        if egress.connects() != self.connects {
            self.published.clear();
        }
        let connects = egress.connects();
        let mut now: HashMap<u32, u64> = HashMap::with_capacity(self.published.len());
        let mut cursor: u64 = 0;
        loop {
            let (next, page): (u64, Vec<(String, String)>) = redis::cmd("HSCAN")
                .arg(keys::DEVICES)
                .arg(cursor)
                .arg("COUNT")
                .arg(PAGE)
                .query_async(redis)
                .await?;
            let msgs = self.changes(&page, &mut now, egress);
            if !msgs.is_empty() {
                egress.publish(msgs).await?;
            }
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        // A removed device: an empty retained message deletes the retained metadata.
        let topics = egress.topics();
        let removed: Vec<OutMessage> = self
            .published
            .keys()
            .filter(|id| !now.contains_key(*id))
            .map(|id| OutMessage::retained(topics.sensor_info(&format!("{id:08x}")), Vec::new()))
            .collect();
        for chunk in removed.chunks(PAGE) {
            egress.publish(chunk.to_vec()).await?;
        }
        self.published = now;
        self.connects = connects;
        Ok(())
    }

    /// The messages of one page; one device per source EURID (the first one seen wins).
    fn changes(
        &self,
        page: &[(String, String)],
        now: &mut HashMap<u32, u64>,
        egress: &Egress,
    ) -> Vec<OutMessage> {
        let topics = egress.topics();
        let mut msgs = Vec::new();
        for (_, json) in page {
            let Ok(d) = serde_json::from_str::<EnOceanSensor>(json) else {
                tracing::debug!("device entry skipped");
                continue;
            };
            let Some(id) = eurid(&d.source_eurid) else {
                tracing::debug!(id = %d.source_eurid, "device with a malformed EURID skipped");
                continue;
            };
            if now.contains_key(&id) {
                continue;
            }
            let body = info_payload(&d);
            let hash = hash_of(&body);
            if self.published.get(&id) != Some(&hash) {
                let topic = topics.sensor_info(&format!("{id:08x}"));
                msgs.push(OutMessage::retained(topic, body));
            }
            now.insert(id, hash);
        }
        msgs
    }
}

fn eurid(hex: &str) -> Option<u32> {
    (hex.len() == 8 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| u32::from_str_radix(hex, 16).ok())
        .flatten()
}

fn hash_of(body: &str) -> u64 {
    let mut h = DefaultHasher::new();
    body.hash(&mut h);
    h.finish()
}
