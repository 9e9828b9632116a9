//! What travels between the stages.

use std::time::Instant;

use crate::decode::{DeviceResult, DeviceTelegram};
use crate::egress::{Delivery, OutMessage};
use crate::stream::{Source, held_key};

/// One telegram of an onboarded device, with what the published JSON needs.
pub struct Item {
    pub dt: DeviceTelegram,
    pub mac: String,
    pub received_ms: u64,
    pub entry_dbm: i8,
}

impl Item {
    /// What the Home Assistant hook reads of a decoded telegram.
    pub fn observation(&self) -> Option<crate::egress::ha::Observation<'_>> {
        let (telegram, fields, signal) = match &self.dt.result {
            DeviceResult::Data { telegram, fields } => (telegram, fields, false),
            DeviceResult::Signal { telegram, fields } => (telegram, fields, true),
            _ => return None,
        };
        Some(crate::egress::ha::Observation {
            device: &self.dt.device,
            eurid: &self.dt.eurid,
            fields,
            signal,
            rssi: crate::telemetry::rssi(telegram.dbm, self.entry_dbm),
            received_ms: self.received_ms,
        })
    }
}

/// What one read leads to, before counting.
#[derive(Default)]
pub struct Batch {
    pub items: Vec<Item>,
    /// ((gateway MAC, stats field), increment): a handful per batch, so a list (looking a
    /// gateway up allocates nothing).
    pub gateway_counts: Vec<((String, &'static str), i64)>,
    pub gateway_events: Vec<OutMessage>,
    pub acks: Acks,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
            && self.gateway_counts.is_empty()
            && self.gateway_events.is_empty()
            && self.acks.is_empty()
    }

    pub fn count_gateway(&mut self, mac: &str, field: &'static str) {
        match self
            .gateway_counts
            .iter_mut()
            .find(|((m, f), _)| m == mac && *f == field)
        {
            Some((_, n)) => *n += 1,
            None => self.gateway_counts.push(((mac.to_string(), field), 1)),
        }
    }
}

/// Stream entries to acknowledge once everything they produced is confirmed.
#[derive(Default)]
pub struct Acks {
    pub telegrams: Vec<String>,
    pub gateway: Vec<String>,
}

impl Acks {
    pub fn is_empty(&self) -> bool {
        self.telegrams.is_empty() && self.gateway.is_empty()
    }

    pub fn len(&self) -> usize {
        self.telegrams.len() + self.gateway.len()
    }

    /// Their keys in the sets of ids held back ([`crate::stream::held_key`]).
    pub fn held_keys(&self) -> impl Iterator<Item = std::borrow::Cow<'_, str>> {
        let telegrams = self
            .telegrams
            .iter()
            .map(|id| held_key(Source::Telegrams, id));
        let gateway = self
            .gateway
            .iter()
            .map(|id| held_key(Source::GatewayEvents, id));
        telegrams.chain(gateway)
    }

    pub fn ids(&self) -> impl Iterator<Item = &String> {
        self.telegrams.iter().chain(&self.gateway)
    }
}

/// A counted batch: its messages and what to store once they are confirmed.
pub struct Prepared {
    pub messages: Vec<OutMessage>,
    pub after: AfterPublish,
}

/// What a batch writes to Redis after the egress confirmed it.
pub struct AfterPublish {
    /// Messages that go into their device's most-recent ring.
    pub recent: Vec<super::assemble::Recent>,
    /// Devices whose FIRST_TIME_SEND event is in this batch.
    pub first_seen: Vec<String>,
    /// (device, gateway MAC) of each telegram, for the live console feed.
    pub heard: Vec<(String, String)>,
    pub acks: Acks,
    /// When the batch was read (for the batch duration metric).
    pub read_at: Instant,
}

/// A batch every egress confirmed (or refused some messages of for good).
pub struct Confirmed {
    pub delivery: Delivery,
    pub after: AfterPublish,
}

/// Sent back by the commit stage: what is now acknowledged and marked.
pub struct Committed {
    pub first_seen: Vec<String>,
    pub acks: Acks,
}
