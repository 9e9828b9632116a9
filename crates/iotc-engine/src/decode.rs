//! From a stream entry to what it means for a device: pure, no I/O.
//!
//! ESP3 frame → telegram → addressing unwrapped → device lookup (only onboarded, active
//! devices go further) → chain reassembly → secure handling → signal telegram, teach-in, or
//! EEP data. Parts of an open chain stay unacknowledged until the chain ends, so a crash
//! in between replays them. They are held per chain (sender, R-ORG, sequence), so the end of
//! one chain releases only its own parts.
//!
//! Chain time is stream time: a watermark of the entries' receive times (from the ingress),
//! moved on by the engine's own monotonic clock only while no newer entry arrives. Draining
//! an old backlog or a clock skew between ingress and engine therefore never expires a chain
//! whose parts are still coming.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use enocean::chain::{ChainKey, ChainOutcome, Reassembler};
use enocean::teach_in::TeachIn;
use enocean::telegram::Telegram;
use enocean::{Eep, Field, eep, signal, teach_in};
use iotc_core::bus::TelegramEntry;
use iotc_core::model::EnOceanSensor;
use iotc_core::payload::EventCode;

use crate::devices::Devices;
use crate::secure;

/// R-ORG of signal telegrams.
pub const RORG_SIGNAL: u8 = 0xD0;

/// What became of one telegram stream entry.
#[derive(Debug)]
pub enum Outcome {
    /// Not a radio telegram we can read; counted against the gateway.
    Broken(String),
    /// The sender is not onboarded: dropped, counted against the gateway. `first`: the
    /// first telegram of this sender since the engine started (worth a log line).
    Unknown { sender: String, first: bool },
    /// A part of a chained telegram; acknowledged when its chain ends.
    ChainPart,
    /// A telegram of an onboarded device.
    Device(DeviceTelegram),
}

#[derive(Debug)]
pub struct DeviceTelegram {
    pub device: Arc<EnOceanSensor>,
    /// The device's EURID, lower-case hex.
    pub eurid: String,
    pub result: DeviceResult,
}

#[derive(Debug)]
pub enum DeviceResult {
    /// EEP data: published as telemetry with `data` filled.
    Data {
        telegram: Telegram,
        fields: Vec<Field>,
    },
    /// Signal telegram: published as telemetry with `signal` filled.
    Signal {
        telegram: Telegram,
        fields: Vec<Field>,
    },
    /// Teach-in telegram: never decoded as data; counted as not processed.
    TeachIn(TeachIn),
    /// Left to the secure stage (`secure::Stage::settle`): it needs the device's key and
    /// rolling code from Redis. Never published in this form.
    Secure(Telegram),
    /// Not processed; `event` is raised where IoTC has one.
    Failed {
        reason: String,
        event: Option<(EventCode, String)>,
    },
}

impl DeviceResult {
    fn failed(reason: impl Into<String>) -> Self {
        DeviceResult::Failed {
            reason: reason.into(),
            event: None,
        }
    }

    /// Published as telemetry.
    pub fn is_success(&self) -> bool {
        self.outcome().ok()
    }

    /// How the device's counters take it.
    pub fn outcome(&self) -> crate::device_counts::Outcome {
        use crate::device_counts::Outcome;
        match self {
            DeviceResult::Data { .. } => Outcome::Telemetry,
            DeviceResult::Signal { .. } => Outcome::Signal,
            _ => Outcome::NotProcessed,
        }
    }
}

/// Stream ids of the parts of one open chain.
struct Held {
    device: Arc<EnOceanSensor>,
    since_ms: u64,
    ids: Vec<String>,
}

pub struct Decoder {
    devices: Devices,
    chains: Reassembler,
    chain_timeout_ms: u64,
    held: HashMap<ChainKey, Held>,
    clock: StreamClock,
    /// Unknown senders already reported in the log (bounded).
    unknown_seen: HashSet<u32>,
}

