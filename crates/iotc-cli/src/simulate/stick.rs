//! The simulated AP's EnOcean USB stick on the southbound side: it checks each ESP3 frame the
//! server writes (sync, lengths, both CRCs) and answers with a RESPONSE packet as a TCM 310
//! does: the base ID for `CO_RD_IDBASE`, `RET_OK` for a radio telegram, `RET_NOT_SUPPORTED` for
//! anything else. A broken frame gets no answer (a real stick resynchronises silently).
//!
//! The simulated devices on the radio side react to what the stick sends:
//! - D2-01 switches: an *Actuator Set Output* sets the output, and from then on the switch
//!   reports it in a status response (CMD 0x4) as its telegrams.
//! - A5-20 valves listen only for [`VALVE_LISTENS`] after each of their telegrams (battery
//!   valves sleep otherwise): a set point that arrives then is taken and reported as the
//!   valve's current value; one that arrives while it sleeps is lost, as on the radio.
//! - With `--ute`, VLD devices are not taught in at first: their telegrams are UTE teach-in
//!   queries until a UTE response "teach-in accepted" addressed to them arrives.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{LazyLock, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use enocean::eep::{self, Direction, Eep, Input};
use enocean::esp3::{self, PacketType};
use enocean::south::{CO_RD_IDBASE, Response, ReturnCode};
use enocean::{Value, south};

use super::devices::Content;

/// How long a simulated valve listens after it sent.
pub const VALVE_LISTENS: Duration = Duration::from_secs(1);

/// VLD devices start untaught and ask with UTE queries (`iotc simulate --ute`).
pub static UTE: AtomicBool = AtomicBool::new(false);

/// What the simulated devices learnt from the stick (bounded by the device count).
#[derive(Default)]
struct Radio {
    /// Output value per D2-01 switch that received a command.
    outputs: HashMap<u32, u8>,
    /// Per valve: its profile and until when it listens.
    listening: HashMap<u32, (Eep, Instant)>,
    /// Set point per valve that received one while listening.
    setpoints: HashMap<u32, f64>,
    /// UTE devices that got their teach-in response.
    taught: HashSet<u32>,
}

static RADIO: LazyLock<Mutex<Radio>> = LazyLock::new(Mutex::default);

fn radio() -> MutexGuard<'static, Radio> {
    RADIO.lock().unwrap_or_else(|e| e.into_inner())
}

/// The telegram a simulated device sends instead of random values, if what it learnt from
/// the stick decides it: a UTE query, a switch's status, a valve's current value.
pub fn own_telegram(id: u32, eep: Eep) -> Option<Content> {
    own_telegram_with(id, eep, UTE.load(Ordering::Relaxed))
}

fn own_telegram_with(id: u32, eep: Eep, ute: bool) -> Option<Content> {
    let mut radio = radio();
    if eep.rorg == 0xD2 && ute && !radio.taught.contains(&id) {
        let (rorg, data, status) = south::teach_in_telegram(eep)?;
        return Some(Content { rorg, data, status });
    }
    let inputs = match (eep.rorg, eep.func) {
        (0xD2, 0x01) => {
            let output = *radio.outputs.get(&id)?;
            vec![("CMD", Input::Raw(4)), ("OV", Input::Raw(output.into()))]
        }
        (0xA5, 0x20) => {
            radio
                .listening
                .insert(id, (eep, Instant::now() + VALVE_LISTENS));
            vec![("CV", Input::Value(*radio.setpoints.get(&id)?))]
        }
        _ => return None,
    };
    let (rorg, data, status) = eep::encode_inputs(eep, &inputs, Direction::FromDevice).ok()?;
    Some(Content { rorg, data, status })
}

/// What a simulated device makes of a radio telegram the stick sent (`data`: R-ORG, payload,
/// sender, status; `optional`: sub-telegram count, destination, ...).
fn hear(data: &[u8], optional: &[u8]) {
    let Some(dest) = optional.get(1..5) else {
        return;
    };
    let dest = u32::from_be_bytes(dest.try_into().unwrap_or_default());
    let mut radio = radio();
    match data {
        // D2-01 Actuator Set Output (CMD 0x1): output value in DB0 bits 6..0.
        [0xD2, cmd, _, ov, ..] if cmd & 0x0F == 1 => {
            radio.outputs.insert(dest, ov & 0x7F);
        }
        // UTE teach-in response (CMD 0x1), "teach-in accepted" in DB6 bits 5..4.
        [0xD4, db6, ..] if db6 & 0x0F == 1 && (db6 >> 4) & 0x03 == 1 => {
            radio.taught.insert(dest);
        }
        [0xA5, payload @ .., _, _, _, _, status] if payload.len() == 4 => {
            let Some(&(valve, until)) = radio.listening.get(&dest) else {
                return;
            };
            if Instant::now() > until {
                return; // asleep: the set point is lost
            }
            let fields = eep::decode_with(valve, 0xA5, payload, *status, Direction::ToDevice);
            let setpoint = fields.ok().and_then(|fields| {
                fields.into_iter().find_map(|f| match f.value {
                    Value::Number(v) if f.key == "valvePositionOrTemperatureSetpoint" => Some(v),
                    _ => None,
                })
            });
            if let Some(v) = setpoint {
                radio.setpoints.insert(dest, v);
            }
        }
        _ => {}
    }
}

/// This stick's base ID, derived from the AP's MAC (a multiple of 128 in the base ID range).
pub fn base_id(mac: [u8; 6]) -> u32 {
    let n = u32::from(u16::from_be_bytes([mac[4], mac[5]])) & 0x0FFF;
    enocean::south::BASE_ID_MIN + n * enocean::south::BASE_ID_SPAN
}

