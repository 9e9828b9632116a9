//! What a controller writes to its USB stick, and what the stick answers (ESP3 v1.47).
//!
//! A telegram to send is a RADIO_ERP1 packet whose optional data asks for a transmission
//! (sub-telegram number 3, dBm 0xFF) and names the destination; the module answers every
//! packet with a RESPONSE (type 0x02) whose first data byte is the return code. RESPONSEs carry
//! no identifier: they answer the packets in the order they were written.

use crate::esp3::{self, PacketType};
use crate::telegram::BROADCAST;

/// ESP3 common command `CO_RD_IDBASE`: read the module's base ID.
pub const CO_RD_IDBASE: u8 = 0x08;
/// Sub-telegram number asking the module to send (ESP3 4.1.1: "Send: 3").
const SEND_SUB_TEL: u8 = 3;
/// Base IDs lie in this range; a sender may be the base ID plus 0..=127.
pub const BASE_ID_MIN: u32 = 0xFF80_0000;
pub const BASE_ID_MAX: u32 = 0xFFFF_FF80;
/// How many sender IDs follow a base ID.
pub const BASE_ID_SPAN: u32 = 128;

/// One radio telegram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub rorg: u8,
    pub data: Vec<u8>,
    pub sender: u32,
    pub status: u8,
    /// The addressee, [`BROADCAST`] for everyone.
    pub destination: u32,
}

impl Outgoing {
    /// The ESP3 RADIO_ERP1 frame asking the stick to send this telegram.
    pub fn frame(&self) -> Vec<u8> {
        let mut data = Vec::with_capacity(self.data.len() + 6);
        data.push(self.rorg);
        data.extend_from_slice(&self.data);
        data.extend_from_slice(&self.sender.to_be_bytes());
        data.push(self.status);
        let mut optional = Vec::with_capacity(7);
        optional.push(SEND_SUB_TEL);
        optional.extend_from_slice(&self.destination.to_be_bytes());
        optional.push(0xFF);
        optional.push(0);
        esp3::encode_frame(PacketType::RadioErp1.as_u8(), &data, &optional)
    }

    /// Whether the telegram is for everyone.
    pub fn is_broadcast(&self) -> bool {
        self.destination == BROADCAST
    }
}

/// The frame of `CO_RD_IDBASE`.
pub fn read_base_id_frame() -> Vec<u8> {
    esp3::encode_frame(PacketType::CommonCommand.as_u8(), &[CO_RD_IDBASE], &[])
}

/// ESP3 RESPONSE return codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReturnCode {
    Ok,
    Error,
    NotSupported,
    WrongParam,
    OperationDenied,
    LockSet,
    BufferTooSmall,
    NoFreeBuffer,
    Other(u8),
}

impl ReturnCode {
    pub fn from_u8(code: u8) -> Self {
        match code {
            0 => Self::Ok,
            1 => Self::Error,
            2 => Self::NotSupported,
            3 => Self::WrongParam,
            4 => Self::OperationDenied,
            5 => Self::LockSet,
            6 => Self::BufferTooSmall,
            7 => Self::NoFreeBuffer,
            other => Self::Other(other),
        }
    }

    pub fn as_u8(self) -> u8 {
        match self {
            Self::Ok => 0,
            Self::Error => 1,
            Self::NotSupported => 2,
            Self::WrongParam => 3,
            Self::OperationDenied => 4,
            Self::LockSet => 5,
            Self::BufferTooSmall => 6,
            Self::NoFreeBuffer => 7,
            Self::Other(c) => c,
        }
    }

    /// The specification's name, e.g. `RET_NOT_SUPPORTED`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ok => "RET_OK",
            Self::Error => "RET_ERROR",
            Self::NotSupported => "RET_NOT_SUPPORTED",
            Self::WrongParam => "RET_WRONG_PARAM",
            Self::OperationDenied => "RET_OPERATION_DENIED",
            Self::LockSet => "RET_LOCK_SET",
            Self::BufferTooSmall => "RET_BUFFER_TO_SMALL",
            Self::NoFreeBuffer => "RET_NO_FREE_BUFFER",
            Self::Other(_) => "RET_UNKNOWN",
        }
    }
}

