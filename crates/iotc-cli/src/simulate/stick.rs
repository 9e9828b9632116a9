//! The simulated AP's EnOcean USB stick on the southbound side: it checks each ESP3 frame the
//! server writes (sync, lengths, both CRCs) and answers with a RESPONSE packet as a TCM 310
//! does: the base ID for `CO_RD_IDBASE`, `RET_OK` for a radio telegram, `RET_NOT_SUPPORTED` for
//! anything else. A broken frame gets no answer (a real stick resynchronises silently).
//!
//! Simulated D2-01 switches react: a D2-01 *Actuator Set Output* sent to one of them sets its
//! output, and from then on it reports that output in a status response (CMD 0x4) as its
//! telegrams.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use enocean::eep::{self, Direction, Eep, Input};
use enocean::esp3::{self, PacketType};
use enocean::south::{CO_RD_IDBASE, Response, ReturnCode};

use super::devices::Content;

/// Output value per simulated switch that received a command (bounded by the device count).
static OUTPUTS: LazyLock<Mutex<HashMap<u32, u8>>> = LazyLock::new(Mutex::default);

/// The status telegram of a simulated D2-01 switch whose output was set by a command.
pub fn actuator_status(id: u32, eep: Eep) -> Option<Content> {
    if (eep.rorg, eep.func) != (0xD2, 0x01) {
        return None;
    }
    let output = *OUTPUTS.lock().unwrap_or_else(|e| e.into_inner()).get(&id)?;
    let inputs = [("CMD", Input::Raw(4)), ("OV", Input::Raw(output.into()))];
    let (rorg, data, status) = eep::encode_inputs(eep, &inputs, Direction::FromDevice).ok()?;
    Some(Content { rorg, data, status })
}

/// Remembers a D2-01 Actuator Set Output (CMD 0x1) for its addressee.
fn remember(data: &[u8], optional: &[u8]) {
    let (Some(&0xD2), Some(cmd), Some(ov), Some(dest)) =
        (data.first(), data.get(1), data.get(3), optional.get(1..5))
    else {
        return;
    };
    if cmd & 0x0F == 1 {
        let dest = u32::from_be_bytes(dest.try_into().unwrap_or_default());
        let mut outputs = OUTPUTS.lock().unwrap_or_else(|e| e.into_inner());
        outputs.insert(dest, ov & 0x7F);
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
            remember(&packet.data, &packet.optional);
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

    #[test]
    fn broken_frame_gets_no_answer() {
        let mut frame = enocean::south::read_base_id_frame();
        let last = frame.len() - 1;
        frame[last] ^= 0xFF;
        assert_eq!(answer(MAC, &frame), None);
        assert_eq!(answer(MAC, &[0x55, 0x00]), None);
    }
}
