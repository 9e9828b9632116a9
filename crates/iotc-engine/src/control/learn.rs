//! Teach-ins of devices that are not onboarded (docs/control.md, "Learn mode"). The telemetry
//! path hands each telegram of an unknown sender that may be a teach-in to [`unknown_heard`]
//! (no Redis call there); this task then either onboards the device, when a learn window is
//! open for it and the teach-in names its EEP, or lists it under `GET /devices/unknown`. A UTE
//! query expecting an answer gets a UTE response from the stick while the window is open.

use std::sync::OnceLock;

use enocean::south::{UteResult, ute_response};
use enocean::teach_in::{self, TeachIn, TeachInKind, UteRequest};
use enocean::telegram::Telegram;
use iotc_core::bus::TelegramEntry;
use iotc_core::command::{CommandEntry, Encoded, new_id};
use iotc_core::keys;
use iotc_core::model::{BROADCAST, EnOceanSensor};
use iotc_core::ops::unix_seconds;
use iotc_core::payload::EventCode;
use redis::AsyncCommands;
use tokio::sync::mpsc;

use super::Control;

/// Unknown teach-ins waiting for the task; beyond it they are dropped and counted.
const QUEUE: usize = 1024;

static UNKNOWN: OnceLock<mpsc::Sender<TelegramEntry>> = OnceLock::new();

/// The telemetry path's hook: a telegram from a sender that is not onboarded. Only R-ORGs that
/// carry teach-ins are passed on.
pub fn unknown_heard(entry: &TelegramEntry) {
    let Some(tx) = UNKNOWN.get() else { return };
    // ESP3 header (6 bytes), then the R-ORG.
    if !matches!(entry.esp3.get(6), Some(0xA5 | 0xD5 | 0xD4 | 0xA6)) {
        return;
    }
    if tx.try_send(entry.clone()).is_err() {
        metrics::counter!("iotc_engine_teach_ins_total", "outcome" => "dropped").increment(1);
    }
}

/// Starts the task (once per process).
pub fn start(control: Control) {
    let (tx, mut rx) = mpsc::channel(QUEUE);
    if UNKNOWN.set(tx).is_err() {
        return;
    }
    tokio::spawn(async move {
        while let Some(entry) = rx.recv().await {
            if let Err(e) = control.on_unknown(&entry).await {
                tracing::warn!(error = %e, "teach-in of an unknown device not handled");
            }
        }
    });
}

impl Control {
    async fn on_unknown(&self, entry: &TelegramEntry) -> redis::RedisResult<()> {
        let Ok(t) = Telegram::from_esp3(&entry.esp3) else {
            return Ok(());
        };
        let t = enocean::adt::unwrap(t);
        let Some(teach) = teach_in::detect(&t) else {
            return Ok(());
        };
        let eurid = t.sender_hex();
        if self.devices.lookup(&eurid, BROADCAST).is_some() {
            return Ok(());
        }
        let open = self.learn_open(&eurid).await?;
        let deletion = matches!(
            teach.kind,
            TeachInKind::Ute {
                request: UteRequest::Deletion,
                ..
            }
        );
        if open
            && !deletion
            && let Some(eep) = teach.eep
        {
            self.onboard(&eurid, &eep.to_string(), &teach).await?;
        } else {
            metrics::counter!("iotc_engine_teach_ins_total", "outcome" => "listed").increment(1);
            self.list(&eurid, &teach, entry).await?;
        }
        if open
            && let TeachInKind::Ute {
                response_expected: true,
                ..
            } = teach.kind
        {
            let result = match (deletion, teach.eep) {
                (true, _) => UteResult::DeletionAccepted,
                (false, Some(_)) => UteResult::TeachInAccepted,
                (false, None) => UteResult::EepNotSupported,
            };
            self.answer_ute(&eurid, &t, result).await?;
        }
        Ok(())
    }

    async fn learn_open(&self, eurid: &str) -> redis::RedisResult<bool> {
        let mut redis = self.redis.clone();
        let n: usize = redis
            .exists(&[keys::device_learn(eurid), keys::LEARN_ALL.to_string()])
            .await?;
        Ok(n > 0)
    }