/// Unknown senders remembered for the log before the memory starts over.
const UNKNOWN_SEEN_MAX: usize = 10_000;

impl Decoder {
    /// The onboarded devices this decoder looks up.
    pub fn devices(&self) -> &Devices {
        &self.devices
    }

    pub fn new(devices: Devices, chain_timeout_ms: u64) -> Self {
        Decoder {
            devices,
            chains: Reassembler::new(chain_timeout_ms, enocean::chain::DEFAULT_MAX_OPEN),
            chain_timeout_ms,
            held: HashMap::new(),
            clock: StreamClock::default(),
            unknown_seen: HashSet::new(),
        }
    }

    /// Decodes one entry. `released` receives the stream ids of earlier chain parts that
    /// this telegram completed or abandoned: acknowledge them together with `id`.
    pub fn decode(
        &mut self,
        id: &str,
        entry: &TelegramEntry,
        released: &mut Vec<String>,
    ) -> Outcome {
        let now_ms = self.clock.observe(entry.received_ms);
        let telegram = match Telegram::from_esp3(&entry.esp3) {
            Ok(t) => enocean::adt::unwrap(t),
            Err(e) => return Outcome::Broken(e.to_string()),
        };
        let sender = telegram.sender_hex();
        let Some(device) = self.devices.lookup(&sender, &telegram.destination_hex()) else {
            if self.unknown_seen.len() >= UNKNOWN_SEEN_MAX {
                self.unknown_seen.clear();
            }
            let first = self.unknown_seen.insert(telegram.sender);
            return Outcome::Unknown { sender, first };
        };
        let eurid = device.source_eurid.clone();
        if !device.active_flag {
            return device_outcome(device, eurid, DeviceResult::failed("device is inactive"));
        }
        let chain = ChainKey::of(&telegram);
        let telegram = match self.chains.push(telegram, now_ms) {
            ChainOutcome::NotChained(t) => t,
            ChainOutcome::Incomplete => {
                if let Some(key) = chain {
                    self.hold(key, &device, id, now_ms);
                }
                return Outcome::ChainPart;
            }
            ChainOutcome::Complete(t) => {
                self.release(chain, released);
                t
            }
            ChainOutcome::Rejected(e) => {
                self.release(chain, released);
                let result = DeviceResult::failed(format!("chained telegram rejected: {e}"));
                return device_outcome(device, eurid, result);
            }
        };
        let result = match secure::process(&device, telegram) {
            Ok(t) => classify(&device, t),
            Err(failed) => failed,
        };
        device_outcome(device, eurid, result)
    }

    fn hold(&mut self, key: ChainKey, device: &Arc<EnOceanSensor>, id: &str, now_ms: u64) {
        self.held
            .entry(key)
            .or_insert_with(|| Held {
                device: device.clone(),
                since_ms: now_ms,
                ids: Vec::new(),
            })
            .ids
            .push(id.to_string());
    }

    fn release(&mut self, key: Option<ChainKey>, released: &mut Vec<String>) {
        if let Some(h) = key.and_then(|k| self.held.remove(&k)) {
            released.extend(h.ids);
        }
    }

    /// Chains open longer than twice the chain timeout in stream time are given up: their
    /// parts are returned for acknowledgement, one not-processed telegram per chain.
    pub fn expire(&mut self) -> Vec<(Arc<EnOceanSensor>, Vec<String>)> {
        let now_ms = self.clock.now();
        self.chains.expire(now_ms);
        let limit = self.chain_timeout_ms.saturating_mul(2);
        let stale: Vec<ChainKey> = self
            .held
            .iter()
            .filter(|(_, h)| now_ms.saturating_sub(h.since_ms) > limit)
            .map(|(s, _)| *s)
            .collect();
        stale
            .into_iter()
            .filter_map(|s| self.held.remove(&s))
            .map(|h| (h.device, h.ids))
            .collect()
    }

    /// Whether parts of open chains are kept unacknowledged.
    pub fn holds_any(&self) -> bool {
        !self.held.is_empty()
    }