/// A RESPONSE packet: the return code and the response data after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub code: ReturnCode,
    pub data: Vec<u8>,
}

impl Response {
    /// Reads a RESPONSE packet's data (return code first); `None` when empty.
    pub fn from_data(data: &[u8]) -> Option<Response> {
        let (&code, rest) = data.split_first()?;
        Some(Response {
            code: ReturnCode::from_u8(code),
            data: rest.to_vec(),
        })
    }

    /// The whole ESP3 frame of this response.
    pub fn frame(&self) -> Vec<u8> {
        let mut data = vec![self.code.as_u8()];
        data.extend_from_slice(&self.data);
        esp3::encode_frame(PacketType::Response.as_u8(), &data, &[])
    }

    /// The base ID a `CO_RD_IDBASE` answer carries, when OK and in the base ID range.
    pub fn base_id(&self) -> Option<u32> {
        if self.code != ReturnCode::Ok {
            return None;
        }
        let bytes: [u8; 4] = self.data.get(..4)?.try_into().ok()?;
        let id = u32::from_be_bytes(bytes);
        (BASE_ID_MIN..=BASE_ID_MAX).contains(&id).then_some(id)
    }
}

/// UTE teach-in response results (DB6 bits 5..4 of the response, EEP 2.6 UTE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UteResult {
    Refused = 0,
    TeachInAccepted = 1,
    DeletionAccepted = 2,
    EepNotSupported = 3,
}

/// The data of a UTE teach-in response (R-ORG 0xD4, CMD 0x1) to a UTE query's data:
/// channels, manufacturer and EEP are echoed; `None` when `query` is not a UTE query.
pub fn ute_response(query: &[u8], result: UteResult) -> Option<Vec<u8>> {
    let &[db6, channels, man_lsb, man_msb, typ, func, rorg] = query else {
        return None;
    };
    if db6 & 0x0F != 0 {
        return None;
    }
    let db6 = ((result as u8) << 4) | 0x01;
    Some(vec![
        db6,
        channels,
        man_lsb,
        man_msb & 0x07,
        typ,
        func,
        rorg,
    ])
}

/// Manufacturer ID "multi user": a controller of no particular maker.
pub const MULTI_USER: u16 = 0x7FF;

/// The teach-in telegram `(rorg, data, status)` a controller sends to an actuator of `eep`
/// that is in its own learn mode: a UTE query (VLD), a 4BS teach-in with EEP, a 1BS teach-in,
/// or a rocker press (RPS: actuators such as Eltako's learn the pressed rocker's sender).
/// `None` for an R-ORG without a teach-in.
pub fn teach_in_telegram(eep: crate::eep::Eep) -> Option<(u8, Vec<u8>, u8)> {
    let (func, typ, m) = (eep.func, eep.typ, MULTI_USER);
    Some(match eep.rorg {
        // Bidirectional, response expected, teach-in, CMD 0; all channels.
        0xD2 => (
            0xD4,
            vec![0x80, 0xFF, m as u8, (m >> 8) as u8, typ, func, 0xD2],
            0,
        ),
        0xA5 => {
            let db3 = (func << 2) | (typ >> 5);
            let db2 = ((typ & 0x1F) << 3) | (m >> 8) as u8;
            // DB0: LRN type "with EEP" (bit 7), LRN bit 0 (teach-in).
            (0xA5, vec![db3, db2, m as u8, 0x80], 0)
        }
        0xD5 => (0xD5, vec![0x00], 0),
        // Rocker A, button I pressed (energy bow), T21 and NU set.
        0xF6 => (0xF6, vec![0x10], 0x30),
        _ => return None,
    })
}