    /// Onboards the device with the teach-in's EEP, as `POST /devices` would.
    async fn onboard(&self, eurid: &str, eep: &str, teach: &TeachIn) -> redis::RedisResult<()> {
        let device = EnOceanSensor {
            source_eurid: eurid.to_string(),
            destination_eurid: None,
            friendly_id: format!("{eep} {eurid}"),
            location: None,
            eep: eep.to_string(),
            active_flag: true,
            slf: None,
            is_ptm: false,
            aes_key: None,
            custom_tag: String::new(),
        };
        let field = keys::device_field(eurid, BROADCAST);
        let json = serde_json::to_string(&device).expect("a device serialises");
        let mut redis = self.redis.clone();
        // Before the device appears, so that its Home Assistant device shows the manufacturer.
        let manufacturer = keys::device_manufacturer(&eurid.to_ascii_lowercase());
        match teach.manufacturer {
            Some(m) => redis.set::<_, _, ()>(&manufacturer, m).await?,
            None => redis.del::<_, ()>(&manufacturer).await?,
        }
        redis::pipe()
            .atomic()
            .hset(keys::DEVICES, &field, json)
            .ignore()
            .hdel(keys::UNKNOWN_DEVICES, eurid)
            .ignore()
            .hdel(keys::UNKNOWN_COUNTS, eurid)
            .ignore()
            .publish(keys::DEVICES_CHANGED, &field)
            .ignore()
            .query_async::<()>(&mut redis)
            .await?;
        self.devices.insert(device);
        metrics::counter!("iotc_engine_teach_ins_total", "outcome" => "onboarded").increment(1);
        let manufacturer = teach
            .manufacturer
            .map(|m| format!(", manufacturer 0x{m:03X}"))
            .unwrap_or_default();
        let message = format!("Device {eurid} taught in with EEP {eep}{manufacturer}.");
        tracing::info!(
            device = eurid,
            eep,
            "device taught in during its learn window"
        );
        self.event(eurid, EventCode::DeviceTaughtIn, message).await;
        Ok(())
    }

    /// Lists the device under `GET /devices/unknown` (bounded by `keys::UNKNOWN_MAX`).
    async fn list(
        &self,
        eurid: &str,
        teach: &TeachIn,
        entry: &TelegramEntry,
    ) -> redis::RedisResult<()> {
        let mut redis = self.redis.clone();
        let known: bool = redis.hexists(keys::UNKNOWN_DEVICES, eurid).await?;
        if !known {
            let n: usize = redis.hlen(keys::UNKNOWN_DEVICES).await?;
            if n >= keys::UNKNOWN_MAX {
                metrics::counter!("iotc_engine_teach_ins_total", "outcome" => "list_full")
                    .increment(1);
                return Ok(());
            }
        }
        let best = self.candidates(eurid).await.unwrap_or_default();
        let gateway = best
            .first()
            .map(|h| h.mac.clone())
            .unwrap_or_else(|| hex::encode(entry.gateway_mac));
        let record = serde_json::json!({
            "sourceEurid": eurid,
            "eep": teach.eep.map(|e| e.to_string()),
            "manufacturer": teach.manufacturer,
            "lastSeen": unix_seconds(),
            "gateway": gateway,
        });
        redis::pipe()
            .hset(keys::UNKNOWN_DEVICES, eurid, record.to_string())
            .ignore()
            .hincr(keys::UNKNOWN_COUNTS, eurid, 1)
            .ignore()
            .query_async::<()>(&mut redis)
            .await
    }

    /// Sends the UTE response through the AP that heard the device best.
    async fn answer_ute(
        &self,
        eurid: &str,
        query: &Telegram,
        result: UteResult,
    ) -> redis::RedisResult<()> {
        let Some(data) = ute_response(&query.data, result) else {
            return Ok(());
        };
        let entry = CommandEntry {
            id: new_id(),
            device: eurid.to_string(),
            telegram: Encoded {
                rorg: 0xD4,
                data,
                status: 0,
                destination: query.sender,
            },
            origin: "teach-in".into(),
        };
        self.enqueue(&entry).await
    }
}