    /// Stream ids kept unacknowledged on purpose (open chains).
    pub fn held_ids(&self) -> crate::stream::IdSet {
        self.held
            .values()
            .flat_map(|h| h.ids.iter().cloned())
            .collect()
    }
}

/// Stream time: the newest receive time seen, plus the engine's monotonic time since it
/// was seen (so that chains still expire when nothing arrives any more).
#[derive(Default)]
struct StreamClock {
    newest_ms: u64,
    seen_at: Option<Instant>,
}

impl StreamClock {
    /// Takes an entry's receive time; returns the stream time.
    fn observe(&mut self, received_ms: u64) -> u64 {
        if received_ms >= self.now() {
            self.newest_ms = received_ms;
            self.seen_at = Some(Instant::now());
        }
        self.now()
    }

    fn now(&self) -> u64 {
        let idle = self.seen_at.map_or(0, |t| t.elapsed().as_millis() as u64);
        self.newest_ms.saturating_add(idle)
    }
}

fn device_outcome(device: Arc<EnOceanSensor>, eurid: String, result: DeviceResult) -> Outcome {
    Outcome::Device(DeviceTelegram {
        device,
        eurid,
        result,
    })
}

/// Signal, teach-in, or data decoded with the device's EEP.
pub fn classify(device: &EnOceanSensor, telegram: Telegram) -> DeviceResult {
    if telegram.rorg == RORG_SIGNAL {
        return match signal::decode(&telegram.data) {
            Ok(fields) => DeviceResult::Signal { telegram, fields },
            Err(e) => DeviceResult::failed(format!("signal telegram: {e}")),
        };
    }
    if let Some(t) = teach_in::detect(&telegram) {
        return DeviceResult::TeachIn(t);
    }
    let id = &device.source_eurid;
    let Ok(eep_id) = device.eep.parse::<Eep>() else {
        return not_found(id, &device.eep);
    };
    match eep::decode(eep_id, telegram.rorg, &telegram.data, telegram.status) {
        Ok(fields) => DeviceResult::Data { telegram, fields },
        Err(eep::EepError::NotFound(_)) => not_found(id, &device.eep),
        Err(e) => DeviceResult::Failed {
            event: Some((
                EventCode::EepDecodeError,
                format!(
                    "EEP {} Parsing error id={id}.",
                    device.eep.to_ascii_uppercase()
                ),
            )),
            reason: format!("EEP {} decoding failed: {e}", device.eep),
        },
    }
}

