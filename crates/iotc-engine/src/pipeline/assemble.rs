//! The messages of a counted batch. [`Assembler::telegram`] is the one place where the
//! messages of one telegram are put together (telemetry, events): hooks that publish more
//! per telegram belong there.

use std::sync::atomic::Ordering;

use iotc_core::keys;
use iotc_core::payload::{EventCode, SensorEvent, SensorInfo};
use rustc_hash::FxHashSet;
use tracing::{info, warn};

use super::batch::Item;
use crate::decode::DeviceResult;
use crate::device_counts::Counters;
use crate::egress::{Egress, OutMessage};
use crate::telemetry;

/// Messages of one batch and what they leave to store.
#[derive(Default)]
pub struct Publication {
    pub messages: Vec<OutMessage>,
    pub recent: Vec<Recent>,
    pub first_seen: Vec<String>,
}

/// A message that goes into its device's most-recent ring (`iotc_core::recent`).
#[derive(Debug)]
pub struct Recent {
    pub ring: String,
    pub seq: u64,
    /// The device's list from an earlier release, removed with the ring's first message.
    pub old_list: Option<String>,
    /// Index of the message in `messages`.
    pub index: usize,
}

/// Builds a batch's messages from its items and their fresh counters.
pub struct Assembler<'a> {
    pub egress: &'a Egress,
    /// Devices whose FIRST_TIME_SEND is already on its way (an earlier batch not yet
    /// committed, or earlier in this batch): not sent twice.
    pub first_pending: &'a mut FxHashSet<String>,
    pub now_s: u64,
    pub out: Publication,
}

impl Assembler<'_> {
    /// Everything one telegram of an onboarded device publishes.
    pub fn telegram(&mut self, item: &Item, c: &Counters) {
        let dt = &item.dt;
        let sensor = SensorInfo::from(dt.device.as_ref());
        if !c.seen && self.first_pending.insert(dt.eurid.clone()) {
            self.first_time(&dt.eurid, sensor.clone());
        }
        match &dt.result {
            DeviceResult::Data { telegram, fields } | DeviceResult::Signal { telegram, fields } => {
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
                let json = telemetry::build(&sensor, telegram, fields, signal, c, radio);
                let topic = self.egress.topics().sensor_telemetry(&dt.eurid);
                self.out.recent.push(Recent {
                    ring: keys::device_recent(&dt.eurid, signal),
                    seq: c.seq(signal),
                    old_list: c
                        .first_numbered
                        .then(|| keys::device_recent_list(&dt.eurid, signal)),
                    index: self.out.messages.len(),
                });
                self.out.messages.push(OutMessage::new(topic, json));
            }
            DeviceResult::Secure(_) => {
                // Settled before; counted like any telegram not processed.
                self.not_processed("not_processed");
            }
            DeviceResult::TeachIn(t) => {
                self.not_processed("teach_in");
                info!(eurid = %dt.eurid, gateway = %item.mac, kind = ?t.kind,
                      eep = ?t.eep.map(|e| e.to_string()), "teach-in telegram; not published");
            }
            DeviceResult::Failed { reason, event } => {
                self.not_processed("not_processed");
                warn!(eurid = %dt.eurid, %reason, "telegram not processed");
                if let Some((code, message)) = event {
                    let ev = SensorEvent::new(sensor, *code, message.clone(), self.now_s);
                    self.event(&dt.eurid, &ev);
                }
            }
        }
    }

    fn first_time(&mut self, eurid: &str, sensor: SensorInfo) {
        info!(%eurid, "first telegram of device");
        let msg = format!("First time send of device with id={eurid}.");
        let ev = SensorEvent::new(sensor, EventCode::FirstTimeSend, msg, self.now_s);
        self.event(eurid, &ev);
        self.out.first_seen.push(eurid.to_string());
    }

    fn event(&mut self, eurid: &str, ev: &SensorEvent) {
        let json = serde_json::to_vec(ev).expect("event serializes");
        metrics::counter!("iotc_engine_events_total").increment(1);
        let topic = self.egress.topics().sensor_event(eurid);
        self.out.messages.push(OutMessage::new(topic, json));
    }

    fn not_processed(&self, outcome: &'static str) {
        telegram_metric(outcome);
        self.egress
            .counters()
            .not_processed
            .fetch_add(1, Ordering::Relaxed);
    }
}

pub fn telegram_metric(outcome: &'static str) {
    metrics::counter!("iotc_engine_telegrams_total", "outcome" => outcome).increment(1);
}