/// The sender ID for a device: the stick's base ID plus an offset from the device ID, stable
/// for the device, so an actuator taught to it keeps recognising it (FNV-1a of the ID's four
/// bytes, modulo 128).
pub fn sender_for(base_id: u32, device: u32) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in device.to_be_bytes() {
        h ^= b as u32;
        h = h.wrapping_mul(0x0100_0193);
    }
    base_id + h % BASE_ID_SPAN
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telegram::Telegram;

    #[test]
    fn read_base_id_frame_is_the_specification_example() {
        // ESP3 v1.47, 2.5.8 CO_RD_IDBASE: 55 00 01 00 05 70 08 38.
        assert_eq!(hex(&read_base_id_frame()), "5500010005700838");
    }

    #[test]
    fn outgoing_frame_reads_back_as_a_telegram() {
        let out = Outgoing {
            rorg: 0xD2,
            data: vec![0x01, 0x1E, 0x64],
            sender: 0xFF80_0011,
            status: 0,
            destination: 0x0190_0001,
        };
        let t = Telegram::from_esp3(&out.frame()).unwrap();
        assert_eq!(
            (t.rorg, t.sender, t.destination),
            (0xD2, 0xFF80_0011, 0x0190_0001)
        );
        assert_eq!(t.data, vec![0x01, 0x1E, 0x64]);
        assert_eq!(t.sub_tel_num, Some(3));
    }

    #[test]
    fn base_id_response() {
        let r = Response {
            code: ReturnCode::Ok,
            data: vec![0xFF, 0x9A, 0x6B, 0x80, 0x0A],
        };
        let frame = r.frame();
        let parsed = crate::esp3::parse_frame(&frame).unwrap();
        let back = Response::from_data(&parsed.data).unwrap();
        assert_eq!(back.base_id(), Some(0xFF9A_6B80));
        let refused = Response::from_data(&[2]).unwrap();
        assert_eq!(
            (refused.code, refused.base_id()),
            (ReturnCode::NotSupported, None)
        );
    }

    #[test]
    fn sender_stays_within_the_base_range() {
        for device in [0u32, 1, 0x0190_0001, u32::MAX] {
            let s = sender_for(0xFF80_0000, device);
            assert!((0xFF80_0000..0xFF80_0080).contains(&s));
            assert_eq!(s, sender_for(0xFF80_0000, device), "stable");
        }
    }

    #[test]
    fn ute_response_echoes_the_query() {
        // Query: bidirectional, response expected, teach-in, all channels, manufacturer 0x046,
        // EEP D2-01-12.
        let query = [0x80, 0xFF, 0x46, 0x00, 0x12, 0x01, 0xD2];
        let r = ute_response(&query, UteResult::TeachInAccepted).unwrap();
        assert_eq!(r, vec![0x11, 0xFF, 0x46, 0x00, 0x12, 0x01, 0xD2]);
        assert_eq!(
            ute_response(&r, UteResult::TeachInAccepted),
            None,
            "a response is no query"
        );
    }

    #[test]
    fn teach_in_telegrams_read_back_as_teach_ins() {
        use crate::eep::Eep;
        use crate::teach_in::detect;
        for eep in [Eep::new(0xA5, 0x38, 0x08), Eep::new(0xD2, 0x01, 0x12)] {
            let (rorg, data, status) = teach_in_telegram(eep).unwrap();
            let out = Outgoing {
                rorg,
                data,
                sender: 0xFF80_0001,
                status,
                destination: 1,
            };
            let t = Telegram::from_esp3(&out.frame()).unwrap();
            let teach = detect(&t).expect("a teach-in");
            assert_eq!(teach.eep, Some(eep));
            assert_eq!(teach.manufacturer, Some(MULTI_USER));
        }
        assert!(teach_in_telegram(Eep::new(0xF6, 2, 1)).is_some());
        assert!(teach_in_telegram(Eep::new(0xD1, 0, 0)).is_none());
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|b| format!("{b:02x}")).collect()
    }
}