/// The RESPONSE frame to one southbound frame; `None` when the frame is broken.
pub fn answer(mac: [u8; 6], frame: &[u8]) -> Option<Vec<u8>> {
    let packet = esp3::parse_frame(frame).ok()?;
    let response = match packet.kind() {
        Some(PacketType::CommonCommand) if packet.data.first() == Some(&CO_RD_IDBASE) => Response {
            code: ReturnCode::Ok,
            // Base ID and the remaining write cycles (0xFF: unknown).
            data: [&base_id(mac).to_be_bytes()[..], &[0xFF]].concat(),
        },
        Some(PacketType::RadioErp1) => {
            hear(&packet.data, &packet.optional);
            Response {
                code: ReturnCode::Ok,
                data: Vec::new(),
            }
        }
        _ => Response {
            code: ReturnCode::NotSupported,
            data: Vec::new(),
        },
    };
    Some(response.frame())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x02, 0x1a, 0x1e, 0x00, 0x01, 0x02];

    #[test]
    fn base_id_read_and_radio_telegram_are_answered() {
        let base = answer(MAC, &enocean::south::read_base_id_frame()).unwrap();
        let packet = esp3::parse_frame(&base).unwrap();
        let response = Response::from_data(&packet.data).unwrap();
        assert_eq!(response.base_id(), Some(base_id(MAC)));
        let radio = enocean::south::Outgoing {
            rorg: 0xD2,
            data: vec![0x01, 0x00, 0x64],
            sender: base_id(MAC) + 5,
            status: 0,
            destination: 0x0190_0001,
        };
        assert_eq!(
            answer(MAC, &radio.frame()).unwrap(),
            hex::decode("5500010002650000").unwrap()
        );
    }

    /// A radio telegram from the stick to `destination`, as `answer` receives it.
    fn to_device(rorg: u8, data: Vec<u8>, status: u8, destination: u32) -> Vec<u8> {
        let sent = enocean::south::Outgoing {
            rorg,
            data,
            sender: base_id(MAC) + 7,
            status,
            destination,
        };
        sent.frame()
    }

    fn valve_set_point(valve: u32, percent: f64) -> Vec<u8> {
        let eep: Eep = "A5-20-01".parse().unwrap();
        let inputs = [("SP", Input::Value(percent))];
        let (rorg, data, status) = eep::encode_inputs(eep, &inputs, Direction::ToDevice).unwrap();
        to_device(rorg, data, status, valve)
    }

    fn current_value(content: &Content) -> f64 {
        let eep: Eep = "A5-20-01".parse().unwrap();
        let fields = eep::decode(eep, content.rorg, &content.data, content.status).unwrap();
        fields
            .iter()
            .find_map(|f| match f.value {
                Value::Number(v) if f.shortcut == "CV" => Some(v),
                _ => None,
            })
            .unwrap()
    }

    #[test]
    fn valve_takes_a_set_point_only_while_it_listens() {
        let valve = 0x0190_0a01;
        let eep: Eep = "A5-20-01".parse().unwrap();
        // Never sent yet: asleep, the set point is lost.
        answer(MAC, &valve_set_point(valve, 30.0)).unwrap();
        assert_eq!(own_telegram_with(valve, eep, false), None);
        // It just sent (the call above): listening now.
        answer(MAC, &valve_set_point(valve, 50.0)).unwrap();
        let reported = own_telegram_with(valve, eep, false).expect("reports its set point");
        assert!((current_value(&reported) - 50.0).abs() < 1.0);
        // Asleep again after the window: the next set point is lost.
        std::thread::sleep(VALVE_LISTENS + Duration::from_millis(200));
        answer(MAC, &valve_set_point(valve, 80.0)).unwrap();
        let reported = own_telegram_with(valve, eep, false).unwrap();
        assert!((current_value(&reported) - 50.0).abs() < 1.0);
    }

    #[test]
    fn ute_device_asks_until_it_is_taught_in() {
        let device = 0x0190_0a02;
        let eep: Eep = "D2-01-12".parse().unwrap();
        let query = own_telegram_with(device, eep, true).expect("a UTE query");
        assert_eq!(query.rorg, 0xD4);
        // A response to another device teaches nothing.
        let accepted = south::ute_response(&query.data, south::UteResult::TeachInAccepted).unwrap();
        answer(MAC, &to_device(0xD4, accepted.clone(), 0, device + 1)).unwrap();
        assert_eq!(own_telegram_with(device, eep, true).unwrap().rorg, 0xD4);
        // "EEP not supported" neither.
        let refused = south::ute_response(&query.data, south::UteResult::EepNotSupported).unwrap();
        answer(MAC, &to_device(0xD4, refused, 0, device)).unwrap();
        assert_eq!(own_telegram_with(device, eep, true).unwrap().rorg, 0xD4);
        answer(MAC, &to_device(0xD4, accepted, 0, device)).unwrap();
        // Taught in: its own telegrams from now on (random values: no own telegram).
        assert_eq!(own_telegram_with(device, eep, true), None);
    }

    #[test]
    fn broken_frame_gets_no_answer() {
        let mut frame = enocean::south::read_base_id_frame();
        let last = frame.len() - 1;
        frame[last] ^= 0xFF;
        assert_eq!(answer(MAC, &frame), None);
        assert_eq!(answer(MAC, &[0x55, 0x00]), None);
    }
}
