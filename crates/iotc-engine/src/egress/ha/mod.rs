//! Home Assistant: MQTT discovery, a retained state object per device, device availability and
//! button events (docs/home-assistant.md). Off unless enabled; IoTC's topics never change.
//!
//! Two entry points: [`Ha::after_batch`], called by the engine with the decoded telegrams of a
//! batch, returns the state, availability and event messages to publish with the batch; and
//! [`sync::run`], a task that publishes discovery configs when devices change, at start and
//! after a broker reconnect, and `offline` when a device misses its rhythm.

pub mod actuators;
pub mod availability;
pub mod buttons;
pub mod config;
pub mod discovery;
pub mod state;
pub mod sync;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use enocean::Field;
use iotc_core::model::EnOceanSensor;
use iotc_core::redis::Redis;
use serde_json::json;

pub use availability::Availability;
pub use config::{HaArgs, HaTopics};

use super::{EgressArgs, OutMessage, Topics};

/// One decoded telegram of an onboarded device.
pub struct Observation<'a> {
    pub device: &'a EnOceanSensor,
    pub eurid: &'a str,
    pub fields: &'a [Field],
    /// A signal telegram (its fields go to `signal_<key>`).
    pub signal: bool,
    pub rssi: i16,
    pub received_ms: u64,
}

/// What the engine hook and the sync task share.
#[derive(Clone)]
pub struct Shared {
    pub args: HaArgs,
    pub topics: HaTopics,
    pub availability: Arc<Mutex<Availability>>,
}

impl Shared {
    /// `None` when nothing of Home Assistant's is enabled.
    pub fn new(args: &HaArgs, egress: &EgressArgs) -> Option<Shared> {
        if !args.any() {
            return None;
        }
        if !egress.mqtt_enabled() {
            tracing::warn!(
                "Home Assistant messages need the MQTT egress (IOT_ENABLE_MQTT): none are sent"
            );
        }
        let topics = HaTopics::new(args, &Topics::from_args(egress), &egress.mqtt_topic_prefix);
        let (min, max) = args.bounds();
        Some(Shared {
            args: args.clone(),
            topics,
            availability: Arc::new(Mutex::new(Availability::new(min, max, args.factor()))),
        })
    }

    fn availability(&self) -> std::sync::MutexGuard<'_, Availability> {
        self.availability.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The engine's hook.
pub struct Ha {
    shared: Shared,
    buttons: buttons::Buttons,
}

/// A device's new values in one batch.
struct Pending<'a> {
    eurid: &'a str,
    updates: state::Updates,
    online: bool,
}

impl Ha {
    pub fn new(shared: Shared) -> Ha {
        Ha {
            shared,
            buttons: buttons::Buttons::default(),
        }
    }

    /// The messages a batch's telegrams lead to: button events, `online` for devices heard
    /// again, and the state object of each device (after one Redis round trip). When Redis
    /// fails the state messages are left out (counted and logged): the next telegram of the
    /// device brings them.
    pub async fn after_batch(
        &mut self,
        redis: &Redis,
        observations: &[Observation<'_>],
    ) -> Vec<OutMessage> {
        let topics = &self.shared.topics;
        let mut out = Vec::new();
        let mut pending: BTreeMap<&str, Pending<'_>> = BTreeMap::new();
        for o in observations {
            if !o.signal {
                for (button, event) in self.buttons.events(o.eurid, o.fields) {
                    let body = json!({ "event_type": event }).to_string();
                    out.push(OutMessage::mqtt(topics.action(o.eurid, &button), body));
                }
            }
            let p = pending.entry(o.eurid).or_insert_with(|| Pending {
                eurid: o.eurid,
                updates: state::Updates::new(),
                online: false,
            });
            state::updates(&o.device.eep, o.fields, o.signal, &mut p.updates);
            p.updates.insert("rssi".into(), o.rssi.into());
            p.updates
                .insert("lastSeen".into(), (o.received_ms / 1000).into());
            if self.shared.args.availability_on() && Availability::applies(&o.device.eep) {
                let mut av = self.shared.availability();
                p.online |= av.heard(o.eurid, o.received_ms);
                let r = av.get(o.eurid).expect("just heard");
                p.updates.insert(state::LAST_MS.into(), r.last_ms.into());
                if let Some(i) = r.interval_ms {
                    p.updates.insert(state::INTERVAL_MS.into(), i.into());
                }
            }
        }
        for p in pending.values().filter(|p| p.online) {
            out.push(OutMessage::mqtt_retained(
                topics.availability(p.eurid),
                "online",
            ));
        }
        out.extend(self.states(redis, &pending).await);
        out
    }

    async fn states(
        &self,
        redis: &Redis,
        pending: &BTreeMap<&str, Pending<'_>>,
    ) -> Vec<OutMessage> {
        let devices: Vec<(&str, &state::Updates)> =
            pending.values().map(|p| (p.eurid, &p.updates)).collect();
        if devices.is_empty() {
            return Vec::new();
        }
        let old = match state::store(&mut redis.clone(), &devices).await {
            Ok(old) => old,
            Err(e) => {
                metrics::counter!("iotc_engine_ha_state_errors_total").increment(1);
                tracing::warn!(error = %e, "storing device states failed; state messages skipped");
                return Vec::new();
            }
        };
        if !self.shared.args.state_on() {
            return Vec::new();
        }
        devices
            .iter()
            .zip(old)
            .map(|((eurid, new), old)| {
                let body = state::object(&old, new).to_string();
                OutMessage::mqtt_retained(self.shared.topics.state(eurid), body)
            })
            .collect()
    }
}