fn not_found(id: &str, eep: &str) -> DeviceResult {
    let eep = eep.to_ascii_uppercase();
    DeviceResult::Failed {
        reason: format!("EEP {eep} is not supported"),
        event: Some((
            EventCode::EepNotFoundError,
            format!("EEP {eep} sent by {id} is not supported."),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use enocean::esp3::Packet;
    use enocean::telegram::BROADCAST;

    const SENSOR: u32 = 0x0413_d759;

    fn device(eep: &str, active: bool) -> EnOceanSensor {
        serde_json::from_value(serde_json::json!({
            "sourceEurid": "0413d759", "friendlyID": "x", "eep": eep, "activeFlag": active
        }))
        .unwrap()
    }

    fn decoder(eep: &str, active: bool) -> Decoder {
        let devices = Devices::default();
        devices.insert(device(eep, active));
        Decoder::new(devices, 1000)
    }

    fn entry(rorg: u8, data: &[u8], sender: u32, received_ms: u64) -> TelegramEntry {
        let t = Telegram {
            rorg,
            data: data.to_vec(),
            sender,
            destination: BROADCAST,
            status: 0,
            sub_tel_num: Some(1),
            dbm: Some(-60),
            security_level: Some(0),
        };
        let p: Packet = t.to_erp1_packet();
        TelegramEntry {
            gateway_mac: [0; 6],
            received_ms,
            dbm: 0,
            usb_id: String::new(),
            esp3: p.encode(),
        }
    }

    fn result(outcome: Outcome) -> DeviceResult {
        match outcome {
            Outcome::Device(d) => d.result,
            other => panic!("not a device telegram: {other:?}"),
        }
    }

    #[test]
    fn unknown_sender_and_broken_frame() {
        let mut d = decoder("A5-02-05", true);
        let mut released = Vec::new();
        let unknown = entry(0xA5, &[0, 0, 0x80, 0x08], 0x0bad_0001, 0);
        assert!(matches!(
            d.decode("1-0", &unknown, &mut released),
            Outcome::Unknown { sender, first: true } if sender == "0bad0001"
        ));
        assert!(matches!(
            d.decode("1-1", &unknown, &mut released),
            Outcome::Unknown { first: false, .. }
        ));
        let mut broken = entry(0xA5, &[0, 0, 0x80, 0x08], SENSOR, 0);
        *broken.esp3.last_mut().unwrap() ^= 1;
        assert!(matches!(
            d.decode("2-0", &broken, &mut released),
            Outcome::Broken(_)
        ));
    }

    #[test]
    fn data_signal_teach_in_and_inactive() {
        let mut d = decoder("A5-02-05", true);
        let mut released = Vec::new();
        let data = entry(0xA5, &[0, 0, 0x80, 0x08], SENSOR, 0);
        match result(d.decode("1-0", &data, &mut released)) {
            DeviceResult::Data { fields, .. } => {
                assert!(fields.iter().any(|f| f.key == "temperature"))
            }
            other => panic!("{other:?}"),
        }
        let signal = entry(0xD0, &[0x06, 0x38], SENSOR, 0);
        assert!(matches!(
            result(d.decode("2-0", &signal, &mut released)),
            DeviceResult::Signal { .. }
        ));
        let teach_in = entry(0xA5, &[0x08, 0x28, 0x46, 0x80], SENSOR, 0);
        assert!(matches!(
            result(d.decode("3-0", &teach_in, &mut released)),
            DeviceResult::TeachIn(_)
        ));
        let mut off = decoder("A5-02-05", false);
        assert!(matches!(
            result(off.decode("4-0", &data, &mut released)),
            DeviceResult::Failed { event: None, .. }
        ));
    }

    #[test]
    fn eep_events() {
        let mut released = Vec::new();
        let data = entry(0xA5, &[0, 0, 0x80, 0x08], SENSOR, 0);
        let mut unknown_eep = decoder("A5-FF-7F", true);
        match result(unknown_eep.decode("1-0", &data, &mut released)) {
            DeviceResult::Failed {
                event: Some((code, msg)),
                ..
            } => {
                assert_eq!(code, EventCode::EepNotFoundError);
                assert_eq!(msg, "EEP A5-FF-7F sent by 0413d759 is not supported.");
            }
            other => panic!("{other:?}"),
        }
        let mut wrong = decoder("D5-00-01", true);
        match result(wrong.decode("2-0", &data, &mut released)) {
            DeviceResult::Failed {
                event: Some((code, _)),
                ..
            } => {
                assert_eq!(code, EventCode::EepDecodeError)
            }
            other => panic!("{other:?}"),
        }
    }

    /// A signal telegram sent in two chained parts (CDM): the first part is held, and
    /// released for acknowledgement with the part that completes the chain.
    #[test]
    fn chain_parts_are_held_until_complete() {
        let mut d = decoder("A5-02-05", true);
        let mut released = Vec::new();
        let first = entry(0x40, &[0x40, 0x00, 0x02, 0xD0, 0x06], SENSOR, 10);
        assert!(matches!(
            d.decode("1-0", &first, &mut released),
            Outcome::ChainPart
        ));
        assert!(released.is_empty());
        assert!(d.held_ids().contains("1-0"));
        let last = entry(0x40, &[0x41, 0x38], SENSOR, 20);
        match result(d.decode("2-0", &last, &mut released)) {
            DeviceResult::Signal { telegram, .. } => assert_eq!(telegram.data, vec![0x06, 0x38]),
            other => panic!("{other:?}"),
        }
        assert_eq!(released, vec!["1-0".to_string()]);
        assert!(d.held_ids().is_empty());
    }

    /// Stream time decides: a chain is given up once entries received more than twice the
    /// timeout after its first part have been read, whatever the engine's clock says.
    #[test]
    fn abandoned_chain_is_given_up_after_twice_the_timeout() {
        let mut d = decoder("A5-02-05", true);
        let mut released = Vec::new();
        let first = entry(0x40, &[0x40, 0x00, 0x02, 0xD0, 0x06], SENSOR, 1_000);
        assert!(matches!(
            d.decode("1-0", &first, &mut released),
            Outcome::ChainPart
        ));
        let data = |ms| entry(0xA5, &[0, 0, 0x80, 0x08], SENSOR, ms);
        d.decode("2-0", &data(2_500), &mut released);
        assert!(d.expire().is_empty());
        d.decode("3-0", &data(3_500), &mut released);
        let given_up = d.expire();
        assert_eq!(given_up.len(), 1);
        assert_eq!(given_up[0].1, vec!["1-0".to_string()]);
        assert!(d.held_ids().is_empty());
    }

    /// A backlog read long after it was received (or an ingress clock far behind the
    /// engine's): the parts of a chain are still put together.
    #[test]
    fn old_backlog_keeps_its_chains() {
        let mut d = decoder("A5-02-05", true);
        let mut released = Vec::new();
        let first = entry(0x40, &[0x40, 0x00, 0x02, 0xD0, 0x06], SENSOR, 5_000);
        d.decode("1-0", &first, &mut released);
        assert!(d.expire().is_empty(), "the wall clock is not stream time");
        let last = entry(0x40, &[0x41, 0x38], SENSOR, 5_020);
        assert!(matches!(
            result(d.decode("2-0", &last, &mut released)),
            DeviceResult::Signal { .. }
        ));
        assert_eq!(released, vec!["1-0".to_string()]);
    }

    /// Two chains of one sender with different sequence numbers: completing one releases
    /// its own parts only.
    #[test]
    fn chains_are_held_apart() {
        let mut d = decoder("A5-02-05", true);
        let mut released = Vec::new();
        let seq1 = entry(0x40, &[0x40, 0x00, 0x02, 0xD0, 0x06], SENSOR, 10);
        let seq2 = entry(0x40, &[0x80, 0x00, 0x02, 0xD0, 0x06], SENSOR, 11);
        d.decode("1-0", &seq1, &mut released);
        d.decode("2-0", &seq2, &mut released);
        let end2 = entry(0x40, &[0x81, 0x38], SENSOR, 12);
        assert!(matches!(
            result(d.decode("3-0", &end2, &mut released)),
            DeviceResult::Signal { .. }
        ));
        assert_eq!(released, vec!["2-0".to_string()]);
        assert!(
            d.held_ids().contains("1-0"),
            "the other chain's part stays held"
        );
        let end1 = entry(0x40, &[0x41, 0x38], SENSOR, 13);
        released.clear();
        d.decode("4-0", &end1, &mut released);
        assert_eq!(released, vec!["1-0".to_string()]);
    }

    /// When nothing arrives any more, stream time moves on with the engine's monotonic
    /// clock, so an abandoned chain is still given up.
    #[test]
    fn idle_stream_still_expires_chains() {
        let devices = Devices::default();
        devices.insert(device("A5-02-05", true));
        let mut d = Decoder::new(devices, 20);
        let mut released = Vec::new();
        let first = entry(0x40, &[0x40, 0x00, 0x02, 0xD0, 0x06], SENSOR, 1_000);
        d.decode("1-0", &first, &mut released);
        assert!(d.expire().is_empty());
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert_eq!(d.expire().len(), 1);
    }
}
